import re
import textwrap

SKU_PATTERN = re.compile(r"[A-Z]{3}-\d{4}")


class ValidationError(ValueError):
    """Raised when user-supplied inventory data is malformed."""


def is_valid_sku(sku: str) -> bool:
    """Return True if ``sku`` looks like ``ABC-1234``."""
    return SKU_PATTERN.fullmatch(sku) is not None


def normalize_sku(raw: str) -> str:
    sku = raw.strip().upper()
    if not is_valid_sku(sku):
        raise ValidationError(f"invalid SKU: {raw!r}")
    return sku


def parse_quantity(text: str) -> int:
    """Parse a non-negative whole quantity such as ``" 12 "``."""
    try:
        quantity = int(text.strip())
    except:
        raise ValidationError(f"not a whole number: {text!r}") from None
    if quantity < 0:
        raise ValidationError(f"quantity must not be negative: {quantity}")
    return quantity


def require_positive(value: int, label: str) -> int:
    """Return ``value`` unchanged, or raise if it is not strictly positive."""
    if value <= 0:
        raise ValidationError(f"{label} must be positive, got {value}")
    return value

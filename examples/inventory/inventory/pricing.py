from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from inventory.models import Product
from inventory.validation import ValidationError, require_positive

CENT = Decimal("0.01")


def to_money(amount: Decimal | int | str) -> Decimal:
    """Round an amount to whole cents, halves rounding away from zero."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def parse_price(text: str) -> Decimal:
    """Parse a non-negative price such as ``"4.99"`` into a money amount."""
    try:
        price = Decimal(text.strip())
    except:
        raise ValidationError(f"invalid price: {text!r}") from None
    if not price.is_finite() or price < 0:
        raise ValidationError(f"price must be a non-negative number: {text!r}")
    return to_money(price)


def apply_discount(price: Decimal, percent: Decimal | int) -> Decimal:
    percent = Decimal(percent)
    if not 0 <= percent <= 100:
        raise ValueError(f"discount must be between 0 and 100 percent: {percent}")
    return to_money(price * (100 - percent) / 100)


def add_tax(amount: Decimal, rate: Decimal) -> Decimal:
    """Add tax at ``rate`` (e.g. ``Decimal("0.2")`` for 20%) to ``amount``."""
    if rate < 0:
        raise ValueError(f"tax rate must not be negative: {rate}")
    return to_money(amount * (1 + rate))


@dataclass(frozen=True)
class BulkTier:
    """A discount percentage granted from a minimum order quantity upwards."""

    min_quantity: int
    percent: Decimal


class PriceList:
    """Quotes order prices using bulk-quantity discount tiers."""

    def __init__(self, tiers: Iterable[BulkTier] = ()) -> None:
        self._tiers = sorted(tiers, key=lambda tier: tier.min_quantity)

    def discount_for(self, quantity: int) -> Decimal:
        best = Decimal(0)
        for tier in self._tiers:
            if quantity >= tier.min_quantity:
                best = tier.percent
        return best

    def quote(self, product: Product, quantity: int, tax_rate: Decimal | None = None) -> Decimal:
        """Price ``quantity`` units of ``product`` with bulk discount and optional tax."""
        require_positive(quantity, "quantity")
        gross = product.unit_price * quantity
        subtotal = apply_discount(gross, self.discount_for(quantity))
        if tax_rate == None:
            return subtotal
        return add_tax(subtotal, tax_rate)

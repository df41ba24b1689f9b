from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from enum import Enum

from inventory.models import Product, StockLine
from inventory.validation import ValidationError, normalize_sku, parse_quantity, require_positive


class MovementKind(str, Enum):
    """Why the quantity on hand changed."""

    RECEIPT = "receipt"
    SHIPMENT = "shipment"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class Movement:
    """A signed change to the quantity on hand of one SKU."""

    sku: str
    kind: MovementKind
    quantity: int
    on: date | None = None
    note: str = ""


class InsufficientStock(Exception):
    """Raised when a shipment asks for more units than are on hand."""


class Warehouse:
    """An in-memory stock ledger that records every movement."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lines: dict[str, StockLine] = {}
        self._history: list[Movement] = []

    def register(self, product: Product) -> StockLine:
        """Add ``product`` to the catalogue with nothing on hand."""
        if normalize_sku(product.sku) != product.sku:
            raise ValidationError(f"SKU must be in canonical form: {product.sku!r}")
        if product.sku in self._lines:
            raise ValueError(f"product already registered: {product.sku}")
        line = StockLine(product)
        self._lines[product.sku] = line
        return line

    def line(self, sku: str) -> StockLine:
        """Return the stock line for ``sku``; raise KeyError if it is unknown."""
        try:
            return self._lines[normalize_sku(sku)]
        except KeyError:
            raise KeyError(f"unknown SKU: {sku}") from None

    def quantity_of(self, sku: str) -> int:
        """Return the number of units of ``sku`` currently on hand."""
        return self.line(sku).quantity

    def receive(self, sku: str, quantity: int, on: date | None = None) -> Movement:
        """Record ``quantity`` units arriving from a supplier."""
        require_positive(quantity, "received quantity")
        canonical = self.line(sku).product.sku
        return self._record(Movement(canonical, MovementKind.RECEIPT, quantity, on))

    def ship(self, sku: str, quantity: int, on: date | None = None) -> Movement:
        require_positive(quantity, "shipped quantity")
        line = self.line(sku)
        if quantity > line.quantity:
            raise InsufficientStock(
                f"cannot ship {quantity} of {line.product.sku}: only {line.quantity} on hand"
            )
        return self._record(Movement(line.product.sku, MovementKind.SHIPMENT, -quantity, on))

    def adjust(self, sku: str, counted: str | int, note: str = "") -> Movement | None:
        """Set stock to a physically counted quantity; return the correction, if any."""
        line = self.line(sku)
        delta = parse_quantity(str(counted)) - line.quantity
        if delta == 0:
            return None
        movement = Movement(line.product.sku, MovementKind.ADJUSTMENT, delta, note=note)
        return self._record(movement)

    def _record(self, movement: Movement) -> Movement:
        self._lines[movement.sku].quantity += movement.quantity
        self._history.append(movement)
        return movement

    def history(self, sku: str | None = None) -> list[Movement]:
        """Return recorded movements, oldest first, optionally for one SKU only."""
        if sku != None:
            wanted = normalize_sku(sku)
            return [movement for movement in self._history if movement.sku == wanted]
        return list(self._history)

    def lines(self) -> list[StockLine]:
        """Return all stock lines ordered by SKU."""
        return sorted(self._lines.values(), key=lambda line: line.product.sku)

    def units_moved_by_kind(self) -> dict[MovementKind, int]:
        """Total absolute units moved, grouped by movement kind."""
        totals: defaultdict[MovementKind, int] = defaultdict(int)
        for movement in self._history:
            totals[movement.kind] += abs(movement.quantity)
        return dict(totals)

    def low_stock(self) -> list[StockLine]:
        return [line for line in self.lines() if line.needs_reorder()]

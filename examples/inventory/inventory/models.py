"""Core domain models: product categories, products and stock lines."""

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum


class Category(str, Enum):
    """Broad product categories used for grouping in reports."""

    HARDWARE = "hardware"
    GARDEN = "garden"
    KITCHEN = "kitchen"
    OTHER = "other"


@dataclass(frozen=True)
class Product:
    """A sellable product identified by its SKU."""

    sku: str
    name: str
    unit_price: Decimal
    category: Category = Category.OTHER
    reorder_level: int = 0

    def __post_init__(self) -> None:
        if self.unit_price < 0:
            raise ValueError(f"unit price must not be negative: {self.unit_price}")
        if self.reorder_level < 0:
            raise ValueError(f"reorder level must not be negative: {self.reorder_level}")

    def with_price(self, unit_price: Decimal) -> "Product":
        """Return a copy of this product with a different unit price."""
        return replace(self, unit_price=unit_price)

    def display_name(self) -> str:
        return f"{self.name} ({self.sku})"


@dataclass
class StockLine:
    """The quantity on hand of a single product."""

    product: Product
    quantity: int = 0

    @property
    def value(self) -> Decimal:
        """Stock value of this line at the product's unit price."""
        return self.product.unit_price * self.quantity

    def needs_reorder(self) -> bool:
        return self.quantity <= self.product.reorder_level

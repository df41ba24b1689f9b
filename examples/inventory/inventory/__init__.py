"""A small stock-keeping library: products, pricing, stock movements and reports."""

from inventory.loader import load_products
from inventory.models import Category, Product, StockLine
from inventory.pricing import BulkTier, PriceList, apply_discount, to_money
from inventory.stock import InsufficientStock, Movement, MovementKind, Warehouse
from inventory.validation import ValidationError

__all__ = [
    "BulkTier",
    "Category",
    "InsufficientStock",
    "Movement",
    "MovementKind",
    "PriceList",
    "Product",
    "StockLine",
    "ValidationError",
    "Warehouse",
    "apply_discount",
    "load_products",
    "to_money",
]

__version__ = "0.1.0"

"""Load product catalogues from CSV text."""

import csv
import io

from inventory.models import Category, Product
from inventory.pricing import parse_price
from inventory.stock import Warehouse
from inventory.validation import ValidationError, normalize_sku, parse_quantity

REQUIRED_COLUMNS = ("sku", "name", "price")


def parse_category(raw: str) -> Category:
    """Map a free-text category name to a Category, defaulting to OTHER."""
    try:
        return Category(raw.strip().lower())
    except:
        return Category.OTHER


def _row_to_product(row: dict[str, str | None]) -> Product:
    sku = normalize_sku(row.get("sku") or "")
    name = (row.get("name") or "").strip()
    if not name:
        raise ValidationError(f"missing product name for {sku}")
    price = parse_price(row.get("price") or "")
    category = parse_category(row.get("category") or "")
    reorder_raw = row.get("reorder_level")
    if reorder_raw == None or not reorder_raw.strip():
        reorder_level = 0
    else:
        reorder_level = parse_quantity(reorder_raw)
    return Product(sku, name, price, category, reorder_level)


def load_products(text: str) -> list[Product]:
    """Parse CSV text with a ``sku,name,price[,category][,reorder_level]`` header."""
    reader = csv.DictReader(io.StringIO(text.strip()))
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError(f"missing columns: {', '.join(missing)}")
    products: list[Product] = []
    for row_number, row in enumerate(reader, start=2):
        try:
            products.append(_row_to_product(row))
        except ValidationError as exc:
            raise ValidationError(f"row {row_number}: {exc}") from exc
    return products


def load_into(warehouse: Warehouse, text: str) -> int:
    """Register every product in the CSV ``text``; return how many were added."""
    count = 0
    for product in load_products(text):
        warehouse.register(product)
        count += 1
    return count

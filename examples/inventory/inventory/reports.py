import csv
import io
import json
from collections.abc import Iterable
from decimal import Decimal

from inventory.models import Category, StockLine
from inventory.pricing import to_money
from inventory.stock import Warehouse

CSV_HEADER = ("sku", "name", "category", "quantity", "unit_price", "value")


def stock_value(lines: Iterable[StockLine]) -> Decimal:
    """Total money value of ``lines``."""
    return to_money(sum((line.value for line in lines), Decimal(0)))


def value_by_category(warehouse: Warehouse) -> dict[Category, Decimal]:
    totals: dict[Category, Decimal] = {}
    for line in warehouse.lines():
        category = line.product.category
        totals[category] = totals.get(category, Decimal(0)) + line.value
    return {category: to_money(total) for category, total in totals.items()}


def export_csv(warehouse: Warehouse) -> str:
    """Render every stock line of ``warehouse`` as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in warehouse.lines():
        product = line.product
        writer.writerow(
            [
                product.sku,
                product.name,
                product.category.value,
                line.quantity,
                to_money(product.unit_price),
                to_money(line.value),
            ]
        )
    return buffer.getvalue()


def reorder_report(warehouse: Warehouse) -> list[str]:
    """One human-readable line per product at or below its reorder level."""
    return [
        f"{line.product.display_name()}: {line.quantity} on hand, "
        f"reorder at {line.product.reorder_level}"
        for line in warehouse.low_stock()
    ]


def summary(warehouse: Warehouse) -> dict[str, object]:
    """Headline figures for ``warehouse``: product count, units and total value."""
    lines = warehouse.lines()
    return {
        "warehouse": warehouse.name,
        "products": len(lines),
        "units": sum(line.quantity for line in lines),
        "value": stock_value(lines),
        "low_stock": len(warehouse.low_stock()),
    }

import csv
import io
from decimal import Decimal

from inventory import Warehouse
from inventory.models import Category
from inventory.reports import (
    CSV_HEADER,
    export_csv,
    reorder_report,
    stock_value,
    summary,
    value_by_category,
)


def test_stock_value(warehouse):
    assert stock_value(warehouse.lines()) == Decimal("134.98")
    assert stock_value([]) == Decimal("0.00")


def test_value_by_category(warehouse):
    assert value_by_category(warehouse) == {
        Category.HARDWARE: Decimal("125.00"),
        Category.GARDEN: Decimal("9.98"),
    }


def test_export_csv_round_trips(warehouse):
    rows = list(csv.reader(io.StringIO(export_csv(warehouse))))
    assert tuple(rows[0]) == CSV_HEADER
    assert rows[1] == ["HAM-0001", "Claw hammer", "hardware", "10", "12.50", "125.00"]
    assert rows[2] == ["TRW-0002", "Garden trowel", "garden", "2", "4.99", "9.98"]
    assert len(rows) == 3


def test_export_csv_empty_warehouse():
    assert export_csv(Warehouse("Empty")) == ",".join(CSV_HEADER) + "\n"


def test_reorder_report(warehouse):
    assert reorder_report(warehouse) == [
        "Garden trowel (TRW-0002): 2 on hand, reorder at 2",
    ]


def test_summary(warehouse):
    warehouse.ship("HAM-0001", 6)
    assert summary(warehouse) == {
        "warehouse": "Main",
        "products": 2,
        "units": 6,
        "value": Decimal("59.98"),
        "low_stock": 2,
    }

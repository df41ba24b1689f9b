from decimal import Decimal

import pytest

from inventory.loader import load_into, load_products, parse_category
from inventory.models import Category
from inventory.stock import Warehouse
from inventory.validation import ValidationError

CATALOGUE = """
sku,name,price,category,reorder_level
ham-0001,Claw hammer,12.5,Hardware,5
KNF-0003,Chef knife,29.999,kitchen,
TRW-0002,Garden trowel,4.99,garden tools,1
"""


def test_load_products_parses_rows():
    products = load_products(CATALOGUE)
    assert [p.sku for p in products] == ["HAM-0001", "KNF-0003", "TRW-0002"]
    hammer, knife, trowel = products
    assert hammer.unit_price == Decimal("12.50")
    assert hammer.category is Category.HARDWARE
    assert hammer.reorder_level == 5
    assert knife.unit_price == Decimal("30.00")
    assert knife.reorder_level == 0
    assert trowel.category is Category.OTHER


def test_optional_columns_may_be_absent():
    products = load_products("sku,name,price\nABC-1234,Widget,1.00\n")
    assert products[0].category is Category.OTHER
    assert products[0].reorder_level == 0


def test_missing_required_column():
    with pytest.raises(ValidationError, match="price"):
        load_products("sku,name\nABC-1234,Widget\n")


def test_bad_row_reports_row_number():
    text = "sku,name,price\nABC-1234,Widget,1.00\nABC-1235,Gadget,cheap\n"
    with pytest.raises(ValidationError, match="row 3"):
        load_products(text)


def test_missing_name_rejected():
    with pytest.raises(ValidationError, match="name"):
        load_products("sku,name,price\nABC-1234,  ,1.00\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Garden", Category.GARDEN), (" kitchen ", Category.KITCHEN), ("toys", Category.OTHER)],
)
def test_parse_category(raw, expected):
    assert parse_category(raw) is expected


def test_parse_category_tolerates_non_text():
    assert parse_category(None) is Category.OTHER


def test_load_into_registers_products():
    wh = Warehouse("Loaded")
    assert load_into(wh, CATALOGUE) == 3
    assert wh.quantity_of("KNF-0003") == 0
    assert [line.product.sku for line in wh.lines()] == ["HAM-0001", "KNF-0003", "TRW-0002"]

from decimal import Decimal

import pytest

from inventory.models import Category, Product, StockLine


def test_product_rejects_negative_price():
    with pytest.raises(ValueError):
        Product("HAM-0001", "Hammer", Decimal("-1"))


def test_product_rejects_negative_reorder_level():
    with pytest.raises(ValueError):
        Product("HAM-0001", "Hammer", Decimal("1"), reorder_level=-1)


def test_with_price_returns_modified_copy(hammer):
    cheaper = hammer.with_price(Decimal("9.99"))
    assert cheaper.unit_price == Decimal("9.99")
    assert hammer.unit_price == Decimal("12.50")
    assert cheaper.sku == hammer.sku


def test_display_name(hammer):
    assert hammer.display_name() == "Claw hammer (HAM-0001)"


def test_stock_line_value_and_reorder(hammer):
    line = StockLine(hammer, quantity=4)
    assert line.value == Decimal("50.00")
    assert line.needs_reorder()
    line.quantity = 6
    assert not line.needs_reorder()


def test_default_category_is_other():
    assert Product("MSC-0009", "Thing", Decimal("1")).category is Category.OTHER

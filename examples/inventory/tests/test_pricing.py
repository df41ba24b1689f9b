from decimal import Decimal

import pytest

from inventory.pricing import (
    BulkTier,
    PriceList,
    add_tax,
    apply_discount,
    parse_price,
    to_money,
)
from inventory.validation import ValidationError


def test_to_money_rounds_half_up():
    assert to_money(Decimal("2.345")) == Decimal("2.35")
    assert to_money("1") == Decimal("1.00")


def test_apply_discount():
    assert apply_discount(Decimal("100"), 15) == Decimal("85.00")
    assert apply_discount(Decimal("9.99"), 0) == Decimal("9.99")


@pytest.mark.parametrize("percent", [-1, 101])
def test_apply_discount_rejects_out_of_range(percent):
    with pytest.raises(ValueError):
        apply_discount(Decimal("10"), percent)


def test_add_tax():
    assert add_tax(Decimal("10.00"), Decimal("0.2")) == Decimal("12.00")
    with pytest.raises(ValueError):
        add_tax(Decimal("10.00"), Decimal("-0.1"))


def test_parse_price():
    assert parse_price(" 4.999 ") == Decimal("5.00")


@pytest.mark.parametrize("text", ["abc", "", "-1", "NaN", "Infinity"])
def test_parse_price_rejects_bad_input(text):
    with pytest.raises(ValidationError):
        parse_price(text)


def test_price_list_picks_highest_applicable_tier(hammer):
    prices = PriceList([BulkTier(50, Decimal("10")), BulkTier(10, Decimal("5"))])
    assert prices.discount_for(9) == Decimal(0)
    assert prices.discount_for(10) == Decimal("5")
    assert prices.discount_for(75) == Decimal("10")
    assert prices.quote(hammer, 10) == Decimal("118.75")


def test_quote_with_and_without_tax(trowel):
    prices = PriceList()
    assert prices.quote(trowel, 2) == Decimal("9.98")
    assert prices.quote(trowel, 2, tax_rate=Decimal("0.1")) == Decimal("10.98")
    assert prices.quote(trowel, 2, tax_rate=Decimal("0")) == Decimal("9.98")


def test_quote_rejects_non_positive_quantity(trowel):
    with pytest.raises(ValidationError):
        PriceList().quote(trowel, 0)

import pytest

from inventory.validation import (
    ValidationError,
    is_valid_sku,
    normalize_sku,
    parse_quantity,
    require_positive,
)


@pytest.mark.parametrize("sku", ["ABC-1234", "HAM-0001"])
def test_valid_skus(sku):
    assert is_valid_sku(sku)


@pytest.mark.parametrize("sku", ["abc-1234", "AB-1234", "ABC-12345", "ABC1234", ""])
def test_invalid_skus(sku):
    assert not is_valid_sku(sku)


def test_normalize_sku_strips_and_uppercases():
    assert normalize_sku("  ham-0001 ") == "HAM-0001"


def test_normalize_sku_rejects_garbage():
    with pytest.raises(ValidationError):
        normalize_sku("hammer")


def test_parse_quantity():
    assert parse_quantity(" 12 ") == 12
    assert parse_quantity("0") == 0


@pytest.mark.parametrize("text", ["twelve", "1.5", "", "-3"])
def test_parse_quantity_rejects_bad_input(text):
    with pytest.raises(ValidationError):
        parse_quantity(text)


def test_parse_quantity_rejects_non_text():
    with pytest.raises(ValidationError):
        parse_quantity(None)


def test_validation_error_is_value_error():
    with pytest.raises(ValueError):
        require_positive(0, "count")
    assert require_positive(3, "count") == 3

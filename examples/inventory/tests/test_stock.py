from datetime import date
from decimal import Decimal

import pytest

from inventory.models import Product
from inventory.stock import InsufficientStock, MovementKind, Warehouse
from inventory.validation import ValidationError


def test_receive_and_ship(warehouse):
    warehouse.ship("ham-0001", 3, on=date(2024, 1, 2))
    assert warehouse.quantity_of("HAM-0001") == 7
    last = warehouse.history()[-1]
    assert last.kind is MovementKind.SHIPMENT
    assert last.quantity == -3
    assert last.sku == "HAM-0001"
    assert last.on == date(2024, 1, 2)


def test_cannot_ship_more_than_on_hand(warehouse):
    with pytest.raises(InsufficientStock):
        warehouse.ship("TRW-0002", 3)
    assert warehouse.quantity_of("TRW-0002") == 2


def test_non_positive_movements_rejected(warehouse):
    with pytest.raises(ValidationError):
        warehouse.receive("HAM-0001", 0)
    with pytest.raises(ValidationError):
        warehouse.ship("HAM-0001", -1)


def test_unknown_sku_raises_key_error(warehouse):
    with pytest.raises(KeyError):
        warehouse.quantity_of("ZZZ-9999")


def test_register_rejects_duplicates_and_non_canonical_skus(hammer):
    wh = Warehouse("Spare")
    wh.register(hammer)
    with pytest.raises(ValueError):
        wh.register(hammer)
    with pytest.raises(ValidationError):
        wh.register(Product("ham-0003", "Mallet", Decimal("8")))


def test_adjust_to_counted_quantity(warehouse):
    movement = warehouse.adjust("HAM-0001", "8", note="cycle count")
    assert movement is not None
    assert movement.kind is MovementKind.ADJUSTMENT
    assert movement.quantity == -2
    assert movement.note == "cycle count"
    assert warehouse.quantity_of("HAM-0001") == 8
    assert warehouse.adjust("HAM-0001", 8) is None


def test_adjust_rejects_bad_count(warehouse):
    with pytest.raises(ValidationError):
        warehouse.adjust("HAM-0001", "lots")
    assert warehouse.quantity_of("HAM-0001") == 10


def test_history_filtering(warehouse):
    warehouse.ship("TRW-0002", 1)
    assert len(warehouse.history()) == 3
    trowel_moves = warehouse.history("trw-0002")
    assert [m.quantity for m in trowel_moves] == [2, -1]
    assert warehouse.history("HAM-0001")[0].kind is MovementKind.RECEIPT


def test_history_is_a_copy(warehouse):
    warehouse.history().clear()
    assert len(warehouse.history()) == 2


def test_units_moved_by_kind(warehouse):
    warehouse.ship("HAM-0001", 4)
    warehouse.adjust("TRW-0002", 5)
    assert warehouse.units_moved_by_kind() == {
        MovementKind.RECEIPT: 12,
        MovementKind.SHIPMENT: 4,
        MovementKind.ADJUSTMENT: 3,
    }


def test_low_stock(warehouse):
    assert [line.product.sku for line in warehouse.low_stock()] == ["TRW-0002"]
    warehouse.ship("HAM-0001", 5)
    assert [line.product.sku for line in warehouse.low_stock()] == ["HAM-0001", "TRW-0002"]

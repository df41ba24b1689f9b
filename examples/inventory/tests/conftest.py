from decimal import Decimal

import pytest

from inventory.models import Category, Product
from inventory.stock import Warehouse


@pytest.fixture
def hammer() -> Product:
    return Product("HAM-0001", "Claw hammer", Decimal("12.50"), Category.HARDWARE, reorder_level=5)


@pytest.fixture
def trowel() -> Product:
    return Product("TRW-0002", "Garden trowel", Decimal("4.99"), Category.GARDEN, reorder_level=2)


@pytest.fixture
def warehouse(hammer: Product, trowel: Product) -> Warehouse:
    wh = Warehouse("Main")
    wh.register(hammer)
    wh.register(trowel)
    wh.receive("HAM-0001", 10)
    wh.receive("TRW-0002", 2)
    return wh

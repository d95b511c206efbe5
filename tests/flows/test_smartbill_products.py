"""Products ERP -> shop on SmartBill: not served. SmartBill has no catalogue API; ``/stocks`` gives only a code, a
name, a unit and quantities, and the product flow refuses to send a product to the shop without a price and a
VAT rate (``core/mapping.py`` ``_check_for_shop``, for creations and updates alike). So ``products_read`` stays
off and the ``products`` flow ends *Skipped* with the reason, making no SmartBill call (docs/smartbill.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from erpsync.core.summary import RunState
from tests.flows.smartbill_stack import SmartBillStack, sb_stack_factory

pytestmark = pytest.mark.prefect


@pytest.fixture
def make_sb_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., SmartBillStack]]:
    yield from sb_stack_factory(tmp_path, monkeypatch)


def test_the_product_flow_skips_smartbill_with_the_reason_and_no_call(
    make_sb_stack: Callable[..., SmartBillStack],
) -> None:
    stack = make_sb_stack()
    summary = stack.run("products", ok=False)
    assert summary.state is RunState.SKIPPED, summary.message
    assert "product" in summary.message.lower()
    assert stack.sb.stats.calls == 0 and stack.sim.stats.writes == 0

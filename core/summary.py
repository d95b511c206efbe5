"""The summary every flow run returns: what it did, what failed, what it cost in API calls and seconds."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class RunState(StrEnum):
    COMPLETED = "completed"
    PARTIAL = "partially_failed"
    FAILED = "failed"
    SKIPPED = "skipped"


class RunSummary(BaseModel):
    """Counts of one flow run for one store; ``state`` is partially_failed when any record failed."""

    flow: str
    store: str
    state: RunState = RunState.COMPLETED
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    shop_reads: int = 0
    shop_writes: int = 0
    erp_reads: int = 0
    erp_writes: int = 0
    seconds: float = 0.0
    message: str = ""
    open_failures: str = ""  # the store's open failures after this run ("2 held for a person: ..."), empty: none
    details: dict[str, Any] = Field(default_factory=dict)

    def finish(self) -> RunSummary:
        """Set ``state`` from the counts (a run with failed records is not a plain success)."""
        if self.state not in (RunState.FAILED, RunState.SKIPPED):
            self.state = RunState.PARTIAL if self.failed else RunState.COMPLETED
        return self

    def line(self) -> str:
        """A one-line human summary."""
        return (
            f"{self.flow} [{self.store}] {self.state.value}: created {self.created}, updated {self.updated}, "
            f"unchanged {self.unchanged}, failed {self.failed}; shop {self.shop_reads}r/{self.shop_writes}w, "
            f"ERP {self.erp_reads}r/{self.erp_writes}w; {self.seconds:.1f} s"
            + (f"; store {self.store}: {self.open_failures}" if self.open_failures else "")
        )

"""A fake clock for pacing and lease tests: time passes only through ``sleep``, so a loaded CI machine cannot
make a test late or early.

Each thread keeps its own virtual time (all start at the clock's start): a thread that sleeps moves only its own
time on, as independent threads do. With one thread this is an ordinary advancing fake clock.
"""

from __future__ import annotations

import threading


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self._local = threading.local()
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """This thread's virtual time."""
        return float(getattr(self._local, "now", self.start))

    def sleep(self, seconds: float) -> None:
        """Move this thread's time on by ``seconds`` (never back), at once."""
        if seconds < 0:
            raise ValueError("negative sleep")
        with self._lock:
            self.sleeps.append(seconds)
        self._local.now = self.now() + seconds

    def advance(self, seconds: float) -> None:
        """Let time pass for this thread without a sleep being asked for (idle time between calls)."""
        self._local.now = self.now() + seconds

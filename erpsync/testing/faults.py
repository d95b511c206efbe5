"""Seeded fault injection for the simulators and the fault proxy: one plan, one decision per request, counters.

- ``Faults`` is the plan: a probability per fault kind (their sum at most 1), a seed, the hang of a ``timeout``,
  the methods that draw at all, a constant ``latency`` and the ``Retry-After`` of an injected 429.
- ``FaultInjector`` decides, per request, what to inject: first a fault queued for that route (``queue``), else
  one seeded draw from the plan. Same seed, same request sequence -> same faults. It counts what it injected,
  by kind, and can be switched off (``enabled``) without losing its place in the sequence.
- ``send_cut`` and ``send_truncated`` play the two faults no status code can express, on any ASGI ``send``: a
  reply cut half-way (``SimulatedConnectionReset``: uvicorn drops the connection, ``InProcessTransport`` turns
  it into ``httpx.ReadError``) and a reply whose ``Content-Length`` matches a body cut in half (valid HTTP,
  broken JSON).

Who plays what: the MerchantPro simulator every kind (after auth, pacing and routing); the SmartBill simulator
the kinds that are replies (``error_500``, ``error_429``, ``timeout``) and its queued faults; the fault proxy
(``fault_proxy.FaultProxy``, in front of a real server) every kind.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = [
    "CUT_KINDS",
    "FAULT_KINDS",
    "REPLY_KINDS",
    "Fault",
    "FaultInjector",
    "Faults",
    "SimulatedConnectionReset",
    "refuse_kinds",
    "send_cut",
    "send_truncated",
]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

FAULT_KINDS = ("error_500", "error_429", "timeout", "reset", "reset_after_write", "truncated")
REPLY_KINDS = frozenset({"error_500", "error_429", "timeout"})  # a status code says it all
CUT_KINDS = frozenset({"reset", "reset_after_write", "truncated"})  # the connection or the body is cut


class SimulatedConnectionReset(ConnectionResetError):
    """Raised mid-response by a reset fault: uvicorn aborts the connection, ASGITransport re-raises it."""

    simulated = True  # erpsync.testing.server keeps its traceback out of the log


@dataclass
class Faults:
    """The plan: each share is a probability per (eligible) request; their sum must be <= 1.

    ``error_500`` / ``error_429`` answer that status without doing the work (a 429 with ``Retry-After:
    retry_after`` when set); ``timeout`` stalls ``hang_seconds`` and then answers 500 (the client has given up);
    ``reset`` cuts the reply without doing the work; ``reset_after_write`` does the work and then cuts the reply
    (the client cannot know it happened); ``truncated`` sends half a body with a matching ``Content-Length``.
    ``only_methods`` limits the draws to those HTTP methods (the others draw nothing); ``latency`` delays every
    eligible request by that many seconds.
    """

    error_500: float = 0.0
    error_429: float = 0.0
    timeout: float = 0.0
    reset: float = 0.0
    truncated: float = 0.0
    seed: int = 0
    hang_seconds: float = 3.0
    only_methods: frozenset[str] | None = None
    reset_after_write: float = 0.0
    latency: float = 0.0
    retry_after: float | None = None

    def __post_init__(self) -> None:
        shares = [getattr(self, kind) for kind in FAULT_KINDS]
        if any(not 0.0 <= share <= 1.0 for share in shares) or sum(shares) > 1.0 + 1e-9:
            raise ValueError("fault shares must each be within [0, 1] and sum to at most 1")
        if self.hang_seconds < 0 or self.latency < 0:
            raise ValueError("hang_seconds and latency must be >= 0")
        if self.only_methods is not None:
            self.only_methods = frozenset(method.upper() for method in self.only_methods)

    def kinds(self) -> set[str]:
        """The kinds this plan can inject (share above zero)."""
        return {kind for kind in FAULT_KINDS if getattr(self, kind) > 0}

    def applies_to(self, method: str) -> bool:
        """Whether requests with this method draw from the fault RNG at all."""
        return self.only_methods is None or method.upper() in self.only_methods

    def pick(self, rng: random.Random) -> str | None:
        """Draw once from ``rng`` and return the fault kind to inject, or None."""
        draw = rng.random()
        threshold = 0.0
        for kind in FAULT_KINDS:
            threshold += getattr(self, kind)
            if draw < threshold:
                return kind
        return None


@dataclass(frozen=True)
class Fault:
    """One fault to play: ``kind`` (a ``FAULT_KINDS`` name, ``error_<status>`` for another status, or
    ``error_text``), the ``status`` to answer, whether the work is done first (``after``), a stall before the
    reply (``delay``), an error text for simulators that answer refusals in their body, and ``Retry-After``."""

    kind: str
    status: int = 500
    after: bool = False
    delay: float = 0.0
    error_text: str | None = None
    retry_after: float | None = None
    route: str | None = None  # a queued fault's route (None: any)
    marker: str | None = None  # a queued fault plays only on a request whose body holds this (a JSON-RPC method)

    @property
    def cuts(self) -> bool:
        """Whether playing it cuts the reply (no status code can say it)."""
        return self.kind in CUT_KINDS

    @classmethod
    def of_kind(cls, kind: str, plan: Faults) -> Fault:
        """The fault a plan's draw of ``kind`` means."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        status = {"error_429": 429, "truncated": 200, "reset": 200, "reset_after_write": 200}.get(kind, 500)
        return cls(
            kind=kind,
            status=status,
            after=kind == "reset_after_write",
            delay=plan.hang_seconds if kind == "timeout" else 0.0,
            retry_after=plan.retry_after if kind == "error_429" else None,
        )

    @classmethod
    def queued(
        cls,
        route: str | None = None,
        *,
        status: int = 500,
        after: bool = False,
        delay: float = 0.0,
        error_text: str | None = None,
    ) -> Fault:
        """A fault for the next request on ``route``: answer ``status`` (or ``error_text``), before or after the
        work, after a stall of ``delay`` seconds."""
        kind = "error_text" if error_text is not None else f"error_{status}"
        return cls(kind=kind, status=status, after=after, delay=delay, error_text=error_text, route=route)


class FaultInjector:
    """Decides, per request, the fault to inject: a queued one for the route first, else a seeded draw.

    ``counts`` counts the faults decided, by kind (pass a ``Counter`` to count into one you already report);
    ``requests`` every request asked about, ``enabled = False`` injects nothing and draws nothing.
    Thread-safe: a simulator served by uvicorn and read by a test share it.
    """

    def __init__(self, plan: Faults | None = None, *, counts: Counter[str] | None = None) -> None:
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self.requests = 0
        self.enabled = True
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.plan: Faults | None = None
        self._rng = random.Random(0)
        self.set_plan(plan)

    def set_plan(self, plan: Faults | None) -> None:
        """Install (or clear) the plan; the draws restart from ``plan.seed``."""
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed if plan else 0)

    def queue(self, fault: Fault, count: int = 1) -> None:
        """Inject ``fault`` into the next ``count`` requests on its route (before any draw)."""
        with self._lock:
            self._queue.extend([fault] * count)

    def clear(self) -> None:
        """Forget the queued faults."""
        with self._lock:
            self._queue.clear()

    def latency(self, method: str = "GET") -> float:
        """Seconds a request with this method waits before it is served (the plan's ``latency``; 0 when off)."""
        plan = self.plan
        return plan.latency if plan is not None and self.enabled and plan.applies_to(method) else 0.0

    def draw(self, method: str = "GET", route: str | None = None, body: bytes = b"") -> Fault | None:
        """The fault for this request, or None (counted either way)."""
        with self._lock:
            self.requests += 1
            if not self.enabled:
                return None
            fault = self._take_queued(route, body)
            plan = self.plan
            if fault is None and plan is not None and plan.applies_to(method):
                kind = plan.pick(self._rng)
                fault = Fault.of_kind(kind, plan) if kind is not None else None
            if fault is not None:
                self.counts[fault.kind] += 1
            return fault

    def _take_queued(self, route: str | None, body: bytes = b"") -> Fault | None:
        for fault in self._queue:
            if fault.route in (None, route) and (fault.marker is None or fault.marker.encode() in body):
                self._queue.remove(fault)
                return fault
        return None

    @property
    def total(self) -> int:
        """Faults injected so far, of every kind."""
        return sum(self.counts.values())


def refuse_kinds(plan: Faults | None, allowed: Iterable[str], who: str) -> None:
    """Raise ``ValueError`` when ``plan`` can draw a kind ``who`` cannot play."""
    if plan is None:
        return
    unplayable = sorted(plan.kinds() - set(allowed))
    if unplayable:
        raise ValueError(f"{who} cannot play fault kinds {', '.join(unplayable)}")


def _headers(content_type: bytes, length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"content-length", b"%d" % length)]


async def send_cut(
    send: Send,
    status: int,
    body: bytes,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    what: str = "the reply",
) -> NoReturn:
    """Start a reply announcing the whole ``body``, send its first half, then reset the connection."""
    start = headers if headers is not None else _headers(b"application/json", len(body))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body[: max(1, len(body) // 2)], "more_body": True})
    raise SimulatedConnectionReset(f"simulated connection reset during {what}")


async def send_truncated(send: Send, body: bytes, *, content_type: bytes = b"application/json") -> None:
    """A 200 whose body is the first half of ``body``, with a ``Content-Length`` that matches the half."""
    half = body[: max(1, len(body) // 2)]
    await send({"type": "http.response.start", "status": 200, "headers": _headers(content_type, len(half))})
    await send({"type": "http.response.body", "body": half})

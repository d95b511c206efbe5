"""Pure parts of the cross-process rate limit: the busiest-window count of a call log, and where the Prefect API
comes from (environment or active profile) — no server needed."""

from __future__ import annotations

import pytest

from erpsync.runtime.ratelimit import prefect_api
from erpsync.testing.merchantpro import busiest_window


def test_busiest_window_counts_half_open_windows() -> None:
    assert busiest_window([], 1.0) == 0
    assert busiest_window([0.0, 0.25, 0.5, 0.75, 1.0], 1.0) == 4  # 1.0 is outside [0, 1)
    assert busiest_window([0.0, 0.25, 0.5, 0.75, 0.99], 1.0) == 5
    assert busiest_window([0.0, 2.0, 2.1, 2.2, 5.0], 1.0) == 3


def test_prefect_api_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", "http://env.example:4200/api")
    with temporary_settings(updates={PREFECT_API_URL: "http://env.example:4200/api"}):
        assert prefect_api() == ("http://env.example:4200/api", "the environment (PREFECT_API_URL)")


def test_prefect_api_from_the_active_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.context import use_profile
    from prefect.settings import PREFECT_API_URL, Profile

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    profile = Profile(name="ops", settings={PREFECT_API_URL: "http://profile.example:4200/api"})
    with use_profile(profile, include_current_context=False):
        assert prefect_api() == ("http://profile.example:4200/api", "the active Prefect profile 'ops'")


def test_no_prefect_api(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.context import use_profile
    from prefect.settings import Profile

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with use_profile(Profile(name="bare", settings={}), include_current_context=False):
        assert prefect_api() is None


class CountingLimiter:
    def __init__(self) -> None:
        self.acquired = self.finished = 0

    def acquire(self) -> float:
        self.acquired += 1
        return 0.0

    def finish(self) -> None:
        self.finished += 1


def test_a_cross_process_pace_is_chained_after_the_local_one_for_the_keys_it_covers() -> None:
    from erpsync.connectors.http import ChainedLimiter, reset_shared_limiters, set_cross_process_limits, shared_limiter

    shared = CountingLimiter()
    reset_shared_limiters()
    set_cross_process_limits(lambda key: shared if key.startswith("smartbill:") else None)
    try:
        local = CountingLimiter()
        limiter = shared_limiter("smartbill:abc", lambda: local)
        assert isinstance(limiter, ChainedLimiter)
        assert shared_limiter("smartbill:abc", CountingLimiter) is limiter  # one per credential and process
        limiter.acquire()
        limiter.finish()  # type: ignore[attr-defined]
        assert (local.acquired, shared.acquired, local.finished, shared.finished) == (1, 1, 1, 1)
        other = CountingLimiter()
        assert shared_limiter("oblio:def", lambda: other) is other  # not covered: this process's pace only
    finally:
        set_cross_process_limits(None)
        reset_shared_limiters()

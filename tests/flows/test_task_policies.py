"""Every Prefect task follows the two rules of DESIGN.md: no input caching (tasks receive live clients), and
retries only for a ``RetriableError`` that outlived the HTTP layer's own retries — never for fatal errors."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from prefect import Task, flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

import erpsync.tasks
from erpsync.connectors.errors import AuthError, FatalError, RateLimitedError, RecordError, RetriableError
from erpsync.runtime.states import retriable_only


def _project_tasks() -> dict[str, Task[Any, Any]]:
    found: dict[str, Task[Any, Any]] = {}
    for module_info in pkgutil.iter_modules(erpsync.tasks.__path__):
        module = importlib.import_module(f"erpsync.tasks.{module_info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Task) and getattr(value.fn, "__module__", None) == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_module_in_tasks_holds_a_task() -> None:
    """``tasks/`` holds Prefect tasks only: the plumbing they share lives in ``erpsync.runtime``."""
    modules = {info.name for info in pkgutil.iter_modules(erpsync.tasks.__path__)}
    with_tasks = {name.split(".")[2] for name in _project_tasks()}
    assert modules, "no task modules found"
    assert sorted(modules - with_tasks) == []


def test_every_task_has_no_cache_and_retries_only_retriable_errors() -> None:
    found = _project_tasks()
    assert len(found) >= 20, sorted(found)  # the inventory really found the project's tasks
    assert [name for name, t in found.items() if t.cache_policy is not NO_CACHE] == []
    retrying = {name: t for name, t in found.items() if t.retries}
    assert retrying, "no task retries at all: the inventory is wrong"
    assert [name for name, t in retrying.items() if t.retry_condition_fn is not retriable_only] == []


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (RetriableError("shop", "503 after the HTTP layer's retries"), True),
        (RateLimitedError("shop", "429 with a long Retry-After"), True),
        (FatalError("shop", "configuration"), False),
        (AuthError("shop", "401"), False),
        (RecordError("shop", "SKU refused"), False),
        (ValueError("a bug"), False),
    ],
)
def test_the_retry_condition_takes_only_retriable_errors(error: BaseException, retried: bool) -> None:
    assert retriable_only(None, None, Failed(data=error)) is retried


def test_prefect_retries_a_retriable_error_and_not_a_fatal_one(prefect_harness: None) -> None:
    calls: list[str] = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retriable_only, cache_policy=NO_CACHE)
    def flaky(kind: str) -> str:
        calls.append(kind)
        if kind == "retriable" and calls.count(kind) == 1:
            raise RetriableError("shop", "timed out")
        if kind == "fatal":
            raise AuthError("shop", "401")
        return "ok"

    @flow
    def run(kind: str) -> str:
        return flaky(kind)

    assert run("retriable") == "ok"
    assert calls.count("retriable") == 2  # failed once, retried once
    with pytest.raises(AuthError):
        run("fatal")
    assert calls.count("fatal") == 1  # never retried

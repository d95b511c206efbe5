"""``prefect-secret:NAME`` configuration references, read from Prefect Secret blocks.

``core.config`` knows the reference syntax but imports no Prefect: it asks the resolver registered for the
scheme, on a secret's first ``get()``. ``install_prefect_secret_resolver()`` registers this one; the run-time
(``erpsync.runtime.store_runtime``, imported by every flow) and the ``erpsync`` command call it.
"""

from __future__ import annotations

from typing import Any

from erpsync.core.config import register_secret_resolver

__all__ = ["install_prefect_secret_resolver", "load_prefect_secret"]


def load_prefect_secret(name: str) -> str:
    """The raw string held by the Prefect Secret block ``name`` (Prefect is imported on first use only)."""
    from prefect.blocks.system import Secret as PrefectSecret

    load: Any = PrefectSecret.load  # dispatches to a coroutine in async contexts unless _sync=True
    block = load(name, _sync=True)
    # Secret.get() JSON-decodes the value ("0123" would come back as 123); the raw string is what we stored.
    raw = block.value.get_secret_value()
    if not isinstance(raw, str):
        raise TypeError("the Secret block does not hold a string")
    return raw


def install_prefect_secret_resolver() -> None:
    """Let ``prefect-secret:`` references be read in this process (idempotent)."""
    register_secret_resolver("prefect-secret", load_prefect_secret)

"""Flow runs end when their work ends: Prefect's sync flow engine joins its heartbeat thread at the end of every
run, and that thread looks at its stop flag once a second, so each run (and each sub-flow: the order import's
stock sync, the watcher's syncs) ended 0-1 s late — 0.5 s on average, a sixth of a CLI run with nothing to do and
a good part of a webhook order's way to the ERP. The async engine does not wait (``join_on_exit=False``); runs
in processes that import the flows do the same. The thread is a daemon that stops within the second and sends
nothing once its run is final; the heartbeats themselves are unchanged."""

from __future__ import annotations

from functools import partial


def end_runs_without_waiting() -> None:
    """Tell Prefect's heartbeat context not to join its thread (once per process; a no-op on a Prefect without it)."""
    from prefect import flow_engine

    current = getattr(flow_engine, "_send_heartbeats", None)
    if current is None or isinstance(current, partial):
        return
    flow_engine._send_heartbeats = partial(current, join_on_exit=False)

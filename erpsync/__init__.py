"""erpsync: keeps an ERP and one or more MerchantPro shops consistent — products, prices, stock and orders — on
Prefect.

One import package, in layers; imports point down, never up or in a circle (``tests/test_layers.py`` walks the graph)::

    erpsync.app           the `erpsync` command, demo, serve, the webhook receiver — nothing imports it
    erpsync.flows         Prefect flows: orchestration only
    erpsync.tasks         Prefect tasks: one I/O step or one pure step, on pages/batches
    erpsync.runtime       run-time plumbing: a store's clients, leases, shared rate limits, artifacts, run states
    erpsync.connectors    everything that talks to another system (HTTP layer, MerchantPro, the ERPs)
    erpsync.expectations  Great Expectations suites and their runner
    erpsync.core          the shared kernel, no Prefect: models, config, state store, pure rules

    erpsync.dev           development servers (a real Tryton, the demo stack) — used by app, tests and bench
    erpsync.testing       simulators of services that cannot run here, the in-memory ERP, fault injection

``flows``, ``tasks``, ``connectors``, ``expectations`` and ``core`` are the design card's folders at the
repository root; inside this package they are links, and a built wheel carries their files under ``erpsync/``.
"""

from __future__ import annotations

__version__ = "0.1.0"

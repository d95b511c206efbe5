"""One worker process of the shared-rate test: writes stock for its share of a shop's products through erpsync's
own shop client (``shop_client``: the limiter every flow run uses), starting at an agreed wall-clock moment.

``python -m tests.deploy.rate_worker CONFIG STORE IDS_JSON GO_FILE`` writes ``IDS_JSON.ready`` once its client is
open, starts when ``GO_FILE`` exists, and prints one JSON line with its figures.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from decimal import Decimal
from pathlib import Path

from erpsync.connectors.errors import ConnectorError
from erpsync.connectors.merchantpro.writes import StockWrite
from erpsync.core.config import load_config
from erpsync.runtime.store_runtime import shop_client


def main(argv: list[str]) -> None:
    config, store_name, ids_path, go_file = argv
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s", force=True)
    logging.getLogger("erpsync.ratelimit").setLevel(logging.INFO)
    settings = load_config(Path(config))
    store = settings.store(store_name)
    ids: list[str] = json.loads(Path(ids_path).read_text())
    shop = shop_client(store, settings)  # says where its Prefect API came from and which limit paces it
    limiter = shop.http.limiter
    Path(ids_path + ".ready").touch()
    while not Path(go_file).exists():
        time.sleep(0.01)
    started = time.monotonic()
    failed = 0
    for number, product_id in enumerate(ids):
        write = StockWrite(sku=f"P{product_id}", product_id=product_id, variant_id=None, quantity=Decimal(number % 50))
        try:
            failed += sum(1 for result in shop.set_stock([write]) if not result.ok)
        except ConnectorError:  # e.g. still rate limited after every retry (the unshared case)
            failed += 1
    figures = {
        "assigned": len(ids),
        "failed": failed,
        "seconds": round(time.monotonic() - started, 2),
        "limiter": type(limiter).__name__,
        "denied": getattr(limiter, "denied", None),
        **shop.counters.as_dict(),
    }
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

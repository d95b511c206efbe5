"""The MerchantPro simulator's tax table (today's Romanian rates beside the old ones) and its `omit_tax_value`
option: product replies with `tax_id` only, like an independent implementation of the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from erpsync.testing.merchantpro import MerchantProSimulator
from tests.simulators.test_merchantpro_sim import KEY, SECRET, Api


@pytest.fixture
def shop() -> MerchantProSimulator:
    sim = MerchantProSimulator(api_key=KEY, api_secret=SECRET)
    sim.seed_catalogue(30, seed=1)
    return sim


@pytest.fixture
def api(shop: MerchantProSimulator) -> Iterator[Api]:
    client = Api(shop)
    yield client
    client.close()


def test_the_tax_table_has_todays_rates_and_the_old_ones(api: Api) -> None:
    rows = api.get("/api/v2/taxonomy/taxes").json()["data"]
    assert {row["value"]: row["id"] for row in rows} == {19: 1, 9: 2, 5: 3, 0: 4, 21: 5, 11: 6}
    assert all(set(row) == {"id", "name", "value"} for row in rows)


def test_replies_carry_tax_id_only_when_told(shop: MerchantProSimulator, api: Api) -> None:
    pid = next(iter(shop.products))
    assert {"tax_id", "tax_value", "tax_name"} <= set(api.get(f"/api/v2/products/{pid}").json())
    shop.omit_tax_value = True
    listed = api.get("/api/v2/products", params={"limit": 100}).json()["data"]
    one = api.get(f"/api/v2/products/{pid}").json()
    created = api.post("/api/v2/products", json={"name": "Nou", "sku": "NEW-21", "price_gross": 12.1, "tax_id": 5})
    assert created.status_code == 201
    patched = api.patch(f"/api/v2/products/{pid}", json={"name": "Redenumit"}).json()
    fielded = api.get("/api/v2/products", params={"fields": "id,sku,tax_id,tax_value"}).json()["data"]
    for reply in [*listed, one, created.json(), patched, *fielded]:
        assert "tax_id" in reply and "tax_value" not in reply and "tax_name" not in reply
    assert created.json()["price_net"] == 10.0  # priced at the 21 % of tax id 5
    assert shop.products[pid]["tax_value"] is not None  # the shop itself still knows the rate
    rows = api.get("/api/v2/taxonomy/taxes").json()["data"]
    assert all("value" in row for row in rows)  # the tax table is unchanged


def test_seeded_products_can_carry_todays_rates() -> None:
    sim = MerchantProSimulator(omit_tax_value=True)
    sim.seed_catalogue(60, seed=3, current_vat=True)
    assert sim.omit_tax_value
    assert {p["tax_value"] for p in sim.products.values()} <= {21, 11}
    assert {(p["tax_id"], p["tax_value"]) for p in sim.products.values()} <= {(5, 21), (6, 11)}

"""Change detection on pandas frames: expected stock against what was last pushed, or against a shop snapshot.

Pure, no I/O. Quantities are compared at 4 decimals (what the pushed table keeps), so a float round trip never
looks like a change. An unchanged SKU must cost no API call; these functions decide which SKUs are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import numpy as np
import pandas as pd

from erpsync.core.availability import DECIMALS

# A shop snapshot: one row per stock-carrying unit whose SKU belongs to the store (``sku`` is the ERP's code).
SHOP_COLUMNS = ["sku", "shop_sku", "product_id", "variant_id", "stock", "tracked"]


def quantities(values: Mapping[str, Decimal | float | int | None]) -> pd.Series:
    """A float Series by SKU from a mapping (None becomes NaN: "not known")."""
    series = pd.Series(
        [np.nan if v is None else float(v) for v in values.values()],
        index=pd.Index(list(values.keys()), dtype="str", name="sku"),
        dtype="float64",
    )
    return series


def changed(expected: pd.Series, previous: pd.Series) -> pd.Series:
    """The expected quantities that differ from ``previous`` (a SKU without a previous value has changed)."""
    before = previous.reindex(expected.index)
    now, then = expected.round(DECIMALS).to_numpy(), before.round(DECIMALS).to_numpy()
    differs = before.isna().to_numpy() | (now != then)
    return expected[differs]


def typed_shop(frame: pd.DataFrame) -> pd.DataFrame:
    """A shop snapshot with its column types fixed (ids are strings; stock NaN when the shop sends none)."""
    typed = frame.astype(
        {
            "sku": "str",
            "shop_sku": "str",
            "product_id": "str",
            "variant_id": "object",
            "stock": "float64",
            "tracked": "bool",
        }
    )
    variants = typed["variant_id"]
    typed["variant_id"] = variants.where(variants.notna(), None)  # a basic product's unit has None, not NaN
    return typed


def shop_stock(shop: pd.DataFrame) -> pd.Series:
    """The shop's stock by SKU (first unit of a SKU wins)."""
    first = shop.drop_duplicates("sku")
    return pd.Series(first["stock"].to_numpy(), index=pd.Index(first["sku"], name="sku"), dtype="float64")


def corrections(expected: pd.Series, shop: pd.DataFrame) -> pd.DataFrame:
    """Shop units (that track stock) whose stock differs from the expected quantity.

    Returns the shop columns plus ``expected``; a unit whose stock the shop does not report is corrected too.
    """
    known = shop[shop["sku"].isin(expected.index) & shop["tracked"]]
    wanted = expected.reindex(known["sku"]).to_numpy()
    current = known["stock"].round(DECIMALS).to_numpy()
    differs = np.isnan(current) | (current != np.round(wanted, DECIMALS))
    out = known[differs].copy()
    out["expected"] = wanted[differs]
    return out.reset_index(drop=True)


def unknown_to_erp(
    shop: pd.DataFrame, erp_skus: Iterable[str] | pd.Index, unreadable: Iterable[str] = ()
) -> pd.DataFrame:
    """Shop units whose SKU the ERP snapshot does not have (SKUs the ERP could not read are not unknown)."""
    known = pd.Index(erp_skus).union(pd.Index(list(unreadable), dtype="str"))
    return shop[~shop["sku"].isin(known)].reset_index(drop=True)


def to_decimal(value: float) -> Decimal:
    """A float quantity as the Decimal it stands for, at 4 decimals, without a trailing exponent."""
    number = Decimal(repr(round(float(value), DECIMALS))).normalize()
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number

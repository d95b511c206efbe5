"""Seeded, deterministic shop data for the MerchantPro simulator: taxes, categories, products, orders."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

BUCHAREST = ZoneInfo("Europe/Bucharest")
_CENT = Decimal("0.01")

# The shop's tax table: Romania's rates since 1 August 2025 (21 %, 11 %) and, kept for documents dated before,
# 19 %, 9 %, 5 %; 0 % throughout. Ids 1-4 predate the change (tests and seeded products use 1 = 19 %).
TAXES: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "TVA 19%", "value": 19},
    {"id": 2, "name": "TVA 9%", "value": 9},
    {"id": 3, "name": "TVA 5%", "value": 5},
    {"id": 4, "name": "Scutit TVA", "value": 0},
    {"id": 5, "name": "TVA 21%", "value": 21},
    {"id": 6, "name": "TVA 11%", "value": 11},
)
# seed_catalogue(current_vat=True): the seeded products' taxes moved to today's rates (19 % -> 21 %, 9 % -> 11 %).
CURRENT_VAT_TAX_IDS: dict[int, int] = {1: 5, 2: 6, 3: 6}

MEASUREMENT_UNITS: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "bucată", "symbol": "buc"},
    {"id": 2, "name": "kilogram", "symbol": "kg"},
    {"id": 3, "name": "litru", "symbol": "l"},
    {"id": 4, "name": "metru", "symbol": "m"},
    {"id": 5, "name": "set", "symbol": "set"},
)

# (id, name, parent_id, tax_id, apparel?) — apparel categories hold the multi-variant products.
_CATEGORY_ROWS: tuple[tuple[int, str, int | None, int, bool], ...] = (
    (1, "Îmbrăcăminte", None, 1, True),
    (2, "Tricouri", 1, 1, True),
    (3, "Pantaloni", 1, 1, True),
    (4, "Încălțăminte", None, 1, True),
    (5, "Accesorii", None, 1, False),
    (6, "Electronice", None, 1, False),
    (7, "Telefoane", 6, 1, False),
    (8, "Casă și grădină", None, 1, False),
    (9, "Cărți", None, 2, False),
    (10, "Alimente", None, 2, False),
    (11, "Jucării", None, 1, False),
    (12, "Sport", None, 1, False),
)

SHIPPING_METHODS: dict[int, str] = {1: "Curier rapid", 2: "Sameday Easybox", 3: "Ridicare personală"}
PAYMENT_METHODS: dict[str, str] = {
    "cash_delivery": "Ramburs la livrare",
    "wire": "Ordin de plată",
    "card": "Card online",
}

_NOUNS: dict[int, tuple[str, ...]] = {
    1: ("Geacă", "Cămașă", "Rochie", "Hanorac", "Pulover"),
    2: ("Tricou", "Maiou", "Polo"),
    3: ("Pantaloni", "Blugi", "Pantaloni scurți"),
    4: ("Pantofi", "Adidași", "Ghete", "Sandale"),
    5: ("Curea", "Portofel", "Rucsac", "Ochelari"),
    6: ("Căști", "Boxă", "Încărcător", "Cablu USB-C"),
    7: ("Husă telefon", "Folie sticlă", "Suport auto"),
    8: ("Pernă", "Lampă", "Ghiveci", "Set cuțite"),
    9: ("Roman", "Atlas", "Carte de bucate", "Dicționar"),
    10: ("Miere", "Cafea boabe", "Ceai verde", "Ulei de măsline"),
    11: ("Puzzle", "Mașinuță", "Set LEGO", "Păpușă"),
    12: ("Minge", "Gantere", "Saltea yoga", "Bidon"),
}
_ADJECTIVES = ("clasic", "premium", "eco", "urban", "sport", "basic", "deluxe", "compact", "vintage", "nou")
_BRANDS = ("Aurora", "Carpați", "Dacia", "Delta", "Olt", "Bucegi", "Prahova", "Siret", "Mureș", "Vlăsia")
_DESCRIPTIONS = tuple(
    f"<p>Produs {adj} de calitate, livrare rapidă în toată țara. Garanție {months} luni.</p>"
    for adj in ("excelent", "durabil", "elegant", "practic")
    for months in (12, 24)
)
_SIZES = ("S", "M", "L", "XL")
_COLOURS = ("Negru", "Alb", "Roșu", "Albastru")

_CATALOGUE_EPOCH = datetime(2024, 1, 1, 9, 0, tzinfo=BUCHAREST)
_CATALOGUE_SPAN_SECONDS = 900 * 86400  # products created over ~2.5 years from the epoch
_MODIFIED_CAP = datetime(2026, 9, 30, 18, 0, tzinfo=BUCHAREST)

_FIRST_NAMES = ("Ion", "Maria", "Andrei", "Elena", "Mihai", "Ioana", "Alexandru", "Ana", "Ștefan", "Cristina")
_LAST_NAMES = ("Popescu", "Ionescu", "Popa", "Dumitrescu", "Stan", "Stoica", "Gheorghe", "Rusu", "Munteanu")
_PLACES: tuple[tuple[str, str, str], ...] = (
    ("București", "București", "010011"),
    ("Cluj-Napoca", "Cluj", "400001"),
    ("Iași", "Iași", "700001"),
    ("Timișoara", "Timiș", "300001"),
    ("Constanța", "Constanța", "900001"),
    ("Brașov", "Brașov", "500001"),
    ("Craiova", "Dolj", "200001"),
    ("Oradea", "Bihor", "410001"),
)
_STREETS = ("Str. Victoriei", "Bd. Unirii", "Str. Florilor", "Calea Moșilor", "Str. Mihai Eminescu", "Bd. Eroilor")
_COMPANY_WORDS = ("Alfa", "Nova", "Carpat", "Danubius", "Transilvania", "Moldova", "Litoral")
_COMPANY_KINDS = ("Distribuție", "Construct", "Trading", "Consulting", "Logistic")


def iso(moment: datetime) -> str:
    """Render a moment as MerchantPro does: ISO 8601, seconds, Europe/Bucharest offset (+02:00/+03:00)."""
    return moment.astimezone(BUCHAREST).isoformat(timespec="seconds")


def as_local(moment: datetime) -> datetime:
    """A naive moment is read as shop-local (Europe/Bucharest) time; an aware one is kept."""
    return moment.replace(tzinfo=BUCHAREST) if moment.tzinfo is None else moment


def local_now() -> datetime:
    """The current moment in Europe/Bucharest."""
    return datetime.now(BUCHAREST)


def money(value: float | int | Decimal | str) -> float:
    """Round to 2 decimals, half up, on the decimal value (2.675 -> 2.68)."""
    return float(Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP))


def gross_from_net(net: float | int, vat: float | int) -> float:
    """gross = net * (1 + vat/100), rounded half up to 2 decimals."""
    return float((Decimal(str(net)) * (100 + Decimal(str(vat))) / 100).quantize(_CENT, rounding=ROUND_HALF_UP))


def net_from_gross(gross: float | int, vat: float | int) -> float:
    """net = gross / (1 + vat/100), rounded half up to 2 decimals."""
    return float((Decimal(str(gross)) * 100 / (100 + Decimal(str(vat)))).quantize(_CENT, rounding=ROUND_HALF_UP))


def seed_categories() -> dict[int, dict[str, Any]]:
    """The fixed category tree every simulated shop starts with."""
    return {
        cid: {
            "id": cid,
            "name": name,
            "parent_id": parent,
            "position": cid,
            "status": "active",
            "url": "/" + _slug(name),
        }
        for cid, name, parent, _tax, _apparel in _CATEGORY_ROWS
    }


@functools.lru_cache(maxsize=8192)
def _slug(text: str) -> str:
    table = str.maketrans("ăâîșşțţĂÂÎȘŞȚŢ", "aaisstt" + "AAISSTT")
    return "-".join(text.translate(table).lower().replace(",", " ").split())


def _ean13(number: int) -> str:
    """A valid EAN-13 with the Romanian 594 prefix, unique per number (< 10**9)."""
    body = f"594{number:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _cents_with_vat(net_cents: int, vat: int) -> int:
    return (net_cents * (100 + vat) + 50) // 100


class VariantOptionRegistry:
    """A shop's variant attributes and options: attribute name -> id, (attribute, value) -> option id."""

    def __init__(self) -> None:
        self.attribute_ids: dict[str, int] = {"Mărime": 1, "Culoare": 2}
        self.option_ids: dict[tuple[str, str], int] = {
            **{("Mărime", size): 10 + i for i, size in enumerate(_SIZES)},
            **{("Culoare", colour): 20 + i for i, colour in enumerate(_COLOURS)},
        }

    def options_for(self, names_values: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Build `variant_options` entries from (attribute name, value) pairs, registering new ones."""
        options = []
        for name, value in names_values:
            attr_id = self.attribute_ids.get(name)
            if attr_id is None:
                attr_id = self.attribute_ids[name] = max(self.attribute_ids.values()) + 1
            option_id = self.option_ids.get((name, value))
            if option_id is None:
                option_id = self.option_ids[(name, value)] = max(self.option_ids.values()) + 1
            options.append({"name": name, "value": value, "id": attr_id, "option_id": option_id})
        return options


def variant_attributes_for(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Derive `variant_attributes` (attributes, their options, availability) from a product's variants."""
    attributes: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for variant in variants:
        in_stock = variant.get("inventory_enabled") == "off" or (variant.get("stock") or 0) > 0
        for option in variant.get("variant_options") or ():
            entries = attributes.setdefault(option["name"], {})
            key = (option["name"], option["value"])
            entry = entries.get(key)
            if entry is None:
                entry = {
                    "value": option["value"],
                    "id": option["option_id"],
                    "position": len(entries) + 1,
                    "available": False,
                }
                entries[key] = entry
            entry["available"] = entry["available"] or in_stock
    return [{"name": name, "options": list(entries.values())} for name, entries in attributes.items()]


def generate_products(
    n_products: int,
    *,
    next_id: Callable[[], int],
    categories: dict[int, dict[str, Any]],
    multi_variant_share: float,
    variants: tuple[int, int],
    seed: int,
    sku_prefix: str,
    registry: VariantOptionRegistry,
    current_vat: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield `n_products` product dicts (public representation), deterministic for a seed and id sequence;
    `current_vat`: at today's rates (21 %, 11 %) instead of the 19 %/9 % of the categories' taxes."""
    rng = random.Random(seed)
    taxes = {t["id"]: t for t in TAXES}
    width = max(6, len(str(n_products)))
    apparel = [row for row in _CATEGORY_ROWS if row[4]]
    shared_categories = {cid: [{"id": cid, "name": cat["name"]}] for cid, cat in categories.items()}
    low, high = variants
    for index in range(1, n_products + 1):
        pid = next_id()
        multi = rng.random() < multi_variant_share
        cid, _name, _parent, tax_id, _apparel = rng.choice(apparel) if multi else rng.choice(_CATEGORY_ROWS)
        tax = taxes[CURRENT_VAT_TAX_IDS.get(tax_id, tax_id) if current_vat else tax_id]
        vat = tax["value"]
        name = f"{rng.choice(_NOUNS[cid])} {rng.choice(_ADJECTIVES)} {rng.choice(_BRANDS)}"
        sku = f"{sku_prefix}{index:0{width}d}"
        created = _CATALOGUE_EPOCH + timedelta(seconds=rng.randrange(_CATALOGUE_SPAN_SECONDS))
        modified = min(created + timedelta(seconds=rng.randrange(120 * 86400)), _MODIFIED_CAP)
        net_cents = rng.randrange(500, 100_000)
        has_image = rng.random() < 0.8
        on_sale = rng.random() < 0.15
        product: dict[str, Any] = {
            "id": pid,
            "type": "multi_variant" if multi else "basic",
            "sku": sku,
            "ean": _ean13(seed % 1000 * 1_000_000 + index) if rng.random() < 0.6 else None,
            "ext_ref": None,
            "name": name,
            "description": rng.choice(_DESCRIPTIONS),
            "meta_title": name,
            "meta_description": None,
            "url": f"/{_slug(name)}-{pid}",
            "status": "active" if rng.random() < 0.9 else "inactive",
            "inventory_enabled": "on" if rng.random() < 0.95 else "off",
            "stock": None,
            "stock_reserved": 0,
            "allow_backorders": rng.random() < 0.1,
            "price_net": None,
            "price_gross": None,
            "old_price_net": None,
            "old_price_gross": None,
            "cost_net": round(net_cents * 0.6) / 100,
            "cost_gross": _cents_with_vat(round(net_cents * 0.6), vat) / 100,
            "tax_id": tax["id"],
            "tax_value": vat,
            "tax_name": tax["name"],
            "quantity_multiplier": 1,
            "weight": None,
            "category_id": cid,
            "category_name": categories[cid]["name"],
            "categories": shared_categories[cid],
            "images": [{"url": f"https://cdn.shop.test/p/{pid}.jpg"}] if has_image else [],
            "image_url": _image_urls(pid) if has_image else None,
            "date_created": iso(created),
            "date_modified": iso(modified),
        }
        if multi:
            product["variants"] = _generate_variants(
                rng, sku, net_cents, vat, rng.randint(low, high), next_id, registry
            )
            product["variant_attributes"] = variant_attributes_for(product["variants"])
        else:
            product["stock"] = rng.randint(0, 50)
            product["price_net"] = net_cents / 100
            product["price_gross"] = _cents_with_vat(net_cents, vat) / 100
            if on_sale:
                old_cents = net_cents * 5 // 4
                product["old_price_net"] = old_cents / 100
                product["old_price_gross"] = _cents_with_vat(old_cents, vat) / 100
            product["weight"] = rng.randint(1, 50) / 10
        yield product


def _image_urls(pid: int) -> dict[str, str]:
    return {size: f"https://cdn.shop.test/p/{size}/{pid}.jpg" for size in ("thumb", "medium", "large")}


def _generate_variants(
    rng: random.Random,
    parent_sku: str,
    net_cents: int,
    vat: int,
    count: int,
    next_id: Callable[[], int],
    registry: VariantOptionRegistry,
) -> list[dict[str, Any]]:
    if count == 4 and rng.random() < 0.5:
        combos = [[("Mărime", s), ("Culoare", c)] for s in _SIZES[:2] for c in _COLOURS[:2]]
    elif rng.random() < 0.5:
        combos = [[("Mărime", s)] for s in _SIZES[:count]]
    else:
        combos = [[("Culoare", c)] for c in _COLOURS[:count]]
    result = []
    for position, combo in enumerate(combos):
        cents = net_cents + position * 500 if combo[0][0] == "Mărime" else net_cents
        suffix = "-".join(_slug(value).upper() for _name, value in combo)
        result.append(
            {
                "id": next_id(),
                "sku": f"{parent_sku}-{suffix}",
                "ean": None,
                "ext_ref": None,
                "inventory_enabled": "on",
                "stock": rng.randint(0, 50),
                "price_net": cents / 100,
                "price_gross": _cents_with_vat(cents, vat) / 100,
                "old_price_net": None,
                "old_price_gross": None,
                "weight": rng.randint(1, 20) / 10,
                "variant_options": registry.options_for(combo),
            }
        )
    return result


def person(rng: random.Random) -> dict[str, Any]:
    """A plausible Romanian customer: name, e-mail, phone, address."""
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    city, state, postal = rng.choice(_PLACES)
    ascii_name = _slug(f"{first}.{last}").replace("-", "")
    return {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "email": f"{ascii_name}{rng.randrange(1, 999)}@example.ro",
        "phone": f"07{rng.randrange(10**8):08d}",
        "city": city,
        "state": state,
        "postal_code": postal,
        "address": f"{rng.choice(_STREETS)} nr. {rng.randint(1, 150)}",
        "country_code": "RO",
    }


def company(rng: random.Random) -> dict[str, str]:
    """A plausible Romanian company: name, VAT code (CUI with RO), trade-register number."""
    return {
        "name": f"{rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_KINDS)} SRL",
        "code": f"RO{rng.randrange(10**6, 5 * 10**7)}",
        "reg_no": f"J{rng.randint(1, 52):02d}/{rng.randint(100, 9999)}/{rng.randint(2000, 2025)}",
    }


def order_gaps(rng: random.Random, n: int) -> list[timedelta]:
    """Gaps between consecutive seeded orders: 10 minutes to 3 hours."""
    return [timedelta(minutes=rng.randint(10, 180)) for _ in range(n)]

"""erpsync.core.config: file resolution, one-line errors, secrets by reference, redaction, the example file."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import erpsync.core.config as config
from erpsync.core.config import (
    ConfigError,
    DatabaseUrl,
    Secret,
    SecretError,
    Settings,
    load_config,
    resolve_config_path,
    settings_from_dict,
)
from erpsync.core.config import secrets as config_secrets
from erpsync.core.redact import redact

REPO = Path(__file__).resolve().parents[2]

KEY_VALUE = "mp-key-VALUE-7f3a91"
SECRET_VALUE = "mp-secret-VALUE-c0ffee42"
TRYTON_VALUE = "tryton-pass-VALUE-5150"

GOOD = """\
[erp]
type = "tryton"
database = "erpsync"
password = "env:TRYTON_PASSWORD"

[[stores]]
name = "main"
url = "https://www.example.ro"
api_key = "env:MP_KEY"
api_secret = "env:MP_SECRET"
"""

ERP_BLOCK, _, _rest = GOOD.partition("[[stores]]")
STORE_BLOCK = "[[stores]]" + _rest

SECOND_STORE = """
[[stores]]
name = "outlet"
url = "https://outlet.example.ro"
api_key = "env:MP_KEY"
api_secret = "env:MP_SECRET"
"""
# The second store's orders need their own ERP reference prefix (both stores share the ERP).
OUTLET_ORDERS = '[stores.orders]\nreference_prefix = "OUT-"\n'
SMARTBILL = (
    '[erp]\ntype = "smartbill"\nusername = "office@example.ro"\ntoken = "env:MP_KEY"\n'
    'cif = "RO12345678"\ninvoice_series = "WEB"\n'
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MP_KEY", KEY_VALUE)
    monkeypatch.setenv("MP_SECRET", SECRET_VALUE)
    monkeypatch.setenv("TRYTON_PASSWORD", TRYTON_VALUE)
    monkeypatch.delenv("ERPSYNC_CONFIG", raising=False)
    monkeypatch.delenv("MP_MISSING_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)


def _store_line(key_value: str) -> str:
    """GOOD with one more line in the first [[stores]] block."""
    return GOOD + key_value + "\n"


def _load(text: str) -> Settings:
    Path("erpsync.toml").write_text(text, encoding="utf-8")
    return load_config("erpsync.toml")


def _use_prefect_resolver(monkeypatch: pytest.MonkeyPatch, resolver: Callable[[str], str]) -> None:
    """Stand in for erpsync.runtime.prefect_secrets: what core calls to read a prefect-secret: reference."""
    monkeypatch.setitem(config_secrets._RESOLVERS, "prefect-secret", resolver)


BAD_FILES: list[tuple[str, str, str]] = [
    (
        "toml-syntax",
        GOOD.replace('database = "erpsync"', "database = erpsync"),
        "erpsync.toml:3:12: TOML syntax error: Invalid value",
    ),
    (
        "toml-duplicate-key",
        GOOD.replace('database = "erpsync"', 'database = "a"\ndatabase = "b"'),
        "erpsync.toml:4:15: TOML syntax error: Cannot overwrite a value",
    ),
    ("unknown-key-top-level", 'colour = "red"\n' + GOOD, "erpsync.toml: colour: unknown key"),
    ("unknown-table-top-level", GOOD + "[colours]\nred = 1\n", "erpsync.toml: colours: unknown key"),
    (
        "unknown-key-second-store",
        GOOD + SECOND_STORE + 'colour = "red"\n',
        "erpsync.toml: stores[1].colour: unknown key",
    ),
    (
        "unknown-key-subsection",
        GOOD + "[stores.products]\ncolour = 1\n",
        "erpsync.toml: stores[0].products.colour: unknown key",
    ),
    (
        "unknown-key-of-other-erp",
        GOOD.replace('type = "tryton"', 'type = "tryton"\ntoken = "env:MP_KEY"'),
        "erpsync.toml: erp.token: unknown key",
    ),
    (
        "wrong-type-number",
        _store_line('requests_per_second = "fast"'),
        "erpsync.toml: stores[0].requests_per_second: must be a number greater than 0 and at most 50 (got 'fast')",
    ),
    (
        "number-as-string",
        _store_line('max_retries = "3"'),
        "erpsync.toml: stores[0].max_retries: must be an integer between 0 and 10 (got '3')",
    ),
    (
        "float-for-integer",
        GOOD.replace('type = "tryton"', 'type = "tryton"\npage_size = 50.5'),
        "erpsync.toml: erp.page_size: must be an integer between 1 and 5000 (got 50.5)",
    ),
    (
        "wrong-type-bool",
        GOOD + '[stores.products]\ncreate_in_shop = "yes"\n',
        "erpsync.toml: stores[0].products.create_in_shop: must be true or false (got 'yes')",
    ),
    (
        "wrong-type-table",
        'erp = "tryton"\n' + STORE_BLOCK,
        "erpsync.toml: erp: must be a table (got 'tryton')",
    ),
    (
        "bad-enum-erp-type",
        GOOD.replace('type = "tryton"', 'type = "sap"'),
        "erpsync.toml: erp.type: must be one of 'tryton', 'smartbill', 'oblio', 'files' (got 'sap')",
    ),
    (
        "bad-enum-direction",
        GOOD + '[stores.products]\ndirection = "sideways"\n',
        "erpsync.toml: stores[0].products.direction: must be one of 'erp_to_shop', 'shop_to_erp', 'both' "
        "(got 'sideways')",
    ),
    (
        "missing-env-var",
        GOOD.replace('api_secret = "env:MP_SECRET"', 'api_secret = "env:MP_MISSING_SECRET"'),
        "erpsync.toml: stores[0].api_secret: environment variable MP_MISSING_SECRET is not set",
    ),
    (
        "bad-secret-scheme",
        GOOD.replace('api_key = "env:MP_KEY"', 'api_key = "vault:X"'),
        "erpsync.toml: stores[0].api_key: unknown secret reference scheme "
        "(use env:NAME, prefect-secret:NAME or literal:VALUE)",
    ),
    (
        "bad-prefect-block-name",
        GOOD.replace('api_key = "env:MP_KEY"', 'api_key = "prefect-secret:Bad Name"'),
        "erpsync.toml: stores[0].api_key: prefect-secret: reference needs a Prefect block name "
        "(lowercase letters, digits and dashes), e.g. prefect-secret:mp-main-secret",
    ),
    (
        "secret-not-a-string",
        GOOD.replace('api_key = "env:MP_KEY"', "api_key = 12345"),
        "erpsync.toml: stores[0].api_key: must be a string (use env:NAME, prefect-secret:NAME or literal:VALUE)",
    ),
    (
        "duplicate-store-name",
        GOOD + SECOND_STORE.replace('"outlet"', '"main"'),
        "erpsync.toml: stores[1].name: duplicate store name 'main'",
    ),
    ("missing-stores", ERP_BLOCK, "erpsync.toml: stores: at least one [[stores]] entry is required"),
    (
        "same-reference-prefix",
        GOOD + SECOND_STORE,
        "erpsync.toml: stores[1].orders.reference_prefix: '' is also the reference prefix of store 'main': stores "
        "sharing the ERP need distinct prefixes, because two shops can have the same order id; e.g. "
        'reference_prefix = "OUTLET-"',
    ),
    (
        "reference-prefix-plus-digits",
        GOOD
        + '[stores.orders]\nreference_prefix = "S"\n'
        + SECOND_STORE
        + '[stores.orders]\nreference_prefix = "S1"\n',
        "erpsync.toml: stores[1].orders.reference_prefix: 'S1' and the prefix 'S' of store 'main' can give two "
        "orders one ERP reference ('S' + '17' = 'S1' + '7'): stores sharing the ERP need distinct prefixes, because "
        'two shops can have the same order id; e.g. reference_prefix = "OUTLET-"',
    ),
    (
        "reference-prefix-with-space",
        GOOD + '[stores.orders]\nreference_prefix = "B 1"\n',
        "erpsync.toml: stores[0].orders.reference_prefix: must be at most 20 characters without spaces (got 'B 1')",
    ),
    (
        "price-list-with-smartbill",
        SMARTBILL + STORE_BLOCK + 'price_list = "Cluj"\n',
        'erpsync.toml: stores[0].price_list: SmartBill has no price lists erpsync can use: leave price_list "" '
        'with erp.type = "smartbill"',
    ),
    (
        "price-list-and-prices-to-the-erp",
        _store_line('price_list = "Cluj"') + '[stores.products]\ndirection = "shop_to_erp"\nerp_owns = ["name"]\n',
        "erpsync.toml: stores[0].price_list: the shop's prices come from this ERP price list, so they cannot also "
        "be written to the ERP ([stores.products] writes 'price' shop -> ERP): give 'price' to erp_owns, or leave "
        'price_list ""',
    ),
    (
        "empty-stores",
        "stores = []\n" + ERP_BLOCK,
        "erpsync.toml: stores: at least one [[stores]] entry is required",
    ),
    (
        "stores-as-table",
        GOOD.replace("[[stores]]", "[stores]"),
        "erpsync.toml: stores: must be an array of tables, written [[stores]] (got a table)",
    ),
    ("missing-erp", STORE_BLOCK, "erpsync.toml: erp: required key is missing"),
    (
        "missing-erp-type",
        GOOD.replace('type = "tryton"\n', ""),
        "erpsync.toml: erp.type: required key is missing",
    ),
    (
        "missing-required-key",
        GOOD.replace('api_key = "env:MP_KEY"\n', ""),
        "erpsync.toml: stores[0].api_key: required key is missing",
    ),
    (
        "bad-url-scheme",
        GOOD.replace('url = "https://www.example.ro"', 'url = "www.example.ro"'),
        "erpsync.toml: stores[0].url: must be an http(s) URL, e.g. 'https://www.example.ro' (got 'www.example.ro')",
    ),
    (
        "url-with-api-path",
        GOOD.replace('url = "https://www.example.ro"', 'url = "https://www.example.ro/api/v2"'),
        "erpsync.toml: stores[0].url: must be the shop's address without the /api path "
        "(got 'https://www.example.ro/api/v2')",
    ),
    (
        "url-with-credentials",
        GOOD.replace('url = "https://www.example.ro"', 'url = "https://user:hunter22@www.example.ro"'),
        "erpsync.toml: stores[0].url: must not contain credentials (put them in the secret keys)",
    ),
    (
        "out-of-range-integer",
        _store_line("max_retries = 11"),
        "erpsync.toml: stores[0].max_retries: must be an integer between 0 and 10 (got 11)",
    ),
    (
        "out-of-range-zero-rate",
        _store_line("requests_per_second = 0"),
        "erpsync.toml: stores[0].requests_per_second: must be a number greater than 0 and at most 50 (got 0)",
    ),
    (
        "out-of-range-share",
        GOOD + "[stores.reconcile]\nmax_zero_share = 1.5\n",
        "erpsync.toml: stores[0].reconcile.max_zero_share: must be a number between 0 and 1 (got 1.5)",
    ),
    (
        "negative-safety-buffer",
        GOOD + "[stores.stock]\nsafety_buffer = -1\n",
        "erpsync.toml: stores[0].stock.safety_buffer: must be a number at least 0 (got -1)",
    ),
    (
        "smartbill-rate-too-high",
        '[erp]\ntype = "smartbill"\nusername = "office@example.ro"\ntoken = "env:MP_KEY"\n'
        'cif = "RO12345678"\ninvoice_series = "WEB"\nrequests_per_10s = 31\n' + STORE_BLOCK,
        "erpsync.toml: erp.requests_per_10s: must be an integer between 1 and 30 (got 31)",
    ),
    (
        "bad-timezone",
        _store_line('timezone = "Europe/Bucharestt"'),
        "erpsync.toml: stores[0].timezone: unknown time zone 'Europe/Bucharestt'",
    ),
    (
        "bad-cron",
        GOOD + '[stores.schedules]\nstock = "every 5 minutes"\n',
        "erpsync.toml: stores[0].schedules.stock: must be a five-field cron expression such as '*/5 * * * *' "
        "(got 'every 5 minutes')",
    ),
    (
        "ownership-overlap",
        GOOD + '[stores.products]\nerp_owns = ["name", "price"]\nshop_owns = ["description", "price"]\n',
        "erpsync.toml: stores[0].products.shop_owns: 'price' is also in erp_owns (a field has one owner)",
    ),
    (
        "unknown-product-field",
        GOOD + '[stores.products]\nerp_owns = ["name", "colour"]\n',
        "erpsync.toml: stores[0].products.erp_owns[1]: unknown product field 'colour' (known: 'name', "
        "'description', 'price', 'old_price', 'ean', 'weight', 'status', 'vat', 'category', 'images', "
        "'attributes', 'meta_title', 'meta_description')",
    ),
    (
        "bad-store-name",
        GOOD.replace('name = "main"', 'name = "Main Shop"'),
        "erpsync.toml: stores[0].name: must be 1-40 lowercase letters, digits, '_' or '-', starting with a "
        "letter or digit (got 'Main Shop')",
    ),
    (
        "no-warehouses",
        _store_line("warehouses = []"),
        "erpsync.toml: stores[0].warehouses: must list at least 1 warehouse",
    ),
    (
        "bad-vat-key",
        GOOD + '[stores.products]\nvat_taxes = { "19" = 1, "high" = 2 }\n',
        "erpsync.toml: stores[0].products.vat_taxes.high: key must be a VAT percentage between 0 and 100 (got 'high')",
    ),
    (
        "bad-start-date",
        GOOD + '[stores.orders]\nstart_date = "2026-02-30"\n',
        "erpsync.toml: stores[0].orders.start_date: must be a date YYYY-MM-DD or \"\" (got '2026-02-30')",
    ),
    (
        "unknown-skip-status",
        GOOD + '[stores.orders]\nskip_statuses = ["temprary"]\n',
        "erpsync.toml: stores[0].orders.skip_statuses[0]: unknown shipping status 'temprary' (known: "
        "'temporary', 'awaiting', 'confirmed', 'in_process', 'shipped', 'delivered', 'returned', 'cancelled')",
    ),
    (
        "bad-hook",
        GOOD + '[stores.products]\nhook = "mymodule.fn"\n',
        "erpsync.toml: stores[0].products.hook: must be a dotted path 'package.module:function' or empty "
        "(got 'mymodule.fn')",
    ),
    (
        "not-a-finite-number",
        _store_line("requests_per_second = nan"),
        "erpsync.toml: stores[0].requests_per_second: must be a number greater than 0 and at most 50 (got nan)",
    ),
    (
        "decimal-as-string",
        GOOD + '[stores.stock]\nsafety_buffer = "2"\n',
        "erpsync.toml: stores[0].stock.safety_buffer: must be a number at least 0 (got '2')",
    ),
    (
        "warehouse-listed-twice",
        _store_line('warehouses = ["WH", "WH"]'),
        "erpsync.toml: stores[0].warehouses[1]: 'WH' is listed twice",
    ),
    (
        "empty-channel",
        GOOD + '[stores.orders]\nchannels = ["web", ""]\n',
        "erpsync.toml: stores[0].orders.channels[1]: must be a non-empty string (got '')",
    ),
    (
        "bad-tax-id",
        GOOD + '[stores.products]\nvat_taxes = { "19" = 0 }\n',
        "erpsync.toml: stores[0].products.vat_taxes.19: must be a shop tax_id, an integer at least 1 (got 0)",
    ),
    (
        "vat-percentage-twice",
        GOOD + '[stores.products]\nvat_taxes = { "19" = 1, "19.0" = 2 }\n',
        'erpsync.toml: stores[0].products.vat_taxes."19.0": the VAT percentage 19 is listed twice',
    ),
    (
        "bad-customers-path",
        _store_line('customers_path = "api/v2/customers"'),
        "erpsync.toml: stores[0].customers_path: must be a path starting with '/' (got 'api/v2/customers')",
    ),
    (
        "cron-not-a-string",
        GOOD + "[stores.schedules]\nstock = 5\n",
        "erpsync.toml: stores[0].schedules.stock: must be a cron expression such as '*/5 * * * *' or \"\" (got 5)",
    ),
    (
        "bad-state-url",
        '[state]\nurl = "mysql://erp:db-pass-991@db/erpsync"\n' + GOOD,
        "erpsync.toml: state.url: must be a sqlite:/// or postgresql+psycopg:// URL",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_file_gives_one_exact_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(text)
    message = str(caught.value)
    assert message == expected
    assert "\n" not in message
    assert caught.value.exit_code == 2
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


CRON_REQUIREMENT = "must be a five-field cron expression such as '*/5 * * * *'"


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("99 * * * *", "(got '99 * * * *': bad minute)"),
        ("* * * *", "(got '* * * *')"),
        ("*/5 * * * * *", "(got '*/5 * * * * *')"),
        ("0 24 * * *", "(got '0 24 * * *': bad hour)"),
        ("0 0 31 2 *", "(got '0 0 31 2 *': bad day-of-month)"),  # 31 February never comes
        ("0 0 * 13 *", "(got '0 0 * 13 *': bad month)"),
        ("0 0 * * 5L", "(got '0 0 * * 5L': Prefect's scheduler takes no 'W' and no day-of-week 'L')"),
        ("0 0 LW * *", "(got '0 0 LW * *': Prefect's scheduler takes no 'W' and no day-of-week 'L')"),
    ],
)
def test_bad_cron_names_the_key(cron: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(GOOD + f'[stores.schedules]\nreconcile = "{cron}"\n')
    assert str(caught.value) == f"erpsync.toml: stores[0].schedules.reconcile: {CRON_REQUIREMENT} {problem}"


@pytest.mark.parametrize(
    ("cron", "kept"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("0 3 * * 1-5", "0 3 * * 1-5"),
        ("  0  3 * * MON-FRI ", "0 3 * * MON-FRI"),
        ("0 0 L * *", "0 0 L * *"),
        ("0 9 * * 1#2", "0 9 * * 1#2"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_good_cron_is_kept(cron: str, kept: str) -> None:
    settings = _load(GOOD + f'[stores.schedules]\nreconcile = "{cron}"\n')
    assert settings.stores[0].schedules.reconcile == kept


def test_error_messages_never_show_secret_values() -> None:
    literal = "literal-secret-never-shown-42"
    text = GOOD.replace('api_key = "env:MP_KEY"', f'api_key = "{literal}"') + "requests_per_second = -1\n"
    with pytest.raises(ConfigError) as caught:
        _load(text)
    assert literal not in str(caught.value)
    # A bad state URL may carry a password: it is not echoed.
    with pytest.raises(ConfigError) as caught:
        _load('[state]\nurl = "mysql://erp:db-pass-991@db/erpsync"\n' + GOOD)
    assert "db-pass-991" not in str(caught.value)


def test_missing_file_names_how_to_fix_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(caught.value) == "erpsync.toml: file not found (pass --config or set ERPSYNC_CONFIG)"
    with pytest.raises(ConfigError) as caught:
        load_config("other.toml")
    assert str(caught.value) == "other.toml: file not found"


def test_missing_file_named_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERPSYNC_CONFIG", "from-env.toml")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(caught.value) == "from-env.toml: file not found (named by ERPSYNC_CONFIG)"


def test_directory_and_bad_encoding_are_config_errors() -> None:
    Path("adir").mkdir()
    with pytest.raises(ConfigError, match=r"^adir: is a directory, not a file$"):
        load_config("adir")
    Path("latin1.toml").write_bytes(b'# caf\xe9\n[erp]\ntype = "tryton"\n')
    with pytest.raises(ConfigError, match=r"^latin1.toml: not valid UTF-8 \(byte 5\)$"):
        load_config("latin1.toml")


def test_syntax_error_at_end_of_document_gets_a_position() -> None:
    with pytest.raises(ConfigError) as caught:
        _load('[erp]\ntype = "tryton"\nname = ')
    assert re.fullmatch(r"erpsync\.toml:3:8: TOML syntax error: .+", str(caught.value)), str(caught.value)


def test_good_file_defaults_and_types() -> None:
    settings = _load(GOOD)
    assert settings.path == Path("erpsync.toml")
    assert settings.source == "erpsync.toml"
    assert settings.erp.type == "tryton"
    assert settings.erp.password.get() == TRYTON_VALUE
    assert settings.state.url.get() == "sqlite:///.erpsync/state.db"
    assert settings.prefect.concurrency_limit_prefix == "erpsync"
    store = settings.store("main")
    assert store.api_key.get() == KEY_VALUE and store.api_secret.get() == SECRET_VALUE
    assert store.requests_per_second == 4.0 and store.connect_timeout_seconds == 10.0
    assert store.warehouses == ["WH"]
    assert store.webhook_secret is None
    assert store.zone.key == "Europe/Bucharest"
    assert store.stock.safety_buffer == Decimal(0) and isinstance(store.stock.safety_buffer, Decimal)
    assert store.orders.skip_statuses == ["temporary"] and store.orders.start_date is None
    assert store.orders.reference_prefix == "" and store.price_list == ""
    assert store.products.vat_taxes is None and store.products.tax_id_for(19) is None  # from the shop's table
    assert store.reconcile.max_missing_share == 0.05


def test_several_shops_on_one_erp() -> None:
    """Distinct reference prefixes (one may be empty: order ids are digits); a price list per store."""
    text = _store_line('price_list = "Cluj"') + '[stores.orders]\nreference_prefix = "B-"\n'
    settings = _load(text + SECOND_STORE + '[stores.orders]\nreference_prefix = "BU"\n')
    assert [s.orders.reference_prefix for s in settings.stores] == ["B-", "BU"]
    assert [s.price_list for s in settings.stores] == ["Cluj", ""]
    assert _load(GOOD + SECOND_STORE + OUTLET_ORDERS).store("outlet").orders.reference_prefix == "OUT-"
    both = '[stores.products]\ndirection = "both"\n'  # price stays ERP-owned by default: a price list is fine
    assert _load(_store_line('price_list = "Cluj"') + both).stores[0].products.direction == "both"


def test_values_are_normalised() -> None:
    text = GOOD.replace('url = "https://www.example.ro"', 'url = "https://www.example.ro/"')
    text += 'webhook_secret = ""\n[stores.products]\nvat_taxes = { "19.0" = 7, "5.50" = 8 }\n'
    text += "[stores.orders]\nstart_date = 2026-03-01\n[stores.stock]\nsafety_buffer = 0.5\n"
    store = _load(text).stores[0]
    assert store.url == "https://www.example.ro"
    assert store.webhook_secret is None
    assert store.products.vat_taxes == {"19": 7, "5.5": 8}
    assert store.orders.start_date is not None and store.orders.start_date.isoformat() == "2026-03-01"
    assert store.stock.safety_buffer == Decimal("0.5")


def test_smartbill_erp() -> None:
    settings = _load(SMARTBILL + STORE_BLOCK)
    assert settings.erp.type == "smartbill"
    assert settings.erp.url == "https://ws.smartbill.ro/SBORO/api"
    assert settings.erp.requests_per_10s == 30 and settings.erp.measuring_unit == "buc"
    assert settings.erp.token.reference == "env:MP_KEY"


def test_good_file_round_trips_through_its_dump() -> None:
    settings = _load(GOOD + SECOND_STORE + OUTLET_ORDERS + 'start_date = "2026-01-15"\n')
    dumped = settings.model_dump(mode="json")
    again = settings_from_dict(dumped, source="dump")
    assert again.state == settings.state
    assert again.erp == settings.erp
    assert again.prefect == settings.prefect
    assert again.stores == settings.stores
    assert again.model_dump(mode="json") == dumped
    assert again.path is None and again.source == "dump"


def test_env_secrets_are_registered_and_never_shown() -> None:
    settings = _load(GOOD)
    assert redact(f"auth failed for {SECRET_VALUE} and {KEY_VALUE}") == "auth failed for *** and ***"
    assert redact(f"password={TRYTON_VALUE}") == "password=***"
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        for value in (KEY_VALUE, SECRET_VALUE, TRYTON_VALUE):
            assert value not in text
    assert "Secret('env:MP_SECRET')" in repr(settings)
    assert settings.model_dump()["stores"][0]["api_secret"] == "env:MP_SECRET"


def test_pickled_settings_carry_references_not_values() -> None:
    settings = _load(GOOD)
    blob = pickle.dumps(settings)
    for value in (KEY_VALUE, SECRET_VALUE, TRYTON_VALUE):
        assert value.encode() not in blob
    restored = pickle.loads(blob)
    assert restored.stores[0].api_secret.get() == SECRET_VALUE  # resolved again from the environment


def test_secret_parsing_and_display() -> None:
    env = Secret.parse("env:MP_SECRET")
    assert env.reference == "env:MP_SECRET" and env.get() == SECRET_VALUE
    assert repr(env) == str(env) == "Secret('env:MP_SECRET')"
    literal = Secret.parse("literal:abc:def-123")
    assert literal.get() == "abc:def-123" and literal.reference == "literal"
    assert repr(literal) == "Secret('literal')"
    plain = Secret.parse("Plain-Value-Without-Scheme")
    assert plain.get() == "Plain-Value-Without-Scheme" and plain.reference == "literal"
    assert redact("Plain-Value-Without-Scheme") == "***"
    for bad, problem in [
        ("vault:X", "unknown secret reference scheme"),
        ("env:", "env: reference needs an environment variable name"),
        ("env:MP_MISSING_SECRET", "environment variable MP_MISSING_SECRET is not set"),
        ("", "must not be empty"),
    ]:
        with pytest.raises(ValueError, match=re.escape(problem)):
            Secret.parse(bad)


def test_empty_env_var_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_SECRET", "")
    with pytest.raises(ConfigError) as caught:
        _load(GOOD)
    assert str(caught.value) == "erpsync.toml: stores[0].api_secret: environment variable MP_SECRET is empty"


def test_database_url_registers_only_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://erp:pg-pass-77aa@db.internal:5432/erpsync"
    monkeypatch.setenv("ERPSYNC_TEST_STATE_URL", url)
    settings = _load('[state]\nurl = "env:ERPSYNC_TEST_STATE_URL"\n' + GOOD)
    assert settings.state.url.get() == url
    assert repr(settings.state.url) == "DatabaseUrl('env:ERPSYNC_TEST_STATE_URL')"
    assert redact("connect to db.internal with pg-pass-77aa") == "connect to db.internal with ***"
    plain = DatabaseUrl.parse("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert repr(plain) == "DatabaseUrl('postgresql+psycopg://postgres@127.0.0.1:5432/test')"
    assert redact("127.0.0.1:5432/test") == "127.0.0.1:5432/test"
    with_password = DatabaseUrl.parse("postgresql://u:pw-literal-9876@h/db")
    assert repr(with_password) == "DatabaseUrl('literal')"
    assert "pw-literal-9876" not in with_password.reference
    DatabaseUrl.parse("postgresql://u:p%40ss%2Fword-42@h/db")  # "p@ss/word-42", percent-encoded in the URL
    assert redact("auth with p@ss/word-42 and p%40ss%2Fword-42") == "auth with *** and ***"


def test_prefect_secret_is_resolved_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_load(name: str) -> str:
        calls.append(name)
        return f"value-of-{name}-from-prefect"

    _use_prefect_resolver(monkeypatch, fake_load)
    text = GOOD.replace('api_secret = "env:MP_SECRET"', 'api_secret = "prefect-secret:mp-main-secret"')
    settings = _load(text)
    secret = settings.stores[0].api_secret
    assert calls == [] and not secret.resolved
    assert secret.reference == "prefect-secret:mp-main-secret"
    assert secret.get() == "value-of-mp-main-secret-from-prefect"
    assert secret.get() == "value-of-mp-main-secret-from-prefect"
    assert calls == ["mp-main-secret"] and secret.resolved
    assert redact("x value-of-mp-main-secret-from-prefect y") == "x *** y"
    assert "from-prefect" not in repr(settings) and "from-prefect" not in settings.model_dump_json()


def test_prefect_secret_failure_names_key_and_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_load(name: str) -> str:
        raise RuntimeError(f"Unable to find block document named {name}\nmore detail")

    _use_prefect_resolver(monkeypatch, failing_load)
    text = GOOD.replace('api_secret = "env:MP_SECRET"', 'api_secret = "prefect-secret:mp-main-secret"')
    secret = _load(text).stores[0].api_secret
    with pytest.raises(SecretError) as caught:
        secret.get()
    assert str(caught.value) == (
        "erpsync.toml: stores[0].api_secret: prefect-secret:mp-main-secret: could not load the Prefect Secret "
        "block (RuntimeError: Unable to find block document named mp-main-secret)"
    )
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 2
    _use_prefect_resolver(monkeypatch, lambda name: "")
    with pytest.raises(SecretError, match=r"the Prefect Secret block is empty$"):
        secret.get()


def test_prefect_secret_without_a_resolver_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(config_secrets._RESOLVERS, "prefect-secret", raising=False)
    text = GOOD.replace('api_secret = "env:MP_SECRET"', 'api_secret = "prefect-secret:mp-main-secret"')
    secret = _load(text).stores[0].api_secret  # loading needs no resolver: the value is read on first use
    assert not secret.resolved
    with pytest.raises(SecretError) as caught:
        secret.get()
    assert str(caught.value) == (
        "erpsync.toml: stores[0].api_secret: prefect-secret:mp-main-secret: no resolver for prefect-secret: "
        "references is registered in this process "
        "(erpsync.runtime.prefect_secrets.install_prefect_secret_resolver() registers it)"
    )
    assert caught.value.exit_code == 2 and not secret.resolved
    _use_prefect_resolver(monkeypatch, lambda name: f"late-{name}-value")  # registered later: read then
    assert secret.get() == "late-mp-main-secret-value"


def test_only_lazy_schemes_take_a_resolver() -> None:
    for scheme in ("env", "literal", "vault"):
        with pytest.raises(ValueError, match=f"^'{scheme}' is not a lazy secret reference scheme"):
            config.register_secret_resolver(scheme, lambda name: name)
    assert config.secret_resolver("vault") is None


def test_core_config_imports_without_prefect() -> None:
    code = "import sys, core.config, erpsync.core.config; assert 'prefect' not in sys.modules, 'prefect imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_path_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_config_path(None) == Path("erpsync.toml")
    assert resolve_config_path("") == Path("erpsync.toml")
    monkeypatch.setenv("ERPSYNC_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_config_path(None) == tmp_path / "env.toml"
    assert resolve_config_path("explicit.toml") == Path("explicit.toml")
    assert resolve_config_path(Path("explicit.toml")) == Path("explicit.toml")


def test_load_config_follows_the_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    Path("erpsync.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "env.toml").write_text(GOOD.replace('"main"', '"from-env"'), encoding="utf-8")
    (tmp_path / "explicit.toml").write_text(GOOD.replace('"main"', '"explicit"'), encoding="utf-8")
    assert load_config().stores[0].name == "main"
    monkeypatch.setenv("ERPSYNC_CONFIG", str(tmp_path / "env.toml"))
    assert load_config().stores[0].name == "from-env"
    assert load_config().path == tmp_path / "env.toml"
    assert load_config(tmp_path / "explicit.toml").stores[0].name == "explicit"


def test_store_lookup() -> None:
    settings = _load(GOOD + SECOND_STORE + OUTLET_ORDERS)
    assert settings.store("outlet").url == "https://outlet.example.ro"
    with pytest.raises(ConfigError) as caught:
        settings.store("nope")
    assert str(caught.value) == "erpsync.toml: stores: no store named 'nope' (configured: 'main', 'outlet')"


def test_settings_are_frozen() -> None:
    store = _load(GOOD).stores[0]
    with pytest.raises(ValueError):
        store.name = "other"


def test_settings_from_dict_names_its_source() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict({"erp": {"type": "sap"}}, source="demo")
    assert str(caught.value) == "demo: erp.type: must be one of 'tryton', 'smartbill', 'oblio', 'files' (got 'sap')"


EXAMPLE_ENV = {
    "TRYTON_PASSWORD": "example-tryton-pass",
    "MP_MAIN_KEY": "example-main-key",
    "MP_MAIN_SECRET": "example-main-secret",
    "MP_MAIN_WEBHOOK_SECRET": "example-main-webhook",
}


def test_example_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    _use_prefect_resolver(monkeypatch, lambda name: pytest.fail(f"resolved {name} eagerly"))
    settings = load_config(REPO / "erpsync.example.toml")
    assert [s.name for s in settings.stores] == ["main", "outlet"]
    main, outlet = settings.stores
    assert main.webhook_secret is not None and main.webhook_secret.get() == "example-main-webhook"
    assert main.orders.payment_methods == {"cash_delivery": "Ramburs", "wire": "Transfer bancar"}
    assert not outlet.api_key.resolved and outlet.api_key.reference == "prefect-secret:mp-outlet-key"
    assert outlet.warehouses == ["OUTLET"] and outlet.sku_prefix == "OUT-"
    assert (main.orders.reference_prefix, outlet.orders.reference_prefix) == ("", "OUT-")
    assert outlet.products == main.products  # the example's main store spells out the defaults


def _keys(model: type) -> set[str]:
    return set(model.model_fields)  # type: ignore[attr-defined]


SECTIONS = [
    config.StateSettings,
    config.TrytonSettings,
    config.SmartBillSettings,
    config.PrefectSettings,
    config.StoreSettings,
    config.ProductSettings,
    config.StockSettings,
    config.OrderSettings,
    config.ReconcileSettings,
    config.CustomerSettings,
    config.PurchaseSettings,
    config.ScheduleSettings,
    config.AlertSettings,
    config.EmailAlertSettings,
    config.WebhookAlertSettings,
]


@pytest.mark.parametrize("section", SECTIONS, ids=[s.__name__ for s in SECTIONS])
def test_every_key_is_documented(section: type) -> None:
    example = (REPO / "erpsync.example.toml").read_text(encoding="utf-8")
    reference = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    nested = {"products", "stock", "orders", "reconcile", "customers", "purchases", "schedules", "email", "webhook"}
    for key in _keys(section) - nested:
        assert re.search(rf"^#? ?{key} = ", example, re.MULTILINE), f"{key} missing from erpsync.example.toml"
        assert f"| `{key}` |" in reference, f"{key} missing from docs/configuration.md"


def test_discount_and_fee_products_default_and_reach_the_erp_connector() -> None:
    from erpsync.runtime.store_runtime import erp_options

    settings = _load(GOOD)
    store = settings.store("main")
    assert (store.orders.shipping_sku, store.orders.discount_sku, store.orders.fee_sku) == (
        "SHIPPING",
        "DISCOUNT",
        "FEE",
    )
    custom = _load(GOOD + '[stores.orders]\ndiscount_sku = "REDUCERE"\nfee_sku = "TAXA"\n')
    options = erp_options(custom, custom.store("main"), None)  # type: ignore[arg-type]  # Tryton needs no state
    assert (options["discount_sku"], options["fee_sku"]) == ("REDUCERE", "TAXA")

"""A desktop ERP through files: its stock/price export read from an inbox, shop orders written to an outbox.

Taking in (``take_in``, run by every stock or product read): a file in the inbox whose name matches
``[erp.stock] pattern`` is taken only when complete — its companion ``<name>.done`` is beside it — and only
once: its content's sha256 goes into the file journal first (``file_journal``, unique), so the same file dropped
again (under any name) is never read twice. It is parsed through the column mapping and validated by the
``stock_file`` Great Expectations suites (the validator is handed in: connectors do not import GX) against the
last accepted file; accepted, it becomes the stock every read answers until the next one, and moves to
``processed/``; refused, it moves to ``rejected/`` with ``<name>.report.txt`` beside it naming the rules and rows,
and each read that saw it reports it as a row error (the run ends partially failed). Nothing of a refused file
is ever answered, so nothing of it reaches the shop.

Orders out: ``create_order`` writes one CSV per order (``orders_out.py``), named by the order's reference, into
the outbox atomically (temporary name + rename), after a write-ahead row in the journal; a re-send finds the
journal (or the file) and writes nothing. See docs/files.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatch
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pandas as pd

from erpsync.connectors.erp.base import Capabilities, Needs, NotSupported, Probe
from erpsync.connectors.erp.files.folders import DONE_SUFFIX, SYSTEM, TEMP_PREFIX, Entry, Folder, open_folder
from erpsync.connectors.erp.files.journal import IN, ORDER, OUT, STOCK, FileJournal, MemoryFileJournal
from erpsync.connectors.erp.files.orders_out import order_file, order_file_name
from erpsync.connectors.erp.files.reading import ParsedFile, UnreadableFile, file_format, parse, read_table
from erpsync.connectors.erp.files.statuses import order_status, status_rows
from erpsync.connectors.erp.files.unsupported import Unsupported
from erpsync.connectors.errors import FatalError, record_error
from erpsync.connectors.http import Counters
from erpsync.core.config.files import OrderFileSettings, StatusFileSettings, StockFileSettings
from erpsync.core.models import Customer, ErpOrderStatus, Order, Page, Product, RowError, StockLevel
from erpsync.core.order_totals import total_problem
from erpsync.core.stock_file import (
    FileBounds,
    FileVerdict,
    RuleFailure,
    Validator,
    columns_frame,
    file_bounds,
    guard_frame,
    previous_quantities,
)

if TYPE_CHECKING:
    from erpsync.core.config import FilesSettings

log = logging.getLogger("erpsync.files")

PROCESSED, REJECTED = "processed", "rejected"
PAGE_SIZE = 1000
_ZERO = Decimal(0)


@dataclass
class Accepted:
    """The stock/price file every read answers now."""

    name: str
    digest: str
    parsed: ParsedFile

    @property
    def frame(self) -> pd.DataFrame:
        assert self.parsed.frame is not None
        return self.parsed.frame


class FilesConnector(Unsupported):
    """An ERP that exchanges files: stock and prices in from the inbox, orders out to the outbox."""

    system = SYSTEM

    def __init__(
        self,
        inbox: Folder,
        outbox: Folder,
        *,
        stock: StockFileSettings | None = None,
        orders: OrderFileSettings | None = None,
        status: StatusFileSettings | None = None,
        cache_dir: str | Path = ".erpsync/files",
        journal: FileJournal | None = None,
        validator: Validator | None = None,
        order_warehouse: str = "",
        counters: Counters | None = None,
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.stock = stock or StockFileSettings()
        self.orders = orders or OrderFileSettings()
        self.status = status or StatusFileSettings()
        self.cache_dir = Path(cache_dir)
        self.journal: FileJournal = MemoryFileJournal() if journal is None else journal
        self.validator = validator
        self.order_warehouse = order_warehouse or self.stock.warehouse
        self.counters = counters or Counters()
        mapping = self.stock.mapping()
        self.capabilities = Capabilities(
            stock_read=True,
            stock_changed_since=True,  # "changed since" = a file accepted since: its rows (the flow diffs them)
            products_read="price" in mapping or "name" in mapping,
            orders_create=True,
            orders_create_idempotent=True,  # a re-send finds its file in the journal or the outbox: none written
            orders_read_status=bool(self.status.pattern),  # from the ERP's status export ([erp.status])
        )
        self._current: Accepted | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: FilesSettings, **options: Any) -> FilesConnector:
        """The connector of an ``[erp] type = "files"`` section; ``options``: ``journal``, ``validator``,
        ``order_warehouse``, ``counters``."""
        counters = options.pop("counters", None) or Counters()

        def password() -> str | None:
            return settings.password.get() if settings.password is not None else None

        def private_key() -> str | None:
            return settings.private_key.get() if settings.private_key is not None else None

        def folder(location: str) -> Folder:
            return open_folder(
                location,
                counters,
                password=password,
                private_key=private_key,
                known_hosts=settings.known_hosts,
                timeout=settings.timeout_seconds,
            )

        known = {"journal", "validator", "order_warehouse"}
        return cls(
            folder(settings.inbox),
            folder(settings.outbox),
            stock=settings.stock,
            orders=settings.orders,
            status=settings.status,
            cache_dir=settings.cache_dir,
            counters=counters,
            **{k: v for k, v in options.items() if k in known},
        )

    def close(self) -> None:
        self.inbox.close()
        self.outbox.close()

    def __enter__(self) -> FilesConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> str:
        """List the inbox and the outbox: ``files: inbox ... (2 file(s) waiting), outbox ...``."""
        waiting = len(self._ready(self.inbox.list()))
        self.outbox.list()
        return f"files: inbox {self.inbox.where} ({waiting} file(s) waiting), outbox {self.outbox.where}"

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """``erpsync check`` (``checks.py``): the folders, exports waiting, the accepted stock file, warehouses."""
        from erpsync.connectors.erp.files.checks import probes

        return probes(self, needs)

    # -- taking files in ---------------------------------------------------------------------------------

    def _kind(self, name: str) -> str | None:
        """``"status"``, ``"stock"`` or None: which export a file name is (the status pattern is looked at first)."""
        lowered = name.lower()
        if name.startswith(TEMP_PREFIX) or lowered.endswith(DONE_SUFFIX):
            return None
        if self.status.pattern and fnmatch(lowered, self.status.pattern.lower()):
            return "status"
        return STOCK if fnmatch(lowered, self.stock.pattern.lower()) else None

    def _ready(self, entries: list[Entry], kind: str = STOCK) -> list[Entry]:
        """The complete files of a kind (their ``.done`` companion is there), oldest first."""
        names = {entry.name for entry in entries}
        ready = [e for e in entries if self._kind(e.name) == kind and f"{e.name}{DONE_SUFFIX}" in names]
        return sorted(ready, key=lambda e: (e.mtime, e.name))

    def take_in(self) -> list[RowError]:
        """Take every complete new file from the inbox (oldest first; status exports, then stock exports); the
        refused ones, as row errors."""
        with self._lock:
            problems: list[RowError] = []
            entries = self.inbox.list()
            for entry in self._ready(entries, "status"):
                problem = self._take_status(entry)
                if problem is not None:
                    problems.append(problem)
            for entry in self._ready(entries):
                problem = self._take(entry)
                if problem is not None:
                    problems.append(problem)
            return problems

    def _take_status(self, entry: Entry) -> RowError | None:
        """Read a status export once: each order's row into the journal (direction ``status``, key = reference)."""
        data = self._read(entry.name)
        if data is None:
            return None
        digest = hashlib.sha256(data).hexdigest()
        known = self.journal.file_get(IN, "status", digest)
        if known is not None and known.state == "checking" and _recent(known.updated_at):
            return None  # another run is taking it in now
        if known is not None and known.state != "checking":
            self._retire(entry.name, PROCESSED, f"{digest[:12]}-duplicate-{entry.name}")
            return None
        if known is None and not self.journal.file_claim(IN, "status", digest, name=entry.name, state="checking"):
            return None
        try:
            fmt = file_format(entry.name, self.status)
            rows, missing = status_rows(read_table(data, fmt, self.status), self.status)
        except UnreadableFile as exc:
            rows, missing, problem = {}, [], str(exc)
        else:
            problem = f"the column {missing[0]!r} is not in the file" if missing else ""
        if problem:
            verdict = FileVerdict(
                False, [RuleFailure("status_readable", "the status export reads as configured", problem)]
            )
            return self._reject(entry, digest, verdict, None, None, kind="status")
        for reference, row in rows.items():
            detail = json.dumps(row, sort_keys=True)
            state = row["state"]
            if not self.journal.file_claim("status", ORDER, reference, name=entry.name, state=state, detail=detail):
                self.journal.file_update("status", ORDER, reference, name=entry.name, state=state, detail=detail)
        self.journal.file_update(IN, "status", digest, state="accepted", rows=len(rows))
        self._retire(entry.name, PROCESSED, f"{_stamp()}-{digest[:12]}-{entry.name}")
        log.info("%s: the statuses of %d order(s) read", entry.name, len(rows))
        return None

    def _take(self, entry: Entry) -> RowError | None:
        data = self._read(entry.name)
        if data is None:
            return None
        digest = hashlib.sha256(data).hexdigest()
        known = self.journal.file_get(IN, STOCK, digest)
        if known is not None and known.state == "checking" and _recent(known.updated_at):
            return None  # another run is taking it in now
        if known is not None and known.state != "checking":
            log.info("%s: the same content as %s (%s): already read, not read again", entry.name, known.name, digest)
            self._retire(entry.name, PROCESSED, f"{digest[:12]}-duplicate-{entry.name}")
            return None
        if known is None and not self.journal.file_claim(IN, STOCK, digest, name=entry.name, state="checking"):
            return None  # another process has just taken it
        previous = self.current()
        fmt = ""
        parsed: ParsedFile | None = None
        try:
            fmt = file_format(entry.name, self.stock)
            parsed = parse(read_table(data, fmt, self.stock), fmt, self.stock)
        except UnreadableFile as exc:
            verdict = FileVerdict(False, [RuleFailure("file_readable", "the file reads as configured", str(exc))])
        else:
            verdict = self._validate(parsed, previous)
        if verdict.passed and parsed is not None:
            self._accept(entry, digest, data, fmt, parsed, verdict)
            return None
        return self._reject(entry, digest, verdict, parsed, previous)

    def _accept(
        self, entry: Entry, digest: str, data: bytes, fmt: str, parsed: ParsedFile, verdict: FileVerdict
    ) -> None:
        archived = f"{_stamp()}-{digest[:12]}-{entry.name}"
        self._cache(digest, entry.name, data)
        rows = len(parsed.frame) if parsed.frame is not None else 0
        detail = json.dumps({"format": fmt, "archived": f"{PROCESSED}/{archived}", "seconds": verdict.seconds})
        self.journal.file_update(IN, STOCK, digest, state="accepted", rows=rows, detail=detail)
        self._current = Accepted(entry.name, digest, parsed)
        self._retire(entry.name, PROCESSED, archived)
        log.info("%s accepted: %d rows (validated in %.2f s)", entry.name, rows, verdict.seconds)

    def _reject(
        self,
        entry: Entry,
        digest: str,
        verdict: FileVerdict,
        parsed: ParsedFile | None,
        previous: Accepted | None,
        *,
        kind: str = STOCK,
    ) -> RowError:
        rejected = f"{_stamp()}-{entry.name}"
        report = rejection_report(entry.name, digest, verdict, previous.name if previous else None)
        self._retire(entry.name, REJECTED, rejected)
        self.inbox.write(f"{REJECTED}/{rejected}.report.txt", report.encode("utf-8"))
        rows = len(parsed.frame) if parsed is not None and parsed.frame is not None else 0
        self.journal.file_update(IN, kind, digest, state="rejected", rows=rows, detail=verdict.describe()[:4000])
        log.error("%s rejected, nothing of it applied: %s", entry.name, verdict.describe())
        return RowError(
            key=entry.name,
            error=f"{kind} file {entry.name} rejected, nothing of it applied: {verdict.describe()}; "
            f"report: {REJECTED}/{rejected}.report.txt",
        )

    def _read(self, name: str) -> bytes | None:
        """A listed file's bytes, or None when another run moved it away meanwhile."""
        try:
            return self.inbox.read(name)
        except FileNotFoundError:
            return None

    def _validate(self, parsed: ParsedFile, previous: Accepted | None) -> FileVerdict:
        if self.validator is None:
            raise FatalError(
                SYSTEM, "no stock file validator is configured (erpsync's runtime hands in the GX suite): refused"
            )
        columns = columns_frame(parsed.mapping, parsed.found, parsed.required)
        frame = None
        bounds: FileBounds = file_bounds(None, self.stock.row_count_band, self.stock.max_zero_share)
        if parsed.frame is not None:
            before = None
            if previous is not None:
                before = previous_quantities(previous.frame, parsed.by_warehouse)
                bounds = file_bounds(len(previous.frame), self.stock.row_count_band, self.stock.max_zero_share)
            frame = guard_frame(parsed.frame, before, by_warehouse=parsed.by_warehouse)
        return self.validator(columns, frame, bounds)

    def _retire(self, name: str, subfolder: str, new_name: str) -> None:
        """Move a taken file out of the inbox (and its ``.done``)."""
        with contextlib.suppress(FileNotFoundError):  # another process moved it
            self.inbox.move(name, subfolder, new_name)
        self.inbox.remove(f"{name}{DONE_SUFFIX}")

    def _cache_path(self, digest: str, name: str) -> Path:
        return self.cache_dir / f"{digest}{PurePath(name).suffix.lower()}"

    def _cache(self, digest: str, name: str, data: bytes) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self._cache_path(digest, name)
        temp = path.with_name(f"{path.name}.tmp")
        temp.write_bytes(data)
        temp.replace(path)

    def current(self) -> Accepted | None:
        """The last accepted stock file (from memory, the local copy, or the inbox's ``processed/``)."""
        with self._lock:
            latest = self.journal.file_latest(IN, STOCK, "accepted")
            if latest is None:
                return None
            if self._current is not None and self._current.digest == latest.key:
                return self._current
            data = self._cached_bytes(latest.key, latest.name, latest.detail)
            fmt = file_format(latest.name, self.stock)
            parsed = parse(read_table(data, fmt, self.stock), fmt, self.stock)
            if parsed.frame is None:
                raise FatalError(SYSTEM, f"{latest.name}: the accepted file no longer fits [erp.stock] columns")
            self._current = Accepted(latest.name, latest.key, parsed)
            return self._current

    def _cached_bytes(self, digest: str, name: str, detail: str | None) -> bytes:
        path = self._cache_path(digest, name)
        if path.is_file():
            return path.read_bytes()
        archived = json.loads(detail or "{}").get("archived")
        if not archived:
            raise FatalError(SYSTEM, f"{name}: the accepted file is neither in {self.cache_dir} nor archived")
        data = self.inbox.read(archived)
        self._cache(digest, name, data)
        return data

    # -- stock and products -------------------------------------------------------------------------------

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """The last accepted file's rows of these warehouses (after taking in new files): refused files first,
        as row errors. The quantity is on hand; reserved is 0 unless a ``reserved`` column is mapped.

        ``changed_since``: nothing when no file was accepted since then, else the accepted file's rows (a
        superset of what moved: the stock flow diffs them against what it pushed). So a watcher's poll costs one
        inbox listing while the ERP exports nothing new."""
        if not warehouses:
            raise ValueError("iter_stock needs at least one warehouse")
        return self._stock_pages(list(warehouses), None if skus is None else list(skus), changed_since)

    def _stock_pages(
        self, warehouses: list[str], skus: list[str] | None, since: datetime | None = None
    ) -> Iterator[Page[StockLevel]]:
        problems = self.take_in()
        if problems:
            yield Page(errors=problems)
        if since is not None:
            latest = self.journal.file_latest(IN, STOCK, "accepted")
            if latest is None or latest.updated_at < since:
                return
        accepted = self.current()
        if accepted is None:
            return
        frame = accepted.frame
        chosen = frame[frame["warehouse"].isin(warehouses)]
        if skus is not None:
            chosen = chosen[chosen["sku"].isin(skus)]
        quantities = chosen["quantity_number"].fillna(0.0).tolist()
        reserved = chosen["reserved_number"].fillna(0.0).tolist()
        decimals = {value: _decimal(value) for value in {*quantities, *reserved}}  # each distinct value once
        # the values were validated by the guard when the file was accepted: no second validation per row
        rows = zip(chosen["sku"].tolist(), chosen["warehouse"].tolist(), quantities, reserved, strict=True)
        levels = [_level(sku, warehouse, decimals[q], decimals[r]) for sku, warehouse, q, r in rows]
        for start in range(0, len(levels), PAGE_SIZE):
            yield Page(items=levels[start : start + PAGE_SIZE])

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        """One product per SKU of the last accepted file: name, price (gross or net by ``prices_include_vat``),
        VAT rate, EAN where those columns are mapped."""
        if not self.capabilities.products_read:
            raise NotSupported(SYSTEM, "the stock file maps no price or name column: there are no products to read")
        if changed_since is not None:
            raise NotSupported(SYSTEM, "a price file is read whole: it cannot list what changed since a time")
        return self._product_pages()

    def _product_pages(self) -> Iterator[Page[Product]]:
        problems = self.take_in()
        if problems:
            yield Page(errors=problems)
        accepted = self.current()
        if accepted is None:
            return
        frame = accepted.frame.drop_duplicates("sku")
        gross = self.stock.prices_include_vat
        batch: list[Product] = []
        for sku, name, price, vat, ean in frame[["sku", "name", "price_number", "vat_number", "ean"]].itertuples(
            index=False, name=None
        ):
            amount = None if price != price else Decimal(str(round(float(price), 4)))
            batch.append(
                Product(
                    sku=sku,
                    name=name or "",
                    price_gross=amount if gross else None,
                    price_net=None if gross else amount,
                    vat_rate=None if vat != vat else Decimal(str(round(float(vat), 2))),
                    ean=ean or None,
                )
            )
            if len(batch) == PAGE_SIZE:
                yield Page(items=batch)
                batch = []
        if batch:
            yield Page(items=batch)

    # -- orders out ---------------------------------------------------------------------------------------

    def find_order(self, reference: str) -> str | None:
        """The order's file name when it was written (the journal says so, or the file is in the outbox)."""
        name = order_file_name(self.orders, reference)
        entry = self.journal.file_get(OUT, ORDER, name)
        if entry is None:
            return None
        if entry.state == "written":
            return name
        if self.outbox.exists(name):  # written, then the process stopped before the journal heard of it
            self.journal.file_update(OUT, ORDER, name, state="written")
            return name
        return None

    def create_order(self, order: Order, customer: Customer) -> str:
        """Write the order's file (one per order, atomically); idempotent on its reference; returns its name.

        Refused (``RecordError``, nothing written) when its lines do not add up to the shop's total, or a SKU is
        not in the last accepted stock file.
        """
        reference = order.reference or order.shop_id
        if not reference:
            raise ValueError("create_order needs order.reference or order.shop_id: it is the idempotency key")
        found = self.find_order(reference)
        if found is not None:
            return found
        problem = total_problem(order)
        if problem:
            raise record_error(SYSTEM, reference, problem)
        self._check_skus(order, reference)
        name = order_file_name(self.orders, reference)
        data = order_file(order, customer, reference, self.orders, warehouse=self.order_warehouse)
        digest = hashlib.sha256(data).hexdigest()
        detail = json.dumps({"reference": reference})
        if not self.journal.file_claim(
            OUT, ORDER, name, name=name, state="writing", digest=digest, rows=1, detail=detail
        ):
            self.journal.file_update(OUT, ORDER, name, state="writing", digest=digest)  # an earlier try never landed
        self.outbox.publish(name, data)
        self.journal.file_update(OUT, ORDER, name, state="written")
        log.info("order %s written to %s/%s", reference, self.outbox.where, name)
        return name

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """Each order file's status from the ERP's status exports (taken in first): state, invoice, AWB; "sent"
        while the ERP has said nothing of it, "missing" for a file erpsync did not write."""
        if not self.capabilities.orders_read_status:
            raise NotSupported(SYSTEM, "no status export is configured ([erp.status] pattern)")
        self.take_in()
        statuses = []
        for erp_id in erp_ids:
            written = self.journal.file_get(OUT, ORDER, erp_id)
            if written is None:
                statuses.append(ErpOrderStatus(erp_id=erp_id, state="missing"))
                continue
            reference = json.loads(written.detail or "{}").get("reference")
            said = self.journal.file_get("status", ORDER, reference) if reference else None
            statuses.append(order_status(erp_id, reference, said.detail if said is not None else None))
        return statuses

    def _check_skus(self, order: Order, reference: str) -> None:
        accepted = self.current()
        if accepted is None:
            self.take_in()  # no order run should wait for a stock run to learn the catalogue
            accepted = self.current()
        if accepted is None:
            return  # no stock file accepted yet: the ERP's import is the only check
        known = set(accepted.frame["sku"].dropna())
        for line in order.lines:
            if line.kind == "product" and line.sku not in known:
                raise record_error(
                    SYSTEM,
                    reference,
                    f"SKU {line.sku!r} is not in the last accepted stock file {accepted.name}: the ERP would not "
                    "know it",
                )


_LEVEL_FIELDS = frozenset({"sku", "warehouse", "on_hand", "reserved"})


def _constructed(sku: str, warehouse: str, on_hand: Decimal, reserved: Decimal) -> StockLevel:
    return StockLevel.model_construct(
        set(_LEVEL_FIELDS), sku=sku, warehouse=warehouse, on_hand=on_hand, reserved=reserved
    )


def _assembled(sku: str, warehouse: str, on_hand: Decimal, reserved: Decimal) -> StockLevel:
    """What ``model_construct`` makes, without its per-field loop (~2x faster over 100,000 rows): the instance
    dict and pydantic's three slots set directly. Used only when ``_level_factory`` proved it identical."""
    level = object.__new__(StockLevel)
    setter = object.__setattr__
    setter(level, "__dict__", {"sku": sku, "warehouse": warehouse, "on_hand": on_hand, "reserved": reserved})
    setter(level, "__pydantic_fields_set__", set(_LEVEL_FIELDS))
    setter(level, "__pydantic_extra__", None)
    setter(level, "__pydantic_private__", None)
    return level


def _level_factory() -> Any:
    """``_assembled`` when it builds exactly what ``model_construct`` builds (checked once, on this pydantic),
    else ``model_construct`` itself."""
    try:
        sample = ("S", "WH", Decimal("1.5"), Decimal(0))
        fast, slow = _assembled(*sample), _constructed(*sample)
        same = (
            fast == slow
            and fast.__dict__ == slow.__dict__
            and fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
            and fast.__pydantic_extra__ == slow.__pydantic_extra__
            and fast.__pydantic_private__ == slow.__pydantic_private__
            and fast.model_dump() == slow.model_dump()
        )
    except Exception:
        same = False
    return _assembled if same else _constructed


_level = _level_factory()


def _decimal(value: float) -> Decimal:
    if value != value:
        return _ZERO
    return Decimal(repr(float(value))) if not float(value).is_integer() else Decimal(int(value))


CHECKING_TTL = timedelta(minutes=10)  # a take-in left "checking" longer than this was cut short: taken again


def _recent(when: datetime) -> bool:
    return datetime.now(UTC) - when < CHECKING_TTL


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def rejection_report(name: str, digest: str, verdict: FileVerdict, previous: str | None) -> str:
    """The text beside a refused file: what was broken, by rule, with the file's rows that break it."""
    lines = [
        f"erpsync refused {name} at {datetime.now(UTC).isoformat(timespec='seconds')}: nothing of it was applied.",
        f"sha256 {digest}",
        f"compared with the last accepted file: {previous or '(none yet)'}",
        "",
        "Rules broken:",
    ]
    for failure in verdict.failures:
        lines.append(f"- {failure.rule}: {failure.description} -- {failure.detail}")
        for row in failure.rows:
            where = f"row {row['row']}" if "row" in row else ", ".join(f"{k}={v}" for k, v in row.items())
            shown = ", ".join(f"{k}={v!r}" for k, v in row.items() if k != "row" and v not in (None, ""))
            lines.append(f"    {where}: {shown}" if "row" in row else f"    {where}")
    lines += ["", "Fix the export and drop it again (with its .done file); the shop keeps the last accepted stock."]
    return "\n".join(lines) + "\n"

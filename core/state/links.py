"""Links: a shop id <-> an ERP id per (store, entity), unique on both sides, enforced by the database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import IN_CHUNK, StateError, chunks, dumps, loads, require_str, utcnow
from erpsync.core.state.schema import LINKS

LINK_PAGE = 5_000


@dataclasses.dataclass(frozen=True, slots=True)
class Link:
    id: int
    store: str
    entity: str
    shop_id: str
    erp_id: str
    sku: str | None
    extra: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime


class LinkConflict(StateError):
    """A shop id or ERP id is already linked to a different partner."""

    def __init__(self, message: str, existing: Sequence[Link]) -> None:
        super().__init__(message)
        self.existing = tuple(existing)


def _link(row: Row[Any]) -> Link:
    return Link(
        id=row.id,
        store=row.store,
        entity=row.entity,
        shop_id=row.shop_id,
        erp_id=row.erp_id,
        sku=row.sku,
        extra=loads(row.extra),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class LinksMixin(StateBase):
    """Links of every store (``StateStore`` methods)."""

    def link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str,
        erp_id: str,
        sku: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Link:
        """Link a shop id to an ERP id (idempotent); raise ``LinkConflict`` if either has another partner.

        When the pair already exists, a given ``sku`` or ``extra`` that differs from the stored one replaces it.
        """
        require_str("shop_id", shop_id)
        require_str("erp_id", erp_id)
        extra_text = None if extra is None else dumps(extra)
        scope = (LINKS.c.store == store, LINKS.c.entity == entity)
        for _ in range(5):
            now = utcnow()
            with self._write() as conn:
                conn.execute(
                    self._insert(LINKS)
                    .values(
                        store=store,
                        entity=entity,
                        shop_id=shop_id,
                        erp_id=erp_id,
                        sku=sku,
                        extra=extra_text,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing()
                )
                rows = conn.execute(
                    select(LINKS)
                    .where(*scope, or_(LINKS.c.shop_id == shop_id, LINKS.c.erp_id == erp_id))
                    .order_by(LINKS.c.id)
                ).all()
                exact = next((r for r in rows if r.shop_id == shop_id and r.erp_id == erp_id), None)
                if exact is not None:
                    changes: dict[str, Any] = {}
                    if sku is not None and exact.sku != sku:
                        changes["sku"] = sku
                    if extra is not None and exact.extra != extra_text:
                        changes["extra"] = extra_text
                    if not changes:
                        return _link(exact)
                    conn.execute(update(LINKS).where(LINKS.c.id == exact.id).values(**changes, updated_at=now))
                    return _link(conn.execute(select(LINKS).where(LINKS.c.id == exact.id)).one())
                if rows:
                    raise self._conflict(entity, store, shop_id, erp_id, [_link(r) for r in rows])
            # Neither id is linked although the insert was refused: a concurrent unlink won; try again.
        raise StateError(f"could not link {entity} shop_id {shop_id!r} to erp_id {erp_id!r}: retries exhausted")

    def link_many(
        self, store: str, entity: str, pairs: Iterable[tuple[str, str, str | None]]
    ) -> dict[tuple[str, str], LinkConflict]:
        """Link many ``(shop_id, erp_id, sku)`` pairs, in chunks; returns the conflicts by (shop_id, erp_id).

        Bulk form of ``link`` (same rules, minus ``extra``): pairs already linked keep their row (a different
        ``sku`` replaces the stored one); new pairs are inserted together; a pair whose shop id or ERP id has
        another partner is not linked and comes back as a ``LinkConflict``.
        """
        wanted: dict[tuple[str, str], str | None] = {}
        for shop_id, erp_id, sku in pairs:
            wanted[(require_str("shop_id", shop_id), require_str("erp_id", erp_id))] = sku
        conflicts: dict[tuple[str, str], LinkConflict] = {}
        raced: list[tuple[str, str, str | None]] = []
        scope = (LINKS.c.store == store, LINKS.c.entity == entity)
        for chunk in chunks(list(wanted.items()), IN_CHUNK):
            shop_ids = [shop_id for (shop_id, _), _sku in chunk]
            erp_ids = [erp_id for (_, erp_id), _sku in chunk]
            now = utcnow()
            with self._write() as conn:
                conn.execute(
                    self._insert(LINKS).on_conflict_do_nothing(),
                    [
                        {
                            "store": store,
                            "entity": entity,
                            "shop_id": shop_id,
                            "erp_id": erp_id,
                            "sku": sku,
                            "extra": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for (shop_id, erp_id), sku in chunk
                    ],
                )
                rows = conn.execute(
                    select(LINKS).where(*scope, or_(LINKS.c.shop_id.in_(shop_ids), LINKS.c.erp_id.in_(erp_ids)))
                ).all()
                by_pair = {(r.shop_id, r.erp_id): r for r in rows}
                for (shop_id, erp_id), sku in chunk:
                    exact = by_pair.get((shop_id, erp_id))
                    if exact is None:
                        others = [_link(r) for r in rows if r.shop_id == shop_id or r.erp_id == erp_id]
                        if others:
                            conflicts[(shop_id, erp_id)] = self._conflict(entity, store, shop_id, erp_id, others)
                        else:  # refused, yet neither id is linked: a concurrent unlink won; see link()
                            raced.append((shop_id, erp_id, sku))
                    elif sku is not None and exact.sku != sku:
                        conn.execute(update(LINKS).where(LINKS.c.id == exact.id).values(sku=sku, updated_at=now))
        for shop_id, erp_id, sku in raced:
            try:
                self.link(store, entity, shop_id=shop_id, erp_id=erp_id, sku=sku)
            except LinkConflict as conflict:
                conflicts[(shop_id, erp_id)] = conflict
        return conflicts

    @staticmethod
    def _conflict(entity: str, store: str, shop_id: str, erp_id: str, existing: list[Link]) -> LinkConflict:
        parts = []
        for other in existing:
            if other.shop_id == shop_id:
                parts.append(f"shop_id {shop_id!r} is already linked to erp_id {other.erp_id!r}")
            if other.erp_id == erp_id:
                parts.append(f"erp_id {erp_id!r} is already linked to shop_id {other.shop_id!r}")
        message = f"cannot link {entity} shop_id {shop_id!r} to erp_id {erp_id!r} in store {store!r}: " + "; ".join(
            parts
        )
        return LinkConflict(message, existing)

    def find_link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str | None = None,
        erp_id: str | None = None,
        sku: str | None = None,
    ) -> Link | None:
        """The link matching every given id (the oldest one when a SKU is shared), or None."""
        conditions = [LINKS.c.store == store, LINKS.c.entity == entity]
        for column, value in (("shop_id", shop_id), ("erp_id", erp_id), ("sku", sku)):
            if value is not None:
                conditions.append(LINKS.c[column] == value)
        if len(conditions) == 2:
            raise ValueError("find_link needs shop_id, erp_id or sku")
        with self._read() as conn:
            row = conn.execute(select(LINKS).where(*conditions).order_by(LINKS.c.id).limit(1)).first()
        return None if row is None else _link(row)

    def erp_ids_of(self, store: str, entity: str, shop_ids: Iterable[str]) -> dict[str, str]:
        """The ERP ids linked to these shop ids (those linked), in chunks: one query per ``IN_CHUNK`` ids."""
        found: dict[str, str] = {}
        with self._read() as conn:
            for chunk in chunks(sorted(set(shop_ids)), IN_CHUNK):
                rows = conn.execute(
                    select(LINKS.c.shop_id, LINKS.c.erp_id).where(
                        LINKS.c.store == store, LINKS.c.entity == entity, LINKS.c.shop_id.in_(chunk)
                    )
                )
                found.update((r.shop_id, r.erp_id) for r in rows)
        return found

    def links(self, store: str, entity: str) -> list[Link]:
        """Every link of one entity in one store, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(LINKS).where(LINKS.c.store == store, LINKS.c.entity == entity).order_by(LINKS.c.id)
            ).all()
        return [_link(r) for r in rows]

    def link_ids(self, store: str, entity: str) -> Iterator[tuple[str, str, str | None]]:
        """``(erp_id, shop_id, sku)`` of every link of one entity in one store, streamed in partitions: at 100,000
        links, ``links()`` holds the rows and their ``Link`` objects at once (~100 MB) where this holds a page."""
        with self._read() as conn:
            result = conn.execution_options(yield_per=LINK_PAGE).execute(
                select(LINKS.c.erp_id, LINKS.c.shop_id, LINKS.c.sku)
                .where(LINKS.c.store == store, LINKS.c.entity == entity)
                .order_by(LINKS.c.id)
            )
            yield from result

    def unlink(self, store: str, entity: str, *, shop_id: str | None = None, erp_id: str | None = None) -> bool:
        """Remove the link matching the given id(s); True if one was removed."""
        conditions = [LINKS.c.store == store, LINKS.c.entity == entity]
        if shop_id is not None:
            conditions.append(LINKS.c.shop_id == shop_id)
        if erp_id is not None:
            conditions.append(LINKS.c.erp_id == erp_id)
        if len(conditions) == 2:
            raise ValueError("unlink needs shop_id or erp_id")
        with self._write() as conn:
            return conn.execute(delete(LINKS).where(*conditions)).rowcount > 0

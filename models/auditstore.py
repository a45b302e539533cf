"""Storage of the audit log: one row per state-changing call, written in batches, read newest
first, pruned by age. Runs in the Store's DB thread (`Store.call`) with fixed SQL strings derived
from models/schema.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from itertools import starmap
from typing import Any

from models import schema
from models.store import Store
from models.tables import Table, record_fields

AUDIT = Table.of(schema.AuditEntry)
_COLUMNS = AUDIT.but("id")  # numbered by the database


@dataclass(slots=True)
class AuditRecord:
    time: float
    who: str
    key_id: str | None
    username: str | None
    peer: str
    via: str
    method: str
    params: str  # JSON, secrets already redacted
    error_code: int | None
    error: str | None


record_fields(AuditRecord, _COLUMNS)


class AuditStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        p = store.db.param
        self._insert = AUDIT.insert(p, _COLUMNS)
        select = AUDIT.select(columns=_COLUMNS)
        self._newest = f'{select} ORDER BY "time" DESC, id DESC LIMIT {p}'
        self._newest_since = f'{select} WHERE "time" >= {p} ORDER BY "time" DESC, id DESC LIMIT {p}'
        self._prune = f'DELETE FROM "audit_entry" WHERE "time" < {p}'

    def insert(self, records: Sequence[AuditRecord]) -> None:
        """All of `records` in one transaction."""
        if records:
            self._store.call(self._do_insert, [astuple(record) for record in records])

    def newest(self, limit: int, since: float | None = None) -> list[AuditRecord]:
        """Up to `limit` entries, newest first, from `since` on when given."""
        if since is None:
            return self._store.call(self._do_select, self._newest, (limit,))
        return self._store.call(self._do_select, self._newest_since, (since, limit))

    def prune(self, before: float) -> int:
        """Delete the entries older than `before`; return how many."""
        return self._store.call(self._do_prune, before)

    # -- DB thread -------------------------------------------------------------------------------

    def _do_insert(self, rows: list[tuple[Any, ...]]) -> None:
        with self._store.transaction() as cursor:
            cursor.executemany(self._insert, rows)

    def _do_select(self, sql: str, params: tuple[Any, ...]) -> list[AuditRecord]:
        return list(starmap(AuditRecord, self._store.db.execute_sql(sql, params).fetchall()))

    def _do_prune(self, before: float) -> int:
        return int(self._store.db.execute_sql(self._prune, (before,)).rowcount)

"""Prepared SQL for the three writes every job makes: insert, start, finish.

They run for every job, so they skip the ORM's per-call query building
(about 0.3 ms a statement here, six times the statement itself).  Values
still go through each field's own ``get_db_prep_save``, so the database sees
exactly what ``Job.objects`` would have written.
"""

from __future__ import annotations

import uuid
import weakref
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from .models import Job

_cache: weakref.WeakKeyDictionary[BaseDatabaseWrapper, JobStatements]
_cache = weakref.WeakKeyDictionary()


def statements_for(connection: BaseDatabaseWrapper) -> JobStatements:
    """The statements for this connection (each thread has its own)."""
    statements = _cache.get(connection)
    if statements is None:
        statements = _cache[connection] = JobStatements(connection)
    return statements


class JobStatements:
    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        quote = connection.ops.quote_name
        self._quote = quote
        self._table = quote(Job._meta.db_table)
        self._fields = {f.attname: f for f in Job._meta.concrete_fields}
        self._columns = {name: quote(f.column) for name, f in self._fields.items()}
        self._pk = self._columns[Job._meta.pk.attname]  # type: ignore[union-attr]
        self._updates: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}

    def _prep(self, name: str, value: Any) -> Any:
        return self._fields[name].get_db_prep_save(value, self.connection)

    def insert(self, cursor: CursorWrapper, rows: list[dict[str, Any]]) -> None:
        """INSERT jobs given as {attname: value}; other columns get their defaults."""
        names = list(self._fields)
        values = "(" + ", ".join(["%s"] * len(names)) + ")"
        sql = (
            f"INSERT INTO {self._table} ({', '.join(self._columns[n] for n in names)}) "
            f"VALUES {', '.join([values] * len(rows))}"
        )
        params = [
            self._prep(n, row[n] if n in row else self._fields[n].get_default())
            for row in rows
            for n in names
        ]
        cursor.execute(sql, params)

    def update(
        self,
        cursor: CursorWrapper,
        ticket: uuid.UUID,
        expect: dict[str, Any],
        changes: dict[str, Any],
    ) -> int:
        """UPDATE the job if it still matches ``expect``; return the rows matched."""
        key = (tuple(changes), tuple(expect))
        sql = self._updates.get(key)
        if sql is None:
            sets = ", ".join(f"{self._columns[n]} = %s" for n in changes)
            wheres = "".join(f" AND {self._columns[n]} = %s" for n in expect)
            sql = self._updates[key] = (
                f"UPDATE {self._table} SET {sets} WHERE {self._pk} = %s{wheres}"
            )
        params = [self._prep(n, v) for n, v in changes.items()]
        params.append(self._prep("id", ticket))
        params.extend(self._prep(n, v) for n, v in expect.items())
        cursor.execute(sql, params)
        return int(cursor.rowcount)

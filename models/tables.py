"""The tables' fixed SQL, derived once at import from the models in models/schema.py.

The stores run hand-picked statements (building each through peewee costs 10-25x the statement
itself), but their column lists come from the one declaration: a `Table` holds a model's table
name, its columns in declared order and their PostgreSQL binary types, and builds the SELECT,
INSERT, upsert, UPDATE and COPY text from them. `record_fields` checks at import that a record
dataclass lists the same columns in the same order, so a fetched row is the record's argument
list. Every name is quoted: "user", "time" and "value" are keywords in one dialect or another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

# peewee's field types (Field.field_type) as PostgreSQL binary COPY types. A varchar column takes
# text's binary form.
_PG_BINARY = {
    "AUTO": "int4",
    "BIGAUTO": "int8",
    "INT": "int4",
    "BIGINT": "int8",
    "SMALLINT": "int2",
    "BOOL": "bool",
    "DOUBLE": "float8",
    "FLOAT": "float4",
    "VARCHAR": "text",
    "CHAR": "text",
    "TEXT": "text",
}
# Binary COPY: psycopg encodes every row in C, no text formatting or NULL marker to get wrong.
COPY_OPTIONS = "(FORMAT BINARY)"


def quoted(columns: Iterable[str], prefix: str = "") -> str:
    return ", ".join(f'{prefix}"{column}"' for column in columns)


def marks(param: str, count: int) -> str:
    return ", ".join([param] * count)


@dataclass(frozen=True, slots=True)
class Table:
    """One table as models/schema.py declares it: its name, columns and their binary types."""

    name: str
    columns: tuple[str, ...]
    pg_types: Mapping[str, str]

    @classmethod
    def of(cls, model: type[peewee.Model]) -> Table:
        # Model._meta is peewee's documented way to read a model's table and fields.
        meta = model._meta
        fields = meta.sorted_fields
        return cls(
            name=meta.table_name,
            columns=tuple(field.column_name for field in fields),
            pg_types={field.column_name: _PG_BINARY[field.field_type] for field in fields},
        )

    def but(self, *excluded: str) -> tuple[str, ...]:
        """The columns without `excluded`, in table order."""
        unknown = set(excluded) - set(self.columns)
        if unknown:
            raise ValueError(f"{self.name} has no column {sorted(unknown)}")
        return tuple(column for column in self.columns if column not in excluded)

    def types(self, columns: Sequence[str]) -> list[str]:
        return [self.pg_types[column] for column in columns]

    def select(self, tail: str = "", columns: Sequence[str] | None = None) -> str:
        return f'SELECT {quoted(columns or self.columns)} FROM "{self.name}"{tail}'

    def values(self, param: str, columns: Sequence[str] | None = None) -> str:
        return f"VALUES ({marks(param, len(columns or self.columns))})"

    def insert(self, param: str, columns: Sequence[str] | None = None) -> str:
        columns = columns or self.columns
        return f'INSERT INTO "{self.name}" ({quoted(columns)}) {self.values(param, columns)}'

    def upsert(self, key: Sequence[str], source: str) -> str:
        """INSERT the rows of `source` (VALUES … or a SELECT of every column) … ON CONFLICT
        (key) DO UPDATE every other column: one fixed statement."""
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in self.columns if c not in key)
        return (
            f'INSERT INTO "{self.name}" ({quoted(self.columns)}) {source} '
            f"ON CONFLICT ({quoted(key)}) DO UPDATE SET {updates}"
        )

    def update(self, param: str, columns: Sequence[str], key: str = "id") -> str:
        """UPDATE … SET columns WHERE key: the key's value is the last parameter."""
        sets = ", ".join(f'"{column}" = {param}' for column in columns)
        return f'UPDATE "{self.name}" SET {sets} WHERE "{key}" = {param}'

    def copy_in(self, columns: Sequence[str] | None = None, into: str | None = None) -> str:
        """COPY into this table (or a staging table `into` shaped like it), binary rows."""
        target = into or f'"{self.name}"'
        return f"COPY {target} ({quoted(columns or self.columns)}) FROM STDIN {COPY_OPTIONS}"


def record_fields(
    record: type[Any], columns: Sequence[str], renames: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The record's attribute names in column order (`renames`: column → attribute); TypeError
    at import when the dataclass and the columns disagree."""
    renames = renames or {}
    expected = tuple(renames.get(column, column) for column in columns)
    actual = tuple(field.name for field in dataclasses.fields(record))
    if actual != expected:
        raise TypeError(f"{record.__name__} fields {actual} are not the columns {expected}")
    return expected


def copy_rows(cursor: Any, sql: str, types: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL: stream `rows` through one binary COPY (psycopg 3's cursor.copy)."""
    with cursor.copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)

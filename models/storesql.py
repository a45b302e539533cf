"""Fixed SQL of the Store's own tables (clients and API keys), built once per backend from
models/schema.py (models/tables.py).

Placeholders differ (? vs %s) and PostgreSQL saves go through a binary COPY into a temp table;
the statements are otherwise the same, so one builder serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

from models import schema
from models.tables import Table, quoted

CLIENT = Table.of(schema.Client)
KEY = Table.of(schema.ApiKey)

# PostgreSQL saves go through COPY into this temp table, then one INSERT … SELECT … ON CONFLICT:
# the rows are encoded by psycopg in C, where executemany would send them one by one.
PG_STAGING = "client_staging"
PG_CREATE_STAGING = f'CREATE TEMP TABLE {PG_STAGING} (LIKE "client") ON COMMIT DROP'
PG_DROP_STAGING = f"DROP TABLE {PG_STAGING}"
PG_COPY_STAGING = CLIENT.copy_in(into=PG_STAGING)
PG_CLIENT_TYPES = CLIENT.types(CLIENT.columns)


@dataclass(frozen=True, slots=True)
class Statements:
    """Fixed SQL for one backend, built once: placeholders differ (? vs %s), nothing else."""

    select_clients: str
    upsert_clients: str  # SQLite: executemany over rows; PostgreSQL: from the temp table
    delete_client: str
    select_keys: str
    insert_key: str
    revoke_key: str
    bind_key: str

    @classmethod
    def for_param(cls, param: str, *, from_staging: bool) -> Statements:
        source = (
            f"SELECT {quoted(CLIENT.columns)} FROM {PG_STAGING}"
            if from_staging
            else CLIENT.values(param)
        )
        return cls(
            select_clients=CLIENT.select(' ORDER BY "id"'),
            upsert_clients=CLIENT.upsert(("id",), source),
            delete_client=f'DELETE FROM "client" WHERE "id" = {param}',
            select_keys=KEY.select(' ORDER BY "created", "key_id"'),
            insert_key=KEY.insert(param),
            revoke_key=f'UPDATE "api_key" SET "revoked" = {param} WHERE "key_id" = {param}',
            bind_key=f'UPDATE "api_key" SET "name" = {param} WHERE "key_id" = {param}',
        )

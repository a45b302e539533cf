"""Peewee models of the master's tables, bound to `database_proxy`.

Times are UTC epoch seconds (floats from time.time()); the API turns them into ISO 8601 at its
edge. `tags` and `info` hold JSON text written by orjson. Change a table only through a migration.
"""

from __future__ import annotations

import peewee

from models.db import database_proxy


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy


class SchemaVersion(BaseModel):
    """A single row holding the version of the last migration applied."""

    version = peewee.IntegerField()

    class Meta:
        table_name = "schema_version"
        primary_key = False


class Client(BaseModel):
    """A worker, hardware agent or other peer that said hello, online or not."""

    # Assigned by the master (max(id) + 1 in memory), never by the database.
    id = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=200, unique=True)
    role = peewee.CharField(max_length=32)
    host = peewee.CharField(max_length=255, default="")
    enabled = peewee.BooleanField(default=True)
    tags = peewee.TextField(default="[]")
    slots = peewee.IntegerField(default=1)
    first_seen = peewee.DoubleField(null=True)
    last_seen = peewee.DoubleField(null=True)
    info = peewee.TextField(default="{}")

    class Meta:
        table_name = "client"


class ApiKey(BaseModel):
    """A key a remote peer presents in `hello`; only the sha256 of its secret is kept."""

    key_id = peewee.CharField(max_length=32, primary_key=True)
    role = peewee.CharField(max_length=32)
    name = peewee.CharField(max_length=200, default="")
    secret_hash = peewee.CharField(max_length=64)
    created = peewee.DoubleField()
    revoked = peewee.BooleanField(default=False)

    class Meta:
        table_name = "api_key"


ALL_MODELS: tuple[type[BaseModel], ...] = (SchemaVersion, Client, ApiKey)

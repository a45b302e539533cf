"""Numbered schema migrations, applied in order at start; `schema_version` records the last one.

Each migration runs in its own transaction (SQLite and PostgreSQL both have transactional DDL),
so a failure leaves the database at the previous version. A database newer than the code is
refused rather than guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee

logger = logging.getLogger(__name__)


class _SchemaVersion(peewee.Model):
    version = peewee.IntegerField()

    class Meta:
        table_name = "schema_version"
        primary_key = False


# Migrations create tables from models frozen here as they were at that version, not from
# models/schema.py: the live models will gain columns that later migrations add, and a fresh
# database must walk through exactly the same steps as an old one.
class _ClientV1(peewee.Model):
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


class _ApiKeyV1(peewee.Model):
    key_id = peewee.CharField(max_length=32, primary_key=True)
    role = peewee.CharField(max_length=32)
    name = peewee.CharField(max_length=200, default="")
    secret_hash = peewee.CharField(max_length=64)
    created = peewee.DoubleField()
    revoked = peewee.BooleanField(default=False)

    class Meta:
        table_name = "api_key"
        # Authentication looks keys up by id; listing filters live keys by role.
        indexes = ((("role", "revoked"), False),)


def _create_clients_and_keys(db: peewee.Database) -> None:
    models = [_ClientV1, _ApiKeyV1]
    with db.bind_ctx(models):
        db.create_tables(models, safe=False)


# How the next migration would look (playhouse.migrate works on both backends):
#
#     from playhouse import migrate as pw_migrate
#
#     def _add_client_notes(db: peewee.Database) -> None:
#         migrator = pw_migrate.SchemaMigrator.from_database(db)
#         pw_migrate.migrate(
#             migrator.add_column("client", "notes", peewee.TextField(default="")),
#             migrator.add_index("client", ("role",)),
#         )
#
# then append (2, "client notes", _add_client_notes) below and add the field to schema.Client.
MIGRATIONS: list[tuple[int, str, Callable[[peewee.Database], None]]] = [
    (1, "create client and api_key tables", _create_clients_and_keys),
]


def latest_version() -> int:
    return MIGRATIONS[-1][0] if MIGRATIONS else 0


def current_version(db: peewee.Database) -> int:
    """The version recorded in the database; 0 for a database never migrated."""
    if not db.table_exists("schema_version"):
        return 0
    with db.bind_ctx([_SchemaVersion]):
        row = _SchemaVersion.select(peewee.fn.MAX(_SchemaVersion.version)).scalar()
    return int(row) if row is not None else 0


def migrate(db: peewee.Database) -> int:
    """Apply every pending migration, each in its own transaction; return the current version."""
    with db.bind_ctx([_SchemaVersion]):
        db.create_tables([_SchemaVersion], safe=True)
    version = current_version(db)
    known = latest_version()
    if version > known:
        raise RuntimeError(
            f"database schema version {version} is newer than this farmhand knows "
            f"(latest {known}); upgrade farmhand or use another database"
        )
    for number, description, apply in MIGRATIONS:
        if number <= version:
            continue
        with db.atomic(), db.bind_ctx([_SchemaVersion]):
            apply(db)
            _SchemaVersion.delete().execute()
            _SchemaVersion.insert(version=number).execute()
        logger.info("applied migration %d: %s", number, description)
        version = number
    return version

"""Numbered schema migrations, applied in order at start; `schema_version` records the last one.

Every table, column and index is declared once, in models/schema.py. A migration names what it
changes (the tables it creates, the columns it adds) and takes their definitions from there. A
table is created as it was at that version: the declared columns minus those a later migration
adds. So a fresh database walks through exactly the steps an old one did, and both end with the
declared schema (tests/integration/test_schema.py). A migration that changes or drops a column
carries the old definition itself.

Each migration runs in its own transaction (SQLite and PostgreSQL both have transactional DDL),
so a failure leaves the database at the previous version. A database newer than the code is
refused rather than guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import peewee
from playhouse import migrate as pw_migrate

from models import schema

logger = logging.getLogger(__name__)


class Migration(NamedTuple):
    """One step: add `adds` (fields of schema models, declared last in them), create the tables
    of `creates`, then run `then` (data changes, backend options)."""

    version: int
    description: str
    creates: tuple[type[peewee.Model], ...] = ()
    adds: tuple[Any, ...] = ()  # peewee Fields, e.g. schema.Job.retry_delay_s
    then: Callable[[peewee.Database], None] | None = None
    # Indexes declared in a model's Meta.indexes, added to its existing table: (model, columns)
    indexes: tuple[tuple[type[peewee.Model], tuple[str, ...]], ...] = ()

    def apply(self, db: peewee.Database) -> None:
        if self.adds:
            migrator = pw_migrate.SchemaMigrator.from_database(db)
            pw_migrate.migrate(
                *(
                    migrator.add_column(field.model._meta.table_name, field.column_name, field)
                    for field in self.adds
                )
            )
        if self.creates:
            models = [_as_created(model, self.version) for model in self.creates]
            with db.bind_ctx(models):
                db.create_tables(models, safe=False)
        for model, columns in self.indexes:
            table = model._meta.table_name
            name = f"_{model.__name__.lower()}v{self.version}_{'_'.join(columns)}"
            cols = ", ".join(f'"{column}"' for column in columns)
            db.execute_sql(f'CREATE INDEX "{name}" ON "{table}" ({cols})')
        if self.then is not None:
            self.then(db)


def _as_created(model: type[peewee.Model], version: int) -> type[peewee.Model]:
    """`model` as migration `version` created its table: without the columns added later. It is
    named `_<Model>V<version>` because peewee names indexes after the model, and every database
    made so far has them so (`_clientv1_name`): later migrations can drop them by name."""
    meta = model._meta  # peewee's documented model metadata
    present = {
        name: field.clone()
        for name, field in meta.fields.items()
        if _ADDED_IN.get((meta.table_name, field.column_name), 0) <= version
    }
    options: dict[str, Any] = {
        "table_name": meta.table_name,
        "indexes": [
            index
            for index in meta.indexes
            if set(index[0]) <= set(present)
            and _INDEXED_IN.get((meta.table_name, tuple(index[0])), 0) <= version
        ],
    }
    if isinstance(meta.primary_key, peewee.CompositeKey):
        options["primary_key"] = peewee.CompositeKey(*meta.primary_key.field_names)
    attrs = {**present, "Meta": type("Meta", (), options)}
    return type(f"_{model.__name__}V{version}", (peewee.Model,), attrs)


def _task_fillfactor(db: peewee.Database) -> None:
    if isinstance(db, peewee.PostgresqlDatabase):
        # Every task row is rewritten several times (dispatched, running, progress, finished)
        # and no update touches an indexed column: free room in each page lets PostgreSQL make
        # them HOT updates, which skip the index writes (measured ~15-20% faster flushes).
        db.execute_sql('ALTER TABLE "task" SET (fillfactor = 70)')


def _client_fillfactor(db: peewee.Database) -> None:
    if isinstance(db, peewee.PostgresqlDatabase):
        # A save rewrites every dirty client row (presence, hello info) and never an indexed
        # column's value: with half of each page free the new versions stay on their page as
        # HOT updates, which skip both index writes (bench/clients_io.py --db postgresql://…:
        # the 100,000-client save about twice as fast). Costs twice the table's size: a few MB.
        db.execute_sql('ALTER TABLE "client" SET (fillfactor = 50)')


def _bind_keys_to_names(db: peewee.Database) -> None:
    # A key is bound to one client name: `name` now holds that name ('' until the key's first
    # hello binds it), so the free text agent keys had there moves to `label`; api keys keep
    # `name` (whom the key belongs to) and all get scope admin (they could do everything before).
    db.execute_sql("UPDATE api_key SET label = name, name = '' WHERE role <> 'api'")
    db.execute_sql("UPDATE api_key SET scope = 'admin' WHERE role = 'api'")


# The master assigns every id (max(id) + 1 in memory), except for readings and audit entries:
# the database numbers those (BIGSERIAL: a busy site makes billions over the years).
#
# The next migration: add the field to its model in models/schema.py (last), then append
#     Migration(8, "client notes", adds=(schema.Client.notes,)),
MIGRATIONS: list[Migration] = [
    Migration(1, "create client and api_key tables", creates=(schema.Client, schema.ApiKey)),
    Migration(
        2,
        "job farm: job, task, job_blocklist",
        creates=(schema.Job, schema.Task, schema.JobBlocklist),
        then=_task_fillfactor,
    ),
    Migration(
        3,
        "devices: users, tokens, taps, kegs, pours, readings",
        creates=(
            schema.User,
            schema.AuthToken,
            schema.Tap,
            schema.Keg,
            schema.Pour,
            schema.Reading,
        ),
    ),
    Migration(
        4,
        "security: keys bound to a name, api key scopes, the audit log",
        adds=(schema.ApiKey.label, schema.ApiKey.scope),
        creates=(schema.AuditEntry,),
        then=_bind_keys_to_names,
    ),
    # NULL: the default backoff (farmhand/master/jobs/retries.py), so old jobs need no value.
    Migration(5, "job retry delay", adds=(schema.Job.retry_delay_s,)),
    Migration(6, "standby masters: the master lease", creates=(schema.MasterLease,)),
    Migration(7, "client rows: room for HOT updates", then=_client_fillfactor),
    # NULL: the job names no outputs (it was submitted before templates, or without them).
    Migration(8, "job outputs", adds=(schema.Job.outputs,)),
    # NULL: tasks that ended before it keep their error line without a reason.
    Migration(9, "task end reasons", adds=(schema.Task.reason,)),
    Migration(
        10, "webhooks and their delivery log", creates=(schema.Webhook, schema.WebhookDelivery)
    ),
    # NULL: no sleep schedule (the client takes work at any time).
    Migration(11, "client sleep schedules", adds=(schema.Client.schedule,)),
    # Beverages on kegs, pour corrections, sensor places and alert rules (issue 15).
    Migration(
        12,
        "kegerator: beverages, pour corrections, sensor places, alert rules",
        adds=(
            schema.Keg.abv,
            schema.Keg.style,
            schema.Keg.ibu,
            schema.Keg.srm,
            schema.Keg.size,
            schema.Keg.image,
            schema.Pour.spill,
            schema.Pour.canceled,
        ),
        creates=(schema.SensorPlace, schema.AlertRule),
    ),
    # Finished jobs stay on disk only: jobs.list of a status reads a page of them newest first.
    # NULL task counts: a job finished before; its list views count its tasks instead.
    Migration(
        14,
        "job history: finished jobs' task counts, jobs by status and id",
        adds=(schema.Job.task_counts,),
        indexes=((schema.Job, ("status", "id")),),
    ),
    # The worker page's history reads a worker's newest tasks from the database.
    Migration(15, "a worker's tasks by id", indexes=((schema.Task, ("worker", "id")),)),
]


def _added_columns(migrations: Sequence[Migration]) -> dict[tuple[str, str], int]:
    """(table, column) → the version that added it to an existing table."""
    return {
        (field.model._meta.table_name, field.column_name): migration.version
        for migration in migrations
        for field in migration.adds
    }


def _indexed_columns(migrations: Sequence[Migration]) -> dict[tuple[str, tuple[str, ...]], int]:
    """(table, indexed columns) → the version that added the index to an existing table."""
    return {
        (model._meta.table_name, columns): migration.version
        for migration in migrations
        for model, columns in migration.indexes
    }


# Taken from the whole list once: a test that runs only the first migrations (by replacing
# MIGRATIONS) must still get the tables as those versions had them.
_ADDED_IN = _added_columns(MIGRATIONS)
_INDEXED_IN = _indexed_columns(MIGRATIONS)


def latest_version() -> int:
    return MIGRATIONS[-1][0] if MIGRATIONS else 0


def current_version(db: peewee.Database) -> int:
    """The version recorded in the database; 0 for a database never migrated."""
    if not db.table_exists("schema_version"):
        return 0
    with db.bind_ctx([schema.SchemaVersion]):
        row = schema.SchemaVersion.select(peewee.fn.MAX(schema.SchemaVersion.version)).scalar()
    return int(row) if row is not None else 0


def migrate(db: peewee.Database) -> int:
    """Apply every pending migration, each in its own transaction; return the current version."""
    version_table = schema.SchemaVersion
    with db.bind_ctx([version_table]):
        db.create_tables([version_table], safe=True)
    version = current_version(db)
    known = latest_version()
    if version > known:
        raise RuntimeError(
            f"database schema version {version} is newer than this farmhand knows "
            f"(latest {known}); upgrade farmhand or use another database"
        )
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        with db.atomic(), db.bind_ctx([version_table]):
            migration.apply(db)
            version_table.delete().execute()
            version_table.insert(version=migration.version).execute()
        logger.info("applied migration %d: %s", migration.version, migration.description)
        version = migration.version
    return version

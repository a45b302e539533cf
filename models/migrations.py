"""Numbered schema migrations, applied in order at start; `schema_version` records the last one.

Each migration runs in its own transaction (SQLite and PostgreSQL both have transactional DDL),
so a failure leaves the database at the previous version. A database newer than the code is
refused rather than guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee
from playhouse import migrate as pw_migrate

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


# Version 2: the job farm. The master keeps jobs and tasks in memory and writes them behind in
# batches (models/jobstore.py); ids are assigned by the master, never by the database.
class _JobV2(peewee.Model):
    id = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=200)
    status = peewee.CharField(max_length=16, index=True)
    priority = peewee.IntegerField()
    argv = peewee.TextField()
    frames = peewee.TextField(default="")
    chunk = peewee.IntegerField()
    tags = peewee.TextField(default="[]")
    max_attempts = peewee.IntegerField()
    timeout_s = peewee.DoubleField(null=True)
    env = peewee.TextField(default="{}")
    cwd = peewee.TextField(null=True)
    depends_on = peewee.TextField(default="[]")
    progress_regex = peewee.TextField(null=True)
    fail_policy = peewee.CharField(max_length=16)
    created = peewee.DoubleField()
    updated = peewee.DoubleField()
    tasks_total = peewee.IntegerField()

    class Meta:
        table_name = "job"


class _TaskV2(peewee.Model):
    id = peewee.IntegerField(primary_key=True)
    job_id = peewee.IntegerField()  # no FK: see schema.Task
    task_index = peewee.IntegerField()
    frame_start = peewee.IntegerField(null=True)
    frame_end = peewee.IntegerField(null=True)
    status = peewee.CharField(max_length=16)
    worker = peewee.CharField(max_length=200, null=True)
    attempt = peewee.CharField(max_length=64, null=True)
    attempts = peewee.IntegerField(default=0)
    dispatches = peewee.IntegerField(default=0)
    exit_code = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)
    progress = peewee.DoubleField(default=0.0)
    started = peewee.DoubleField(null=True)
    finished = peewee.DoubleField(null=True)

    class Meta:
        table_name = "task"
        # Unique per job, and the index for "tasks of job N" (job_id leads).
        indexes = ((("job_id", "task_index"), True),)


class _JobBlocklistV2(peewee.Model):
    job_id = peewee.IntegerField()
    worker = peewee.CharField(max_length=200)
    failures = peewee.IntegerField()

    class Meta:
        table_name = "job_blocklist"
        primary_key = peewee.CompositeKey("job_id", "worker")


def _create_job_farm(db: peewee.Database) -> None:
    models = [_JobV2, _TaskV2, _JobBlocklistV2]
    with db.bind_ctx(models):
        db.create_tables(models, safe=False)
    if isinstance(db, peewee.PostgresqlDatabase):
        # Every task row is rewritten several times (dispatched, running, progress, finished)
        # and no update touches an indexed column: free room in each page lets PostgreSQL make
        # them HOT updates, which skip the index writes (measured ~15-20% faster flushes).
        db.execute_sql('ALTER TABLE "task" SET (fillfactor = 70)')


# Version 3: hardware and auth (models/devicestore.py). The master assigns the ids, except for
# readings: the database numbers those (BIGSERIAL: a busy site makes billions over the years).
class _UserV3(peewee.Model):
    id = peewee.IntegerField(primary_key=True)
    username = peewee.CharField(max_length=64, unique=True)
    display_name = peewee.CharField(max_length=200, default="")
    password_hash = peewee.TextField(null=True)
    admin = peewee.BooleanField(default=False)
    enabled = peewee.BooleanField(default=True)
    created = peewee.DoubleField()

    class Meta:
        table_name = "user"


class _AuthTokenV3(peewee.Model):
    id = peewee.IntegerField(primary_key=True)
    reader = peewee.CharField(max_length=64)
    token = peewee.CharField(max_length=128)
    username = peewee.CharField(max_length=64)
    created = peewee.DoubleField()
    enabled = peewee.BooleanField(default=True)

    class Meta:
        table_name = "auth_token"
        indexes = ((("reader", "token"), True),)


class _TapV3(peewee.Model):
    name = peewee.CharField(max_length=64, primary_key=True)
    meter = peewee.CharField(max_length=200)
    ticks_per_ml = peewee.DoubleField()
    output = peewee.CharField(max_length=200, null=True)
    idle_s = peewee.DoubleField()
    auth_agents = peewee.TextField(default="[]")
    created = peewee.DoubleField()

    class Meta:
        table_name = "tap"


class _KegV3(peewee.Model):
    id = peewee.IntegerField(primary_key=True)
    tap = peewee.CharField(max_length=64, index=True)
    beverage = peewee.CharField(max_length=200)
    volume_ml = peewee.DoubleField()
    poured_ml = peewee.DoubleField(default=0.0)
    started = peewee.DoubleField()
    ended = peewee.DoubleField(null=True)

    class Meta:
        table_name = "keg"


class _PourV3(peewee.Model):
    id = peewee.IntegerField(primary_key=True)
    tap = peewee.CharField(max_length=64)
    keg_id = peewee.IntegerField(null=True)
    username = peewee.CharField(max_length=64, null=True)
    ticks = peewee.IntegerField()
    volume_ml = peewee.DoubleField()
    started = peewee.DoubleField()
    ended = peewee.DoubleField(index=True)

    class Meta:
        table_name = "pour"
        # (tap, ended) and (username, ended) also serve lookups by tap or username alone.
        indexes = ((("tap", "ended"), False), (("username", "ended"), False))


class _ReadingV3(peewee.Model):
    id = peewee.BigAutoField()
    sensor = peewee.CharField(max_length=64)
    kind = peewee.CharField(max_length=32)
    value = peewee.DoubleField()
    unit = peewee.CharField(max_length=16)
    time = peewee.DoubleField(index=True)
    agent = peewee.CharField(max_length=200)

    class Meta:
        table_name = "reading"
        indexes = ((("sensor", "time"), False),)


def _create_devices(db: peewee.Database) -> None:
    models = [_UserV3, _AuthTokenV3, _TapV3, _KegV3, _PourV3, _ReadingV3]
    with db.bind_ctx(models):
        db.create_tables(models, safe=False)


# Version 4: security (issue 9). A key is bound to one client name: `name` now holds that name
# ('' until the key's first hello binds it), so the free text that agent keys had there moves to
# the new `label`; api keys keep `name` (whom the key belongs to) and get a `scope`, `admin` for
# every key that exists (all api keys could do everything before). The audit log of
# state-changing calls is numbered by the database, like readings.
class _AuditEntryV4(peewee.Model):
    id = peewee.BigAutoField()
    time = peewee.DoubleField(index=True)
    who = peewee.CharField(max_length=300)
    key_id = peewee.CharField(max_length=32, null=True)
    username = peewee.CharField(max_length=64, null=True)
    peer = peewee.CharField(max_length=300)
    via = peewee.CharField(max_length=16)
    method = peewee.CharField(max_length=64)
    params = peewee.TextField()
    error_code = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "audit_entry"


def _add_security(db: peewee.Database) -> None:
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column("api_key", "label", peewee.CharField(max_length=200, default="")),
        migrator.add_column("api_key", "scope", peewee.CharField(max_length=16, null=True)),
    )
    db.execute_sql("UPDATE api_key SET label = name, name = '' WHERE role <> 'api'")
    db.execute_sql("UPDATE api_key SET scope = 'admin' WHERE role = 'api'")
    with db.bind_ctx([_AuditEntryV4]):
        db.create_tables([_AuditEntryV4], safe=False)


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
# then append (N, "client notes", _add_client_notes) below and add the field to schema.Client.
def _add_job_retry_delay(db: peewee.Database) -> None:
    # NULL: the default backoff (farmhand/master/jobs/retries.py), so existing jobs need no value.
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column("job", "retry_delay_s", peewee.DoubleField(null=True)),
    )


MIGRATIONS: list[tuple[int, str, Callable[[peewee.Database], None]]] = [
    (1, "create client and api_key tables", _create_clients_and_keys),
    (2, "job farm: job, task, job_blocklist", _create_job_farm),
    (3, "devices: users, tokens, taps, kegs, pours, readings", _create_devices),
    (4, "security: keys bound to a name, api key scopes, the audit log", _add_security),
    (5, "job retry delay", _add_job_retry_delay),
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

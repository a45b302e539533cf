"""Peewee models of the master's tables, bound to `database_proxy`: the one declaration of every
table, column (in order) and index. The stores' SQL (models/tables.py) and the migrations that
build the tables (models/migrations.py) are derived from it.

Times are UTC epoch seconds (floats from time.time()); the API turns them into ISO 8601 at its
edge. `tags`, `info`, `argv`, `env`, `depends_on` and `auth_agents` hold JSON text written by
orjson. Change a table only through a migration; a column a migration adds goes last.
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
    # Sleep schedule (protocol/schedule.py, canonical text): when it takes no new work.
    schedule = peewee.TextField(null=True)

    class Meta:
        table_name = "client"


class ApiKey(BaseModel):
    """A key a remote peer presents in `hello`; only the sha256 of its secret is kept.

    An agent key is bound to the client `name` ('' until its first hello); an api key's `name`
    says whose it is, and its `scope` (`read` or `admin`) what it may do.
    """

    key_id = peewee.CharField(max_length=32, primary_key=True)
    role = peewee.CharField(max_length=32)
    name = peewee.CharField(max_length=200, default="")
    secret_hash = peewee.CharField(max_length=64)
    created = peewee.DoubleField()
    revoked = peewee.BooleanField(default=False)
    label = peewee.CharField(max_length=200, default="")  # migration 4; free text
    scope = peewee.CharField(max_length=16, null=True)  # migration 4; api keys only

    class Meta:
        table_name = "api_key"
        # Authentication looks keys up by id; listing filters live keys by role.
        indexes = ((("role", "revoked"), False),)


class Job(BaseModel):
    """A submitted job; the master holds it in memory and writes it behind (models/jobstore.py)."""

    # Assigned by the master, like every job-farm id, so a submit needs no round trip for it.
    id = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=200)
    status = peewee.CharField(max_length=16, index=True)
    priority = peewee.IntegerField()
    argv = peewee.TextField()
    frames = peewee.TextField(default="")  # the spec string as submitted, "" for none
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
    retry_delay_s = peewee.DoubleField(null=True)  # migration 5; NULL: the default backoff
    outputs = peewee.TextField(null=True)  # migration 8; the files a task writes (a glob)
    task_counts = peewee.TextField(null=True)  # migration 14; a finished job's tasks by status

    class Meta:
        table_name = "job"
        # Migration 14: a page of finished jobs of a status, newest first (models/jobhistory.py).
        indexes = ((("status", "id"), False),)


class Task(BaseModel):
    """One chunk of frames of a job; `attempts` counts failed attempts only (the ones that count
    against max_attempts)."""

    id = peewee.IntegerField(primary_key=True)
    # No foreign key: it would cost a lookup per inserted task (100,000 at a submit) and the
    # master already deletes a job's tasks with the job (JobStore.delete_job).
    job_id = peewee.IntegerField()
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
    # migration 9; why the last attempt ended other than by success (exit, signal, timeout,
    # lost, canceled, cannot-start), NULL if it did not (or it ended before migration 9)
    reason = peewee.CharField(max_length=16, null=True)

    class Meta:
        table_name = "task"
        # Also serves lookups by job_id alone (its leading column), so job_id has no own index.
        # (worker, id): a worker's recent tasks, finished ones included (migration 15).
        indexes = ((("job_id", "task_index"), True), (("worker", "id"), False))


class JobBlocklist(BaseModel):
    """How often a worker failed a job's tasks; the master stops giving that job to it."""

    job_id = peewee.IntegerField()
    worker = peewee.CharField(max_length=200)
    failures = peewee.IntegerField()

    class Meta:
        table_name = "job_blocklist"
        primary_key = peewee.CompositeKey("job_id", "worker")


class User(BaseModel):
    """A person who pours: logs in to the console (password_hash) or is known by a token."""

    id = peewee.IntegerField(primary_key=True)  # assigned by the master
    username = peewee.CharField(max_length=64, unique=True)
    display_name = peewee.CharField(max_length=200, default="")
    password_hash = peewee.TextField(null=True)
    admin = peewee.BooleanField(default=False)
    enabled = peewee.BooleanField(default=True)
    created = peewee.DoubleField()

    class Meta:
        table_name = "user"  # reserved in PostgreSQL: always quoted


class AuthToken(BaseModel):
    """An RFID / 1-wire token (lower-case hex) seen by a reader, assigned to a user."""

    id = peewee.IntegerField(primary_key=True)
    reader = peewee.CharField(max_length=64)
    token = peewee.CharField(max_length=128)
    username = peewee.CharField(max_length=64)  # no foreign key, like task.job_id
    created = peewee.DoubleField()
    enabled = peewee.BooleanField(default=True)

    class Meta:
        table_name = "auth_token"
        indexes = ((("reader", "token"), True),)


class Tap(BaseModel):
    """A tap: the flow meter that measures it, its valve output and its auth agents (JSON)."""

    name = peewee.CharField(max_length=64, primary_key=True)
    meter = peewee.CharField(max_length=200)
    ticks_per_ml = peewee.DoubleField()
    output = peewee.CharField(max_length=200, null=True)
    idle_s = peewee.DoubleField()
    auth_agents = peewee.TextField(default="[]")
    created = peewee.DoubleField()

    class Meta:
        table_name = "tap"


class Keg(BaseModel):
    """A keg on a tap; it is active while `ended` is NULL."""

    id = peewee.IntegerField(primary_key=True)
    tap = peewee.CharField(max_length=64, index=True)
    beverage = peewee.CharField(max_length=200)
    volume_ml = peewee.DoubleField()
    poured_ml = peewee.DoubleField(default=0.0)
    started = peewee.DoubleField()
    ended = peewee.DoubleField(null=True)
    # Migration 12, the beverage: all optional. `size` is the named size it was started with
    # (corny, sixth, …) or "" for a plain volume; `image` a URL or a data: URI.
    abv = peewee.DoubleField(null=True)
    style = peewee.CharField(max_length=100, default="")
    ibu = peewee.DoubleField(null=True)
    srm = peewee.DoubleField(null=True)
    size = peewee.CharField(max_length=32, default="")
    image = peewee.TextField(null=True)

    class Meta:
        table_name = "keg"


class Pour(BaseModel):
    """One recorded flow; `username` NULL is the guest. Records call started/ended start/end."""

    id = peewee.IntegerField(primary_key=True)
    tap = peewee.CharField(max_length=64)
    keg_id = peewee.IntegerField(null=True)
    username = peewee.CharField(max_length=64, null=True)
    ticks = peewee.IntegerField()
    volume_ml = peewee.DoubleField()
    started = peewee.DoubleField()  # "start" and "end" are reserved words in SQL
    ended = peewee.DoubleField(index=True)
    # Migration 12, corrections: a spill left the keg but nobody drank it; a canceled pour went
    # back into the keg. Both stay in the table (their ids are never reused) and out of the stats.
    spill = peewee.BooleanField(default=False)
    canceled = peewee.BooleanField(default=False)

    class Meta:
        table_name = "pour"
        # Newest-first listings filtered by tap or user read these in order and stop at LIMIT.
        indexes = ((("tap", "ended"), False), (("username", "ended"), False))


class Reading(BaseModel):
    """A sensor reading (temperature, …) from a hardware agent; pruned by age."""

    id = peewee.BigAutoField()  # assigned by the database; a busy site makes billions
    sensor = peewee.CharField(max_length=64)
    kind = peewee.CharField(max_length=32)
    value = peewee.DoubleField()
    unit = peewee.CharField(max_length=16)
    time = peewee.DoubleField(index=True)
    agent = peewee.CharField(max_length=200)

    class Meta:
        table_name = "reading"
        indexes = ((("sensor", "time"), False),)


class SensorPlace(BaseModel):
    """Where a sensor is (migration 12): at a tap, in a fridge, or both; shown on the taps page."""

    sensor = peewee.CharField(max_length=64, primary_key=True)
    tap = peewee.CharField(max_length=64, null=True)
    fridge = peewee.CharField(max_length=64, null=True)
    created = peewee.DoubleField()

    class Meta:
        table_name = "sensor_place"


class AlertRule(BaseModel):
    """An alert rule (migration 12): a sensor `above`/`below` `value` for `for_s`, or a sensor,
    agent or device (`agent.device`) `silent` for `for_s`."""

    id = peewee.IntegerField(primary_key=True)  # assigned by the master
    kind = peewee.CharField(max_length=16)
    target = peewee.CharField(max_length=500)
    value = peewee.DoubleField(null=True)
    for_s = peewee.DoubleField()
    created = peewee.DoubleField()

    class Meta:
        table_name = "alert_rule"


class AuditEntry(BaseModel):
    """One state-changing call: who (key, dashboard user or loopback), from where, what."""

    id = peewee.BigAutoField()  # assigned by the database
    time = peewee.DoubleField(index=True)
    who = peewee.CharField(max_length=300)
    key_id = peewee.CharField(max_length=32, null=True)
    username = peewee.CharField(max_length=64, null=True)  # the dashboard user who acted
    peer = peewee.CharField(max_length=300)
    via = peewee.CharField(max_length=16)  # rpc or console
    method = peewee.CharField(max_length=64)
    params = peewee.TextField()  # JSON, secrets redacted
    error_code = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "audit_entry"


class MasterLease(BaseModel):
    """The one row saying which master is active on a shared PostgreSQL database (SQLite has
    the table too, unused: one master per file). `generation` grows by one at every takeover
    and every write transaction of the active master checks it (fencing). Times are the
    database's own clock, so the masters' clocks need not agree."""

    id = peewee.IntegerField(primary_key=True)  # always 1
    generation = peewee.BigIntegerField(default=0)
    holder = peewee.CharField(max_length=300, default="")  # host:port pid N of the active one
    acquired = peewee.DoubleField(default=0.0)  # when `holder` took over
    expires = peewee.DoubleField(default=0.0)  # a standby may take over after this
    # Whether the holder's session holds the advisory lock: a standby that gets the lock then
    # knows the holder's session is gone, and takes over without waiting for `expires`.
    locked = peewee.BooleanField(default=False)

    class Meta:
        table_name = "master_lease"


class Webhook(BaseModel):
    """An HTTP endpoint told of farm events (farmhand/master/webhooks/), with its delivery
    counts and how its last delivery went. `events` is JSON: a list of event names or `*`."""

    id = peewee.IntegerField(primary_key=True)  # assigned by the master
    url = peewee.TextField()
    events = peewee.TextField(default="[]")
    secret = peewee.TextField(null=True)  # kept as given: it signs every body
    created = peewee.DoubleField()
    delivered = peewee.IntegerField(default=0)
    failed = peewee.IntegerField(default=0)  # given up after a day of retries
    dropped = peewee.IntegerField(default=0)  # pushed out of a full queue
    last_time = peewee.DoubleField(null=True)
    last_status = peewee.IntegerField(null=True)  # HTTP status code; null: no answer
    last_latency_ms = peewee.DoubleField(null=True)
    last_error = peewee.TextField(null=True)

    class Meta:
        table_name = "webhook"


class WebhookDelivery(BaseModel):
    """One event for one webhook: the exact body sent, its attempts and how the last went.
    `state` is pending (to be retried at `next_try`), delivered, failed (given up) or dropped."""

    id = peewee.IntegerField(primary_key=True)  # assigned by the master
    webhook_id = peewee.IntegerField(index=True)
    event = peewee.CharField(max_length=64)
    created = peewee.DoubleField()
    body = peewee.TextField()
    state = peewee.CharField(max_length=16)
    attempts = peewee.IntegerField(default=0)
    next_try = peewee.DoubleField(null=True)
    status_code = peewee.IntegerField(null=True)
    latency_ms = peewee.DoubleField(null=True)
    error = peewee.TextField(null=True)
    updated = peewee.DoubleField()

    class Meta:
        table_name = "webhook_delivery"


ALL_MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion, Client, ApiKey, Job, Task, JobBlocklist, User, AuthToken, Tap, Keg, Pour,
    Reading, AuditEntry, MasterLease, SensorPlace, AlertRule, Webhook,
    WebhookDelivery,
)  # fmt: skip

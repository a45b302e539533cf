"""Database setup: pick SQLite (the default, a WAL file in the data dir) or PostgreSQL by URL.

Models bind to `database_proxy`; the master initialises it once it has opened the real database.
A URL's query sets SQLite pragmas (`sqlite:///srv/farm.db?max_page_count=262144` caps the file)
or PostgreSQL connection parameters (`?sslmode=require&connect_timeout=10`). PostgreSQL goes
through psycopg 3 (`pip install farmhand[postgres]`); `driver_errors` gives raw cursors peewee's
exception types.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import peewee

database_proxy = peewee.DatabaseProxy()

DEFAULT_DB_FILENAME = "farmhand.db"

# WAL lets readers work while the single writer commits. synchronous=full syncs the WAL at every
# commit, so an acknowledged result survives an OS crash or a power cut too, not only a crash of
# the master; writes are grouped (one transaction per flush), so this costs no measurable
# throughput (bench/dispatch.py: ~15,000 tasks/s either way). busy_timeout covers outside tools
# (sqlite3 CLI, backups) holding the file briefly.
SQLITE_PRAGMAS: tuple[tuple[str, object], ...] = (
    ("journal_mode", "wal"),
    ("busy_timeout", 5000),
    ("synchronous", "full"),
    ("foreign_keys", 1),
    ("cache_size", -65536),  # 64 MiB page cache: a 100,000-client save must not spill to disk.
)

_POSTGRES_SCHEMES = ("postgresql", "postgres")
# A reconnect to an unreachable host must not hold the storage thread for the TCP timeout.
PG_CONNECT_TIMEOUT_S = 5
# Pragmas are written into `PRAGMA name = value`: plain words only.
_PRAGMA_NAME = re.compile(r"[a-z_]+")
_PRAGMA_VALUE = re.compile(r"-?[A-Za-z0-9_.]+")


def _unsupported(url: str) -> ValueError:
    return ValueError(
        f"unsupported database URL {redact_url(url)!r}: use a sqlite:/// path or postgresql://…"
    )


def database_from_url(url: str | None, data_dir: Path) -> peewee.Database:
    """Build (not connect) the database named by `url`; None or "" means SQLite in `data_dir`."""
    if not url:
        data_dir.mkdir(parents=True, exist_ok=True)
        return _sqlite(str(data_dir / DEFAULT_DB_FILENAME), {})
    parts = urlsplit(url)
    try:
        query = dict(parse_qsl(parts.query, strict_parsing=True)) if parts.query else {}
    except ValueError:
        raise _unsupported(url) from None
    if parts.scheme == "sqlite":
        # sqlite:///abs/path.db → path "/abs/path.db"; sqlite:///:memory: → path "/:memory:".
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise _unsupported(url)
        for name, value in query.items():
            if not (_PRAGMA_NAME.fullmatch(name) and _PRAGMA_VALUE.fullmatch(value)):
                raise ValueError(f"bad SQLite pragma in the database URL: {name}={value!r}")
        path = unquote(parts.path)
        if path == "/:memory:":
            return _sqlite(":memory:", query)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _sqlite(path, query)
    if parts.scheme in _POSTGRES_SCHEMES:
        _require_psycopg()
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname or "/" in dbname:
            raise _unsupported(url)
        params: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT_S, **query}
        if parts.username:
            params["user"] = unquote(parts.username)
        if parts.password:
            params["password"] = unquote(parts.password)
        if parts.hostname:
            params["host"] = parts.hostname
        try:
            port = parts.port
        except ValueError:
            raise _unsupported(url) from None
        if port:
            params["port"] = port
        # peewee picks psycopg2 when both drivers are installed unless told otherwise.
        return peewee.PostgresqlDatabase(dbname, prefer_psycopg3=True, **params)
    raise _unsupported(url)


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ValueError(
            "a postgresql:// database needs the PostgreSQL driver, psycopg 3: "
            "pip install 'farmhand[postgres]'"
        ) from None


def _sqlite(path: str, pragmas: dict[str, str]) -> peewee.SqliteDatabase:
    return peewee.SqliteDatabase(path, pragmas={**dict(SQLITE_PRAGMAS), **pragmas})


def redact_url(url: str | None) -> str:
    """The URL with its password replaced by "***", fit for logs and status output."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


# peewee's exceptions by the DB-API 2.0 names that sqlite3's and psycopg's classes also carry.
_PEEWEE_ERRORS: dict[str, type[peewee.PeeweeException]] = {
    error.__name__: error
    for error in (
        peewee.DataError,
        peewee.IntegrityError,
        peewee.InterfaceError,
        peewee.InternalError,
        peewee.NotSupportedError,
        peewee.OperationalError,
        peewee.ProgrammingError,
        peewee.DatabaseError,
    )
}


def _driver_error_types() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # SQLite only: the postgres extra is not installed
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


_DRIVER_ERRORS = _driver_error_types()


@contextmanager
def driver_errors() -> Iterator[None]:
    """Re-raise a driver's exception from a raw cursor (executemany, COPY) as peewee's type of
    the same DB-API name, the driver's one in `.orig`, as peewee's own execute_sql does: callers
    catch peewee.IntegrityError whatever the backend and however the statement was sent."""
    try:
        yield
    except _DRIVER_ERRORS as exc:
        for cls in type(exc).__mro__:  # e.g. psycopg.errors.UniqueViolation → IntegrityError
            error = _PEEWEE_ERRORS.get(cls.__name__)
            if error is not None:
                raise error(exc, *exc.args) from exc
        raise

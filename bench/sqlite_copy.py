"""A SQLite copy of a PostgreSQL bench database: the same rows, as the product would store them.

Used by bench/dashboard.py --sqlite to measure the same pages on both databases over the very
same data (generating a year of data again, for SQLite, would be another story, not the same one).

The schema is the product's own: `manage.py migrate` against the new file. Then every table's rows
are copied from PostgreSQL, one transaction per table, in one REPEATABLE READ, read-only
transaction on the PostgreSQL side (one consistent snapshot, and nothing there can be changed),
streamed through a server-side cursor and written with executemany in batches. Foreign keys are
off during the load (the tables are filled in name order, not in dependency order) and checked
with PRAGMA foreign_key_check after it; then ANALYZE, as a deployment that has run for a year
would have its statistics.

Values are converted the way Django's SQLite backend writes them, so queries compare like with
like (SQLite compares datetimes as text): datetimes as UTC without offset, 'YYYY-MM-DD HH:MM:SS'
with '.ffffff' only when there are microseconds (str() of a naive datetime); dates and times as
str(); JSON as json.dumps text; Decimal as str; UUID as 32 hex digits; durations as microseconds.
Booleans need nothing: sqlite3 binds True/False as 1/0.

The file is built under a temporary name and renamed when complete, so an interrupted build is
never mistaken for a copy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BATCH = 5000

# Tables whose rows are not compared after the copy: migrate writes django_migrations itself, and
# the benchmark's own sign-ins add sessions to each database independently.
NOT_COMPARED = {"django_migrations", "django_session"}


def _utc_text(value: dt.datetime) -> str:
    return str(value.astimezone(dt.timezone.utc).replace(tzinfo=None))


def _microseconds(value: dt.timedelta) -> int:
    return (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds


# PostgreSQL column type (information_schema data_type) -> what Django's SQLite backend stores.
# Types not listed (integers, floats, text, booleans, bytea) go through as psycopg returns them.
CONVERT = {
    "timestamp with time zone": _utc_text,
    "timestamp without time zone": str,
    "date": str,
    "time without time zone": str,
    "jsonb": json.dumps,
    "json": json.dumps,
    "numeric": str,
    "uuid": lambda value: value.hex,
    "interval": _microseconds,
    "inet": str,
}


def sqlite_tables(lite: sqlite3.Connection) -> list[str]:
    return [name for (name,) in lite.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )]


def migrate(path: Path) -> None:
    """The product's migrations, run by manage.py in a process of its own (settings read
    DATABASE_URL once per process), with no Redis and a throwaway var dir."""
    with tempfile.TemporaryDirectory(prefix="textback-sqlite-copy-") as var_dir:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "TEXTBACK_VAR_DIR": var_dir,
               "DEBUG": "false", "SECRET_KEY": "bench-sqlite-copy-" + "0" * 40}
        for name in ("REDIS_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "DJANGO_SETTINGS_MODULE"):
            env.pop(name, None)
        subprocess.run([sys.executable, str(REPO / "manage.py"), "migrate", "--verbosity", "0", "--skip-checks"], env=env, check=True)


def copy_rows(pg, lite: sqlite3.Connection) -> dict[str, tuple[int, float]]:
    """Every table's rows (except django_migrations) from PostgreSQL into the migrated SQLite file:
    (rows, seconds) per table. Rows migrate wrote (content types, permissions, ...) are replaced
    by PostgreSQL's, so every id matches the one the copied rows point to."""
    from psycopg import sql

    copied = {}
    for table in sqlite_tables(lite):
        if table == "django_migrations":
            continue
        started = time.perf_counter()
        columns = [row[1] for row in lite.execute(f'PRAGMA table_info("{table}")')]
        types = dict(pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s", [table],
        ).fetchall())
        if missing := [c for c in columns if c not in types]:
            raise SystemExit(f"sqlite copy: {table} has no column {missing} on PostgreSQL: are both migrated alike?")
        converters = [(i, CONVERT[types[c]]) for i, c in enumerate(columns) if types[c] in CONVERT]
        select = sql.SQL("SELECT {} FROM {}{}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table),
            # In id order, the SQLite table (a B-tree on the id) is written by appending.
            sql.SQL(" ORDER BY id") if "id" in columns else sql.SQL(""),
        )
        insert = 'INSERT INTO "{}" ({}) VALUES ({})'.format(
            table, ", ".join(f'"{c}"' for c in columns), ", ".join("?" * len(columns)),
        )
        n = 0
        lite.execute("BEGIN")
        lite.execute(f'DELETE FROM "{table}"')
        with pg.cursor(name=f"copy_{table}") as cursor:
            cursor.execute(select)
            while rows := cursor.fetchmany(BATCH):
                if converters:
                    rows = [_converted(row, converters) for row in rows]
                lite.executemany(insert, rows)
                n += len(rows)
        lite.execute("COMMIT")
        copied[table] = (n, time.perf_counter() - started)
    return copied


def _converted(row: tuple, converters: list) -> list:
    row = list(row)
    for i, convert in converters:
        if row[i] is not None:
            row[i] = convert(row[i])
    return row


def count_mismatches(pg, lite: sqlite3.Connection) -> list[str]:
    """Tables whose row counts differ between the two databases (sessions and migrations aside)."""
    from psycopg import sql

    out = []
    for table in sqlite_tables(lite):
        if table in NOT_COMPARED:
            continue
        on_pg = pg.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
        on_lite = lite.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        if on_pg != on_lite:
            out.append(f"{table}: PostgreSQL {on_pg}, SQLite {on_lite}")
    return out


def connect_pg(pg_url: str):
    """One read-only snapshot of the bench database, its datetimes read in UTC."""
    import psycopg

    pg = psycopg.connect(pg_url, options="-c TimeZone=UTC")
    pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    pg.read_only = True
    return pg


def build(pg_url: str, path: Path) -> dict:
    """Build `path` from the PostgreSQL database at `pg_url`; what it took, for the report."""
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    migrate(partial)
    migrated = time.perf_counter()
    lite = sqlite3.connect(partial, isolation_level=None)  # transactions are explicit
    # A file being built from scratch needs no rollback journal: a failed build is built again.
    lite.execute("PRAGMA journal_mode = OFF")
    lite.execute("PRAGMA synchronous = OFF")
    lite.execute("PRAGMA foreign_keys = OFF")
    with connect_pg(pg_url) as pg:
        pg_migrations = {tuple(r) for r in pg.execute("SELECT app, name FROM django_migrations").fetchall()}
        lite_migrations = {tuple(r) for r in lite.execute("SELECT app, name FROM django_migrations")}
        if pg_migrations != lite_migrations:
            raise SystemExit(
                "sqlite copy: the PostgreSQL database was migrated differently from this checkout"
                f" (only there: {sorted(pg_migrations - lite_migrations)}, only here: {sorted(lite_migrations - pg_migrations)})"
            )
        copied = copy_rows(pg, lite)
        loaded = time.perf_counter()
        if broken := lite.execute("PRAGMA foreign_key_check").fetchmany(10):
            raise SystemExit(f"sqlite copy: rows pointing nowhere (table, rowid, parent, fk): {broken}")
        lite.execute("ANALYZE")
        if mismatches := count_mismatches(pg, lite):
            raise SystemExit("sqlite copy: row counts differ: " + "; ".join(mismatches))
    lite.execute("PRAGMA journal_mode = WAL")  # as the product runs it (settings set it on every connection too)
    lite.close()
    os.replace(partial, path)
    return {
        "seconds": round(time.perf_counter() - started, 1), "migrate_seconds": round(migrated - started, 1),
        "copy_seconds": round(loaded - migrated, 1), "rows": sum(n for n, _ in copied.values()),
        "tables": {t: {"rows": n, "seconds": round(s, 1)} for t, (n, s) in copied.items()},
        "bytes": path.stat().st_size,
    }

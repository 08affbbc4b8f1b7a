"""Schema migrations: numbered SQL files, each applied atomically together with ``PRAGMA user_version``.

A migration is ``NNNN_description.sql``; versions run 1..N without gaps, and file N ends with
``PRAGMA user_version = N;``. The runner wraps each pending file in one ``BEGIN IMMEDIATE``
transaction, checks that the file moved ``user_version`` to exactly N and only then commits, so a
database is always at some whole version: a failing file leaves it at the previous one. Schema
changes are always new files; a file that shipped is never edited.

The error types live here rather than in ``store`` because ``store`` imports this module.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

import aiosqlite

from .transactions import atomic

__all__ = [
    "DatabaseTooNewError",
    "Migration",
    "MigrationError",
    "StoreError",
    "apply_migrations",
    "load_migrations",
    "migrations_dir",
]

_FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?(?:\*/|\Z))*", re.DOTALL)
_KEYWORD = re.compile(r"[A-Za-z]+")
# The runner owns the transaction; a file that ends or nests it would commit half a migration.
_TRANSACTION_KEYWORDS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK"})


class StoreError(Exception):
    """The state database cannot be used; the message names the file and what went wrong."""


class MigrationError(StoreError):
    """A migration file is misnamed, misnumbered or failed; the database stays at its previous version."""


class DatabaseTooNewError(StoreError):
    """The database was migrated by a newer colorchanger; touching it could lose that version's data."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``version`` N from file ``name`` (``NNNN_description.sql``)."""

    version: int
    name: str
    sql: str


def migrations_dir() -> Traversable:
    """Where the SQL files are: inside the installed package, else the checkout's top-level folder.

    The files live once, at the top of the repository, so the schema history reads in one place;
    the wheel force-includes them as ``colorchanger_ext/migrations`` so an installed copy can
    migrate without a checkout. An editable install or a plain source tree has no such package
    folder, so fall back to ``migrations/`` next to the package.
    """
    packaged = importlib.resources.files("colorchanger_ext").joinpath("migrations")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "migrations"


def load_migrations(directory: Traversable | str | os.PathLike[str] | None = None) -> list[Migration]:
    """Read and check every migration file, so a bad set fails before any database is touched."""
    root: Traversable
    if directory is None:
        root = migrations_dir()
    elif isinstance(directory, str | os.PathLike):
        root = Path(directory)
    else:
        root = directory
    if not root.is_dir():
        raise MigrationError(f"migrations folder {root} does not exist")
    found: list[Migration] = []
    for entry in root.iterdir():
        if not entry.name.endswith(".sql") or not entry.is_file():
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name} in {root} is not named NNNN_description.sql")
        found.append(Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: (m.version, m.name))
    _check_sequence(found)
    for migration in found:
        split_statements(migration)
    return found


def _check_sequence(migrations: Sequence[Migration]) -> None:
    """Versions must be exactly 1..N in order: a gap or duplicate means a lost or clashing file."""
    for index, migration in enumerate(migrations):
        expected = index + 1
        if migration.version == expected:
            continue
        if index > 0 and migration.version == migrations[index - 1].version:
            raise MigrationError(
                f"migration files {migrations[index - 1].name} and {migration.name} "
                f"both have version {migration.version}"
            )
        raise MigrationError(
            f"migration file {migration.name} has version {migration.version} but version {expected} "
            f"is missing: versions must run 1..N with no gaps"
        )


def split_statements(migration: Migration) -> list[str]:
    """The file's statements one by one, so the runner can keep them in its own transaction.

    ``executescript`` would be simpler but it COMMITs any open transaction before it starts, so
    the version check could not share the transaction with the file. ``sqlite3.complete_statement``
    knows about strings, comments and trigger bodies, so splitting at the ``;`` that completes a
    statement is exact.
    """
    statements: list[str] = []
    pending = ""
    pieces = migration.sql.split(";")
    for piece in pieces[:-1]:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    pending += pieces[-1]
    if pending.strip():
        statements.append(pending)
    kept: list[str] = []
    for statement in statements:
        code = _LEADING_NOISE.sub("", statement, count=1)
        if code in ("", ";"):
            continue
        keyword = _KEYWORD.match(code)
        if keyword is not None and keyword[0].upper() in _TRANSACTION_KEYWORDS:
            raise MigrationError(
                f"migration file {migration.name} contains {keyword[0].upper()}: the runner wraps each "
                f"file in its own transaction, so files must not begin or end one"
            )
        kept.append(statement.strip())
    return kept


async def _user_version(conn: aiosqlite.Connection) -> int:
    """The schema version, kept in the database header so it commits with the schema."""
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def _database_path(conn: aiosqlite.Connection) -> str:
    """The main database's file name, for error messages."""
    for row in await conn.execute_fetchall("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2]) or "(in-memory database)"
    return "(unknown database)"


async def _too_new(conn: aiosqlite.Connection, version: int, latest: int) -> DatabaseTooNewError:
    """Refuse rather than run old code on a newer schema, and say what fixes it."""
    return DatabaseTooNewError(
        f"database {await _database_path(conn)} is at schema version {version} but this colorchanger "
        f"knows only up to {latest}: upgrade twitchio-colorchanger"
    )


async def apply_migrations(conn: aiosqlite.Connection, migrations: Sequence[Migration] | None = None) -> int:
    """Bring the database to the newest version, one whole file per transaction; return the version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the explicit
    transactions here are the only ones. Each step takes the write lock first and re-reads the
    version under it, so two processes opening a fresh database at once apply each file once.
    Errors of the migrations themselves raise ``MigrationError``; sqlite3 errors outside them (a
    locked database) propagate for the caller to describe.
    """
    if migrations is None:
        migrations = load_migrations()
    _check_sequence(migrations)
    steps = [(migration, split_statements(migration)) for migration in migrations]
    latest = len(migrations)

    version = await _user_version(conn)
    if version > latest:
        raise await _too_new(conn, version, latest)
    while version < latest:
        async with atomic(conn):
            version = await _user_version(conn)
            if version > latest:
                raise await _too_new(conn, version, latest)
            if version == latest:  # another process finished the job while we waited for the lock
                break
            migration, statements = steps[version]
            await _run_step(conn, migration, statements, version)
        version = migration.version
    return version


async def _run_step(
    conn: aiosqlite.Connection, migration: Migration, statements: Sequence[str], before: int
) -> None:
    """Run one file inside the caller's transaction and check it bumped the version to its own."""

    async def failure(reason: str) -> MigrationError:
        return MigrationError(
            f"migration {migration.name} {reason}; database {await _database_path(conn)} "
            f"left at schema version {before}"
        )

    for number, statement in enumerate(statements, start=1):
        try:
            await conn.execute_fetchall(statement)
        except sqlite3.Error as error:
            raise await failure(f"failed at statement {number} ({error})") from error
        if not conn.in_transaction:
            raise await failure(f"ended the transaction at statement {number}")
    after = await _user_version(conn)
    if after != migration.version:
        raise await failure(
            f"set user_version to {after}, not {migration.version}: it must end with "
            f"'PRAGMA user_version = {migration.version};'"
        )
    problems = list(await conn.execute_fetchall("PRAGMA foreign_key_check"))
    if problems:
        raise await failure(f"broke {len(problems)} foreign key reference(s), e.g. in table {problems[0][0]}")

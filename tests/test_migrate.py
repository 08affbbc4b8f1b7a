"""Migrations against real SQLite files: fresh, re-open, every upgrade path, and every refusal."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite
import pytest

from colorchanger_ext.migrate import (
    DatabaseTooNewError,
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
    migrations_dir,
    split_statements,
)
from colorchanger_ext.store import Store, StoreError

CHECKOUT_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

ALL = load_migrations()
LATEST = len(ALL)


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.close()
    return version


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


async def migrate(path: Path, migrations: Sequence[Migration] | None = None) -> int:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        return await apply_migrations(conn, migrations)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


GOOD_1 = "CREATE TABLE a (x INTEGER);\nPRAGMA user_version = 1;\n"


def test_shipped_migrations_are_numbered_from_one() -> None:
    assert LATEST >= 1
    assert [m.version for m in ALL] == list(range(1, LATEST + 1))
    assert ALL[0].name == "0001_initial.sql"


async def test_fresh_database_reaches_latest(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    assert await migrate(db) == LATEST
    assert user_version(db) == LATEST
    assert "users" in tables(db)


async def test_reopen_is_a_no_op_and_keeps_data(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    async with await Store.open(db) as store:
        await store.ensure_user("1", "alice")
    async with await Store.open(db) as store:
        user = await store.get_user("1")
    assert user is not None
    assert user.login == "alice"
    assert user_version(db) == LATEST
    assert await migrate(db) == LATEST


@pytest.mark.parametrize("start", range(LATEST + 1))
async def test_upgrade_from_every_older_version(tmp_path: Path, start: int) -> None:
    """Covers future files too: a database left at any version k reaches the latest on open."""
    db = tmp_path / "state.sqlite3"
    assert await migrate(db, ALL[:start]) == start
    assert user_version(db) == start
    async with await Store.open(db) as store:
        assert store.path == db
        await store.ensure_user("1", "alice")
        assert [u.user_id for u in await store.list_users()] == ["1"]
    assert user_version(db) == LATEST


async def test_step_by_step_equals_all_at_once(tmp_path: Path) -> None:
    stepped, direct = tmp_path / "stepped.sqlite3", tmp_path / "direct.sqlite3"
    for k in range(1, LATEST + 1):
        assert await migrate(stepped, ALL[:k]) == k
    await migrate(direct)

    def schema(path: Path) -> list[tuple[str, str]]:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        finally:
            conn.close()

    assert schema(stepped) == schema(direct)


async def test_too_new_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite3"
    newer = LATEST + 4
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.close()
    with pytest.raises(DatabaseTooNewError) as caught:
        await Store.open(db)
    message = str(caught.value)
    assert f"schema version {newer}" in message
    assert f"only up to {LATEST}" in message
    assert db.name in message
    assert "upgrade twitchio-colorchanger" in message
    assert isinstance(caught.value, StoreError)
    assert user_version(db) == newer


async def test_broken_migration_leaves_previous_version(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "migrations",
        {
            "0001_first.sql": GOOD_1,
            "0002_broken.sql": (
                "CREATE TABLE half (x INTEGER);\n"
                "INSERT INTO a (x) VALUES (1);\n"
                "INSERT INTO no_such_table VALUES (1);\n"
                "PRAGMA user_version = 2;\n"
            ),
        },
    )
    db = tmp_path / "state.sqlite3"
    migrations = load_migrations(folder)
    async with aiosqlite.connect(db, isolation_level=None) as conn:
        with pytest.raises(MigrationError) as caught:
            await apply_migrations(conn, migrations)
        # Rolled back on this very connection, not merely discarded when it closes.
        assert not conn.in_transaction
        seen = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [row[0] for row in seen] == ["a"]
    assert "0002_broken.sql" in str(caught.value)
    assert "failed at statement 3" in str(caught.value)
    assert "left at schema version 1" in str(caught.value)
    assert user_version(db) == 1
    assert tables(db) == {"a"}
    check = sqlite3.connect(db)
    assert check.execute("SELECT count(*) FROM a").fetchone() == (0,)
    check.close()


async def test_migration_that_forgets_the_version_bump_is_refused(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "migrations",
        {"0001_first.sql": GOOD_1, "0002_no_bump.sql": "CREATE TABLE b (y INTEGER);\n"},
    )
    db = tmp_path / "state.sqlite3"
    with pytest.raises(MigrationError, match=r"0002_no_bump\.sql.*PRAGMA user_version = 2"):
        await migrate(db, load_migrations(folder))
    assert user_version(db) == 1
    assert tables(db) == {"a"}


async def test_migration_that_bumps_to_the_wrong_version_is_refused(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "migrations", {"0001_first.sql": "CREATE TABLE a (x);\nPRAGMA user_version = 3;"}
    )
    db = tmp_path / "state.sqlite3"
    with pytest.raises(MigrationError, match="set user_version to 3, not 1"):
        await migrate(db, load_migrations(folder))
    assert user_version(db) == 0
    assert tables(db) == set()


async def test_migration_that_breaks_foreign_keys_is_refused(tmp_path: Path) -> None:
    sql = (
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id));\n"
        "INSERT INTO child VALUES (7);\n"
        "PRAGMA user_version = 1;\n"
    )
    db = tmp_path / "fk.sqlite3"
    with pytest.raises(MigrationError, match="broke 1 foreign key reference"):
        await migrate(db, [Migration(1, "0001_fk.sql", sql)])
    assert user_version(db) == 0
    assert tables(db) == set()


@pytest.mark.parametrize(
    ("files", "pattern"),
    [
        ({"0001_a.sql": GOOD_1, "0003_c.sql": GOOD_1}, r"0003_c\.sql has version 3 but version 2 is missing"),
        ({"0002_b.sql": GOOD_1}, r"0002_b\.sql has version 2 but version 1 is missing"),
        ({"0001_a.sql": GOOD_1, "0001_b.sql": GOOD_1}, r"0001_a\.sql and 0001_b\.sql both have version 1"),
        ({"1_a.sql": GOOD_1}, r"1_a\.sql .*NNNN_description\.sql"),
        ({"0001_a.sql": "BEGIN;\n" + GOOD_1 + "COMMIT;\n"}, r"0001_a\.sql contains BEGIN"),
    ],
)
def test_bad_migration_sets_are_refused(tmp_path: Path, files: dict[str, str], pattern: str) -> None:
    with pytest.raises(MigrationError, match=pattern):
        load_migrations(write(tmp_path / "migrations", files))


def test_other_files_are_ignored_and_missing_folder_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "migrations", {"0001_a.sql": GOOD_1, "README.md": "notes"})
    assert [m.name for m in load_migrations(folder)] == ["0001_a.sql"]
    with pytest.raises(MigrationError, match="does not exist"):
        load_migrations(tmp_path / "nowhere")


async def test_apply_checks_a_hand_built_sequence(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="version 1 is missing"):
        await migrate(tmp_path / "x.sqlite3", [Migration(2, "0002_x.sql", GOOD_1)])


def test_statement_splitting_respects_strings_comments_and_triggers() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE t (x TEXT);\n"
        "INSERT INTO t VALUES ('a;b');\n"
        "/* block; comment */\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = x || ';'; END;\n"
        "PRAGMA user_version = 1;\n"
        "-- trailing comment\n"
    )
    statements = split_statements(Migration(1, "0001_t.sql", sql))
    assert len(statements) == 4
    assert statements[1] == "INSERT INTO t VALUES ('a;b');"
    assert statements[2].startswith("/* block; comment */")
    assert statements[2].endswith("END;")


async def test_trigger_migration_runs(tmp_path: Path) -> None:
    sql = (
        "CREATE TABLE t (x TEXT);\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = x || ';!'; END;\n"
        "INSERT INTO t VALUES ('a;b');\n"
        "PRAGMA user_version = 1;\n"
    )
    db = tmp_path / "t.sqlite3"
    assert await migrate(db, [Migration(1, "0001_t.sql", sql)]) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT x FROM t").fetchall() == [("a;b;!",)]
    conn.close()


def test_migrations_dir_matches_the_checkout() -> None:
    """From a checkout, the migrations the package finds (installed or not) are the checkout's files."""
    if not CHECKOUT_MIGRATIONS.is_dir():
        pytest.skip("not running from a source checkout")
    found = load_migrations(migrations_dir())
    in_checkout = load_migrations(CHECKOUT_MIGRATIONS)
    assert found == in_checkout
    assert sorted(p.name for p in CHECKOUT_MIGRATIONS.glob("*.sql")) == [m.name for m in found]


async def test_opener_that_waited_for_the_lock_does_not_reapply(tmp_path: Path) -> None:
    """Two processes opening a fresh file at once: the one that waited re-reads the version under the lock."""
    db = tmp_path / "race.sqlite3"
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("PRAGMA journal_mode = WAL")
        other.execute("BEGIN IMMEDIATE")  # the other process is migrating
        async with aiosqlite.connect(db, isolation_level=None) as conn:
            await conn.execute_fetchall("PRAGMA busy_timeout = 10000")
            waiting = asyncio.create_task(apply_migrations(conn))
            await asyncio.sleep(0.3)  # it has read version 0 and now waits in BEGIN IMMEDIATE
            assert not waiting.done()
            for migration in ALL:
                for statement in split_statements(migration):
                    other.execute(statement)
            other.execute("COMMIT")
            assert await waiting == LATEST  # re-running 0001 would have failed on CREATE TABLE
    finally:
        other.close()
    assert user_version(db) == LATEST

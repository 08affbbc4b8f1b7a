"""The state store against real SQLite files in tmp_path."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from colorchanger_ext.store import MAX_ERROR_LENGTH, Store, StoreError, UnknownUserError, UserState


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def exists(path: Path) -> bool:
    return path.exists()


def create(path: Path, content: bytes, mode: int) -> None:
    path.write_bytes(content)
    path.chmod(mode)


def read(path: Path) -> bytes:
    return path.read_bytes()


def chmod(path: Path, mode: int) -> None:
    path.chmod(mode)


def sync_query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_ensure_user_inserts_defaults(store: Store) -> None:
    before = time.time()
    user = await store.ensure_user("123", "alice")
    assert user == UserState(
        user_id="123",
        login="alice",
        enabled=True,
        mode="preset",
        hex_policy="auto",
        hex_refused_at=None,
        recent_colors=(),
        changes=0,
        errors=0,
        last_color=None,
        last_changed_at=None,
        last_error=None,
        last_error_at=None,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )
    assert before <= user.created_at == user.updated_at <= time.time()
    assert await store.get_user("123") == user


async def test_ensure_user_uses_given_defaults_only_for_new_users(store: Store) -> None:
    created = await store.ensure_user("1", "alice", mode="hex", hex_policy="never")
    assert (created.mode, created.hex_policy) == ("hex", "never")
    await store.set_enabled("1", False)
    again = await store.ensure_user("1", "alice", mode="preset", hex_policy="always")
    assert (again.mode, again.hex_policy, again.enabled) == ("hex", "never", False)
    assert again.updated_at >= created.updated_at
    assert await store.ensure_user("1", "alice") == again  # idempotent: nothing written


async def test_ensure_user_updates_a_changed_login(store: Store) -> None:
    first = await store.ensure_user("1", "alice")
    await store.record_color("1", "Red", keep_recent=3)
    renamed = await store.ensure_user("1", "alice_2")
    assert renamed.login == "alice_2"
    assert renamed.created_at == first.created_at
    assert renamed.changes == 1
    assert renamed.recent_colors == ("Red",)
    assert [u.login for u in await store.list_users()] == ["alice_2"]


async def test_settings_round_trip_and_survive_reopen(db: Path) -> None:
    async with await Store.open(db) as store:
        await store.ensure_user("1", "alice")
        assert (await store.set_enabled("1", False)).enabled is False
        assert (await store.set_mode("1", "hex")).mode == "hex"
        assert (await store.set_hex_policy("1", "always")).hex_policy == "always"
        assert (await store.set_hex_refused("1", 1234.5)).hex_refused_at == 1234.5
        saved = await store.get_user("1")
    async with await Store.open(db) as store:
        reopened = await store.get_user("1")
        assert reopened == saved
        assert reopened is not None
        assert (reopened.enabled, reopened.mode, reopened.hex_policy, reopened.hex_refused_at) == (
            False,
            "hex",
            "always",
            1234.5,
        )
        assert (await store.set_hex_refused("1", None)).hex_refused_at is None
        assert (await store.set_enabled("1", True)).enabled is True
    assert sync_query(db, "SELECT enabled, hex_refused_at FROM users") == [(1, None)]


async def test_invalid_mode_and_policy_are_refused(store: Store) -> None:
    await store.ensure_user("1", "alice")
    with pytest.raises(ValueError, match="mode must be one of"):
        await store.set_mode("1", "plaid")
    with pytest.raises(ValueError, match="hex_policy must be one of"):
        await store.set_hex_policy("1", "sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be one of"):
        await store.ensure_user("2", "bob", mode="plaid")
    assert await store.get_user("2") is None


async def test_record_color_trims_recent_and_counts(store: Store) -> None:
    await store.ensure_user("1", "alice")
    for n, color in enumerate(["Red", "Blue", "Green", "#123456"], start=1):
        user = await store.record_color("1", color, keep_recent=3, at=1000.0 + n)
    assert user.recent_colors == ("Blue", "Green", "#123456")
    assert user.changes == 4
    assert user.last_color == "#123456"
    assert user.last_changed_at == 1004.0
    assert user.errors == 0
    assert sync_query(store.path, "SELECT recent_colors FROM users") == [('["Blue", "Green", "#123456"]',)]
    # A smaller window trims at once; zero still keeps the colour just applied.
    assert (await store.record_color("1", "Coral", keep_recent=0)).recent_colors == ("Coral",)
    assert (await store.get_user("1")) == (await store.list_users())[0]


async def test_record_color_without_time_uses_now(store: Store) -> None:
    await store.ensure_user("1", "alice")
    before = time.time()
    user = await store.record_color("1", "Red", keep_recent=1)
    assert user.last_changed_at is not None
    assert before <= user.last_changed_at <= time.time()
    assert user.updated_at == user.last_changed_at


async def test_record_error_counts_and_truncates(store: Store) -> None:
    await store.ensure_user("1", "alice")
    user = await store.record_error("1", "Twitch answered 500", at=42.0)
    assert (user.errors, user.last_error, user.last_error_at, user.changes) == (
        1,
        "Twitch answered 500",
        42.0,
        0,
    )
    user = await store.record_error("1", "x" * 1000)
    assert user.errors == 2
    assert user.last_error is not None
    assert len(user.last_error) == MAX_ERROR_LENGTH == 200
    assert user.last_error.startswith("x" * 150)


async def test_unknown_user(store: Store) -> None:
    assert await store.get_user("nobody") is None
    for write in (
        store.set_enabled("nobody", True),
        store.set_mode("nobody", "preset"),
        store.set_hex_policy("nobody", "never"),
        store.set_hex_refused("nobody", 1.0),
        store.record_color("nobody", "Red", keep_recent=2),
        store.record_error("nobody", "boom"),
    ):
        with pytest.raises(
            UnknownUserError, match=r"user nobody is not in database .*state\.sqlite3"
        ) as caught:
            await write
        assert isinstance(caught.value, StoreError)
        assert isinstance(caught.value, KeyError)
    assert await store.list_users() == []


async def test_list_users_sorted_by_login(store: Store) -> None:
    await store.ensure_user("2", "zed")
    await store.ensure_user("1", "amy")
    assert [(u.user_id, u.login) for u in await store.list_users()] == [("1", "amy"), ("2", "zed")]


async def test_wal_mode_is_on(store: Store) -> None:
    assert sync_query(store.path, "PRAGMA journal_mode") == [("wal",)]


async def test_new_database_file_is_private(db: Path) -> None:
    async with await Store.open(db) as store:
        await store.ensure_user("1", "alice")
        assert file_mode(db) == 0o600
        wal = db.with_name(db.name + "-wal")
        if exists(wal):  # SQLite gives its side files the database file's mode
            assert file_mode(wal) == 0o600


async def test_existing_file_mode_is_left_alone(db: Path) -> None:
    create(db, b"", 0o640)
    async with await Store.open(db):
        pass
    assert file_mode(db) == 0o640


async def test_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(StoreError, match=f"directory {missing} does not exist"):
        await Store.open(missing / "state.sqlite3")
    assert not missing.exists()


async def test_non_database_file_is_refused(db: Path) -> None:
    junk = b"this is not a database at all, " * 64
    create(db, junk, 0o600)
    with pytest.raises(StoreError, match=f"{db} is not an SQLite database"):
        await Store.open(db)
    assert read(db) == junk
    gc.collect()  # a leaked connection would warn now (warnings are errors)


async def test_locked_database_fails_fast_and_recovers(db: Path) -> None:
    async with await Store.open(db, busy_timeout=0.2) as store:
        await store.ensure_user("1", "alice")
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            other.execute("UPDATE users SET login = 'held'")
            for write in (
                store.set_enabled("1", False),
                store.record_color("1", "Red", keep_recent=2),  # explicit transaction path
            ):
                started = time.monotonic()
                with pytest.raises(StoreError, match=f"database {db} is locked .*gave up after 0.2s"):
                    await write
                assert time.monotonic() - started < 3
            # WAL: reading still works while another connection writes.
            user = await store.get_user("1")
            assert user is not None
            assert user.login == "alice"
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await store.set_enabled("1", False)).enabled is False
        assert (await store.record_color("1", "Red", keep_recent=2)).changes == 1


async def test_open_while_another_process_migrates_times_out(db: Path) -> None:
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match=f"database {db} is locked"):
            await Store.open(db, busy_timeout=0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    gc.collect()
    async with await Store.open(db):
        pass


async def test_read_only_database_refuses_writes(db: Path) -> None:
    """Simulated with query_only, which SQLite enforces for root too (chmod does not stop root)."""
    async with await Store.open(db) as store:
        await store.ensure_user("1", "alice")
        assert store._conn is not None
        await store._conn.execute_fetchall("PRAGMA query_only = ON")
        with pytest.raises(StoreError, match=f"database {db} is read-only"):
            await store.set_enabled("1", False)
        with pytest.raises(StoreError, match="read-only"):
            await store.record_color("1", "Red", keep_recent=2)
        user = await store.get_user("1")
        assert user is not None
        assert user.enabled is True


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
async def test_read_only_file_gives_store_error(db: Path) -> None:
    async with await Store.open(db) as store:
        await store.ensure_user("1", "alice")
    chmod(db, 0o400)
    try:
        with pytest.raises(StoreError, match=r"read-only|cannot open"):
            async with await Store.open(db) as store:
                await store.set_enabled("1", False)
    finally:
        chmod(db, 0o600)
    gc.collect()


async def test_close_is_idempotent_and_clean(db: Path) -> None:
    store = await Store.open(db)
    await store.ensure_user("1", "alice")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="is closed"):
        await store.get_user("1")
    del store
    gc.collect()  # ResourceWarning would be an error here


async def test_concurrent_writes_from_many_tasks(store: Store) -> None:
    await store.ensure_user("1", "alice")
    await asyncio.gather(*(store.record_color("1", f"#0000{n:02X}", keep_recent=50) for n in range(40)))
    user = await store.get_user("1")
    assert user is not None
    assert user.changes == 40
    assert len(user.recent_colors) == 40

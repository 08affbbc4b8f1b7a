"""Cancellation at every await point of a write leaves the shared connection clean; a failing
database never ends a user's supervision.

aiosqlite runs a request it has queued even when the task awaiting it is cancelled. These tests
cancel each write at each of its requests in turn (the request is queued, then the awaiting task
is cancelled, exactly what a bot restart does to a colour write waiting on another process's lock)
and check that the connection is outside any transaction afterwards and that the next write is on
disk, as read by a connection of its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot_runner.accounts import Accounts
from colorchanger_ext.store import Store
from colorchanger_ext.testing import FakeTwitch
from colorchanger_ext.transactions import atomic

from .conftest import StartSupervisor

NO_ENV: dict[str, str] = {}
Write = Callable[[Accounts], Awaitable[object]]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "colorchanger.sqlite3"


async def add_alice(accounts: Accounts) -> None:
    await accounts.add_user(
        user_id="1001",
        login="alice",
        access_token="access-0",
        refresh_token="refresh-0",
        scopes=["user:manage:chat_color", "user:read:chat"],
        expires_at=None,
        channels=[("1001", "alice")],
    )


@pytest.fixture
async def accounts(db: Path) -> AsyncIterator[Accounts]:
    async with await Accounts.open(db, env=NO_ENV) as opened:
        await add_alice(opened)
        yield opened


def connection(store: Store) -> aiosqlite.Connection:
    conn = store._conn
    assert conn is not None
    return conn


@contextmanager
def cancel_at_request(conn: aiosqlite.Connection, number: int | None) -> Iterator[list[int]]:
    """Count the requests queued on ``conn``; with ``number``, cancel the caller right after queueing it."""
    original = conn._execute
    counted = [0]

    async def execute(fn: Any, *args: Any, **kwargs: Any) -> Any:
        counted[0] += 1
        if counted[0] == number:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # the request below is queued first, then its await is cancelled
        return await original(fn, *args, **kwargs)

    conn._execute = execute  # type: ignore[method-assign]  # fault injection into aiosqlite only
    try:
        yield counted
    finally:
        conn._execute = original  # type: ignore[method-assign]


def on_disk(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """What another process would read."""
    with sqlite3.connect(db) as other:
        return other.execute(sql).fetchall()


WRITES: dict[str, Write] = {
    "record_color": lambda a: a.store.record_color("1001", "red", keep_recent=3),
    "set_enabled": lambda a: a.store.set_enabled("1001", False),
    "set_mode": lambda a: a.store.set_mode("1001", "rainbow"),
    "save_tokens": lambda a: a.save_tokens("1001", "access-1", "refresh-1", expires_at=None),
    "add_channels": lambda a: a.add_channels("alice", [("2001", "bob")]),
    "set_colors": lambda a: a.set_colors("alice", mode="hex"),
    "remove": lambda a: a.remove("alice"),
}


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_write_cancelled_at_any_request_leaves_the_connection_clean(
    accounts: Accounts, db: Path, name: str
) -> None:
    write = WRITES[name]
    conn = connection(accounts.store)
    await accounts.store.ensure_user("9", "counter")  # the next write, after each cancellation

    # Count the requests of this write on a fresh database of its own.
    counting_db = db.with_name("counting.sqlite3")
    async with await Accounts.open(counting_db, env=NO_ENV) as counting:
        await add_alice(counting)
        with cancel_at_request(connection(counting.store), None) as counted:
            await write(counting)
    requests = counted[0]
    assert requests >= 1, f"{name} queued no request"

    for number in range(1, requests + 1):
        with cancel_at_request(conn, number):
            task = asyncio.ensure_future(write(accounts))
            with pytest.raises(asyncio.CancelledError):
                await task
        await conn.execute_fetchall("SELECT 1")  # every request queued before this one has run
        assert not conn.in_transaction, f"{name} cancelled at request {number} left a transaction open"
        # The next write of another user commits, as another process sees.
        await accounts.store.set_enabled("9", number % 2 == 0)
        assert on_disk(db, "SELECT enabled FROM users WHERE user_id = '9'") == [(int(number % 2 == 0),)]


async def test_begin_cancelled_while_another_process_holds_the_lock(accounts: Accounts, db: Path) -> None:
    """The reported case: BEGIN waits on another writer, the write is cancelled, the writer finishes."""
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        queued = asyncio.Event()
        conn = connection(accounts.store)
        original = conn._execute

        async def execute(fn: Any, *args: Any, **kwargs: Any) -> Any:
            waiting = original(fn, *args, **kwargs)
            if args and str(args[0]).startswith("BEGIN"):
                queued.set()
            return await waiting

        conn._execute = execute  # type: ignore[method-assign]  # observe only
        write = asyncio.ensure_future(accounts.store.record_color("1001", "red", keep_recent=3))
        async with asyncio.timeout(5):
            await queued.wait()
        conn._execute = original  # type: ignore[method-assign]
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        other.execute("ROLLBACK")
    finally:
        other.close()
    await conn.execute_fetchall("SELECT 1")
    assert not conn.in_transaction
    await accounts.store.set_enabled("1001", False)  # what `ccd` does
    assert on_disk(db, "SELECT enabled FROM users WHERE user_id = '1001'") == [(0,)]
    await accounts.save_tokens("1001", "access-2", "refresh-2", expires_at=None)
    reopened = await Accounts.open(db, env=NO_ENV)
    try:
        account = await reopened.get("1001")
        assert account is not None
        assert account.tokens is not None
        assert account.tokens.refresh_token == "refresh-2"
    finally:
        await reopened.close()


async def test_atomic_rolls_back_an_error_in_the_body(db: Path) -> None:
    async with aiosqlite.connect(db, isolation_level=None) as conn:
        await conn.execute_fetchall("CREATE TABLE t (x)")

        async def insert_then_fail() -> None:
            async with atomic(conn):
                await conn.execute_fetchall("INSERT INTO t VALUES (1)")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await insert_then_fail()
        assert not conn.in_transaction
        assert [tuple(row) for row in await conn.execute_fetchall("SELECT count(*) FROM t")] == [(0,)]


async def test_a_database_error_in_the_restart_loop_does_not_end_supervision(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    """The database fails while a user's bot restarts: the user is retried, not dropped for good."""
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    session = await h.start_user(alice)
    conn = connection(h.accounts.store)
    original = conn._execute
    failures = [3]  # the next reads of the accounts fail as a disk error would

    async def failing(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if failures[0] > 0 and args and "FROM users" in str(args[0]):
            failures[0] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return await original(fn, *args, **kwargs)

    conn._execute = failing  # type: ignore[method-assign]  # fault injection into aiosqlite only
    try:
        await session.close(4000, "internal server error")  # the bot loses its socket and restarts
        await twitch.wait_until(lambda: failures[0] == 0, timeout=5, what="the database failures")
    finally:
        conn._execute = original  # type: ignore[method-assign]
    await h.connected(alice, exclude=[session], timeout=10)
    await h.change(alice, "red")

"""The runner's accounts and the token key, against real SQLite files in tmp_path."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from cryptography.fernet import Fernet

import bot_runner.secret_key as secret_key
from bot_runner.accounts import Account, Accounts, ChannelRow, StoredTokens, UnknownChannelError
from bot_runner.secret_key import (
    KEY_ENV,
    SecretBox,
    SecretKeyError,
    WrongKeyError,
    key_file_path,
    load_or_create_key,
)
from colorchanger_ext.store import Store, StoreError, UnknownUserError

ACCESS = "access-Zx81secretAAAA"
REFRESH = "refresh-Qp27secretBBBB"
NO_ENV: dict[str, str] = {}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "colorchanger.sqlite3"


@pytest.fixture
async def accounts(db: Path) -> AsyncIterator[Accounts]:
    async with await Accounts.open(db, env=NO_ENV) as opened:
        yield opened


async def add_alice(accounts: Accounts, **overrides: object) -> Account:
    arguments: dict[str, object] = {
        "user_id": "1001",
        "login": "alice",
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "scopes": ["user:manage:chat_color", "user:read:chat", "user:bot"],
        "expires_at": 1_700_000_000.0,
        "channels": [("2001", "bob"), ("1001", "alice"), ("3001", "carol")],
    }
    arguments.update(overrides)
    return await accounts.add_user(**arguments)  # type: ignore[arg-type]


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_bytes(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def write_key_file(path: Path, content: bytes, mode: int) -> None:
    path.write_bytes(content)
    path.chmod(mode)


def raw_query(path: Path, sql: str, *, foreign_keys: bool = False) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def synchronous(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall("PRAGMA synchronous"))
    return int(rows[0][0])


def no_secrets(text: str) -> bool:
    return ACCESS not in text and REFRESH not in text


# -- accounts --------------------------------------------------------------------------------------


async def test_add_user_round_trip(accounts: Accounts, db: Path) -> None:
    added = await add_alice(accounts)
    assert added.user_id == "1001"
    assert added.login == "alice"
    assert added.enabled
    assert added.state.mode == "preset"
    assert added.tokens is not None
    assert added.tokens.access_token == ACCESS
    assert added.tokens.refresh_token == REFRESH
    assert added.tokens.scopes == {"user:manage:chat_color", "user:read:chat", "user:bot"}
    assert added.tokens.expires_at == 1_700_000_000.0
    assert (added.tokens.status, added.tokens.status_reason) == ("ok", None)
    assert [c.login for c in added.channels] == ["bob", "alice", "carol"]
    assert [c.channel_id for c in added.channels] == ["2001", "1001", "3001"]
    assert await accounts.get("1001") == added
    assert await accounts.get("ALICE") == added
    assert await accounts.get("nobody") is None
    assert await accounts.list() == [added]
    # Stored encrypted, scopes sorted and space separated.
    (row,) = raw_query(db, "SELECT access_token, refresh_token, scopes FROM tokens")
    assert isinstance(row[0], bytes)
    assert isinstance(row[1], bytes)
    assert row[2] == "user:bot user:manage:chat_color user:read:chat"


async def test_new_user_gets_the_given_colour_settings(accounts: Accounts) -> None:
    added = await add_alice(accounts, mode="hex", hex_policy="never", channels=None, expires_at=None)
    assert (added.state.mode, added.state.hex_policy) == ("hex", "never")
    assert added.channels == ()
    assert added.tokens is not None
    assert added.tokens.expires_at is None
    with pytest.raises(ValueError, match="mode must be one of"):
        await add_alice(accounts, user_id="9", mode="disco")
    with pytest.raises(ValueError, match="whitespace"):
        await add_alice(accounts, user_id="9", scopes=["a b"])
    assert await accounts.get("9") is None


async def test_re_adding_keeps_settings_and_logs_in_again(accounts: Accounts) -> None:
    await add_alice(accounts)
    await accounts.set_enabled("alice", False)
    await accounts.set_colors("alice", mode="hex", hex_policy="always")
    await accounts.mark_channel_banned("1001", "2001", at=5.0)
    assert await accounts.mark_needs_login("1001", "refresh token rejected")

    again = await add_alice(
        accounts,
        login="Alice2",
        access_token="access-new",
        refresh_token="refresh-new",
        scopes=["user:bot"],
        channels=[("3001", "carol"), ("2001", "bob")],
    )
    assert again.login == "Alice2"
    assert not again.enabled
    assert (again.state.mode, again.state.hex_policy) == ("hex", "always")
    assert again.tokens is not None
    assert (again.tokens.access_token, again.tokens.refresh_token) == ("access-new", "refresh-new")
    assert again.tokens.scopes == {"user:bot"}
    assert (again.tokens.status, again.tokens.status_reason) == ("ok", None)
    assert again.channels == (ChannelRow("3001", "carol", None), ChannelRow("2001", "bob", None))

    kept = await add_alice(accounts, login="alice", channels=None)
    assert [c.login for c in kept.channels] == ["carol", "bob"]


async def test_account_for_a_user_without_tokens(accounts: Accounts) -> None:
    """Colour-only users (the drop-in component's) show up with no tokens."""
    await accounts.store.ensure_user("5", "zed")
    await add_alice(accounts)
    listed = await accounts.list()
    assert [a.login for a in listed] == ["alice", "zed"]
    assert listed[1].tokens is None
    assert listed[1].channels == ()
    with pytest.raises(UnknownUserError, match="no tokens"):
        await accounts.save_tokens("5", "a", "r", expires_at=None)


async def test_raw_database_bytes_hold_no_token(db: Path) -> None:
    accounts = await Accounts.open(db, env=NO_ENV)
    try:
        await add_alice(accounts)
        await accounts.save_tokens("1001", ACCESS + "-2", REFRESH + "-2", expires_at=None)
        on_disk = read_bytes(db) + read_bytes(db.with_name(db.name + "-wal"))
        assert b"alice" in on_disk  # the scan does see the written data
        assert ACCESS.encode() not in on_disk
        assert REFRESH.encode() not in on_disk
    finally:
        await accounts.close()
    assert not db.with_name(db.name + "-wal").exists() or read_bytes(db.with_name(db.name + "-wal")) == b""
    on_disk = read_bytes(db)
    assert b"alice" in on_disk
    assert ACCESS.encode() not in on_disk
    assert REFRESH.encode() not in on_disk


async def test_save_tokens_is_visible_after_a_restart(accounts: Accounts, db: Path) -> None:
    await add_alice(accounts)
    assert await accounts.mark_needs_login("1001", "missing scope user:bot")
    await accounts.save_tokens("1001", "access-2", "refresh-2", expires_at=123.0)
    # A second process (or the runner after a restart) sees both halves of the new pair.
    async with await Accounts.open(db, env=NO_ENV) as other:
        seen = await other.get("1001")
        assert seen is not None
        assert seen.tokens is not None
        assert (seen.tokens.access_token, seen.tokens.refresh_token) == ("access-2", "refresh-2")
        assert seen.tokens.expires_at == 123.0
        assert seen.tokens.scopes == {"user:manage:chat_color", "user:read:chat", "user:bot"}  # kept
        assert seen.tokens.status == "needs-login"  # a refresh does not cure a missing scope
        await other.save_tokens("1001", "access-3", "refresh-3", expires_at=None, scopes=["user:bot"])
    mine = await accounts.get("alice")
    assert mine is not None
    assert mine.tokens is not None
    assert (mine.tokens.access_token, mine.tokens.refresh_token) == ("access-3", "refresh-3")
    assert mine.tokens.scopes == {"user:bot"}
    # The durable write's synchronous = FULL does not stick to the store's connection.
    async with accounts.store.connection("test") as conn:
        assert await synchronous(conn) == 1
        assert not conn.in_transaction


async def test_save_tokens_for_an_unknown_user_fails_cleanly(accounts: Accounts) -> None:
    with pytest.raises(StoreError, match="user 42 has no tokens"):
        await accounts.save_tokens("42", "a", "r", expires_at=None)
    async with accounts.store.connection("test") as conn:
        assert not conn.in_transaction
        assert await synchronous(conn) == 1


async def test_mark_needs_login_reports_the_change_once(accounts: Accounts) -> None:
    await add_alice(accounts)
    assert await accounts.mark_needs_login("1001", "invalid refresh token")
    assert not await accounts.mark_needs_login("1001", "something else")
    account = await accounts.get("1001")
    assert account is not None
    assert account.tokens is not None
    assert (account.tokens.status, account.tokens.status_reason) == ("needs-login", "invalid refresh token")
    assert not await accounts.mark_needs_login("404", "no such user")
    await add_alice(accounts)
    assert await accounts.mark_needs_login("1001", "again")


async def test_remove_leaves_no_orphans(accounts: Accounts, db: Path) -> None:
    await add_alice(accounts)
    await add_alice(accounts, user_id="1002", login="bob", channels=[("1001", "alice")])
    assert await accounts.remove("ALICE")
    assert not await accounts.remove("alice")
    assert [a.login for a in await accounts.list()] == ["bob"]
    assert raw_query(db, "SELECT user_id FROM tokens") == [("1002",)]
    assert raw_query(db, "SELECT user_id, channel_id FROM channels") == [("1002", "1001")]
    assert raw_query(db, "SELECT user_id FROM users") == [("1002",)]
    assert await accounts.remove("1002")
    assert raw_query(db, "SELECT count(*) FROM tokens") == [(0,)]
    assert raw_query(db, "SELECT count(*) FROM channels") == [(0,)]


async def test_schema_cascades_deletes(accounts: Accounts, db: Path) -> None:
    """The foreign keys themselves cascade, for any other connection that deletes a user."""
    await add_alice(accounts)
    raw_query(db, "DELETE FROM users WHERE user_id = '1001'", foreign_keys=True)
    assert raw_query(db, "SELECT count(*) FROM tokens") == [(0,)]
    assert raw_query(db, "SELECT count(*) FROM channels") == [(0,)]


async def test_unknown_users_are_named(accounts: Accounts) -> None:
    with pytest.raises(UnknownUserError, match="no user ghost in database"):
        await accounts.set_enabled("ghost", True)
    with pytest.raises(UnknownUserError, match="ghost"):
        await accounts.set_colors("ghost", mode="hex")
    with pytest.raises(UnknownUserError, match="ghost"):
        await accounts.add_channels("ghost", [("1", "x")])
    with pytest.raises(UnknownUserError, match="ghost"):
        await accounts.remove_channels("ghost", ["x"])


async def test_set_enabled_and_colors(accounts: Accounts) -> None:
    await add_alice(accounts)
    assert not (await accounts.set_enabled("alice", False)).enabled
    assert (await accounts.set_enabled("1001", True)).enabled
    changed = await accounts.set_colors("alice", hex_policy="never")
    assert (changed.state.mode, changed.state.hex_policy) == ("preset", "never")
    changed = await accounts.set_colors("alice", mode="hex")
    assert (changed.state.mode, changed.state.hex_policy) == ("hex", "never")
    assert await accounts.set_colors("alice") == changed
    with pytest.raises(ValueError, match="hex_policy must be one of"):
        await accounts.set_colors("alice", hex_policy="sometimes")


async def test_a_login_held_by_two_users_must_be_named_by_id(accounts: Accounts) -> None:
    await add_alice(accounts)
    await add_alice(accounts, user_id="1002", login="Alice")  # the old alice renamed, unseen since
    with pytest.raises(StoreError, match="matches several users"):
        await accounts.get("alice")
    account = await accounts.get("1002")
    assert account is not None
    assert account.login == "Alice"


async def test_add_and_remove_channels(accounts: Accounts) -> None:
    await add_alice(accounts, channels=[("2001", "bob")])
    await accounts.mark_channel_banned("1001", "2001")
    added = await accounts.add_channels(
        "alice", [("3001", "carol"), ("2001", "bob_renamed"), ("4001", "dave"), ("3001", "carol")]
    )
    assert added.channels == (
        ChannelRow("2001", "bob_renamed", None),  # kept its place, un-banned, renamed
        ChannelRow("3001", "carol", None),
        ChannelRow("4001", "dave", None),
    )

    with pytest.raises(UnknownChannelError, match="no channel erin, frank") as caught:
        await accounts.remove_channels("alice", ["CAROL", "erin", "frank"])
    assert "nothing removed" in str(caught.value)
    assert isinstance(caught.value, StoreError)
    unchanged = await accounts.get("alice")
    assert unchanged is not None
    assert unchanged.channels == added.channels

    removed = await accounts.remove_channels("alice", ["CAROL", "2001", "carol"])
    assert removed.channels == (ChannelRow("4001", "dave", None),)
    appended = await accounts.add_channels("alice", [("5001", "erin")])
    assert [c.login for c in appended.channels] == ["dave", "erin"]


async def test_banned_channels_are_not_live_until_re_added(accounts: Accounts) -> None:
    await add_alice(accounts)
    await accounts.mark_channel_banned("1001", "2001", at=10.0)
    await accounts.mark_channel_banned("1001", "2001", at=20.0)  # the first ban time is kept
    await accounts.mark_channel_banned("1001", "9999")  # unknown channel: nothing to do
    account = await accounts.get("alice")
    assert account is not None
    assert account.channels[0] == ChannelRow("2001", "bob", 10.0)
    assert [c.login for c in account.live_channels] == ["alice", "carol"]
    again = await accounts.add_channels("alice", [("2001", "bob")])
    assert [c.login for c in again.live_channels] == ["bob", "alice", "carol"]
    await accounts.mark_channel_banned("1001", "3001")
    relogged = await add_alice(accounts)  # replacing the list clears bans too
    assert relogged.live_channels == relogged.channels


async def test_data_version_moves_only_for_other_connections(accounts: Accounts, db: Path) -> None:
    await add_alice(accounts)
    before = await accounts.data_version()
    await accounts.set_enabled("alice", False)
    await accounts.save_tokens("1001", "a2", "r2", expires_at=None)
    assert await accounts.data_version() == before
    async with await Accounts.open(db, env=NO_ENV) as cli:  # the CLI, say
        await cli.set_enabled("alice", True)
    after = await accounts.data_version()
    assert after != before
    assert await accounts.data_version() == after
    account = await accounts.get("alice")
    assert account is not None
    assert account.enabled


async def test_repr_shows_no_token(accounts: Accounts) -> None:
    account = await add_alice(accounts)
    assert account.tokens is not None
    for text in (repr(account), str(account), repr(account.tokens), str(account.tokens)):
        assert no_secrets(text)
    assert "alice" in repr(account)
    assert isinstance(account.tokens, StoredTokens)
    assert "user:bot" in repr(account.tokens)


# -- the key ---------------------------------------------------------------------------------------


async def test_key_file_and_database_are_private(db: Path) -> None:
    async with await Accounts.open(db, env=NO_ENV) as accounts:
        await add_alice(accounts)
    key_file = db.with_name("colorchanger.sqlite3.key")
    assert key_file_path(db) == key_file
    assert file_mode(key_file) == 0o600
    assert file_mode(db) == 0o600
    key = read_bytes(key_file).strip()
    Fernet(key)  # a valid key
    assert load_or_create_key(db, env=NO_ENV) == key  # read back, not replaced
    async with await Accounts.open(db, env=NO_ENV) as accounts:
        account = await accounts.get("alice")
    assert account is not None
    assert account.tokens is not None
    assert account.tokens.refresh_token == REFRESH


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
async def test_key_file_readable_by_others_is_refused(
    db: Path, mode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = key_file_path(db)
    write_key_file(key_file, Fernet.generate_key(), mode)
    opened: list[Store] = []
    real_open = Store.open

    async def spy(path: Path) -> Store:
        store = await real_open(path)
        opened.append(store)
        return store

    monkeypatch.setattr(Store, "open", spy)
    with pytest.raises(SecretKeyError) as caught:
        await Accounts.open(db, env=NO_ENV)
    assert f"chmod 600 {key_file}" in str(caught.value)
    assert f"{mode:04o}" in str(caught.value)
    # The store it had opened is closed again.
    assert len(opened) == 1
    with pytest.raises(StoreError, match="is closed"):
        async with opened[0].connection("test"):
            pass


def test_malformed_key_file_is_refused_without_echoing_it(db: Path) -> None:
    write_key_file(key_file_path(db), b"hunter2-not-a-key\n", 0o600)
    with pytest.raises(SecretKeyError, match="does not hold a valid Fernet key") as caught:
        load_or_create_key(db, env=NO_ENV)
    assert "hunter2" not in str(caught.value)


def test_empty_key_file_is_waited_for_then_refused(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_key, "PARTIAL_KEY_WAIT", 0.1)
    write_key_file(key_file_path(db), b"", 0o600)
    with pytest.raises(SecretKeyError, match="is empty"):
        load_or_create_key(db, env=NO_ENV)


def test_key_file_created_meanwhile_is_used(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes starting at once: the one that loses the O_EXCL race reads the winner's key."""
    theirs = Fernet.generate_key()
    key_file = key_file_path(db)
    real_open = os.open

    def racing_open(path: object, flags: int, mode: int = 0o777) -> int:
        if path == key_file and flags & os.O_EXCL and not key_file.exists():
            write_key_file(key_file, theirs + b"\n", 0o600)
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", racing_open)
    assert load_or_create_key(db, env=NO_ENV) == theirs


async def test_env_key_is_used_and_no_key_file_made(db: Path) -> None:
    key = Fernet.generate_key().decode()
    env = {KEY_ENV: key + "\n"}
    async with await Accounts.open(db, env=env) as accounts:
        await add_alice(accounts)
    assert not key_file_path(db).exists()
    async with await Accounts.open(db, env={KEY_ENV: key}) as accounts:
        account = await accounts.get("alice")
    assert account is not None
    assert account.tokens is not None
    assert account.tokens.access_token == ACCESS


@pytest.mark.parametrize("value", ["not-a-valid-key-s3cr3t", "c2hvcnQ=", "   "])
async def test_invalid_env_key_is_refused_without_echoing_it(db: Path, value: str) -> None:
    with pytest.raises(SecretKeyError, match=KEY_ENV) as caught:
        await Accounts.open(db, env={KEY_ENV: value})
    message = str(caught.value)
    if value.strip():
        assert value not in message
        assert caught.value.__cause__ is None
    else:
        assert "empty" in message
    assert not key_file_path(db).exists()


async def test_wrong_key_is_a_clear_error_without_token_text(db: Path) -> None:
    async with await Accounts.open(db, env={KEY_ENV: Fernet.generate_key().decode()}) as accounts:
        await add_alice(accounts)
    async with await Accounts.open(db, env={KEY_ENV: Fernet.generate_key().decode()}) as accounts:
        with pytest.raises(WrongKeyError) as caught:
            await accounts.get("alice")
        message = str(caught.value)
        assert message == (
            f"the tokens in {db} were encrypted with another key: restore {key_file_path(db)} "
            f"or {KEY_ENV}, or log the users in again"
        )
        assert isinstance(caught.value, StoreError)
        assert caught.value.__cause__ is None
        assert no_secrets(message)
        # Logging the user in again is the way out.
        await add_alice(accounts, access_token="access-3")
        account = await accounts.get("alice")
        assert account is not None
        assert account.tokens is not None
        assert account.tokens.access_token == "access-3"


def test_secret_box_round_trip_and_repr(db: Path) -> None:
    key = Fernet.generate_key()
    box = SecretBox(key, database=db)
    sealed = box.encrypt(ACCESS)
    assert ACCESS.encode() not in sealed
    assert box.decrypt(sealed) == ACCESS
    assert key.decode() not in repr(box)
    with pytest.raises(WrongKeyError):
        SecretBox(Fernet.generate_key(), database=db).decrypt(sealed)
    with pytest.raises(WrongKeyError):
        box.decrypt(b"garbage")


async def test_token_writes_commit_with_synchronous_full(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A used refresh token cannot be un-used: its successor's commit must survive a power cut."""
    await add_alice(accounts)
    statements: list[str] = []
    real = aiosqlite.Connection.execute_fetchall

    async def spy(self: aiosqlite.Connection, sql: str, parameters: object = None) -> object:
        statements.append(" ".join(sql.split()[:4]))
        return await real(self, sql, parameters)

    monkeypatch.setattr(aiosqlite.Connection, "execute_fetchall", spy)
    await accounts.save_tokens("1001", "a2", "r2", expires_at=None)
    assert statements == [
        "PRAGMA synchronous",
        "PRAGMA synchronous = FULL",
        "BEGIN IMMEDIATE",
        "UPDATE tokens SET access_token",
        "COMMIT",
        "PRAGMA synchronous = 1",  # back to the store's NORMAL
    ]

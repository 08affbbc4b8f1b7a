"""The runner's accounts: each user's encrypted Twitch tokens and channels, beside their colour state.

Everything goes through the colour ``Store``'s one connection (its lock serialises it with the
colour writes) and every method commits before it returns. Token pairs are written whole and
with ``synchronous = FULL``: Twitch refresh tokens are single-use, so a pair lost to a crash or a
power cut after it was used would lock the account out.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self, cast

import aiosqlite

from colorchanger_ext.colors import (
    DEFAULT_RAINBOW_STEP,
    PALETTE_ORDERS,
    Readability,
    check_rainbow_step,
    check_readability,
    parse_palette,
)
from colorchanger_ext.settings import COLOR_MODES, HEX_POLICIES, HexPolicy
from colorchanger_ext.store import (
    MAX_ERROR_LENGTH,
    USER_COLUMNS,
    NoPaletteError,
    Store,
    StoreError,
    UnknownUserError,
    UserState,
    palette_json,
    user_from_row,
)
from colorchanger_ext.transactions import atomic

from .secret_key import SecretBox, load_or_create_key

__all__ = [
    "Account",
    "Accounts",
    "ChannelRow",
    "StoredTokens",
    "TokenStatus",
    "UnknownChannelError",
]

TokenStatus = Literal["ok", "needs-login"]

_TOKEN_COLUMNS = (
    "user_id, access_token, refresh_token, scopes, expires_at, status, status_reason, updated_at, bot_enabled"
)
_CHANNEL_COLUMNS = "user_id, channel_id, channel_login, banned_at"


class UnknownChannelError(StoreError, KeyError):
    """``remove_channels`` named channels the user does not have; nothing was removed."""

    def __str__(self) -> str:
        # KeyError would repr() the message; this one is a sentence.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class StoredTokens:
    """One user's decrypted token pair and its status; the tokens never appear in repr or logs."""

    user_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    scopes: frozenset[str]
    expires_at: float | None
    status: TokenStatus
    status_reason: str | None
    updated_at: float
    bot_enabled: bool = True


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """A channel the user's bot joins, in the order it was added."""

    channel_id: str
    login: str
    banned_at: float | None


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the runner sees them: colour state, tokens (None if never logged in), channels."""

    state: UserState
    tokens: StoredTokens | None
    channels: tuple[ChannelRow, ...]

    @property
    def login(self) -> str:
        """The last seen Twitch login."""
        return self.state.login

    @property
    def user_id(self) -> str:
        """The Twitch user id, stable across renames."""
        return self.state.user_id

    @property
    def enabled(self) -> bool:
        """Whether the runner runs the user's bot (``users enable/disable``; not ``cce``/``ccd``)."""
        return self.tokens is not None and self.tokens.bot_enabled

    @property
    def live_channels(self) -> tuple[ChannelRow, ...]:
        """The channels to join: those Twitch has not banned the user from since they were added."""
        return tuple(channel for channel in self.channels if channel.banned_at is None)


def _scopes_text(scopes: Iterable[str]) -> str:
    """Scopes as one sorted, space-separated column; a scope with spaces would not read back whole."""
    cleaned: set[str] = set()
    for scope in scopes:
        if any(char.isspace() for char in scope):
            raise ValueError(f"scope {scope!r} contains whitespace")
        if scope:
            cleaned.add(scope)
    return " ".join(sorted(cleaned))


def _channel_list(channels: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(id, login) pairs with repeats of an id dropped, keeping the first's place."""
    seen: dict[str, str] = {}
    for channel_id, channel_login in channels:
        if not channel_id or not channel_login:
            raise ValueError(f"channel needs both an id and a login, got ({channel_id!r}, {channel_login!r})")
        seen.setdefault(channel_id, channel_login)
    return list(seen.items())


def _check_colors(
    mode: str | None,
    hex_policy: str | None,
    readability: str | None = None,
    rainbow_step: int | None = None,
    palette_order: str | None = None,
) -> None:
    """Fail with the choices named, before the CHECK constraint fails with less to say."""
    if mode is not None and mode not in COLOR_MODES:
        raise ValueError(f"mode must be one of {', '.join(COLOR_MODES)}, not {mode!r}")
    if hex_policy is not None and hex_policy not in HEX_POLICIES:
        raise ValueError(f"hex_policy must be one of {', '.join(HEX_POLICIES)}, not {hex_policy!r}")
    if readability is not None:
        check_readability(readability)
    if rainbow_step is not None:
        check_rainbow_step(rainbow_step)
    if palette_order is not None and palette_order not in PALETTE_ORDERS:
        raise ValueError(f"palette_order must be one of {', '.join(PALETTE_ORDERS)}, not {palette_order!r}")


class Accounts:
    """The runner's view of the database: users with their encrypted tokens and channels."""

    store: Store

    def __init__(self, store: Store, box: SecretBox) -> None:
        """Wrap an open store and the key; ``Accounts.open`` makes both from a path."""
        self.store = store
        self._box = box

    @classmethod
    async def open(cls, database: str | os.PathLike[str], *, env: Mapping[str, str] = os.environ) -> Accounts:
        """Open (and migrate) the database, then load the key; no connection is left open on failure."""
        store = await Store.open(database)
        try:
            # A thread: the key file may be waited on briefly while another process writes it.
            key = await asyncio.to_thread(load_or_create_key, store.path, env=env)
            box = SecretBox(key, database=store.path)
        except BaseException:
            await store.close()
            raise
        return cls(store, box)

    async def close(self) -> None:
        """Close the store; calling it again does nothing."""
        await self.store.close()

    async def __aenter__(self) -> Self:
        """``async with await Accounts.open(path) as accounts:`` closes on the way out."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close even when the body failed, so no connection thread outlives it."""
        await self.close()

    # -- transactions ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transaction(
        self, action: str, *, write: bool = True, durable: bool = False
    ) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction on the store's connection: a consistent snapshot, or an atomic write.

        ``durable`` raises ``synchronous`` to FULL for this commit only, so it survives a power
        cut: the store's NORMAL is right for colour changes but not for single-use tokens.
        SQLite refuses to change ``synchronous`` inside a transaction, hence not ``store.transaction``.
        """
        async with self.store.connection(action) as conn:
            restore: int | None = None
            if durable:
                rows = list(await conn.execute_fetchall("PRAGMA synchronous"))
                restore = int(rows[0][0])
                await conn.execute_fetchall("PRAGMA synchronous = FULL")
            try:
                async with atomic(conn, "BEGIN IMMEDIATE" if write else "BEGIN"):
                    yield conn
            finally:
                if restore is not None:
                    # A connection left at FULL is merely slower; the original error says more.
                    with contextlib.suppress(sqlite3.Error):
                        await conn.execute_fetchall(f"PRAGMA synchronous = {restore}")

    async def _resolve(self, conn: aiosqlite.Connection, login_or_id: str) -> str | None:
        """The user id for an id or a login (any case); an id wins, a login held by two rows is refused."""
        rows = list(
            await conn.execute_fetchall("SELECT user_id FROM users WHERE user_id = ?", (login_or_id,))
        )
        if rows:
            return str(rows[0][0])
        rows = list(
            await conn.execute_fetchall(
                "SELECT user_id FROM users WHERE lower(login) = lower(?) ORDER BY user_id", (login_or_id,)
            )
        )
        if len(rows) > 1:
            ids = ", ".join(str(row[0]) for row in rows)
            raise StoreError(
                f"login {login_or_id} matches several users in database {self.store.path} "
                f"(ids {ids}; one was renamed): name the user by id"
            )
        return str(rows[0][0]) if rows else None

    async def _require(self, conn: aiosqlite.Connection, login_or_id: str) -> str:
        """The user id, or an ``UnknownUserError`` naming what was asked for."""
        user_id = await self._resolve(conn, login_or_id)
        if user_id is None:
            raise UnknownUserError(f"no user {login_or_id} in database {self.store.path}")
        return user_id

    async def _load(
        self, conn: aiosqlite.Connection, user_ids: Sequence[str] | None
    ) -> builtins.list[Account]:
        """Accounts for these ids (all when None), by login, read on ``conn`` inside its transaction."""
        where, params = "", tuple(user_ids or ())
        if user_ids is not None:
            if not user_ids:
                return []
            where = f" WHERE user_id IN ({', '.join('?' * len(user_ids))})"
        users = await conn.execute_fetchall(
            f"SELECT {USER_COLUMNS} FROM users{where} ORDER BY login COLLATE NOCASE, user_id", params
        )
        tokens = {
            row["user_id"]: self._tokens_from_row(row)
            for row in await conn.execute_fetchall(f"SELECT {_TOKEN_COLUMNS} FROM tokens{where}", params)
        }
        channels: dict[str, builtins.list[ChannelRow]] = {}
        for row in await conn.execute_fetchall(
            f"SELECT {_CHANNEL_COLUMNS} FROM channels{where} ORDER BY user_id, position, channel_id", params
        ):
            channels.setdefault(row["user_id"], []).append(
                ChannelRow(row["channel_id"], row["channel_login"], row["banned_at"])
            )
        return [
            Account(
                user_from_row(row),
                tokens.get(row["user_id"]),
                tuple(channels.get(row["user_id"], ())),
            )
            for row in users
        ]

    async def _load_one(self, conn: aiosqlite.Connection, user_id: str) -> Account:
        """The account just written, read back in the same transaction."""
        found = await self._load(conn, [user_id])
        if not found:
            raise UnknownUserError(f"no user {user_id} in database {self.store.path}")
        return found[0]

    def _tokens_from_row(self, row: sqlite3.Row) -> StoredTokens:
        """The one place a tokens row is decrypted."""
        return StoredTokens(
            user_id=row["user_id"],
            access_token=self._box.decrypt(row["access_token"]),
            refresh_token=self._box.decrypt(row["refresh_token"]),
            scopes=frozenset(str(row["scopes"]).split()),
            expires_at=row["expires_at"],
            status=cast(TokenStatus, row["status"]),
            status_reason=row["status_reason"],
            updated_at=row["updated_at"],
            bot_enabled=bool(row["bot_enabled"]),
        )

    # -- users and tokens -----------------------------------------------------------------------

    async def add_user(
        self,
        *,
        user_id: str,
        login: str,
        access_token: str,
        refresh_token: str,
        scopes: Iterable[str],
        expires_at: float | None,
        channels: Sequence[tuple[str, str]] | None,
        mode: str = "preset",
        hex_policy: HexPolicy = "auto",
        readability: Readability = "dark",
        rainbow_step: int = DEFAULT_RAINBOW_STEP,
    ) -> Account:
        """Log a user in (or in again): one transaction, so a half-added account never exists.

        A new user starts enabled with these colour settings; an existing one keeps its settings
        and enabled flag, gets the new login, fresh tokens with status ``ok``, and (unless
        ``channels`` is None) exactly these channels, in this order, none banned.
        """
        _check_colors(mode, hex_policy, readability, rainbow_step)
        if mode == "palette":
            raise NoPaletteError("a new user has no palette yet: add them with another mode")
        scopes_text = _scopes_text(scopes)
        channel_list = None if channels is None else _channel_list(channels)
        access, refresh = self._box.encrypt(access_token), self._box.encrypt(refresh_token)
        now = time.time()
        async with self._transaction(f"adding user {login} ({user_id})", durable=True) as conn:
            await conn.execute_fetchall(
                "INSERT INTO users (user_id, login, mode, hex_policy, readability, rainbow_step, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE "
                "SET login = excluded.login, updated_at = excluded.updated_at "
                "WHERE users.login IS NOT excluded.login",
                (user_id, login, mode, hex_policy, readability, rainbow_step, now, now),
            )
            await conn.execute_fetchall(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'ok', NULL, ?, 1) "
                "ON CONFLICT (user_id) DO UPDATE SET access_token = excluded.access_token, "
                "refresh_token = excluded.refresh_token, scopes = excluded.scopes, "
                "expires_at = excluded.expires_at, status = 'ok', status_reason = NULL, "
                "updated_at = excluded.updated_at",
                (user_id, access, refresh, scopes_text, expires_at, now),
            )
            if channel_list is not None:
                await conn.execute_fetchall("DELETE FROM channels WHERE user_id = ?", (user_id,))
                await conn.executemany(
                    "INSERT INTO channels (user_id, channel_id, channel_login, position) VALUES (?, ?, ?, ?)",
                    [(user_id, cid, clogin, index) for index, (cid, clogin) in enumerate(channel_list)],
                )
            return await self._load_one(conn, user_id)

    async def save_tokens(
        self,
        user_id: str,
        access_token: str,
        refresh_token: str,
        *,
        expires_at: float | None,
        scopes: Iterable[str] | None = None,
    ) -> None:
        """Persist a refreshed pair, both halves in one UPDATE, durably committed before returning.

        Call it before using the new tokens: the old refresh token is already spent. ``scopes``
        None keeps the stored ones. The status is left alone (a refresh does not cure a missing
        scope); ``add_user`` is what sets it back to ``ok``.
        """
        access, refresh = self._box.encrypt(access_token), self._box.encrypt(refresh_token)
        scopes_text = None if scopes is None else _scopes_text(scopes)
        async with self._transaction(f"saving tokens for user {user_id}", durable=True) as conn:
            rows = list(
                await conn.execute_fetchall(
                    "UPDATE tokens SET access_token = ?, refresh_token = ?, expires_at = ?, "
                    "scopes = coalesce(?, scopes), updated_at = ? WHERE user_id = ? RETURNING user_id",
                    (access, refresh, expires_at, scopes_text, time.time(), user_id),
                )
            )
            if not rows:
                raise UnknownUserError(
                    f"user {user_id} has no tokens in database {self.store.path}; add_user() logs users in"
                )

    async def mark_needs_login(self, user_id: str, reason: str) -> bool:
        """Flag the tokens as unusable until ``add_user``; True only when this call changed the status.

        So the caller reports it once. The first reason is kept; an unknown user is not an error
        (the CLI may have removed them meanwhile) and returns False.
        """
        if len(reason) > MAX_ERROR_LENGTH:
            reason = reason[: MAX_ERROR_LENGTH - 1] + "…"
        async with self.store.connection(f"marking user {user_id} as needing login") as conn:
            rows = list(
                await conn.execute_fetchall(
                    "UPDATE tokens SET status = 'needs-login', status_reason = ?, updated_at = ? "
                    "WHERE user_id = ? AND status != 'needs-login' RETURNING user_id",
                    (reason, time.time(), user_id),
                )
            )
        return bool(rows)

    async def get(self, user_id_or_login: str) -> Account | None:
        """One account by user id, or by login in any case; None if unknown."""
        async with self._transaction(f"reading user {user_id_or_login}", write=False) as conn:
            user_id = await self._resolve(conn, user_id_or_login)
            if user_id is None:
                return None
            found = await self._load(conn, [user_id])
        return found[0] if found else None

    async def list(self) -> builtins.list[Account]:
        """Every user, by login, from one consistent snapshot (users without tokens included)."""
        async with self._transaction("listing accounts", write=False) as conn:
            return await self._load(conn, None)

    async def remove(self, login_or_id: str) -> bool:
        """Forget a user entirely (colour state, tokens, channels); False if there was no such user.

        The schema cascades, but the children are deleted explicitly in the same transaction so
        nothing is orphaned even on a connection opened without ``PRAGMA foreign_keys``.
        """
        async with self.store.transaction(f"removing user {login_or_id}") as conn:
            user_id = await self._resolve(conn, login_or_id)
            if user_id is None:
                return False
            await conn.execute_fetchall("DELETE FROM tokens WHERE user_id = ?", (user_id,))
            await conn.execute_fetchall("DELETE FROM channels WHERE user_id = ?", (user_id,))
            await conn.execute_fetchall("DELETE FROM original_colors WHERE user_id = ?", (user_id,))
            await conn.execute_fetchall("DELETE FROM users WHERE user_id = ?", (user_id,))
        return True

    async def set_enabled(self, login_or_id: str, enabled: bool) -> Account:
        """Start or stop the user's bot (the supervisor notices through ``data_version``)."""
        async with self.store.transaction(
            f"{'enabling' if enabled else 'disabling'} user {login_or_id}"
        ) as conn:
            user_id = await self._require(conn, login_or_id)
            await conn.execute_fetchall(
                "UPDATE tokens SET bot_enabled = ?, updated_at = ? WHERE user_id = ?",
                (bool(enabled), time.time(), user_id),
            )
            return await self._load_one(conn, user_id)

    async def set_colors(
        self,
        login_or_id: str,
        *,
        mode: str | None = None,
        hex_policy: str | None = None,
        readability: str | None = None,
        rainbow_step: int | None = None,
        palette: Sequence[str] | None = None,
        palette_order: str | None = None,
    ) -> Account:
        """Change how the user's colours are picked; None leaves that setting as it is.

        ``palette`` entries are parsed as ``colors.parse_palette`` does (``PaletteError`` names a
        bad one by position); a new palette starts from its first entry, ``()`` empties it. Palette
        mode without a palette, given or stored, is refused (``NoPaletteError``); nothing changes then.
        """
        _check_colors(mode, hex_policy, readability, rainbow_step, palette_order)
        colors = None if palette is None else parse_palette(list(palette))
        async with self.store.transaction(f"setting colours for user {login_or_id}") as conn:
            user_id = await self._require(conn, login_or_id)
            account = await self._load_one(conn, user_id)
            if (mode or account.state.mode) == "palette" and not (
                account.state.palette if colors is None else colors
            ):
                raise NoPaletteError(f"user {account.login} has no palette to use in palette mode")
            settings = (mode, hex_policy, readability, rainbow_step, palette_order)
            if any(value is not None for value in settings):
                await conn.execute_fetchall(
                    "UPDATE users SET mode = coalesce(?, mode), hex_policy = coalesce(?, hex_policy), "
                    "readability = coalesce(?, readability), rainbow_step = coalesce(?, rainbow_step), "
                    "palette_order = coalesce(?, palette_order), updated_at = ? WHERE user_id = ?",
                    (*settings, time.time(), user_id),
                )
            if colors is not None:
                await conn.execute_fetchall(
                    "UPDATE users SET palette = ?, palette_position = 0, palette_remaining = '[]', "
                    "updated_at = ? WHERE user_id = ?",
                    (palette_json(colors), time.time(), user_id),
                )
            return await self._load_one(conn, user_id)

    # -- channels -------------------------------------------------------------------------------

    async def add_channels(self, login_or_id: str, channels: Sequence[tuple[str, str]]) -> Account:
        """Append (id, login) channels after the existing ones; a channel already there is un-banned.

        Re-adding is how a channel banned via ``mark_channel_banned`` is tried again; its login
        is refreshed (renames) and its place kept.
        """
        channel_list = _channel_list(channels)
        async with self.store.transaction(f"adding channels for user {login_or_id}") as conn:
            user_id = await self._require(conn, login_or_id)
            rows = list(
                await conn.execute_fetchall(
                    "SELECT coalesce(max(position) + 1, 0) FROM channels WHERE user_id = ?", (user_id,)
                )
            )
            position = int(rows[0][0])
            for channel_id, channel_login in channel_list:
                inserted = list(
                    await conn.execute_fetchall(
                        "INSERT INTO channels (user_id, channel_id, channel_login, position) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, channel_id) DO UPDATE "
                        "SET channel_login = excluded.channel_login, banned_at = NULL "
                        "RETURNING position",
                        (user_id, channel_id, channel_login, position),
                    )
                )
                if int(inserted[0][0]) == position:
                    position += 1
            return await self._load_one(conn, user_id)

    async def remove_channels(self, login_or_id: str, channel_logins: Iterable[str]) -> Account:
        """Drop channels by login (any case) or id; if any is unknown, nothing is removed.

        All-or-nothing, so a typo in one name does not leave the list half edited.
        """
        wanted = list(dict.fromkeys(channel_logins))
        async with self.store.transaction(f"removing channels for user {login_or_id}") as conn:
            user_id = await self._require(conn, login_or_id)
            rows = await conn.execute_fetchall(
                "SELECT channel_id, channel_login FROM channels WHERE user_id = ?", (user_id,)
            )
            by_name: dict[str, str] = {}
            for row in rows:
                by_name.setdefault(str(row["channel_login"]).lower(), row["channel_id"])
                by_name.setdefault(str(row["channel_id"]), row["channel_id"])
            ids: set[str] = set()
            unknown: builtins.list[str] = []
            for name in wanted:
                found = by_name.get(name.lower()) or by_name.get(name)
                if found is None:
                    unknown.append(name)
                else:
                    ids.add(found)
            if unknown:
                account = await self._load_one(conn, user_id)
                raise UnknownChannelError(
                    f"user {account.login} has no channel {', '.join(unknown)} "
                    f"(channels: {', '.join(c.login for c in account.channels) or 'none'}); nothing removed"
                )
            await conn.executemany(
                "DELETE FROM channels WHERE user_id = ? AND channel_id = ?",
                [(user_id, channel_id) for channel_id in ids],
            )
            return await self._load_one(conn, user_id)

    async def mark_channel_banned(self, user_id: str, channel_id: str, at: float | None = None) -> None:
        """Skip the channel until it is re-added: Twitch revoked the chat subscription (chat_user_banned).

        The first ban time is kept; a channel removed meanwhile is not an error.
        """
        now = time.time() if at is None else at
        async with self.store.connection(f"marking channel {channel_id} banned for user {user_id}") as conn:
            await conn.execute_fetchall(
                "UPDATE channels SET banned_at = ? "
                "WHERE user_id = ? AND channel_id = ? AND banned_at IS NULL",
                (now, user_id, channel_id),
            )

    # -- change detection -----------------------------------------------------------------------

    async def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` for the store's connection: a cheap "did anyone else write?".

        The value changes when ANOTHER connection (the CLI in another process, say) commits to the
        file, and not for this connection's own commits, so the supervisor can poll it every few
        seconds and reload accounts only when it moved. Compare values for equality only; they
        are not ordered across connections.
        """
        async with self.store.connection("reading the data version") as conn:
            rows = list(await conn.execute_fetchall("PRAGMA data_version"))
        return int(rows[0][0])

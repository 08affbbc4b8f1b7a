"""Per-user colour state in SQLite: settings, the recent colours and what happened last.

One ``Store`` (one connection) per process is enough and many bots can share it: the connection
runs in autocommit mode, every write is a single statement or one explicit transaction committed
before the method returns, and an ``asyncio.Lock`` keeps a multi-statement write from interleaving
with another task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import aiosqlite

from .colors import (
    DEFAULT_RAINBOW_STEP,
    PALETTE_ORDERS,
    READABILITIES,
    PaletteOrder,
    Readability,
    check_rainbow_step,
    check_readability,
    parse_palette,
)
from .migrate import DatabaseTooNewError, MigrationError, StoreError, apply_migrations
from .settings import COLOR_MODES, HEX_POLICIES, HexPolicy
from .transactions import atomic

__all__ = [
    "DatabaseTooNewError",
    "HexPolicy",
    "MigrationError",
    "ModeProgress",
    "NoPaletteError",
    "Store",
    "StoreError",
    "UnknownUserError",
    "UserState",
]

MAX_ERROR_LENGTH = 200
DEFAULT_BUSY_TIMEOUT = 5.0
_MIN_SQLITE = (3, 35, 0)  # RETURNING

USER_COLUMNS = (
    "user_id, login, enabled, mode, hex_policy, hex_refused_at, recent_colors, changes, errors, "
    "last_color, last_changed_at, last_error, last_error_at, created_at, updated_at, "
    "readability, rainbow_step, rainbow_hue, palette, palette_order, palette_position, palette_remaining"
)


class NoPaletteError(ValueError):
    """``set_mode(..., "palette")`` for a user without a palette: there would be nothing to pick from."""


class UnknownUserError(StoreError, KeyError):
    """A write named a user id that has no row yet; call ``ensure_user`` first."""

    def __str__(self) -> str:
        # KeyError would repr() the message; this one is a sentence.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class UserState:
    """One user's row, immutable so callers can hold it without it changing under them."""

    user_id: str
    login: str
    enabled: bool
    mode: str
    hex_policy: HexPolicy
    hex_refused_at: float | None
    recent_colors: tuple[str, ...]
    changes: int
    errors: int
    last_color: str | None
    last_changed_at: float | None
    last_error: str | None
    last_error_at: float | None
    created_at: float
    updated_at: float
    readability: Readability = "dark"
    """The chat theme random (hex, rainbow) colours must read well on."""
    rainbow_step: int = DEFAULT_RAINBOW_STEP
    rainbow_hue: int | None = None
    """Hue of the last rainbow colour applied; None before the first."""
    palette: tuple[str, ...] = ()
    """The user's own colours (Twitch names or '#RRGGBB'), in their order."""
    palette_order: PaletteOrder = "cycle"
    palette_position: int = 0
    """cycle: index of the next palette colour."""
    palette_remaining: tuple[int, ...] = ()
    """shuffle: indices of the palette entries this round has not used yet."""


@dataclass(frozen=True, slots=True)
class ModeProgress:
    """Where the rainbow or palette stands once the colour picked from it is applied.

    Saved by ``record_color`` together with that colour (see ``Store.stage_progress``).
    """

    rainbow_hue: int | None = None
    """The hue of the picked rainbow colour; None leaves the stored hue alone."""
    palette: tuple[str, ...] | None = None
    """The palette the position below belongs to (None: not a palette pick); if the stored palette
    is no longer this one (changed meanwhile), the position is not saved."""
    palette_position: int = 0
    palette_remaining: tuple[int, ...] = ()


def user_from_row(row: sqlite3.Row) -> UserState:
    """The one place a database row becomes a ``UserState``."""
    return UserState(
        user_id=row["user_id"],
        login=row["login"],
        enabled=bool(row["enabled"]),
        mode=row["mode"],
        hex_policy=cast(HexPolicy, row["hex_policy"]),
        hex_refused_at=row["hex_refused_at"],
        recent_colors=_parse_recent(row["recent_colors"]),
        changes=row["changes"],
        errors=row["errors"],
        last_color=row["last_color"],
        last_changed_at=row["last_changed_at"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        # Writes are validated, so these guards only matter for a row edited by hand: like a damaged
        # recent list, a bad value reads as the default rather than breaking the user's changes.
        readability=row["readability"] if row["readability"] in READABILITIES else "dark",
        rainbow_step=row["rainbow_step"] if row["rainbow_step"] in range(1, 360) else DEFAULT_RAINBOW_STEP,
        rainbow_hue=row["rainbow_hue"] if row["rainbow_hue"] in range(360) else None,
        palette=_parse_recent(row["palette"]),
        palette_order=row["palette_order"] if row["palette_order"] in PALETTE_ORDERS else "cycle",
        palette_position=row["palette_position"],
        palette_remaining=_parse_indices(row["palette_remaining"]),
    )


def palette_json(palette: Sequence[str]) -> str:
    """The palette column's one spelling, so a palette compares equal to itself in SQL."""
    return json.dumps(list(palette))


def _check_palette_order(order: str) -> None:
    if order not in PALETTE_ORDERS:
        raise ValueError(f"palette_order must be one of {', '.join(PALETTE_ORDERS)}, not {order!r}")


def _check_mode(mode: str) -> None:
    """The schema leaves ``mode`` unchecked so new modes need no table rebuild; check it here."""
    if mode not in COLOR_MODES:
        raise ValueError(f"mode must be one of {', '.join(COLOR_MODES)}, not {mode!r}")


def _check_hex_policy(policy: str) -> None:
    """Fail with the choices named, before the CHECK constraint fails with less to say."""
    if policy not in HEX_POLICIES:
        raise ValueError(f"hex_policy must be one of {', '.join(HEX_POLICIES)}, not {policy!r}")


def _describe(path: Path, error: sqlite3.Error, busy_timeout: float) -> str:
    """Turn SQLite's terse error into what the operator should look at."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return f"database {path} is locked by another connection or process (gave up after {busy_timeout:g}s)"
    if primary == sqlite3.SQLITE_READONLY:
        return f"database {path} is read-only: check the permissions of the file and its directory"
    if primary == sqlite3.SQLITE_NOTADB:
        return f"{path} is not an SQLite database"
    if primary == sqlite3.SQLITE_CORRUPT:
        return f"database {path} is corrupt"
    if primary == sqlite3.SQLITE_CANTOPEN:
        return f"cannot open database file {path}"
    if primary == sqlite3.SQLITE_FULL:
        return f"disk full while writing database {path}"
    return f"database {path} failed"


class Store:
    """The per-user state database; one per process is enough, many bots can share it."""

    path: Path

    def __init__(self, path: Path, conn: aiosqlite.Connection, *, busy_timeout: float) -> None:
        """Wrap an open, migrated connection; use ``Store.open``, which does that part."""
        self.path = path
        self._conn: aiosqlite.Connection | None = conn
        self._busy_timeout = busy_timeout
        self._lock = asyncio.Lock()
        self._staged: dict[str, ModeProgress] = {}

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
        """Open (creating it 0600 if new) and migrate the database; ``busy_timeout`` is in seconds.

        WAL lets readers (another process, a CLI) look while the bot writes. ``synchronous=NORMAL``
        is safe with WAL: a power cut can lose the last few commits but never corrupts the file,
        and a lost colour change is harmless, while saving an fsync per chat message matters.
        The parent directory is not created: a missing one is more likely a typo than a wish.
        """
        db_path = Path(path)
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"cannot open database {db_path}: SQLite {sqlite3.sqlite_version} is too old, "
                f"{'.'.join(map(str, _MIN_SQLITE))} or newer is needed"
            )
        if not db_path.parent.is_dir():
            raise StoreError(f"cannot open database {db_path}: directory {db_path.parent} does not exist")
        _create_private(db_path)
        conn: aiosqlite.Connection | None = None
        try:
            conn = await aiosqlite.connect(db_path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            # PRAGMA values cannot be bound parameters; this one is an int we computed.
            await conn.execute_fetchall(f"PRAGMA busy_timeout = {max(0, round(busy_timeout * 1000))}")
            rows = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
            journal_mode = str(rows[0][0]).lower()
            if journal_mode != "wal":
                raise StoreError(
                    f"database {db_path} cannot use WAL journal mode (it stays in {journal_mode!r}); "
                    f"is it on a network file system?"
                )
            await conn.execute_fetchall("PRAGMA synchronous = NORMAL")
            await conn.execute_fetchall("PRAGMA foreign_keys = ON")
            await apply_migrations(conn)
        except BaseException as error:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            if isinstance(error, sqlite3.Error):
                raise StoreError(
                    f"{_describe(db_path, error, busy_timeout)} (while opening: {error})"
                ) from error
            raise
        return cls(db_path, conn, busy_timeout=busy_timeout)

    async def close(self) -> None:
        """Close the connection once in-flight work is done; calling it again does nothing."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        async with self._lock:
            await conn.close()

    async def __aenter__(self) -> Self:
        """``async with await Store.open(path) as store:`` closes the store on the way out."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close even when the body failed, so no connection thread outlives it."""
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """Serialise access and turn sqlite3 errors into a ``StoreError`` naming file and action.

        Public for modules that own further tables in the same database (the runner's accounts).
        """
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"database {self.path} is closed (while {action})")
            try:
                yield conn
            except sqlite3.Error as error:
                raise StoreError(
                    f"{_describe(self.path, error, self._busy_timeout)} (while {action}: {error})"
                ) from error

    @contextlib.asynccontextmanager
    async def transaction(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """One explicit write transaction, so a read-modify-write is atomic across processes."""
        async with self.connection(action) as conn, atomic(conn):
            yield conn

    async def _update(self, action: str, user_id: str, assignments: str, params: Sequence[Any]) -> UserState:
        """One ``UPDATE ... RETURNING`` on an existing user; ``assignments`` is our own SQL text."""
        async with self.connection(action) as conn:
            rows = await conn.execute_fetchall(
                f"UPDATE users SET {assignments}, updated_at = ? WHERE user_id = ? RETURNING {USER_COLUMNS}",
                (*params, time.time(), user_id),
            )
        return _single(rows, self.path, user_id)

    async def get_user(self, user_id: str) -> UserState | None:
        """The user's state, or None before ``ensure_user`` has seen them."""
        async with self.connection(f"reading user {user_id}") as conn:
            rows = list(
                await conn.execute_fetchall(f"SELECT {USER_COLUMNS} FROM users WHERE user_id = ?", (user_id,))
            )
        return user_from_row(rows[0]) if rows else None

    async def ensure_user(
        self,
        user_id: str,
        login: str,
        *,
        mode: str = "preset",
        hex_policy: HexPolicy = "auto",
        readability: Readability = "dark",
        rainbow_step: int = DEFAULT_RAINBOW_STEP,
    ) -> UserState:
        """The user's row, created with these defaults if new; an existing user keeps their settings.

        Only a changed login is written back (renames happen); otherwise the row is left alone so
        that calling this per message costs no write.
        """
        _check_mode(mode)
        _check_hex_policy(hex_policy)
        check_readability(readability)
        check_rainbow_step(rainbow_step)
        now = time.time()
        async with self.connection(f"saving user {user_id} ({login})") as conn:
            rows = list(
                await conn.execute_fetchall(
                    "INSERT INTO users (user_id, login, mode, hex_policy, readability, rainbow_step, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (user_id) DO UPDATE "
                    "SET login = excluded.login, updated_at = excluded.updated_at "
                    "WHERE users.login IS NOT excluded.login "
                    f"RETURNING {USER_COLUMNS}",
                    (user_id, login, mode, hex_policy, readability, rainbow_step, now, now),
                )
            )
            if not rows:  # already there with this login: nothing was written
                rows = list(
                    await conn.execute_fetchall(
                        f"SELECT {USER_COLUMNS} FROM users WHERE user_id = ?", (user_id,)
                    )
                )
        return _single(rows, self.path, user_id)

    async def set_enabled(self, user_id: str, enabled: bool) -> UserState:
        """Turn automatic changes on or off for the user."""
        return await self._update(
            f"{'enabling' if enabled else 'disabling'} user {user_id}",
            user_id,
            "enabled = ?",
            (bool(enabled),),
        )

    async def set_mode(self, user_id: str, mode: str) -> UserState:
        """Choose how the user's next colours are picked; ``palette`` needs a palette (NoPaletteError)."""
        _check_mode(mode)
        async with self.transaction(f"setting mode {mode} for user {user_id}") as conn:
            rows = list(
                await conn.execute_fetchall("SELECT palette FROM users WHERE user_id = ?", (user_id,))
            )
            if not rows:
                raise _unknown(self.path, user_id)
            if mode == "palette" and not _parse_recent(rows[0]["palette"]):
                raise NoPaletteError(f"user {user_id} has no palette to use")
            rows = list(
                await conn.execute_fetchall(
                    f"UPDATE users SET mode = ?, updated_at = ? WHERE user_id = ? RETURNING {USER_COLUMNS}",
                    (mode, time.time(), user_id),
                )
            )
        return _single(rows, self.path, user_id)

    async def set_readability(self, user_id: str, readability: Readability) -> UserState:
        """Choose the chat theme the user's random colours must read well on."""
        check_readability(readability)
        return await self._update(
            f"setting readability {readability} for user {user_id}",
            user_id,
            "readability = ?",
            (readability,),
        )

    async def set_rainbow_step(self, user_id: str, step: int) -> UserState:
        """Degrees of hue between the user's rainbow colours; the rainbow goes on from its current hue."""
        check_rainbow_step(step)
        return await self._update(
            f"setting rainbow step {step} for user {user_id}", user_id, "rainbow_step = ?", (step,)
        )

    async def set_palette(
        self, user_id: str, palette: Sequence[str], *, order: PaletteOrder | None = None
    ) -> UserState:
        """Give the user their own colours (parsed as parse_palette does); it starts from its first entry.

        Emptying the palette of a user in palette mode is refused (NoPaletteError): set another mode first.
        """
        colors = parse_palette(list(palette))
        if order is not None:
            _check_palette_order(order)
        async with self.transaction(f"setting the palette of user {user_id}") as conn:
            rows = list(await conn.execute_fetchall("SELECT mode FROM users WHERE user_id = ?", (user_id,)))
            if not rows:
                raise _unknown(self.path, user_id)
            if not colors and rows[0]["mode"] == "palette":
                raise NoPaletteError(
                    f"user {user_id} is in palette mode: choose another mode before emptying it"
                )
            rows = list(
                await conn.execute_fetchall(
                    "UPDATE users SET palette = ?, palette_order = coalesce(?, palette_order), "
                    "palette_position = 0, palette_remaining = '[]', updated_at = ? "
                    f"WHERE user_id = ? RETURNING {USER_COLUMNS}",
                    (palette_json(colors), order, time.time(), user_id),
                )
            )
        return _single(rows, self.path, user_id)

    async def set_palette_order(self, user_id: str, order: PaletteOrder) -> UserState:
        """``cycle`` the palette in order or ``shuffle`` it (every entry once per round)."""
        _check_palette_order(order)
        return await self._update(
            f"setting palette order {order} for user {user_id}", user_id, "palette_order = ?", (order,)
        )

    def stage_progress(self, user_id: str, progress: ModeProgress | None) -> None:
        """Have the user's next ``record_color`` also save ``progress``, in its transaction (None: nothing).

        The colour changer stages where its rainbow or palette will stand before it asks Twitch, so
        only a change that lands moves them on: a failed one is picked again from where it was, and
        a restart goes on after the last colour applied.
        """
        if progress is None:
            self._staged.pop(user_id, None)
        else:
            self._staged[user_id] = progress

    async def set_hex_policy(self, user_id: str, policy: HexPolicy) -> UserState:
        """Choose whether hex colours are tried (``auto`` learns from Twitch's refusals)."""
        _check_hex_policy(policy)
        return await self._update(
            f"setting hex policy {policy} for user {user_id}",
            user_id,
            "hex_policy = ?",
            (policy,),
        )

    async def set_hex_refused(self, user_id: str, at: float | None) -> UserState:
        """Remember when Twitch refused hex for the account (None: it accepts hex again)."""
        return await self._update(
            f"saving hex refusal for user {user_id}", user_id, "hex_refused_at = ?", (at,)
        )

    async def record_color(
        self, user_id: str, color: str, *, keep_recent: int, at: float | None = None
    ) -> UserState:
        """Count a successful change and remember the colour among the last ``keep_recent`` (min 1).

        The recent list is read and rewritten in one transaction so a concurrent writer (another
        process sharing the file) cannot lose an entry.
        """
        now = time.time() if at is None else at
        keep = max(1, keep_recent)
        progress = self._staged.pop(user_id, None)
        async with self.transaction(f"recording colour {color} for user {user_id}") as conn:
            rows = list(
                await conn.execute_fetchall("SELECT recent_colors FROM users WHERE user_id = ?", (user_id,))
            )
            if not rows:
                raise _unknown(self.path, user_id)
            if progress is not None:
                await _save_progress(conn, user_id, progress)
            recent = (*_parse_recent(rows[0]["recent_colors"]), color)
            rows = list(
                await conn.execute_fetchall(
                    "UPDATE users SET recent_colors = ?, changes = changes + 1, last_color = ?, "
                    f"last_changed_at = ?, updated_at = ? WHERE user_id = ? RETURNING {USER_COLUMNS}",
                    (json.dumps(list(recent[-keep:])), color, now, now, user_id),
                )
            )
        return _single(rows, self.path, user_id)

    async def record_error(self, user_id: str, message: str, *, at: float | None = None) -> UserState:
        """Count a failed change and keep a short reason for ``status`` output."""
        now = time.time() if at is None else at
        if len(message) > MAX_ERROR_LENGTH:
            message = message[: MAX_ERROR_LENGTH - 1] + "…"
        async with self.connection(f"recording an error for user {user_id}") as conn:
            rows = await conn.execute_fetchall(
                "UPDATE users SET errors = errors + 1, last_error = ?, last_error_at = ?, updated_at = ? "
                f"WHERE user_id = ? RETURNING {USER_COLUMNS}",
                (message, now, now, user_id),
            )
        return _single(rows, self.path, user_id)

    async def list_users(self) -> list[UserState]:
        """Every known user, by login, for status output."""
        async with self.connection("listing users") as conn:
            rows = await conn.execute_fetchall(f"SELECT {USER_COLUMNS} FROM users ORDER BY login, user_id")
        return [user_from_row(row) for row in rows]


def _parse_recent(raw: str) -> tuple[str, ...]:
    """The JSON recent-colours column; a damaged value reads as empty rather than breaking the user."""
    try:
        loaded = json.loads(raw)
    except ValueError:
        return ()
    return tuple(color for color in loaded if isinstance(color, str)) if isinstance(loaded, list) else ()


def _parse_indices(raw: str) -> tuple[int, ...]:
    """The JSON palette_remaining column; damaged entries are dropped (a new round starts instead)."""
    try:
        loaded = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(loaded, list):
        return ()
    return tuple(i for i in loaded if isinstance(i, int) and not isinstance(i, bool) and i >= 0)


async def _save_progress(conn: aiosqlite.Connection, user_id: str, progress: ModeProgress) -> None:
    """Move the rainbow and palette on, inside record_color's transaction."""
    if progress.rainbow_hue is not None:
        await conn.execute_fetchall(
            "UPDATE users SET rainbow_hue = ? WHERE user_id = ?", (progress.rainbow_hue, user_id)
        )
    if progress.palette is not None:
        await conn.execute_fetchall(
            "UPDATE users SET palette_position = ?, palette_remaining = ? WHERE user_id = ? AND palette = ?",
            (
                progress.palette_position,
                json.dumps(list(progress.palette_remaining)),
                user_id,
                palette_json(progress.palette),
            ),
        )


def _unknown(path: Path, user_id: str) -> UnknownUserError:
    """Point at the fix: writes never create users, so a typo cannot make a stray row."""
    return UnknownUserError(f"user {user_id} is not in database {path}; ensure_user() adds users")


def _single(rows: Iterable[sqlite3.Row], path: Path, user_id: str) -> UserState:
    """The one row a keyed write returned, or the unknown-user error when it matched none."""
    for row in rows:
        return user_from_row(row)
    raise _unknown(path, user_id)


def _create_private(path: Path) -> None:
    """Create a missing database file 0600 before SQLite does, since it holds account state."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as error:
        raise StoreError(f"cannot create database file {path}: {error.strerror or error}") from error

"""The key that encrypts tokens at rest, kept outside the database so a copied database leaks nothing.

The key comes from ``$COLORCHANGER_SECRET_KEY`` when set, else from ``<database>.key`` beside the
database, which is created (mode 0600) on first use. Losing the key means logging every user in
again; it is never derived from or stored in the database itself.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from colorchanger_ext.migrate import StoreError

__all__ = [
    "KEY_ENV",
    "SecretBox",
    "SecretKeyError",
    "WrongKeyError",
    "key_file_path",
    "load_or_create_key",
]

KEY_ENV = "COLORCHANGER_SECRET_KEY"

PARTIAL_KEY_WAIT = 2.0
"""Seconds to wait for a key file another process has just created but not yet written."""


class SecretKeyError(StoreError):
    """The token key is missing, malformed or unsafe; the message says what to do, never the key."""


class WrongKeyError(SecretKeyError):
    """Stored tokens do not decrypt with this key: the key file or variable was replaced or lost."""


def key_file_path(database: str | os.PathLike[str]) -> Path:
    """``<database>.key`` beside the database, so the two are found (and backed up) together."""
    path = Path(database)
    return path.with_name(path.name + ".key")


def _is_fernet_key(key: bytes) -> bool:
    """Let cryptography decide what a valid key is, rather than guessing its encoding here."""
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True


def load_or_create_key(database: str | os.PathLike[str], *, env: Mapping[str, str] = os.environ) -> bytes:
    """The Fernet key: from ``$COLORCHANGER_SECRET_KEY`` if set, else ``<database>.key`` (made if missing).

    An empty variable is an error rather than "unset": it usually means a deployment meant to
    pass a key and lost it, and silently creating a key file would encrypt under the wrong key.
    """
    if KEY_ENV in env:
        key = env[KEY_ENV].strip().encode("ascii", errors="replace")
        if not key:
            raise SecretKeyError(
                f"{KEY_ENV} is set but empty: set it to a Fernet key, or unset it to use the key file "
                f"{key_file_path(database)}"
            )
        if not _is_fernet_key(key):
            raise SecretKeyError(
                f"{KEY_ENV} is not a valid Fernet key (it must be 32 url-safe base64-encoded bytes, "
                f"as made by cryptography.fernet.Fernet.generate_key())"
            )
        return key
    path = key_file_path(database)
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    return _create_key_file(path)


def _create_key_file(path: Path) -> bytes:
    """Write a new key with O_EXCL, so two processes starting at once end up with the same key."""
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return _read_key_file(path)
    except OSError as error:
        raise SecretKeyError(f"cannot create key file {path}: {error.strerror or error}") from error
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key + b"\n")
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        with contextlib.suppress(OSError):
            path.unlink()
        raise SecretKeyError(f"cannot write key file {path}: {error.strerror or error}") from error
    _fsync_directory(path.parent)
    return key


def _fsync_directory(directory: Path) -> None:
    """Make the new key file's name durable too: losing it would lose every stored token."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_key_file(path: Path) -> bytes:
    """Read and check the key file; FileNotFoundError passes through so the caller can create it.

    An empty file is waited on briefly: it is most likely another process's new key file between
    its creation and its write.
    """
    deadline = time.monotonic() + PARTIAL_KEY_WAIT
    while True:
        content = _read_private(path)
        if content or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    key = content.strip()
    if not key:
        raise SecretKeyError(
            f"key file {path} is empty: if no tokens were stored with it yet, delete it and a new one "
            f"is made; otherwise restore it from a backup"
        )
    if not _is_fernet_key(key):
        raise SecretKeyError(
            f"key file {path} does not hold a valid Fernet key: restore it from a backup, or set {KEY_ENV}"
        )
    return key


def _read_private(path: Path) -> bytes:
    """The file's bytes, refusing a file that others may read (checked on the open descriptor)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise SecretKeyError(f"cannot read key file {path}: {error.strerror or error}") from error
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretKeyError(f"key file {path} is not a regular file")
        if os.name == "posix" and stat.S_IMODE(info.st_mode) & 0o077:
            raise SecretKeyError(
                f"key file {path} is accessible to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"it protects the stored Twitch tokens: run 'chmod 600 {path}'"
            )
        try:
            return file.read()
        except OSError as error:
            raise SecretKeyError(f"cannot read key file {path}: {error.strerror or error}") from error


class SecretBox:
    """Encrypts tokens for the database and says what to do when they no longer decrypt."""

    def __init__(self, key: bytes, *, database: str | os.PathLike[str]) -> None:
        """``database`` only names the files in the wrong-key message."""
        self._fernet = Fernet(key)
        self._database = Path(database)

    def __repr__(self) -> str:
        """Never show the key."""
        return f"SecretBox(database={str(self._database)!r})"

    def encrypt(self, plaintext: str) -> bytes:
        """Fernet ciphertext (authenticated, so a wrong key is detected rather than yielding garbage)."""
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> str:
        """The plain text, or a ``WrongKeyError`` naming the fixes (and no token text)."""
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError, TypeError):
            raise WrongKeyError(
                f"the tokens in {self._database} were encrypted with another key: restore "
                f"{key_file_path(self._database)} or {KEY_ENV}, or log the users in again"
            ) from None

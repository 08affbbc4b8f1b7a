"""One ``run`` per database: an exclusive OS file lock held for the runner's whole life.

Two runners on one database would both answer every message and race each other's single-use
refresh tokens. The lock lives in ``<database>.lock`` (filelock: fcntl on POSIX, msvcrt on Windows,
released by the OS if the process dies); who holds it is written to ``<database>.lock.owner``,
because taking a filelock truncates the lock file itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout


class RunLockError(Exception):
    """The run lock cannot be taken; the message says why."""


class AlreadyRunning(RunLockError):
    """Another process runs on this database; the message says which."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def owner_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock.owner")


def describe_owner(database: Path) -> str:
    """Who holds the lock, as its owner file says, or a plain 'another process'."""
    try:
        return owner_path(database).read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def hold_run_lock(database: Path) -> Iterator[None]:
    """Hold the database's run lock until the block ends; AlreadyRunning at once if taken."""
    lock = FileLock(lock_path(database), timeout=0, mode=0o600)
    try:
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock.acquire()
    except Timeout:
        raise AlreadyRunning(
            f"a runner already runs on {database} ({describe_owner(database)}); "
            f"stop it first, or give this one another database"
        ) from None
    except OSError as error:  # a file in the way, no permission: one line, not a traceback
        raise RunLockError(f"cannot lock {lock_path(database)}: {error.strerror or error}") from None
    owner = owner_path(database)
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S %z")
        with contextlib.suppress(OSError):  # only the message depends on it
            owner.write_text(f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n", "utf-8")
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()

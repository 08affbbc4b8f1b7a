"""Logging for the runner: plain text or JSON lines, optional rotation, and secrets redacted."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

REDACTED = "[redacted]"


class SecretRedactor(logging.Filter):
    """Replaces every live secret in a record's final text, whatever logged it (twitchio included).

    Secrets are kept per owner (a user id, or "" for the runner's own), so a refresh replaces a
    user's old pair and a removal drops it: the set stays the size of what is live, and one
    compiled alternation matches all of them in a single pass over each line.
    """

    def __init__(self) -> None:
        super().__init__()
        self._owned: dict[str, frozenset[str]] = {}
        self._pattern: re.Pattern[str] | None = None
        self._stale = False

    def add(self, *secrets: str | None) -> None:
        """Remember more secrets of the runner itself (never dropped); see set_secrets for users'."""
        self.set_secrets("", *self._owned.get("", frozenset()), *secrets)

    def set_secrets(self, owner: str, *secrets: str | None) -> None:
        """Make these the only secrets of owner; short strings are ignored so ordinary words survive."""
        kept = frozenset(s for s in secrets if s and len(s) >= 8)
        if self._owned.get(owner, frozenset()) != kept:
            if kept:
                self._owned[owner] = kept
            else:
                self._owned.pop(owner, None)
            self._stale = True

    def forget(self, owner: str) -> None:
        """Drop owner's secrets (a removed user: its tokens are no longer live anywhere)."""
        if self._owned.pop(owner, None) is not None:
            self._stale = True

    @property
    def secrets(self) -> frozenset[str]:
        """Every secret redacted now."""
        return frozenset().union(*self._owned.values())

    def _compiled(self) -> re.Pattern[str] | None:
        if self._stale:
            # longest first, so a secret that contains another is replaced whole
            ordered = sorted(self.secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
            self._stale = False
        return self._pattern

    def redact(self, text: str) -> str:
        pattern = self._compiled()
        return text if pattern is None else pattern.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._compiled() is not None:
            message = self.redact(record.getMessage())
            record.msg, record.args = message, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class _DropTwitchioNoise(logging.Filter):
    """twitchio warns about an optional web framework once per bot; with many users that floods the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "StarletteAdapter" not in str(record.msg)


def create_private(path: Path) -> None:
    """Create the log file readable by its owner only (0600 on POSIX), like the database and key.

    On Windows the mode bits are ignored and the file inherits the ACL of its folder (a user's own
    profile by default), which is the protection that platform offers.
    """
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))


def configure_logging(
    *,
    level: str = "INFO",
    format: Literal["text", "json"] = "text",
    file: Path | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> SecretRedactor:
    """Set up the root logger once for the runner; returns the redactor to register tokens with."""
    redactor = SecretRedactor()
    redactor.add(*secrets)
    formatter: logging.Formatter = (
        JsonLines() if format == "json" else logging.Formatter("%(asctime)s %(levelname)-7s %(message)s")
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if file is not None:
        create_private(file)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        handler.addFilter(_DropTwitchioNoise())
        root.addHandler(handler)
    root.setLevel(level)
    return redactor

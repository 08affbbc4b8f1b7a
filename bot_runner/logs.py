"""Logging for the runner: plain text or JSON lines, optional rotation, and secrets redacted."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

REDACTED = "[redacted]"


class SecretRedactor(logging.Filter):
    """Replaces every known secret in a record's final text, whatever logged it (twitchio included)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        """Remember more secrets; short strings are ignored so ordinary words are never blanked."""
        self._secrets.update(s for s in secrets if s and len(s) >= 8)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
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

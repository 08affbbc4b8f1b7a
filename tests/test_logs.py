"""The runner's log: secrets redacted (only the live ones, in one pass) and the file private."""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_runner.logs import REDACTED, SecretRedactor, configure_logging


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows protects the file by its folder's ACL")
@pytest.mark.usefixtures("restore_root_logger")
def test_the_log_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        configure_logging(file=tmp_path / "runner.log")
    finally:
        os.umask(old)
    logging.getLogger("test").warning("hello")
    assert stat.S_IMODE((tmp_path / "runner.log").stat().st_mode) == 0o600
    assert "hello" in (tmp_path / "runner.log").read_text(encoding="utf-8")


def test_the_redactor_holds_only_live_secrets() -> None:
    redactor = SecretRedactor()
    redactor.add("client-secret-0123")
    for refresh in range(50):  # a user refreshing: each pair replaces the one before
        redactor.set_secrets("1", f"access-{refresh:04}-aaaa", f"refresh-{refresh:04}-rrrr")
    redactor.set_secrets("2", "bob-access-token", "bob-refresh-token")
    assert redactor.secrets == {
        "client-secret-0123",
        "access-0049-aaaa",
        "refresh-0049-rrrr",
        "bob-access-token",
        "bob-refresh-token",
    }
    redactor.forget("2")  # removed
    assert redactor.secrets == {"client-secret-0123", "access-0049-aaaa", "refresh-0049-rrrr"}


def test_redaction_replaces_every_live_secret_and_the_longest_match_whole() -> None:
    redactor = SecretRedactor()
    redactor.add("short", "abcdefgh")  # "short" is too short to be a token: ordinary words survive
    redactor.set_secrets("1", "abcdefgh-and-more", "re.fresh*token(1)")
    text = "short abcdefgh abcdefgh-and-more re.fresh*token(1) refreshXtoken(1)"
    assert redactor.redact(text) == f"short {REDACTED} {REDACTED} {REDACTED} refreshXtoken(1)"
    redactor.forget("1")
    assert redactor.redact("abcdefgh-and-more") == f"{REDACTED}-and-more"

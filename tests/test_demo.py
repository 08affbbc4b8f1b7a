"""``colorchanger-runner demo``: the real runner on the simulated Twitch, as a user would run it.

The demo makes its own event loop, so the in-process tests are plain (sync) tests driving click's
CliRunner; one more runs it as a separate process, the way a user types it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from twitchio.eventsub import websockets
from twitchio.http import Route

from bot_runner import demo as demo_module
from bot_runner.cli import main
from bot_runner.demo import color_depth, swatch, xterm_256
from colorchanger_ext.testing import FakeTwitch, FakeUser

NAMED = r"[a-z_]+ \(#[0-9A-F]{6}\)"
HEX = r"#[0-9A-F]{6}"
SCRIPT = [
    # (channel, chatter, text, what came of it)
    ("alice", "alice", "hello chat!", NAMED),
    ("bob", "bob", "hi! hex colours for me", HEX),
    ("alice", "carol", "nice colour, alice", re.escape("(no change: carol is not alice)")),
    ("alice", "alice", "ccd", re.escape("(automatic colour changes disabled)")),
    ("alice", "alice", "brb, keeping this one", re.escape("(no change: alice typed ccd)")),
    ("alice", "alice", "cce", re.escape("(automatic colour changes enabled)")),
    ("alice", "alice", "back, colourful again", NAMED),
    ("alice", "alice", "ccc hot pink", re.escape("hot_pink (#FF69B4)")),
    ("alice", "alice", "pink was nice", NAMED),
    ("alice", "alice", "ccc #ff00ff", re.escape("hot_pink (#FF69B4)")),
    ("bob", "bob", "ccc #9146FF", re.escape("#9146FF")),
    ("alice", "alice", "still here after the move", NAMED),
]
TRUECOLOR_SWATCH = re.compile(r"\x1b\[48;2;\d{1,3};\d{1,3};\d{1,3}m  \x1b\[0m")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Colour hints unset, and temporary files in tmp_path so leftovers can be seen."""
    for name in ("NO_COLOR", "COLORTERM", "TERM"):
        monkeypatch.delenv(name, raising=False)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    yield temp
    assert list(temp.iterdir()) == [], "the demo left files behind"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["demo", *args], env=env, catch_exceptions=False)


def lines_in_order(output: str, patterns: list[str]) -> None:
    """Each pattern matches a line, in this order."""
    lines = output.splitlines()
    at = 0
    for pattern in patterns:
        regex = re.compile(pattern)
        while at < len(lines) and not regex.search(lines[at]):
            at += 1
        assert at < len(lines), f"no line matching {pattern!r} (in order) in:\n{output}"
        at += 1


def chat_line(channel: str, chatter: str, text: str, result: str) -> str:
    return rf"^  #{channel}\s+{chatter}:\s+{re.escape(text)}\s+-> {result}$"


@pytest.mark.usefixtures("clean_env")
def test_demo_plays_the_script_and_sums_it_up_in_plain_text() -> None:
    started = time.monotonic()
    result = invoke("--fast")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # the runner's log is quiet: nothing at WARNING or above happened
    out = result.stdout
    assert "\x1b" not in out  # not a terminal: no escapes at all
    lines_in_order(
        out,
        [
            r"^colorchanger demo: simulated Twitch on 127\.0\.0\.1:\d+$",
            "Runner started: both bots connected",
            *(chat_line(*step) for step in SCRIPT[:10]),
            r"Twitch refused #FF00FF \(400: hex needs Turbo or Prime\); hot_pink, the nearest",
            chat_line(*SCRIPT[10]),
            r"Twitch: session_reconnect for alice -> followed to the new socket, same session,",
            r"chat subscription kept, no restart\.",
            chat_line(*SCRIPT[11]),
            r"^Runner stopped: every bot closed its connection\.$",
            r"^Summary$",
            r"^  chat messages sent:  12 \(plus 2 bare `ccc`",
            r"^  colour changes made: 8 \(1 request refused by Twitch\)$",
            r"^  Helix requests:      11 \(2 POST eventsub/subscriptions, 9 PUT chat/color\)$",
            rf"^  alice:\s+final colour {NAMED}$",
            r"^  bob:\s+final colour #9146FF$",
            r"^Every step behaved as scripted \(\d+\.\d s\)\.$",
        ],
    )
    assert elapsed < 10, f"the demo took {elapsed:.1f} s with --fast"


@pytest.mark.usefixtures("clean_env")
def test_forced_colour_draws_truecolor_swatches() -> None:
    result = invoke("--fast", "--color", env={"COLORTERM": "truecolor"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\x1b[48;2;255;105;180m  \x1b[0m hot_pink (#FF69B4)" in out
    assert re.search(r"^  bob:\s+final colour \x1b\[48;2;145;70;255m  \x1b\[0m #9146FF$", out, re.M), out
    changed = [line for line in out.splitlines() if re.search(rf"-> .*({NAMED}|{HEX})$", line)]
    assert len(changed) == 8  # every line that shows a colour shows its swatch
    assert all(TRUECOLOR_SWATCH.search(line) for line in changed), changed
    # the escapes are exactly the swatches: nothing else is styled
    assert "\x1b" not in TRUECOLOR_SWATCH.sub("", out)


@pytest.mark.usefixtures("clean_env")
def test_no_color_flag_wins_over_a_truecolor_terminal() -> None:
    result = invoke("--fast", "--no-color", env={"COLORTERM": "truecolor"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output


@pytest.mark.usefixtures("clean_env")
def test_verbose_shows_the_runners_info_log() -> None:
    result = invoke("--fast", "--verbose")
    assert result.exit_code == 0, result.output
    assert "INFO    alice: reading chat in #alice" in result.stderr
    assert "alice: hex colours need Turbo or Prime on Twitch; using hot_pink" in result.stderr
    assert "WARNING" not in result.stderr.replace("WARNING alice: ccc needs a colour", "")


@pytest.mark.usefixtures("clean_env")
def test_demo_leaves_the_process_as_it_found_it() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    cleanup, endpoints = websockets.Websocket._cleanup, (Route.BASE, Route.ID_BASE, websockets.WSS)
    assert invoke("--fast").exit_code == 0
    assert root.handlers == handlers
    assert root.level == level
    assert websockets.Websocket._cleanup is cleanup  # the reconnect fix is undone for other code
    assert endpoints == (Route.BASE, Route.ID_BASE, websockets.WSS)


def test_a_step_that_misbehaves_fails_the_demo_with_exit_1(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoTurboTwitch(FakeTwitch):
        """Twitch refuses hex colours for everyone, so bob's hex-mode change falls back to a name."""

        def add_user(self, login: str, **options: object) -> FakeUser:
            options["turbo"] = False
            return super().add_user(login, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(demo_module, "FakeTwitch", NoTurboTwitch)
    result = invoke("--fast")
    assert result.exit_code == 1, result.output
    assert re.fullmatch(
        r"Error: demo failed: bob: 'hi! hex colours for me': expected 1 colour request\(s\) to Twitch, "
        r"got 2: #[0-9A-F]{6} \(400\), [a-z_]+ \(204\)\n",
        result.stderr,
    ), result.stderr
    assert "Summary" not in result.stdout
    # clean_env checks the temporary directory was removed on the way out


@pytest.mark.usefixtures("clean_env")
def test_a_crash_in_the_code_under_test_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_module, "_add", broken)
    result = invoke("--fast")
    assert result.exit_code == 1, result.output
    assert re.fullmatch(
        r"Error: demo failed: unexpected RuntimeError: boom \(at .*test_demo\.py:\d+; "
        r"--verbose shows the traceback\)\n",
        result.stderr,
    ), result.stderr


def test_colour_choice() -> None:
    tty, truecolor = {"isatty": True}, {"COLORTERM": "truecolor"}
    assert color_depth(None, env=truecolor, **tty) == "truecolor"
    assert color_depth(None, env={"COLORTERM": "24bit"}, **tty) == "truecolor"
    assert color_depth(None, env={}, **tty) == "256"
    assert color_depth(None, env={**truecolor, "NO_COLOR": "1"}, **tty) is None
    assert color_depth(None, env={**truecolor, "NO_COLOR": ""}, **tty) == "truecolor"  # empty: not set
    assert color_depth(None, env={"TERM": "dumb"}, **tty) is None
    assert color_depth(None, env=truecolor, isatty=False) is None
    assert color_depth(True, env={**truecolor, "NO_COLOR": "1"}, isatty=False) == "truecolor"
    assert color_depth(False, env=truecolor, **tty) is None


def test_swatches() -> None:
    assert swatch("#FF69B4", "truecolor") == "\x1b[48;2;255;105;180m  \x1b[0m"
    assert swatch("#FF0000", "256") == "\x1b[48;5;196m  \x1b[0m"
    assert xterm_256(0, 0, 0) == 16
    assert xterm_256(255, 255, 255) == 231
    assert xterm_256(128, 128, 128) == 244  # the grey ramp is closer than the cube's (135, 135, 135)
    assert xterm_256(0x91, 0x46, 0xFF) == 99


def test_demo_as_a_separate_process_touches_nothing_of_the_users(tmp_path: Path) -> None:
    """``python -m bot_runner demo --fast``: exit 0 in bounded time, with a broken config and
    database settings around that it must not read, and no files left behind."""
    (tmp_path / "colorchanger.yaml").write_text("twitch: [this is not valid\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("COLORCHANGER_", "NO_COLOR"))}
    env = {
        **inherited,
        "COLORCHANGER_CONFIG": str(tmp_path / "colorchanger.yaml"),
        "COLORCHANGER_DATABASE": str(tmp_path / "real.sqlite3"),
        "COLORCHANGER_SECRET_KEY": "not a key",
        "COLORCHANGER_CLIENT_ID": "a-real-client-id",
        "COLORTERM": "truecolor",  # but stdout is a pipe: plain text all the same
        "TMPDIR": str(temp),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
    }
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "bot_runner", "demo", "--fast"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    out, err = finished.stdout, finished.stderr
    assert finished.returncode == 0, f"exit {finished.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Every step behaved as scripted" in out
    assert "\x1b" not in out
    assert not re.search(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b", err), err
    assert elapsed < 30, f"the demo took {elapsed:.1f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colorchanger.yaml", "tmp"]
    assert list(temp.iterdir()) == []

"""colorchanger-runner as a user runs it: separate processes, against the fake Twitch on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from colorchanger_ext.colors import NAMED_COLORS
from colorchanger_ext.testing import FakeTwitch, FakeUser

# Python start-up plus importing twitchio takes a second or two on a small machine.
PROCESS_TIMEOUT = 30


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class RunningRunner:
    """A `colorchanger-runner run` process whose log lines the test can wait for."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, pattern: str, *, timeout: float = 10) -> str:  # noqa: ASYNC109
        regex = re.compile(pattern)
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                if self.process.returncode is not None and self._reader is not None and self._reader.done():
                    raise AssertionError(
                        f"runner exited ({self.process.returncode}) without {pattern!r}:\n{self.log}"
                    )
                self._new_line.clear()
                await self._new_line.wait()

    async def terminate(self) -> int:
        """SIGTERM, then the exit status; it must come within Twitch-friendly 5 s."""
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            returncode = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return returncode


@dataclass
class Runner:
    """Runs the CLI the way a user does: a fresh Python process with its own config file."""

    config: Path
    env: dict[str, str]
    running: list[RunningRunner] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bot_runner", "--config", str(self.config), *args]

    async def cli(self, *args: str) -> Finished:
        process = await asyncio.create_subprocess_exec(
            *self.command(*args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        async with asyncio.timeout(PROCESS_TIMEOUT):
            stdout, stderr = await process.communicate()
        assert process.returncode is not None
        return Finished(process.returncode, stdout.decode(), stderr.decode())

    async def ok(self, *args: str) -> str:
        finished = await self.cli(*args)
        assert finished.returncode == 0, f"{args} failed:\n{finished.stdout}\n{finished.stderr}"
        return finished.stdout

    async def import_user(self, user: FakeUser, *channels: FakeUser) -> None:
        options = [arg for channel in channels for arg in ("--channel", channel.login)]
        await self.ok(
            "users",
            "add",
            user.login,
            "--access-token",
            user.access_token,
            "--refresh-token",
            user.refresh_token,
            *options,
        )

    async def start(self) -> RunningRunner:
        process = await asyncio.create_subprocess_exec(
            *self.command("run"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        runner = RunningRunner(process)
        runner.start_reading()
        self.running.append(runner)
        return runner


@pytest.fixture
async def runner(twitch: FakeTwitch, tmp_path: Path) -> AsyncIterator[Runner]:
    config = tmp_path / "colorchanger.yaml"
    config.write_text(
        f"""
twitch:
  client_id: {twitch.client_id}
  endpoints:
    helix: {twitch.helix_url}
    oauth: {twitch.id_url}
    eventsub: {twitch.eventsub_url}
database: state/colorchanger.sqlite3
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORCHANGER_")}
    env["PYTHONUNBUFFERED"] = "1"
    made = Runner(config, env)
    try:
        yield made
    finally:
        for running in made.running:
            if running.process.returncode is None:
                running.process.kill()
                await running.process.wait()
            if running._reader is not None:
                await running._reader


def tokens_of(*users: FakeUser) -> list[str]:
    return [token for user in users for token in (user.access_token, user.refresh_token)]


async def test_users_add_logs_in_with_the_device_code_flow(twitch: FakeTwitch, runner: Runner) -> None:
    twitch.device_interval = 1
    alice = twitch.add_user("alice")
    partner = twitch.add_user("partner")
    adding = asyncio.create_task(runner.cli("users", "add", "Alice", "--channel", "#Partner", "-c", "alice"))
    code = await twitch.wait_for_device_code(timeout=PROCESS_TIMEOUT)
    twitch.slow_down_next_poll()  # Twitch asks the poller to back off once: it must, and carry on
    await twitch.wait_until(
        lambda: twitch.oauth.slow_downs == 0, timeout=10, what="a poll answered slow_down"
    )
    twitch.approve_device(code.user_code, alice)
    finished = await adding
    assert finished.returncode == 0, finished.stderr
    assert code.user_code in finished.stdout
    assert "twitch.tv/activate" in finished.stdout
    assert "Added: alice" in finished.stdout
    listing = await runner.ok("users", "list")
    assert re.search(rf"alice\s+{alice.id}\s+yes\s+on\s+#partner, #alice\s+preset", listing), listing
    assert partner.id  # resolved through Helix, not guessed
    for token in tokens_of(alice):
        assert token not in finished.stdout + finished.stderr + listing


async def test_run_two_users_disable_one_live_then_restart(twitch: FakeTwitch, runner: Runner) -> None:
    alice, bob, carol = twitch.add_user("alice"), twitch.add_user("bob"), twitch.add_user("carol")
    issued = tokens_of(alice, bob)
    await runner.import_user(alice)
    await runner.import_user(bob)

    running = await runner.start()
    await twitch.wait_for_subscription(user_id=alice.id, broadcaster_id=alice.id, timeout=PROCESS_TIMEOUT)
    await twitch.wait_for_subscription(user_id=bob.id, broadcaster_id=bob.id, timeout=PROCESS_TIMEOUT)

    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="hi from alice")
    await twitch.send_chat_message(broadcaster=bob, chatter=bob, text="hi from bob")
    await twitch.send_chat_message(broadcaster=alice, chatter=carol, text="hi alice, it's carol")
    (alice_put,) = await twitch.wait_for_color_puts(1, user_id=alice.id)
    (bob_put,) = await twitch.wait_for_color_puts(1, user_id=bob.id)
    assert alice_put.color in NAMED_COLORS
    assert bob_put.color in NAMED_COLORS
    await running.wait_for_log(rf"alice: colour changed to {alice_put.color}")
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="ccd")
    await running.wait_for_log("alice: automatic colour changes disabled")

    # Disabling bob from another process takes effect in the running runner, without a restart.
    await runner.ok("users", "disable", "bob")
    await twitch.wait_until(
        lambda: not twitch.sessions(user_id=bob.id), timeout=10, what="bob's bot stopping"
    )
    await running.wait_for_log("bob: disabled or removed; stopping")
    assert twitch.sessions(user_id=alice.id), running.log

    assert await running.terminate() == 0
    await twitch.wait_until(
        lambda: all(session.open_sockets == 0 for session in twitch.eventsub.sessions.values()),
        what="every socket closed",
    )
    first_log = running.log

    # Started again: the same state. Bob stays disabled; alice's `ccd` still holds.
    again = await runner.start()
    await twitch.wait_for_subscription(user_id=alice.id, timeout=PROCESS_TIMEOUT)
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="still off after a restart")
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="ccc coral")
    puts = await twitch.wait_for_color_puts(2, user_id=alice.id)
    assert [put.color for put in puts] == [alice_put.color, "coral"]
    assert not twitch.sessions(user_id=bob.id)
    assert [put.user_id for put in twitch.color_puts].count(carol.id) == 0
    assert await again.terminate() == 0

    for log in (first_log, again.log):
        assert "Traceback" not in log
        for token in issued + tokens_of(alice, bob):
            assert token not in log


async def test_a_revoked_user_is_reported_once_and_users_add_brings_it_back(
    twitch: FakeTwitch, runner: Runner
) -> None:
    twitch.device_interval = 1
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    await runner.import_user(alice)
    await runner.import_user(bob)
    running = await runner.start()
    await twitch.wait_for_subscription(user_id=alice.id, timeout=PROCESS_TIMEOUT)
    bob_subscription = await twitch.wait_for_subscription(user_id=bob.id, timeout=PROCESS_TIMEOUT)

    # Bob disconnects the app on Twitch: his tokens die and his subscription is revoked.
    twitch.revoke_tokens(bob)
    await twitch.revoke(bob_subscription, "authorization_revoked")
    await running.wait_for_log(r"bob needs login: .*users add bob")
    await twitch.wait_until(
        lambda: not twitch.sessions(user_id=bob.id), timeout=10, what="bob's bot stopping"
    )
    listing = await runner.ok("users", "list")
    assert re.search(r"bob .* needs-login", listing), listing

    # Alice is untouched.
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="alice carries on")
    await twitch.wait_for_color_puts(1, user_id=alice.id)

    # Logging bob in again from another process brings his bot back in the same runner.
    adding = asyncio.create_task(runner.cli("users", "add", "bob"))
    code = await twitch.wait_for_device_code(timeout=PROCESS_TIMEOUT)
    twitch.approve_device(code.user_code, bob)
    assert (await adding).returncode == 0
    await twitch.wait_for_subscription(user_id=bob.id, timeout=10)
    await twitch.send_chat_message(broadcaster=bob, chatter=bob, text="bob is back")
    await twitch.wait_for_color_puts(1, user_id=bob.id)
    assert await running.terminate() == 0
    assert len(re.findall(r"bob needs login", running.log)) == 1

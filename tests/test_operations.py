"""What an operator sees and relies on: /healthz, /metrics, `status`, restore_colour_on_exit, deploy/.

The endpoints are tested on the runner's real parts in-process (Supervisor + the health app on a
free loopback port, against the fake Twitch), and through `colorchanger-runner run` subprocesses
for the signal and CLI paths.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import logging
import re
import shlex
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bot_runner import restore
from bot_runner.accounts import Accounts
from bot_runner.config import load_config
from bot_runner.health import operations
from bot_runner.metrics import Metrics, restart_reason
from bot_runner.supervisor import Backoff, Supervisor, UserStatus
from colorchanger_ext import ColorChanger
from colorchanger_ext.colors import NAMED_COLORS, nearest_named
from colorchanger_ext.migrate import load_migrations
from colorchanger_ext.settings import ColorSettings
from colorchanger_ext.testing import FakeTwitch

from .conftest import PROCESS_TIMEOUT, Bots, Harness, Runner, RunningRunner, StartSupervisor, add

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

# Every `colorchanger-runner` process started here puts the users' own colours back when it stops.
pytestmark = pytest.mark.runner_config(restore_colour_on_exit=True)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@dataclass
class Ops:
    """A supervisor with its health endpoint, plus a second Accounts standing in for the CLI."""

    twitch: FakeTwitch
    supervisor: Supervisor
    metrics: Metrics
    cli: Accounts
    port: int
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.http.get(f"http://127.0.0.1:{self.port}{path}") as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()

    async def health(self) -> tuple[int, dict[str, Any]]:
        status, kind, body = await self.get("/healthz")
        assert kind.startswith("application/json"), kind
        return status, json.loads(body)

    async def wait_for_health(self, wanted: int, *, timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
        """Poll /healthz until it answers ``wanted``: a bounded wait, failing with the last answer."""
        last: tuple[int, dict[str, Any]] | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    last = await self.health()
                    if last[0] == wanted:
                        return last[1]
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"/healthz never answered {wanted}; last: {last}") from None

    async def metric(self, name: str, **labels: str) -> float:
        status, _, body = await self.get("/metrics")
        assert status == 200
        return samples(body).get((name, tuple(sorted(labels.items()))), 0.0)

    async def wait_for_metric(self, name: str, value: float, *, timeout: float = 5, **labels: str) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while await self.metric(name, **labels) != value:  # noqa: ASYNC110 - polling the endpoint is the test
                await asyncio.sleep(0.02)


StartOps = Callable[..., Awaitable[Ops]]


@pytest.fixture
async def start_ops(twitch: FakeTwitch, start_supervisor: StartSupervisor) -> AsyncIterator[StartOps]:
    """Start the runner's parts as `run` wires them: Metrics on a fresh registry, the health app."""
    clients: list[aiohttp.ClientSession] = []

    async def start(**options: Any) -> Ops:
        metrics = Metrics(CollectorRegistry())
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def serve(h: Harness) -> None:
            async with operations(h.accounts, h.supervisor, metrics, port=0) as port:
                assert port is not None
                bound.set_result(port)
                await h.supervisor.run(h.stop)

        h = await start_supervisor(serve=serve, observer=metrics, on_status=metrics.status_changed, **options)
        assert h.task is not None
        first: list[asyncio.Future[Any]] = [bound, h.task]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if h.task.done():
            h.task.result()
        http = aiohttp.ClientSession()
        clients.append(http)
        return Ops(twitch, h.supervisor, metrics, h.cli, bound.result(), http)

    try:
        yield start
    finally:
        for http in clients:
            await http.close()


# --- /healthz ----------------------------------------------------------------------------------------


async def test_healthz_is_200_when_all_run_503_while_one_reconnects_then_200_again(
    twitch: FakeTwitch, start_ops: StartOps
) -> None:
    # Restarts wait 0.5-1 s here, so the 503 lasts long enough to be read without racing it.
    ops = await start_ops(backoff=Backoff(first=1.0, cap=1.0, healthy_after=60))
    alice, bob, partner = twitch.add_user("alice"), twitch.add_user("bob"), twitch.add_user("partner")
    await add(ops.cli, alice, alice, partner)
    await add(ops.cli, bob)
    await ops.supervisor.wait_for_status(alice.id, "running")
    await ops.supervisor.wait_for_status(bob.id, "running")

    report = await ops.wait_for_health(200)
    assert report["healthy"] is True
    users = {user["login"]: user for user in report["users"]}
    assert users["alice"]["state"] == "running"
    assert users["alice"]["connected"] is True
    assert users["alice"]["channels"] == ["alice", "partner"]
    assert users["alice"]["subscribed"] == ["alice", "partner"]
    assert users["alice"]["user_id"] == alice.id
    assert isinstance(users["alice"]["since"], float)
    assert set(users["bob"]) == {
        "login",
        "user_id",
        "state",
        "detail",
        "since",
        "expected",
        "connected",
        "channels",
        "subscribed",
    }

    (session,) = twitch.sessions(user_id=alice.id)
    await twitch.drop_session(session)
    await ops.supervisor.wait_for_status(alice.id, "restarting")
    status, report = await ops.health()
    assert status == 503
    assert report["healthy"] is False
    users = {user["login"]: user for user in report["users"]}
    assert users["alice"]["state"] == "restarting"
    assert "closed" in users["alice"]["detail"]
    assert users["alice"]["connected"] is False
    assert users["alice"]["subscribed"] == []
    assert users["bob"]["state"] == "running"

    report = await ops.wait_for_health(200)
    assert {user["login"]: user["state"] for user in report["users"]} == {
        "alice": "running",
        "bob": "running",
    }
    assert await ops.metric("colorchanger_bot_restarts_total", reason="connection_closed") == 1

    everything = json.dumps(report) + (await ops.get("/metrics"))[2]
    for secret in (alice.access_token, alice.refresh_token, bob.access_token, bob.refresh_token):
        assert secret not in everything


async def test_healthz_counts_needs_login_but_not_disabled_users(
    twitch: FakeTwitch, start_ops: StartOps
) -> None:
    ops = await start_ops()
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    twitch.revoke_tokens(bob)
    await add(ops.cli, alice)
    await add(ops.cli, bob)
    await ops.supervisor.wait_for_status(alice.id, "running")
    await ops.supervisor.wait_for_status(bob.id, "needs-login")
    report = await ops.wait_for_health(503)
    bob_entry = next(user for user in report["users"] if user["login"] == "bob")
    assert bob_entry["state"] == "needs-login"
    assert bob_entry["detail"].startswith("Twitch rejected the")

    await ops.cli.set_enabled("bob", False)  # the operator gives up on bob for now
    report = await ops.wait_for_health(200)
    bob_entry = next(user for user in report["users"] if user["login"] == "bob")
    assert (bob_entry["state"], bob_entry["expected"]) == ("disabled", False)


async def test_healthz_with_no_users_is_healthy(start_ops: StartOps) -> None:
    ops = await start_ops()
    assert await ops.health() == (200, {"healthy": True, "users": []})


# --- /metrics ----------------------------------------------------------------------------------------


async def test_metrics_move_with_own_messages_changes_and_helix_errors(
    twitch: FakeTwitch, start_ops: StartOps
) -> None:
    ops = await start_ops()
    alice, carol = twitch.add_user("alice"), twitch.add_user("carol")
    await add(ops.cli, alice)
    await ops.supervisor.wait_for_status(alice.id, "running")
    status, kind, body = await ops.get("/metrics")
    assert (status, kind.split(";")[0]) == (200, "text/plain")
    for name in (
        "colorchanger_own_messages_total",
        "colorchanger_color_changes_total",
        "colorchanger_message_to_color_seconds_count",
    ):
        assert samples(body)[(name, ())] == 0, name
    assert samples(body)[("colorchanger_bots", (("state", "running"),))] == 1

    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="one")
    await twitch.wait_for_color_puts(1, user_id=alice.id)
    await twitch.send_chat_message(broadcaster=alice, chatter=carol, text="not alice's")
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="two")
    await twitch.wait_for_color_puts(2, user_id=alice.id)
    await ops.wait_for_metric("colorchanger_color_changes_total", 2)
    assert await ops.metric("colorchanger_own_messages_total") == 2
    assert await ops.metric("colorchanger_message_to_color_seconds_count") == 2
    overhead = await ops.metric("colorchanger_message_to_color_seconds_sum")
    assert 0 < overhead < 5

    twitch.fail_helix(path="chat/color", status=400, message="invalid color")  # not retried
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="three")
    await ops.wait_for_metric("colorchanger_helix_errors_total", 1, status="400")
    assert await ops.metric("colorchanger_own_messages_total") == 3
    assert await ops.metric("colorchanger_color_changes_total") == 2

    # The runner's registry is its own: nothing of ours lands in prometheus_client's global one.
    assert not [name for name in prometheus_client.REGISTRY._names_to_collectors if "colorchanger" in name]


def test_restart_reasons_are_a_small_fixed_set() -> None:
    assert restart_reason("connection to Twitch closed (code 4003)") == "connection_closed"
    assert restart_reason("no message from Twitch for 13.2 s") == "silence"
    assert restart_reason("Twitch answered 503: Service Unavailable") == "twitch_5xx"
    assert restart_reason("Twitch answered 429") == "rate_limited"
    assert restart_reason("Twitch answered 404: Not Found") == "twitch_4xx"
    assert restart_reason("stopped") == "stopped"
    assert restart_reason("ClientConnectorError") == "error"


def test_a_running_bot_started_afresh_counts_as_reconfigured() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.status_changed("1", None, UserStatus("alice", "starting"))
    metrics.status_changed("1", UserStatus("alice", "starting"), UserStatus("alice", "running"))
    metrics.status_changed("1", UserStatus("alice", "running"), UserStatus("alice", "starting"))
    metrics.status_changed("1", UserStatus("alice", "starting"), UserStatus("alice", "restarting", "stopped"))
    text = prometheus_client.generate_latest(metrics.registry).decode()
    assert samples(text)[("colorchanger_bot_restarts_total", (("reason", "reconfigured"),))] == 1
    assert samples(text)[("colorchanger_bot_restarts_total", (("reason", "stopped"),))] == 1


@dataclass
class Recording:
    """A ChangeObserver that writes down what it is told."""

    seen: list[str] = field(default_factory=list)
    changed: list[tuple[str, float]] = field(default_factory=list)
    errors: list[tuple[str, int | None]] = field(default_factory=list)

    def message_seen(self, user_id: str) -> None:
        self.seen.append(user_id)

    def color_changed(self, user_id: str, seconds: float) -> None:
        self.changed.append((user_id, seconds))

    def helix_error(self, user_id: str, status: int | None) -> None:
        self.errors.append((user_id, status))


async def test_the_component_reports_to_its_observer(twitch: FakeTwitch, bots: Bots) -> None:
    alice, carol = twitch.add_user("alice"), twitch.add_user("carol")
    seen = Recording()
    bot = await bots.start(
        alice,
        component=lambda bot: ColorChanger(
            bot, settings=ColorSettings(database=bots.database), observer=seen
        ),
    )
    await twitch.send_chat_message(broadcaster=alice, chatter=carol, text="hello alice")
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="hello")
    await twitch.wait_for_color_puts(1, user_id=alice.id)
    twitch.fail_helix(path="chat/color", status=400, message="invalid color")
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="again")
    await twitch.wait_for_color_puts(2, user_id=alice.id)
    await (await bot.color_changer.changer("alice")).wait_idle()
    assert seen.seen == [alice.id, alice.id]
    assert [user for user, _ in seen.changed] == [alice.id]
    assert 0 < seen.changed[0][1] < 5
    assert seen.errors == [(alice.id, 400)]


# --- restore_colour_on_exit --------------------------------------------------------------------------


def saved_original(database: Path, user_id: str) -> str | None:
    with sqlite3.connect(database) as conn:
        row = conn.execute("SELECT color FROM original_colors WHERE user_id = ?", (user_id,)).fetchone()
    conn.close()
    return None if row is None else str(row[0])


async def test_users_remove_while_running_puts_the_colour_back_first(
    twitch: FakeTwitch, start_ops: StartOps, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot_runner")
    ops = await start_ops(restore_colors=True)
    alice = twitch.add_user("alice")
    alice.color = NAMED_COLORS["dodger_blue"]  # what alice had chosen herself, as Twitch reports it
    await add(ops.cli, alice)
    await ops.supervisor.wait_for_status(alice.id, "running")
    # Saved before any change could be made, so a crash from here on cannot lose it.
    assert saved_original(tmp_path / "colorchanger.sqlite3", alice.id) == "#1E90FF"
    reads = [r for r in twitch.requests if r.method == "GET" and r.path == "/helix/chat/color"]
    assert len(reads) == 1

    for count, text in enumerate(("ccc coral", "ccc red"), start=1):
        await twitch.send_chat_message(broadcaster=alice, chatter=alice, text=text)
        await twitch.wait_for_color_puts(count, user_id=alice.id)
    assert alice.color == NAMED_COLORS["red"]

    await ops.cli.remove("alice")
    await ops.supervisor.wait_until_forgotten(alice.id)  # removed: gone from the status
    puts = [(p.color, p.status) for p in twitch.color_puts if p.user_id == alice.id]
    assert puts[-1] == ("dodger_blue", 204)  # the name: every account may set named colours
    assert alice.color == "#1E90FF"
    assert "alice: colour put back to dodger_blue" in caplog.text
    assert not twitch.sessions(user_id=alice.id)


async def test_users_disable_puts_a_hex_colour_back_or_its_nearest_named_one(
    twitch: FakeTwitch, start_ops: StartOps, tmp_path: Path
) -> None:
    ops = await start_ops(restore_colors=True)
    alice = twitch.add_user("alice")  # no Turbo or Prime (any more): hex is refused now
    alice.color = "#123456"
    await add(ops.cli, alice)
    await ops.supervisor.wait_for_status(alice.id, "running")
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="hi")
    await twitch.wait_for_color_puts(1, user_id=alice.id)

    await ops.cli.set_enabled("alice", False)
    await ops.supervisor.wait_for_status(alice.id, "stopped")
    puts = [(p.color, p.status) for p in twitch.color_puts if p.user_id == alice.id]
    assert puts[-2:] == [("#123456", 400), (nearest_named("#123456"), 204)]
    assert saved_original(tmp_path / "colorchanger.sqlite3", alice.id) is None  # owed no more


async def test_a_saved_colour_survives_a_crash_and_is_not_read_again(
    twitch: FakeTwitch, start_ops: StartOps, tmp_path: Path
) -> None:
    database = tmp_path / "colorchanger.sqlite3"
    alice = twitch.add_user("alice")
    async with await Accounts.open(database) as setup:
        await add(setup, alice)
        # A runner that died (kill -9) after saving alice's colour and changing it to red.
        assert await restore.save_original(setup.store, alice.id, "#FF7F50") == "#FF7F50"
        assert await restore.save_original(setup.store, alice.id, "#FF0000") == "#FF7F50"  # first wins
    alice.color = NAMED_COLORS["red"]

    ops = await start_ops(restore_colors=True)
    await ops.supervisor.wait_for_status(alice.id, "running")
    assert not [r for r in twitch.requests if r.method == "GET" and r.path == "/helix/chat/color"]
    await ops.cli.remove("alice")
    await ops.supervisor.wait_until_forgotten(alice.id)  # removed: gone from the status
    assert twitch.color_puts[-1].color == "coral"
    assert alice.color == "#FF7F50"


async def test_without_restore_nothing_is_read_or_put_back(twitch: FakeTwitch, start_ops: StartOps) -> None:
    ops = await start_ops()
    alice = twitch.add_user("alice")
    alice.color = "#1E90FF"
    await add(ops.cli, alice)
    await ops.supervisor.wait_for_status(alice.id, "running")
    await ops.cli.remove("alice")
    await ops.supervisor.wait_until_forgotten(alice.id)  # removed: gone from the status
    assert not twitch.color_puts
    assert not [r for r in twitch.requests if r.path == "/helix/chat/color"]


def test_colour_to_set_prefers_names() -> None:
    assert restore.color_to_set("#8A2BE2") == "blue_violet"
    assert restore.color_to_set("#8a2be2") == "blue_violet"
    assert restore.color_to_set("#123456") == "#123456"
    assert restore.color_to_set("") is None


def test_restore_colour_on_exit_is_a_validated_top_level_key(tmp_path: Path) -> None:
    path = tmp_path / "colorchanger.yaml"
    path.write_text("restore_colour_on_exit: true\n", encoding="utf-8")
    assert load_config(path, env={}).restore_colour_on_exit is True
    path.write_text("", encoding="utf-8")
    assert load_config(path, env={}).restore_colour_on_exit is False


async def test_migration_4_keeps_original_colours_per_user(tmp_path: Path) -> None:
    (migration,) = [m for m in load_migrations() if m.version == 4]
    assert migration.name == "0004_original_color.sql"
    database = tmp_path / "db.sqlite3"
    async with await Accounts.open(database) as accounts:
        await accounts.add_user(
            user_id="7",
            login="alice",
            access_token="a" * 30,
            refresh_token="r" * 30,
            scopes=["user:read:chat"],
            expires_at=None,
            channels=[("7", "alice")],
        )
        await restore.save_original(accounts.store, "7", "#FF0000")
        assert await restore.load_original(accounts.store, "7") == "#FF0000"
        assert await accounts.remove("7")
        assert await restore.load_original(accounts.store, "7") is None
        with pytest.raises(Exception, match="FOREIGN KEY"):  # only for users that exist
            await restore.save_original(accounts.store, "8", "#FF0000")


# --- start-up progress -------------------------------------------------------------------------------


async def test_start_up_progress_is_logged(
    twitch: FakeTwitch, start_ops: StartOps, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot_runner")
    users = [twitch.add_user(f"user{i}") for i in range(3)]
    async with await Accounts.open(tmp_path / "colorchanger.sqlite3") as setup:
        for user in users:
            await add(setup, user)
    twitch.helix_delay = 0.3  # every bot needs a Helix call to subscribe: starting takes a while
    ops = await start_ops(progress_interval=0.1)
    for user in users:
        await ops.supervisor.wait_for_status(user.id, "running")
    twitch.helix_delay = 0
    progress = [r.getMessage() for r in caplog.records if re.fullmatch(r"started \d/3 users", r.getMessage())]
    assert progress, caplog.text
    async with asyncio.timeout(5):
        while "started 3/3 users in" not in caplog.text:  # noqa: ASYNC110 - waiting for a log line
            await asyncio.sleep(0.05)


# --- the CLI: run --health-port, status, restore on SIGTERM -------------------------------------------


async def start_with_health(runner: Runner) -> tuple[RunningRunner, int]:
    """`run --health-port 0`, and the port it picked (from its log)."""
    running = await runner.start("--health-port", "0")
    line = await running.wait_for_log(
        r"health and metrics on http://127\.0\.0\.1:\d+/healthz", timeout=PROCESS_TIMEOUT
    )
    match = re.search(r":(\d+)/healthz", line)
    assert match is not None
    return running, int(match[1])


def rows(output: str) -> dict[str, dict[str, str]]:
    lines = output.splitlines()
    header = re.split(r"\s{2,}", lines[0])
    found = {}
    for line in lines[1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line)
        found[cells[0]] = dict(zip(header, cells, strict=False))
    return found


async def test_status_merges_the_database_with_the_live_runner_and_sigterm_restores(
    twitch: FakeTwitch, runner: Runner
) -> None:
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    alice.color = NAMED_COLORS["hot_pink"]
    await runner.import_user(alice)
    await runner.import_user(bob)
    await runner.ok("users", "disable", "bob")

    offline = await runner.ok("status", "--health-port", "9")  # discard: nothing of ours answers there
    assert rows(offline)["alice"]["STATUS"] == "ok"
    assert rows(offline)["alice"]["LIVE"] == "?"
    assert "live state: no runner answering on port 9" in offline

    running, port = await start_with_health(runner)
    await twitch.wait_for_subscription(user_id=alice.id, timeout=PROCESS_TIMEOUT)
    await running.wait_for_log(r"started 1/1 users in")
    await running.wait_for_log(r"alice: colour before changes is hot_pink")
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="ccc coral")
    await running.wait_for_log(r"alice: colour changed to coral")

    shown = await runner.ok("status", "--health-port", str(port))
    table = rows(shown)
    assert (table["alice"]["STATUS"], table["alice"]["LIVE"], table["alice"]["READING"]) == (
        "ok",
        "running",
        "#alice",
    )
    assert (table["alice"]["LAST COLOUR"], table["alice"]["CHANGES"], table["alice"]["ERRORS"]) == (
        "coral",
        "1",
        "0",
    )
    assert table["alice"]["LAST CHANGE"].endswith("s ago")
    assert (table["bob"]["STATUS"], table["bob"]["LIVE"]) == ("disabled", "disabled")
    assert f"runner on port {port}: healthy, 1 of 1 users connected" in shown

    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        metrics = samples(await response.text())
    assert metrics[("colorchanger_own_messages_total", ())] == 1
    assert metrics[("colorchanger_color_changes_total", ())] == 1

    stopping = time.monotonic()
    assert await running.terminate() == 0  # within 5 s, colour put back on the way out
    assert time.monotonic() - stopping < 5
    assert [(p.color, p.status) for p in twitch.color_puts if p.user_id == alice.id][-1] == ("hot_pink", 204)
    assert alice.color == NAMED_COLORS["hot_pink"]
    assert "alice: colour put back to hot_pink" in running.log

    after = await runner.ok("status", "--health-port", str(port))
    assert f"no runner answering on port {port}" in after
    for token in (alice.access_token, alice.refresh_token, bob.access_token, bob.refresh_token):
        assert token not in running.log + shown


async def test_a_taken_health_port_is_one_clear_error(runner: Runner) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        finished = await runner.cli("run", "--health-port", str(port))
    assert finished.returncode == 1
    assert f"Error: cannot serve health checks on 127.0.0.1:{port}" in finished.stderr
    assert "Traceback" not in finished.stderr


# --- deploy/ -----------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_dockerfile_has_the_essentials() -> None:
    steps = dockerfile_instructions((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    froms = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    final = steps[froms[-1] :]  # the runtime stage
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", final[0][1]), final[0]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "no USER: the runner would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(keyword == "RUN" and "tini" in args and "apt-get install" in args for keyword, args in final)
    (entrypoint,) = [json.loads(args) for keyword, args in final if keyword == "ENTRYPOINT"]
    assert entrypoint[:2] == ["/usr/bin/tini", "--"]
    assert entrypoint[2] == "colorchanger-runner"
    (cmd,) = [json.loads(args) for keyword, args in final if keyword == "CMD"]
    assert cmd[0] == "run"
    port = cmd[cmd.index("--health-port") + 1]
    (volume,) = [json.loads(args) for keyword, args in final if keyword == "VOLUME"]
    assert volume == ["/data"]
    assert ("WORKDIR", "/data") in final
    (healthcheck,) = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert probe[:2] == ["python", "-c"]
    assert f"http://127.0.0.1:{port}/healthz" in probe[2]
    assert "urllib.request" in probe[2]
    compile(probe[2], "HEALTHCHECK", "exec")  # the probe is valid Python
    assert "curl" not in " ".join(args for _, args in steps)
    # Everything the build stage copies is let through its .dockerignore; a database or key never is.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for keyword, args in steps:
        if keyword == "COPY" and "--from" not in args:
            for source in shlex.split(args)[:-1]:
                assert f"!{source.rstrip('/')}" in ignore.replace("/\n", "\n"), source
    assert "**/*.sqlite3*" in ignore
    assert "**/*.key" in ignore


def test_the_compose_example_matches_the_image() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["colorchanger"]
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (ROOT / service["build"]["dockerfile"]).is_file()
    assert any(volume.endswith(":/data") for volume in service["volumes"])
    assert service["ports"] == ["127.0.0.1:8080:8080"]  # published on the host's loopback only
    assert service["stop_signal"] == "SIGTERM"
    assert service["stop_grace_period"] == "10s"
    assert service["restart"] == "unless-stopped"


def test_the_systemd_unit_example() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "colorchanger.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["User"] == "colorchanger"
    assert service["StateDirectory"] == "colorchanger"
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == "10"
    assert service["ExecStart"].endswith("colorchanger-runner run")
    assert unit["Install"]["WantedBy"] == "multi-user.target"


async def test_status_asks_the_address_the_health_server_listens_on(
    twitch: FakeTwitch, runner: Runner
) -> None:
    alice = twitch.add_user("alice")
    await runner.import_user(alice)
    running = await runner.start("--health-port", "0", "--health-host", "127.0.0.2")
    line = await running.wait_for_log(r"health and metrics on http://127\.0\.0\.2:\d+/healthz", timeout=30)
    match = re.search(r":(\d+)/healthz", line)
    assert match is not None
    port = match[1]
    await running.wait_for_log(r"started 1/1 users in", timeout=30)

    shown = await runner.ok("status", "--health-port", port, "--health-host", "127.0.0.2")
    assert rows(shown)["alice"]["LIVE"] == "running"
    assert f"runner on port {port}: healthy, 1 of 1 users connected" in shown
    assert await running.terminate() == 0

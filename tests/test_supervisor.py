"""The supervisor in-process against the fake Twitch: restarts, needs-login, live database changes.

A second ``Accounts`` on the same file stands in for the CLI running in another process: it is
another SQLite connection, which is what the supervisor watches for.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot_runner.accounts import Accounts
from bot_runner.supervisor import Backoff, Supervisor
from colorchanger_ext.settings import ColorSettings
from colorchanger_ext.testing import FakeTwitch, FakeUser


@dataclass
class Running:
    supervisor: Supervisor
    cli: Accounts
    stop: asyncio.Event
    task: asyncio.Task[None]


async def add(accounts: Accounts, user: FakeUser, *channels: FakeUser) -> None:
    await accounts.add_user(
        user_id=user.id,
        login=user.login,
        access_token=user.access_token,
        refresh_token=user.refresh_token,
        scopes=user.scopes,
        expires_at=None,
        channels=[(c.id, c.login) for c in channels or (user,)],
    )


@pytest.fixture
async def running(twitch: FakeTwitch, tmp_path: Path) -> AsyncIterator[Running]:
    database = tmp_path / "colorchanger.sqlite3"
    accounts = await Accounts.open(database)
    cli = await Accounts.open(database)
    supervisor = Supervisor(
        accounts,
        client_id=twitch.client_id,
        client_secret=None,
        colors=ColorSettings(database=database),
        poll_interval=0.05,
        backoff=Backoff(first=0.05, cap=0.2, healthy_after=60),
        rng=random.Random(1),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        yield Running(supervisor, cli, stop, task)
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task
        await cli.close()
        await accounts.close()


async def test_users_added_while_running_are_started(twitch: FakeTwitch, running: Running) -> None:
    alice = twitch.add_user("alice")
    await add(running.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id)
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="hello")
    await twitch.wait_for_color_puts(1, user_id=alice.id)


async def test_disable_and_enable_while_running(twitch: FakeTwitch, running: Running) -> None:
    alice = twitch.add_user("alice")
    await add(running.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id)
    await running.cli.set_enabled("alice", False)
    await twitch.wait_until(lambda: not twitch.sessions(user_id=alice.id), what="alice's bot stopping")
    await running.cli.set_enabled("alice", True)
    await twitch.wait_for_subscription(user_id=alice.id)


async def test_channel_added_while_running_is_read(twitch: FakeTwitch, running: Running) -> None:
    alice, partner = twitch.add_user("alice"), twitch.add_user("partner")
    await add(running.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id, broadcaster_id=alice.id)
    await running.cli.add_channels("alice", [(partner.id, partner.login)])
    await twitch.wait_for_subscription(user_id=alice.id, broadcaster_id=partner.id)
    await twitch.send_chat_message(broadcaster=partner, chatter=alice, text="hi partner")
    await twitch.wait_for_color_puts(1, user_id=alice.id)


async def test_colour_settings_changed_while_running_apply_without_restart(
    twitch: FakeTwitch, running: Running
) -> None:
    alice = twitch.add_user("alice", turbo=True)
    await add(running.cli, alice)
    session_before = (await twitch.wait_for_subscription(user_id=alice.id)).session_id
    await running.supervisor.wait_for_status(alice.id, "running")
    await running.cli.set_colors("alice", mode="hex")
    await running.supervisor.settled()
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="hex please")
    (put,) = await twitch.wait_for_color_puts(1, user_id=alice.id)
    assert put.color.startswith("#")
    assert twitch.subscriptions(user_id=alice.id)[0].session_id == session_before


async def test_failed_start_is_retried_with_backoff(
    twitch: FakeTwitch, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot_runner")
    alice = twitch.add_user("alice")
    twitch.fail_helix(path="eventsub/subscriptions", status=500, count=2)
    await add(running.cli, alice)
    await running.supervisor.wait_for_status(alice.id, "running")
    restarts = [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]
    assert len(restarts) == 2, restarts


async def test_rejected_tokens_mean_needs_login_once_and_no_retry_loop(
    twitch: FakeTwitch, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot_runner")
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    twitch.revoke_tokens(bob)
    await add(running.cli, bob)
    await add(running.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id)
    await running.supervisor.wait_for_status(bob.id, "needs-login")
    account = await running.cli.get("bob")
    assert account is not None
    assert account.tokens is not None
    assert account.tokens.status == "needs-login"
    assert bob.id not in running.supervisor.bots
    reports = [r.getMessage() for r in caplog.records if "bob needs login" in r.getMessage()]
    assert len(reports) == 1, reports
    assert not [r for r in caplog.records if "bob" in r.getMessage() and "restarting" in r.getMessage()]

"""The supervisor in-process against the fake Twitch: restarts, needs-login, live database changes.

The ``harness`` fixture (tests/conftest.py) runs it; its second ``Accounts`` on the same file stands
in for the CLI running in another process: another SQLite connection, which is what the supervisor
watches for.
"""

from __future__ import annotations

import logging

import pytest

from colorchanger_ext.testing import FakeTwitch

from .conftest import Harness, add


async def test_users_added_while_running_are_started(twitch: FakeTwitch, harness: Harness) -> None:
    alice = twitch.add_user("alice")
    await add(harness.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id)
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="hello")
    await twitch.wait_for_color_puts(1, user_id=alice.id)


async def test_disable_and_enable_while_running(twitch: FakeTwitch, harness: Harness) -> None:
    alice = twitch.add_user("alice")
    await add(harness.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id)
    await harness.cli.set_enabled("alice", False)
    await twitch.wait_until(lambda: not twitch.sessions(user_id=alice.id), what="alice's bot stopping")
    await harness.cli.set_enabled("alice", True)
    await twitch.wait_for_subscription(user_id=alice.id)


async def test_channel_added_while_running_is_read(twitch: FakeTwitch, harness: Harness) -> None:
    alice, partner = twitch.add_user("alice"), twitch.add_user("partner")
    await add(harness.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id, broadcaster_id=alice.id)
    await harness.cli.add_channels("alice", [(partner.id, partner.login)])
    await twitch.wait_for_subscription(user_id=alice.id, broadcaster_id=partner.id)
    await twitch.send_chat_message(broadcaster=partner, chatter=alice, text="hi partner")
    await twitch.wait_for_color_puts(1, user_id=alice.id)


async def test_colour_settings_changed_while_running_apply_without_restart(
    twitch: FakeTwitch, harness: Harness
) -> None:
    alice = twitch.add_user("alice", turbo=True)
    await add(harness.cli, alice)
    session_before = (await twitch.wait_for_subscription(user_id=alice.id)).session_id
    await harness.supervisor.wait_for_status(alice.id, "running")
    await harness.cli.set_colors("alice", mode="hex")
    await harness.supervisor.settled()
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="hex please")
    (put,) = await twitch.wait_for_color_puts(1, user_id=alice.id)
    assert put.color.startswith("#")
    assert twitch.subscriptions(user_id=alice.id)[0].session_id == session_before


async def test_failed_start_is_retried_with_backoff(
    twitch: FakeTwitch, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot_runner")
    alice = twitch.add_user("alice")
    twitch.fail_helix(path="eventsub/subscriptions", status=500, count=2)
    await add(harness.cli, alice)
    await harness.supervisor.wait_for_status(alice.id, "running")
    restarts = [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]
    assert len(restarts) == 2, restarts


async def test_rejected_tokens_mean_needs_login_once_and_no_retry_loop(
    twitch: FakeTwitch, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot_runner")
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    twitch.revoke_tokens(bob)
    await add(harness.cli, bob)
    await add(harness.cli, alice)
    await twitch.wait_for_subscription(user_id=alice.id)
    await harness.supervisor.wait_for_status(bob.id, "needs-login")
    assert (await harness.stored_tokens(bob)).status == "needs-login"
    assert bob.id not in harness.supervisor.bots
    reports = [r.getMessage() for r in caplog.records if "bob needs login" in r.getMessage()]
    assert len(reports) == 1, reports
    assert not [r for r in caplog.records if "bob" in r.getMessage() and "restarting" in r.getMessage()]

"""colorchanger-runner as a user runs it: separate processes, against the fake Twitch on loopback."""

from __future__ import annotations

import asyncio
import re

from colorchanger_ext.colors import NAMED_COLORS
from colorchanger_ext.testing import FakeTwitch

from .conftest import PROCESS_TIMEOUT, Runner, tokens_of


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


async def test_a_second_run_on_the_same_database_is_refused_before_touching_twitch(
    twitch: FakeTwitch, runner: Runner
) -> None:
    alice = twitch.add_user("alice")
    await runner.import_user(alice)
    first = await runner.start()
    await first.wait_for_log(r"started 1/1 users in", timeout=PROCESS_TIMEOUT)
    requests_before = len(twitch.requests)

    second = await runner.cli("run")
    assert second.returncode == 1
    assert f"a runner already runs on {runner.config.parent / 'state' / 'colorchanger.sqlite3'}" in (
        second.stderr
    )
    assert f"pid {first.process.pid} on " in second.stderr
    assert len(twitch.requests) == requests_before  # it never spoke to Twitch

    # Managing users still works while a run holds the lock: that is how they are changed live.
    await runner.ok("users", "disable", "alice")
    await first.wait_for_log(r"alice: disabled or removed; stopping")
    await runner.ok("users", "enable", "alice")
    assert await first.terminate() == 0
    third = await runner.start()  # the lock went with the first runner
    await third.wait_for_log(r"started 1/1 users in", timeout=PROCESS_TIMEOUT)
    assert await third.terminate() == 0

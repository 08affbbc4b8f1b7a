"""Removed users leave the supervisor's status, /healthz and ``colorchanger_bots``; disabled ones stay."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bot_runner.metrics import Metrics
from colorchanger_ext.testing import FakeTwitch

from .conftest import StartSupervisor

pytestmark = [pytest.mark.usefixtures("reconnect_fix")]


def bots_by_state(metrics: Metrics) -> dict[str, float]:
    lines = generate_latest(metrics.registry).decode().splitlines()
    return {
        line.split('state="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("colorchanger_bots{")
    }


async def test_removed_users_leave_the_status_and_metrics(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    h = await start_supervisor()
    metrics = Metrics(CollectorRegistry())
    metrics.watch(lambda: h.supervisor.status)
    users = [twitch.add_user(f"user{i}") for i in range(4)]
    for user in users:
        await h.start_user(user)
    kept = users[0]
    await h.cli.set_enabled(kept.login, False)
    for user in users[1:]:
        await h.cli.remove(user.login)
    await h.supervisor.wait_for_status(kept.id, "stopped")
    await h.supervisor.settled()
    for user in users[1:]:
        await h.supervisor.wait_until_forgotten(user.id)
    assert set(h.supervisor.status) == {kept.id}
    counts = bots_by_state(metrics)
    assert counts["stopped"] == 1
    assert sum(counts.values()) == 1

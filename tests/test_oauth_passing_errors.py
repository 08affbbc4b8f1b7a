"""A passing error from id.twitch.tv is never a lock-out: only a refused refresh token is.

Twitch answers a 429 or a 5xx now and then; the tokens are fine and a retry later works. Each test
injects one such answer into the fake's OAuth endpoints (validate at start, or the refresh after an
access token expired) and checks that the bot recovers by itself and the user is never marked
needs-login.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from colorchanger_ext.testing import FakeTwitch
from colorchanger_ext.testing.oauth import OAuthAPI

from .conftest import StartSupervisor, add, wait_put

pytestmark = [pytest.mark.usefixtures("reconnect_fix")]


class Faults:
    """How many validate and refresh requests the fake answers with ``status`` before it behaves."""

    def __init__(self) -> None:
        self.status = 429
        self.validate = 0
        self.refresh = 0


@pytest.fixture
def faults() -> Iterator[Faults]:
    injected = Faults()
    validate, token = OAuthAPI.validate, OAuthAPI.token

    def failure() -> web.Response:
        message = "Too Many Requests" if injected.status == 429 else "Service Unavailable"
        return web.json_response({"status": injected.status, "message": message}, status=injected.status)

    async def faulty_validate(self: OAuthAPI, request: web.Request) -> web.Response:
        if injected.validate > 0:
            injected.validate -= 1
            return failure()
        return await validate(self, request)

    async def faulty_token(self: OAuthAPI, request: web.Request) -> web.Response:
        form = await request.post()
        grant = request.query.get("grant_type") or form.get("grant_type")
        if injected.refresh > 0 and grant == "refresh_token":
            injected.refresh -= 1
            return failure()
        return await token(self, request)

    # Before the fake starts (tests ask for this fixture first): its routes bind these methods.
    OAuthAPI.validate, OAuthAPI.token = faulty_validate, faulty_token  # type: ignore[method-assign]
    try:
        yield injected
    finally:
        OAuthAPI.validate, OAuthAPI.token = validate, token  # type: ignore[method-assign]


@pytest.mark.parametrize("status", [429, 503])
async def test_one_failed_validate_at_start_is_retried(
    faults: Faults, twitch: FakeTwitch, start_supervisor: StartSupervisor, status: int
) -> None:
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    faults.status, faults.validate = status, 1
    await add(h.cli, alice)
    await h.connected(alice)  # running after a restart with backoff
    assert faults.validate == 0, "the fault was never injected"
    stored = await h.stored_tokens(alice)
    assert stored.status == "ok"
    await h.change(alice, "red")


@pytest.mark.parametrize("status", [429, 503])
async def test_one_failed_refresh_is_retried(
    faults: Faults, twitch: FakeTwitch, start_supervisor: StartSupervisor, status: int
) -> None:
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    await h.start_user(alice)
    twitch.expire_access_token(alice)
    faults.status, faults.refresh = status, 1
    since = time.monotonic()
    await h.say(alice, "ccc red")  # 401 -> refresh -> the injected failure
    await twitch.wait_until(lambda: faults.refresh == 0, timeout=5, what="the failed refresh")
    # The next change refreshes again and goes through: nobody had to log in.
    await h.say(alice, "ccc blue")
    await wait_put(twitch, alice, "blue", since=since, timeout=10)
    stored = await h.stored_tokens(alice)
    assert stored.status == "ok"
    assert h.supervisor.status[alice.id].state == "running"


async def test_a_refused_application_is_a_config_problem_not_a_lock_out(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    h = await start_supervisor()
    h.supervisor.client_id = "not-this-app"  # a typo in twitch.client_id
    alice = twitch.add_user("alice")
    await add(h.cli, alice)
    twitch.expire_access_token(alice)  # validate answers 401, so the bot refreshes: "invalid client"
    status = await h.supervisor.wait_for_status(alice.id, "restarting", timeout=5)
    assert "client_id" in status.detail
    stored = await h.stored_tokens(alice)
    assert stored.status == "ok"

"""bot_runner.login against the fake Twitch: device code flow, token import and refresh, channel look-ups."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot_runner.login import (
    REQUIRED_SCOPES,
    Channel,
    DeviceCode,
    InvalidToken,
    LoginError,
    Tokens,
    TwitchAuth,
    check_account,
    normalize_channel,
    normalize_channels,
)
from colorchanger_ext.testing import FakeTwitch, FakeUser, RecordedRequest

DECLINED = "the login was declined on Twitch"
EXPIRED = "the code expired before it was approved: run the command again"
REFRESH_REJECTED = "Twitch rejected the refresh token: log in again with users add"


class FastTime:
    """A virtual clock for TwitchAuth whose seconds pass ``scale`` times as fast in real time.

    The fake still measures real time between polls, so a scale that keeps real gaps >= its interval
    is needed wherever a poll follows another one.
    """

    def __init__(self, scale: float) -> None:
        self.now = 0.0
        self.scale = scale

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self.scale)
        self.now += seconds


@pytest.fixture
async def twitch() -> AsyncIterator[FakeTwitch]:
    async with FakeTwitch(device_interval=1) as fake:
        yield fake


def make_auth(http: aiohttp.ClientSession, twitch: FakeTwitch, **kwargs: Any) -> TwitchAuth:
    kwargs.setdefault("client_id", twitch.client_id)
    return TwitchAuth(http, oauth_url=twitch.id_url, helix_url=twitch.helix_url, **kwargs)


async def imported(
    http: aiohttp.ClientSession, twitch: FakeTwitch, user: FakeUser
) -> tuple[TwitchAuth, Tokens]:
    """A TwitchAuth on the fake, and ``user``'s current tokens imported through it."""
    auth = make_auth(http, twitch)
    return auth, await auth.import_tokens(user.access_token, user.refresh_token)


def token_polls(twitch: FakeTwitch) -> list[RecordedRequest]:
    return [r for r in twitch.requests if r.method == "POST" and r.path == "/oauth2/token"]


def assert_no_secrets(error: BaseException, twitch: FakeTwitch, *extra: str | None) -> None:
    """No token, refresh token, device code or client secret the fake knows of appears in the text."""
    secrets: list[str | None] = [s for u in twitch.users for s in (u.access_token, u.refresh_token)]
    secrets += list(twitch.oauth.devices)
    secrets += [twitch.client_secret, *extra]
    text = str(error)
    assert text
    for secret in secrets:
        if secret:
            assert secret not in text


async def run_device_login(auth: TwitchAuth, code: DeviceCode, ticks: list[float] | None = None) -> Tokens:
    async with asyncio.timeout(5):
        return await auth.wait_for_device_login(code, on_tick=None if ticks is None else ticks.append)


# device code flow


async def test_device_login_pending_then_approved_from_another_task(
    twitch: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    alice = twitch.add_user("alice")
    auth = make_auth(http, twitch)
    code = await auth.start_device_login()
    assert code.verification_uri.endswith(code.user_code)
    assert code.interval == 1
    assert code.device_code not in repr(code)

    async def approve_after_first_poll() -> None:
        pending = await twitch.wait_for_device_code()
        await twitch.wait_until(lambda: len(token_polls(twitch)) >= 1, what="first poll")
        twitch.approve_device(pending.user_code, alice)

    ticks: list[float] = []
    async with asyncio.timeout(5):
        approver = asyncio.create_task(approve_after_first_poll())
        tokens = await run_device_login(auth, code, ticks)
        await approver

    assert (tokens.user_id, tokens.login) == (alice.id, "alice")
    assert tokens.scopes == frozenset(REQUIRED_SCOPES)
    assert (tokens.access_token, tokens.refresh_token) == (alice.access_token, alice.refresh_token)
    assert tokens.expires_at == pytest.approx(time.time() + 14400, abs=5)
    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token not in repr(tokens)
    check_account(tokens, "alice")
    check_account(tokens, "#Alice")
    assert [r.status for r in token_polls(twitch)] == [400, 200]  # authorization_pending, then tokens
    assert ticks, "on_tick was never called"
    assert ticks == sorted(ticks, reverse=True)
    assert 1790 < ticks[-1] < 1800


async def test_slow_down_adds_five_seconds_to_the_interval(
    twitch: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    alice = twitch.add_user("alice")
    fast = FastTime(scale=0.2)  # 6 virtual seconds -> 1.2 real, more than the fake's 1 s interval
    auth = make_auth(http, twitch, clock=fast.clock, sleep=fast.sleep)
    code = await auth.start_device_login()
    twitch.approve_device(code.user_code, alice)
    twitch.slow_down_next_poll()

    ticks: list[float] = []
    tokens = await run_device_login(auth, code, ticks)

    assert tokens.login == "alice"
    polls = token_polls(twitch)
    assert [p.status for p in polls] == [400, 200]  # slow_down, then tokens
    # first poll after the 1 s interval, the second 1 + 5 s later: 7 virtual seconds in all
    assert fast.now == pytest.approx(7.0)
    assert polls[1].time - polls[0].time >= 6 * fast.scale
    assert min(ticks) == pytest.approx(1800 - 7)
    assert len(ticks) >= len(polls)


async def test_declined_login(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    fast = FastTime(scale=0.05)
    auth = make_auth(http, twitch, clock=fast.clock, sleep=fast.sleep)
    code = await auth.start_device_login()
    twitch.deny_device(code.user_code)

    with pytest.raises(LoginError) as caught:
        await run_device_login(auth, code)

    assert str(caught.value) == DECLINED
    assert_no_secrets(caught.value, twitch, code.device_code)


async def test_code_expires_while_waiting(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(device_interval=1, device_expires_in=2) as twitch:
        fast = FastTime(scale=0.05)
        auth = make_auth(http, twitch, clock=fast.clock, sleep=fast.sleep)
        code = await auth.start_device_login()
        ticks: list[float] = []

        with pytest.raises(LoginError) as caught:
            await run_device_login(auth, code, ticks)

        assert str(caught.value) == EXPIRED
        assert_no_secrets(caught.value, twitch, code.device_code)
        assert [p.status for p in token_polls(twitch)] == [400]  # one pending poll, then the deadline
        assert fast.now == pytest.approx(2.0)
        assert ticks[0] == pytest.approx(2.0)


async def test_code_expired_on_twitchs_side(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(device_interval=1, device_expires_in=1) as twitch:
        auth = make_auth(http, twitch)
        code = await auth.start_device_login()
        # our own count-down thinks there is time left; Twitch answers "invalid device code"
        long_lived = dataclasses.replace(code, expires_in=60)

        with pytest.raises(LoginError) as caught:
            await run_device_login(auth, long_lived)

        assert str(caught.value) == EXPIRED
        assert_no_secrets(caught.value, twitch, code.device_code)
        assert [p.status for p in token_polls(twitch)] == [400]


async def test_other_poll_error_quotes_twitch_but_not_the_request(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(device_interval=1, client_secret="right-secret-value") as twitch:
        fast = FastTime(scale=0.05)
        auth = make_auth(http, twitch, client_secret="wrong-secret-value", clock=fast.clock, sleep=fast.sleep)
        code = await auth.start_device_login()

        with pytest.raises(LoginError) as caught:
            await run_device_login(auth, code)

        text = str(caught.value)
        assert "HTTP 403: invalid client secret" in text
        assert "wrong-secret-value" not in text
        assert_no_secrets(caught.value, twitch, code.device_code)


async def test_start_with_unknown_client_id(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    auth = make_auth(http, twitch, client_id="not-our-client")

    with pytest.raises(LoginError, match="HTTP 400: invalid client"):
        await auth.start_device_login()


async def test_wrong_account_approved(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    twitch.add_user("alice")
    bob = twitch.add_user("bob")
    fast = FastTime(scale=0.05)
    auth = make_auth(http, twitch, clock=fast.clock, sleep=fast.sleep)
    code = await auth.start_device_login()
    twitch.approve_device(code.user_code, bob)
    tokens = await run_device_login(auth, code)

    with pytest.raises(LoginError) as caught:
        check_account(tokens, "alice")

    assert str(caught.value) == (
        "you approved the login as 'bob', but asked to add 'alice': log in to Twitch as alice and try again"
    )
    assert_no_secrets(caught.value, twitch, tokens.access_token, tokens.refresh_token)


async def test_missing_scope_through_the_device_flow(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")
    fast = FastTime(scale=0.05)
    auth = make_auth(http, twitch, clock=fast.clock, sleep=fast.sleep)
    code = await auth.start_device_login(scopes=("user:read:chat",))
    twitch.approve_device(code.user_code, alice)
    tokens = await run_device_login(auth, code)
    assert tokens.scopes == {"user:read:chat"}

    with pytest.raises(LoginError, match="user:manage:chat_color") as caught:
        check_account(tokens, "alice")

    assert "user:read:chat" not in str(caught.value)
    assert_no_secrets(caught.value, twitch, tokens.access_token, tokens.refresh_token)


# token import, validate, refresh


async def test_import_valid_tokens(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")
    auth = make_auth(http, twitch)

    tokens = await auth.import_tokens(alice.access_token, alice.refresh_token)

    assert tokens == Tokens(
        user_id=alice.id,
        login="alice",
        access_token=alice.access_token,
        refresh_token=alice.refresh_token,
        scopes=frozenset(REQUIRED_SCOPES),
        expires_at=tokens.expires_at,
    )
    assert tokens.expires_at == pytest.approx(time.time() + 14400, abs=5)
    check_account(tokens, "alice")
    assert not token_polls(twitch), "a valid pair must not be refreshed"


async def test_import_with_missing_scope(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice", scopes=("user:read:chat",))
    tokens = await make_auth(http, twitch).import_tokens(alice.access_token, alice.refresh_token)

    with pytest.raises(LoginError, match="user:manage:chat_color") as caught:
        check_account(tokens, "alice")

    assert_no_secrets(caught.value, twitch)


async def test_import_expired_access_token_refreshes_once(
    twitch: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    alice = twitch.add_user("alice")
    old_access, old_refresh = alice.access_token, alice.refresh_token
    twitch.expire_access_token(alice)
    auth = make_auth(http, twitch)

    tokens = await auth.import_tokens(old_access, old_refresh)

    assert tokens.login == "alice"
    assert tokens.access_token not in (old_access, "")
    assert tokens.refresh_token not in (old_refresh, "")
    assert (tokens.access_token, tokens.refresh_token) == (alice.access_token, alice.refresh_token)
    assert len(token_polls(twitch)) == 1
    # single-use refresh tokens: the old one is dead now, the new one works
    with pytest.raises(LoginError) as caught:
        await auth.refresh(old_refresh)
    assert str(caught.value) == REFRESH_REJECTED
    assert_no_secrets(caught.value, twitch, old_access, old_refresh)
    assert (await auth.validate(tokens.access_token)).user_id == alice.id


async def test_import_revoked_tokens(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")
    twitch.revoke_tokens(alice)

    with pytest.raises(LoginError) as caught:
        await make_auth(http, twitch).import_tokens(alice.access_token, alice.refresh_token)

    assert str(caught.value) == REFRESH_REJECTED
    assert_no_secrets(caught.value, twitch)


async def test_import_token_of_another_application(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")

    with pytest.raises(LoginError, match="another Twitch application") as caught:
        await make_auth(http, twitch, client_id="our-client").import_tokens(
            alice.access_token, alice.refresh_token
        )

    assert_no_secrets(caught.value, twitch)


async def test_validate_invalid_token(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    with pytest.raises(InvalidToken, match="invalid access token") as caught:
        await make_auth(http, twitch).validate("notarealtoken0000000000000000")

    assert_no_secrets(caught.value, twitch, "notarealtoken0000000000000000")


async def test_validate_reports_token_owner(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")

    info = await make_auth(http, twitch).validate(alice.access_token)

    assert (info.user_id, info.login, info.client_id) == (alice.id, "alice", twitch.client_id)
    assert info.scopes == frozenset(REQUIRED_SCOPES)
    assert 14390 <= info.expires_in <= 14400


async def test_unreachable_twitch(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:  # a port nothing listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    auth = TwitchAuth(http, client_id="x", oauth_url=f"{base}/", helix_url=f"{base}/helix/")

    with pytest.raises(LoginError, match="could not reach Twitch") as caught:
        await auth.validate("secrettoken123456789")

    assert "secrettoken123456789" not in str(caught.value)


# channels


async def test_resolve_channels_in_the_given_order(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    twitch.add_user("carol")
    auth, tokens = await imported(http, twitch, alice)

    channels = await auth.resolve_channels(tokens, ["#Bob", "alice "])

    assert channels == [Channel(id=bob.id, login="bob"), Channel(id=alice.id, login="alice")]
    lookups = [r for r in twitch.requests if r.path == "/helix/users"]
    assert [(r.status, r.user_id, r.query) for r in lookups] == [(200, alice.id, {"login": ["bob", "alice"]})]


async def test_resolve_channels_lists_every_unknown_name(
    twitch: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    alice = twitch.add_user("alice")
    auth, tokens = await imported(http, twitch, alice)

    with pytest.raises(LoginError) as one:
        await auth.resolve_channels(tokens, ["alice", "nosuch"])
    with pytest.raises(LoginError) as two:
        await auth.resolve_channels(tokens, ["nosuch", "alice", "#Ghost"])

    assert str(one.value) == "no Twitch channel named 'nosuch'"
    assert str(two.value) == "no Twitch channels named 'nosuch', 'ghost'"
    assert_no_secrets(one.value, twitch)
    assert_no_secrets(two.value, twitch)


async def test_resolve_channels_normalises_and_deduplicates(
    twitch: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    alice = twitch.add_user("alice")
    auth, tokens = await imported(http, twitch, alice)

    channels = await auth.resolve_channels(tokens, ["#Alice", "alice ", "ALICE"])

    assert channels == [Channel(id=alice.id, login="alice")]
    assert [r.query for r in twitch.requests if r.path == "/helix/users"] == [{"login": ["alice"]}]


async def test_resolve_more_than_100_channels(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    users: list[FakeUser] = [twitch.add_user(f"user_{n}") for n in range(130)]
    auth, tokens = await imported(http, twitch, users[0])

    channels = await auth.resolve_channels(tokens, [u.login for u in reversed(users)])

    assert [c.id for c in channels] == [u.id for u in reversed(users)]
    lookups = [r for r in twitch.requests if r.path == "/helix/users"]
    assert [len(r.query["login"]) for r in lookups] == [100, 30]


async def test_resolve_channels_with_a_dead_token(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")
    auth, tokens = await imported(http, twitch, alice)
    twitch.revoke_tokens(alice)

    with pytest.raises(InvalidToken, match="HTTP 401: Invalid OAuth token") as caught:
        await auth.resolve_channels(tokens, ["alice"])

    assert_no_secrets(caught.value, twitch, tokens.access_token, tokens.refresh_token)


async def test_resolve_channels_with_an_expired_token_then_refreshed(
    twitch: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    alice = twitch.add_user("alice")
    auth, tokens = await imported(http, twitch, alice)
    twitch.expire_access_token(alice)

    with pytest.raises(InvalidToken) as caught:
        await auth.resolve_channels(tokens, ["alice"])
    assert_no_secrets(caught.value, twitch, tokens.access_token, tokens.refresh_token)

    access, refresh = await auth.refresh(tokens.refresh_token)
    fresh = dataclasses.replace(tokens, access_token=access, refresh_token=refresh)
    assert await auth.resolve_channels(fresh, ["alice"]) == [Channel(id=alice.id, login="alice")]


async def test_resolve_no_channels_makes_no_request(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")
    auth, tokens = await imported(http, twitch, alice)

    assert await auth.resolve_channels(tokens, []) == []
    assert not [r for r in twitch.requests if r.path == "/helix/users"]


# names and account checks


@pytest.mark.parametrize(
    ("raw", "login"),
    [
        ("alice", "alice"),
        ("#Alice", "alice"),
        ("  ALICE  ", "alice"),
        (" #bob_1 ", "bob_1"),
        ("x" * 25, "x" * 25),
    ],
)
def test_normalize_channel(raw: str, login: str) -> None:
    assert normalize_channel(raw) == login


@pytest.mark.parametrize("raw", ["", "   ", "#", "al ice", "x" * 26, "émile", "bob!", "##alice", "a-b"])
def test_normalize_channel_rejects(raw: str) -> None:
    with pytest.raises(LoginError) as caught:
        normalize_channel(raw)

    assert repr(raw) in str(caught.value)


def test_normalize_channels_dedupes_in_order() -> None:
    assert normalize_channels(["#Bob", "alice", "BOB", " alice", "carol"]) == ["bob", "alice", "carol"]

    with pytest.raises(LoginError, match="'no way'"):
        normalize_channels(["alice", "no way"])


def test_check_account_passes_and_names_every_missing_scope() -> None:
    tokens = Tokens(
        user_id="1",
        login="alice",
        access_token="access-secret-xyz",
        refresh_token="refresh-secret-xyz",
        scopes=frozenset(),
        expires_at=0.0,
    )
    check_account(dataclasses.replace(tokens, scopes=frozenset(REQUIRED_SCOPES)), "ALICE")

    with pytest.raises(LoginError) as caught:
        check_account(tokens, "alice")

    text = str(caught.value)
    assert all(scope in text for scope in REQUIRED_SCOPES)
    assert "secret-xyz" not in text
    assert "secret-xyz" not in repr(tokens)


async def test_a_token_echoed_by_twitch_is_redacted(twitch: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = twitch.add_user("alice")
    auth, tokens = await imported(http, twitch, alice)
    twitch.fail_helix(path="users", status=400, message=f"bad token {tokens.access_token}")

    with pytest.raises(LoginError, match=r"HTTP 400: bad token \[redacted\]") as caught:
        await auth.resolve_channels(tokens, ["alice"])

    assert_no_secrets(caught.value, twitch, tokens.access_token)

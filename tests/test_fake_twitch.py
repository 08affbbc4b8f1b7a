"""FakeTwitch speaks Twitch's protocol: checked with plain aiohttp clients and end to end with twitchio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import twitchio
from twitchio.ext import commands

from colorchanger_ext.testing import FakeSession, FakeTwitch, FakeUser

CHAT_EVENT_KEYS = {
    "broadcaster_user_id",
    "broadcaster_user_login",
    "broadcaster_user_name",
    "chatter_user_id",
    "chatter_user_login",
    "chatter_user_name",
    "message_id",
    "message",
    "color",
    "badges",
    "message_type",
    "cheer",
    "reply",
    "channel_points_custom_reward_id",
    "channel_points_animation_id",
    "source_broadcaster_user_id",
    "source_broadcaster_user_login",
    "source_broadcaster_user_name",
    "source_message_id",
    "source_badges",
    "is_source_only",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwitch]:
    async with FakeTwitch(reconnect_grace=0.3, device_interval=0) as running:
        yield running


async def helix(
    http: aiohttp.ClientSession,
    fake: FakeTwitch,
    method: str,
    path: str,
    token: str,
    params: Any = None,
    body: Any = None,
) -> tuple[int, Any, dict[str, str]]:
    """One Helix call as twitchio makes it: Bearer token plus Client-Id."""
    headers = {"Authorization": f"Bearer {token}", "Client-Id": fake.client_id}
    async with http.request(method, fake.helix_url + path, params=params, json=body, headers=headers) as resp:
        data = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, data, dict(resp.headers)


async def oauth(http: aiohttp.ClientSession, fake: FakeTwitch, path: str, **params: str) -> tuple[int, Any]:
    """One id.twitch.tv POST with the parameters in the query string, as twitchio sends them."""
    async with http.post(fake.id_url + path, params=params) as resp:
        return resp.status, await resp.json()


async def refresh(
    http: aiohttp.ClientSession, fake: FakeTwitch, refresh_token: str, *, client_id: str
) -> tuple[int, Any]:
    """A refresh_token grant, as twitchio sends it when an access token has expired."""
    return await oauth(
        http,
        fake,
        "oauth2/token",
        grant_type="refresh_token",
        refresh_token=refresh_token,
        client_id=client_id,
    )


async def connect(
    http: aiohttp.ClientSession, url: str
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """Open an EventSub socket and read its welcome."""
    ws = await http.ws_connect(url)
    welcome = await frame(ws)
    assert welcome["metadata"]["message_type"] == "session_welcome"
    return ws, welcome


async def frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next JSON frame, keepalives included (within 2 s)."""
    msg = await ws.receive(timeout=2)
    assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def notification(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next frame that is not a keepalive."""
    while (data := await frame(ws))["metadata"]["message_type"] == "session_keepalive":
        pass
    return data


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes the socket (within 2 s); the code it closed with."""
    async with asyncio.timeout(2):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return ws.close_code


async def subscribe(
    http: aiohttp.ClientSession, fake: FakeTwitch, user: FakeUser, channel: FakeUser, session_id: str
) -> tuple[int, Any]:
    """Create channel.chat.message for ``channel`` read by ``user``."""
    body = {
        "type": "channel.chat.message",
        "version": "1",
        "condition": {"broadcaster_user_id": channel.id, "user_id": user.id},
        "transport": {"method": "websocket", "session_id": session_id},
    }
    status, data, _ = await helix(http, fake, "POST", "eventsub/subscriptions", user.access_token, body=body)
    return status, data


async def subscribed_socket(
    http: aiohttp.ClientSession, fake: FakeTwitch, user: FakeUser, channel: FakeUser
) -> tuple[aiohttp.ClientWebSocketResponse, FakeSession]:
    """A socket with one chat subscription on it, and the fake's session for it."""
    ws, welcome = await connect(http, fake.eventsub_url)
    session_id = welcome["payload"]["session"]["id"]
    status, _ = await subscribe(http, fake, user, channel, session_id)
    assert status == 202
    (session,) = [s for s in fake.sessions() if s.id == session_id]
    return ws, session


async def channel_socket(
    http: aiohttp.ClientSession, fake: FakeTwitch
) -> tuple[FakeUser, aiohttp.ClientWebSocketResponse, FakeSession]:
    """A "reader" account reading a "channel"'s chat on a socket of its own: (channel, socket, session)."""
    reader, channel = fake.add_user("reader"), fake.add_user("channel")
    ws, session = await subscribed_socket(http, fake, reader, channel)
    return channel, ws, session


# OAuth


async def test_validate_accepts_live_token_and_rejects_bad_one(
    fake: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    user = fake.add_user("Alice")
    ok = await http.get(
        fake.id_url + "oauth2/validate", headers={"Authorization": f"OAuth {user.access_token}"}
    )
    body = await ok.json()
    assert ok.status == 200
    assert body["client_id"] == fake.client_id
    assert (body["login"], body["user_id"]) == ("alice", user.id)
    assert set(body["scopes"]) == {"user:read:chat", "user:manage:chat_color"}
    assert 14390 < body["expires_in"] <= 14400
    bad = await http.get(fake.id_url + "oauth2/validate", headers={"Authorization": "OAuth nope"})
    assert (bad.status, await bad.json()) == (401, {"status": 401, "message": "invalid access token"})


async def test_refresh_rotates_the_pair_and_the_old_refresh_token_is_then_rejected(
    fake: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    user = fake.add_user("alice")
    old_access, old_refresh = user.access_token, user.refresh_token
    status, body = await refresh(http, fake, old_refresh, client_id=fake.client_id)
    assert status == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 14400
    assert (body["access_token"], body["refresh_token"]) == (user.access_token, user.refresh_token)
    assert user.refresh_token != old_refresh
    assert sorted(body["scope"]) == ["user:manage:chat_color", "user:read:chat"]

    again = await refresh(http, fake, old_refresh, client_id=fake.client_id)
    assert again == (400, {"status": 400, "message": "Invalid refresh token"})
    status, _, _ = await helix(http, fake, "GET", "users", old_access)
    assert status == 401
    wrong_client = await refresh(http, fake, user.refresh_token, client_id="x")
    assert wrong_client == (400, {"status": 400, "message": "invalid client"})


async def test_refresh_accepts_a_form_body(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    user = fake.add_user("alice")
    form = {"grant_type": "refresh_token", "refresh_token": user.refresh_token, "client_id": fake.client_id}
    async with http.post(fake.id_url + "oauth2/token", data=form) as resp:
        assert resp.status == 200
        assert (await resp.json())["access_token"] == user.access_token


async def test_device_flow_pending_then_slow_down_then_approved(
    fake: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    user = fake.add_user("alice")
    status, start = await oauth(
        http, fake, "oauth2/device", client_id=fake.client_id, scopes="user:read:chat user:manage:chat_color"
    )
    assert status == 200
    assert set(start) == {"device_code", "expires_in", "interval", "user_code", "verification_uri"}
    assert start["verification_uri"].endswith(f"device-code={start['user_code']}")
    pending = await fake.wait_for_device_code(timeout=1)
    assert pending.user_code == start["user_code"]
    assert pending.scopes == ("user:read:chat", "user:manage:chat_color")

    def poll() -> Any:
        return oauth(
            http,
            fake,
            "oauth2/token",
            grant_type="urn:ietf:params:oauth:grant-type:device_code",
            device_code=start["device_code"],
            client_id=fake.client_id,
            scopes="user:read:chat user:manage:chat_color",
        )

    assert await poll() == (400, {"status": 400, "message": "authorization_pending"})
    fake.slow_down_next_poll()
    assert await poll() == (400, {"status": 400, "message": "slow_down"})
    fake.approve_device(start["user_code"], user)
    status, tokens = await poll()
    assert status == 200
    assert tokens["access_token"] == user.access_token
    assert tokens["scope"] == ["user:read:chat", "user:manage:chat_color"]
    assert await poll() == (400, {"status": 400, "message": "invalid device code"})


async def test_device_flow_polled_faster_than_interval_gets_slow_down(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(device_interval=5) as fake:
        _, start = await oauth(http, fake, "oauth2/device", client_id=fake.client_id, scopes="user:read:chat")
        assert start["interval"] == 5
        params = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": start["device_code"],
            "client_id": fake.client_id,
        }
        assert (await oauth(http, fake, "oauth2/token", **params))[1]["message"] == "authorization_pending"
        assert (await oauth(http, fake, "oauth2/token", **params))[1]["message"] == "slow_down"


async def test_device_flow_denied_and_expired(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(device_interval=0, device_expires_in=0) as expiring:
        _, start = await oauth(http, expiring, "oauth2/device", client_id=expiring.client_id, scopes="")
        params = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": start["device_code"],
            "client_id": expiring.client_id,
        }
        assert await oauth(http, expiring, "oauth2/token", **params) == (
            400,
            {"status": 400, "message": "invalid device code"},
        )
    async with FakeTwitch(device_interval=0) as fake:
        _, start = await oauth(http, fake, "oauth2/device", client_id=fake.client_id, scopes="user:read:chat")
        fake.deny_device(start["user_code"])
        params["device_code"], params["client_id"] = start["device_code"], fake.client_id
        assert await oauth(http, fake, "oauth2/token", **params) == (
            400,
            {"status": 400, "message": "authorization_declined"},
        )


async def test_client_credentials_needs_the_secret(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(client_secret="s3cret") as fake:
        params = {"grant_type": "client_credentials", "client_id": fake.client_id}
        status, body = await oauth(http, fake, "oauth2/token", **params, client_secret="s3cret")
        assert status == 200
        assert set(body) == {"access_token", "expires_in", "token_type"}
        assert await oauth(http, fake, "oauth2/token", **params, client_secret="wrong") == (
            403,
            {"status": 403, "message": "invalid client secret"},
        )


# Helix basics


async def test_helix_401_bodies_and_expired_token_refresh(
    fake: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    user = fake.add_user("alice")
    status, body, headers = await helix(http, fake, "GET", "users", "not-a-token")
    assert (status, body) == (401, {"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"})
    assert "Ratelimit-Remaining" in headers

    fake.expire_access_token(user)
    assert (await helix(http, fake, "GET", "users", user.access_token))[1]["message"] == "Invalid OAuth token"
    validate = await http.get(
        fake.id_url + "oauth2/validate", headers={"Authorization": f"OAuth {user.access_token}"}
    )
    assert validate.status == 401
    status, _ = await refresh(http, fake, user.refresh_token, client_id="fake-client-id")
    assert status == 200
    assert (await helix(http, fake, "GET", "users", user.access_token))[0] == 200

    fake.revoke_tokens(user)
    assert (await helix(http, fake, "GET", "users", user.access_token))[0] == 401
    status, _ = await refresh(http, fake, user.refresh_token, client_id="fake-client-id")
    assert status == 400


async def test_helix_checks_client_id(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    user = fake.add_user("alice")
    headers = {"Authorization": f"Bearer {user.access_token}", "Client-Id": "someone-else"}
    async with http.get(fake.helix_url + "users", headers=headers) as resp:
        assert resp.status == 401
        assert (await resp.json())["message"] == "Client ID and OAuth token do not match"


async def test_rate_limit_headers_decrease_and_429_when_empty(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(ratelimit_points=3) as fake:
        user = fake.add_user("alice")
        other = fake.add_user("bob")
        seen = []
        for _ in range(3):
            status, _, headers = await helix(http, fake, "GET", "users", user.access_token)
            assert status == 200
            assert headers["Ratelimit-Limit"] == "3"
            seen.append(int(headers["Ratelimit-Remaining"]))
        assert seen == [2, 1, 0]
        status, body, headers = await helix(http, fake, "GET", "users", user.access_token)
        assert (status, body) == (429, {"error": "Too Many Requests", "status": 429, "message": ""})
        assert headers["Ratelimit-Remaining"] == "0"
        assert time.time() < int(headers["Ratelimit-Reset"]) <= time.time() + 61
        # the bucket is per (client id, user): another user is unaffected
        assert (await helix(http, fake, "GET", "users", other.access_token))[0] == 200


async def test_get_users(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    alice = fake.add_user("alice", display_name="Alice")
    bob = fake.add_user("bob", user_id="42")
    _, body, _ = await helix(http, fake, "GET", "users", alice.access_token)
    assert [u["id"] for u in body["data"]] == [alice.id]
    assert body["data"][0]["display_name"] == "Alice"
    params = [("id", "42"), ("login", "alice"), ("id", "404")]
    _, body, _ = await helix(http, fake, "GET", "users", alice.access_token, params=params)
    assert {u["id"] for u in body["data"]} == {alice.id, bob.id}


async def test_unknown_helix_path_is_404_with_headers(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    user = fake.add_user("alice")
    status, body, headers = await helix(http, fake, "GET", "streams", user.access_token)
    assert (status, body["error"]) == (404, "Not Found")
    assert "Ratelimit-Reset" in headers


# Chat colour


async def test_color_put_named_and_hex_rules(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    plain = fake.add_user("plain")
    turbo = fake.add_user("turbo", turbo=True)

    async def put(user: FakeUser, color: str, user_id: str | None = None) -> tuple[int, Any]:
        params = {"user_id": user_id or user.id, "color": color}
        status, body, _ = await helix(http, fake, "PUT", "chat/color", user.access_token, params=params)
        return status, body

    assert await put(plain, "blue_violet") == (204, None)
    assert plain.color == "#8A2BE2"
    assert await put(turbo, "#9146ff") == (204, None)
    assert turbo.color == "#9146FF"
    status, body = await put(plain, "#9146FF")
    assert status == 400
    assert "Turbo" in body["message"]
    assert "Prime" in body["message"]
    assert plain.color == "#8A2BE2"
    fake.set_color_accepts_hex(plain, True)
    assert (await put(plain, "#123abc"))[0] == 204
    assert await put(plain, "BlueViolet") == (
        400,
        {"error": "Bad Request", "status": 400, "message": "invalid color"},
    )
    status, body = await put(plain, "red", user_id=turbo.id)
    assert status == 401
    assert "must match" in body["message"]

    puts = await fake.wait_for_color_puts(6, timeout=1)
    assert [(p.color, p.status) for p in puts] == [
        ("blue_violet", 204),
        ("#9146ff", 204),
        ("#9146FF", 400),
        ("#123abc", 204),
        ("BlueViolet", 400),
        ("red", 401),
    ]
    _, body, _ = await helix(
        http, fake, "GET", "chat/color", plain.access_token, params=[("user_id", plain.id), ("user_id", "9")]
    )
    assert body == {
        "data": [{"user_id": plain.id, "user_login": "plain", "user_name": "plain", "color": "#123ABC"}]
    }


async def test_color_put_needs_the_scope(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    reader = fake.add_user("reader", scopes=["user:read:chat"])
    params = {"user_id": reader.id, "color": "red"}
    status, body, _ = await helix(http, fake, "PUT", "chat/color", reader.access_token, params=params)
    assert (status, body["message"]) == (401, "Missing scope: user:manage:chat_color")


async def test_wait_for_color_puts_times_out_with_a_clear_message(fake: FakeTwitch) -> None:
    with pytest.raises(TimeoutError, match="1 colour PUT"):
        await fake.wait_for_color_puts(1, user_id="1", timeout=0.05)


async def test_fail_helix_and_delay(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    user = fake.add_user("alice")
    fake.fail_helix(path="chat/color", status=503, count=2, headers={"Retry-After": "1"})
    params = {"user_id": user.id, "color": "red"}
    for _ in range(2):
        status, body, headers = await helix(http, fake, "PUT", "chat/color", user.access_token, params=params)
        assert (status, body) == (503, {"error": "Service Unavailable", "status": 503, "message": ""})
        assert headers["Retry-After"] == "1"
        assert "Ratelimit-Limit" in headers
    assert (await helix(http, fake, "PUT", "chat/color", user.access_token, params=params))[0] == 204
    fake.fail_helix(path="chat/color", status=401)
    _, body, _ = await helix(http, fake, "PUT", "chat/color", user.access_token, params=params)
    assert body["message"] == "Invalid OAuth token"
    fake.helix_delay = 0.05
    started = time.monotonic()
    await helix(http, fake, "GET", "users", user.access_token)
    assert time.monotonic() - started >= 0.05
    assert [r.status for r in fake.requests if r.path == "/helix/chat/color"] == [503, 503, 204, 401]
    assert all(r.user_id == user.id for r in fake.requests)


# EventSub subscriptions


async def test_chat_message_delivered_with_every_key(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    reader = fake.add_user("reader")
    channel = fake.add_user("channel", display_name="Channel")
    chatter = fake.add_user("chatter", display_name="Chätter")
    ws, welcome = await connect(http, fake.eventsub_url)
    session = welcome["payload"]["session"]
    assert set(session) == {
        "id",
        "status",
        "connected_at",
        "keepalive_timeout_seconds",
        "reconnect_url",
        "recovery_url",
    }
    assert (session["status"], session["keepalive_timeout_seconds"], session["reconnect_url"]) == (
        "connected",
        10,
        None,
    )
    assert session["connected_at"].endswith("Z")
    assert len(session["connected_at"].split(".")[1]) == 10

    status, body = await subscribe(http, fake, reader, channel, session["id"])
    assert status == 202
    (created,) = body["data"]
    assert created["status"] == "enabled"
    assert created["cost"] == 0
    assert created["transport"] == {
        "method": "websocket",
        "session_id": session["id"],
        "connected_at": session["connected_at"],
    }
    assert (body["total"], body["total_cost"], body["max_total_cost"]) == (1, 0, 10)
    sub = await fake.wait_for_subscription(user_id=reader.id, broadcaster_id=channel.id, timeout=1)
    assert sub.id == created["id"]
    assert fake.sessions(user_id=reader.id)[0].id == session["id"]

    message_id = await fake.send_chat_message(
        broadcaster=channel, chatter=chatter, text="hello", color="#FF0000"
    )
    note = await notification(ws)
    meta, payload = note["metadata"], note["payload"]
    assert meta["message_type"] == "notification"
    assert (meta["subscription_type"], meta["subscription_version"]) == ("channel.chat.message", "1")
    assert set(payload["subscription"]) == {
        "id",
        "status",
        "type",
        "version",
        "cost",
        "condition",
        "transport",
        "created_at",
    }
    event = payload["event"]
    assert set(event) == CHAT_EVENT_KEYS
    assert event["message_id"] == message_id
    assert (event["chatter_user_id"], event["chatter_user_name"]) == (chatter.id, "Chätter")
    assert event["message"] == {
        "text": "hello",
        "fragments": [{"type": "text", "text": "hello", "cheermote": None, "emote": None, "mention": None}],
    }
    assert event["source_broadcaster_user_id"] is None
    assert event["source_badges"] is None
    await ws.close()


async def test_subscription_errors(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    reader = fake.add_user("reader")
    other = fake.add_user("other")
    channel = fake.add_user("channel")
    ws, session = await subscribed_socket(http, fake, reader, channel)
    status, body = await subscribe(http, fake, reader, channel, session.id)
    assert (status, body["message"]) == (409, "subscription already exists")
    status, body = await subscribe(http, fake, reader, channel, "no-such-session")
    assert status == 400
    assert "does not exist" in body["message"]
    # the condition's user_id must be the token's user
    status, body = await subscribe(http, fake, other, channel, session.id)
    assert (status, body["message"]) == (403, "subscription missing proper authorization")

    listed = await helix(http, fake, "GET", "eventsub/subscriptions", reader.access_token)
    assert [s["id"] for s in listed[1]["data"]] == [session.subscriptions[0].id]
    sub_id = session.subscriptions[0].id
    assert (await helix(http, fake, "DELETE", "eventsub/subscriptions", reader.access_token, {"id": sub_id}))[
        0
    ] == 204
    assert fake.subscriptions() == []
    await ws.close()


async def test_more_than_three_sessions_per_user_is_429(
    fake: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    reader = fake.add_user("reader")
    channel = fake.add_user("channel")
    sockets = [(await subscribed_socket(http, fake, reader, channel))[0] for _ in range(3)]
    ws, welcome = await connect(http, fake.eventsub_url)
    status, body = await subscribe(http, fake, reader, channel, welcome["payload"]["session"]["id"])
    assert (status, body["message"]) == (429, "websocket transports limit exceeded")
    for socket in [*sockets, ws]:
        await socket.close()


# EventSub socket behaviour


async def test_unused_connection_is_closed_4003(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(subscribe_deadline=0.1) as fake:
        ws, _ = await connect(http, fake.eventsub_url)
        assert await close_code(ws) == 4003
        assert fake.sessions() == []


async def test_inbound_text_is_closed_4001(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    _, ws, _ = await channel_socket(http, fake)
    await ws.ping()  # pings are allowed
    await ws.send_str("hello?")
    assert await close_code(ws) == 4001
    assert fake.subscriptions() == []


async def test_keepalive_after_silence_and_keepalive_clamped(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(keepalive_interval=0.05, subscribe_deadline=5) as fake:
        ws, welcome = await connect(http, fake.eventsub_url + "?keepalive_timeout_seconds=5")
        assert welcome["payload"]["session"]["keepalive_timeout_seconds"] == 10
        keepalive = await frame(ws)
        assert keepalive["metadata"]["message_type"] == "session_keepalive"
        assert keepalive["payload"] == {}
        await ws.close()


@pytest.mark.parametrize("code", [4000, 4002, 4005, 4006])
async def test_close_session_sends_the_code_and_removes_subscriptions(
    fake: FakeTwitch, http: aiohttp.ClientSession, code: int
) -> None:
    _, ws, session = await channel_socket(http, fake)
    sub = session.subscriptions[0]
    await asyncio.gather(fake.close_session(session, code, "bye"), close_code(ws))
    assert ws.close_code == code
    assert fake.subscriptions() == []
    assert fake.sessions() == []
    assert sub.status.startswith("websocket_")


async def test_drop_session_aborts_without_close_frame(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    _, ws, session = await channel_socket(http, fake)
    await fake.drop_session(session)
    async with asyncio.timeout(2):
        msg = await ws.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert ws.close_code not in range(4000, 4008)
    assert fake.subscriptions() == []


async def test_silenced_session_gets_nothing(http: aiohttp.ClientSession) -> None:
    async with FakeTwitch(keepalive_interval=0.05) as fake:
        channel, ws, session = await channel_socket(http, fake)
        fake.silence(session)
        await fake.send_chat_message(broadcaster=channel, chatter=channel, text="lost")
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.2)  # several keepalive periods: nothing at all
        await ws.close()


async def test_reconnect_keeps_the_session_and_closes_the_old_socket_4004(
    fake: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    channel, old, session = await channel_socket(http, fake)
    await fake.send_reconnect(session)
    reconnect = await frame(old)
    assert reconnect["metadata"]["message_type"] == "session_reconnect"
    info = reconnect["payload"]["session"]
    assert (info["id"], info["status"], info["keepalive_timeout_seconds"]) == (
        session.id,
        "reconnecting",
        None,
    )
    assert info["reconnect_url"].startswith(fake.eventsub_url + "?reconnect=")

    new, welcome = await connect(http, info["reconnect_url"])
    assert welcome["payload"]["session"]["id"] == session.id
    await fake.send_chat_message(broadcaster=channel, chatter=channel, text="after")
    assert (await notification(new))["payload"]["event"]["message"]["text"] == "after"
    # the client left the old socket open: closed with 4004 once the grace has passed
    assert await close_code(old) == 4004
    assert [s.id for s in fake.sessions()] == [session.id]
    assert len(fake.subscriptions()) == 1
    with pytest.raises(TimeoutError):  # and the new socket carries on
        await new.receive(timeout=0.05)
    await new.close()


async def test_events_during_reconnect_are_delivered_once_on_the_new_socket(
    fake: FakeTwitch, http: aiohttp.ClientSession
) -> None:
    channel, old, session = await channel_socket(http, fake)
    await fake.send_reconnect(session)
    url = (await frame(old))["payload"]["session"]["reconnect_url"]
    first = await fake.send_chat_message(broadcaster=channel, chatter=channel, text="one")
    second = await fake.send_chat_message(broadcaster=channel, chatter=channel, text="two")
    new, _ = await connect(http, url)
    await old.close()
    got = [(await notification(new))["payload"]["event"]["message_id"] for _ in range(2)]
    assert got == [first, second]
    with pytest.raises(TimeoutError):
        await new.receive(timeout=0.05)
    await new.close()


async def test_invalid_reconnect_url_is_closed_4007(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(fake.eventsub_url + "?reconnect=bogus")
    assert await close_code(ws) == 4007


async def test_revocation(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    _, ws, session = await channel_socket(http, fake)
    await fake.revoke(session.subscriptions[0], "chat_user_banned")
    revocation = await notification(ws)
    assert revocation["metadata"]["message_type"] == "revocation"
    assert revocation["metadata"]["subscription_type"] == "channel.chat.message"
    assert revocation["payload"]["subscription"]["status"] == "chat_user_banned"
    assert "event" not in revocation["payload"]
    assert fake.subscriptions() == []
    await ws.close()


async def test_shared_chat_copy_has_source_keys(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    reader = fake.add_user("reader")
    home, guest = fake.add_user("home"), fake.add_user("guest")
    home_ws, _ = await subscribed_socket(http, fake, reader, home)
    guest_ws, _ = await subscribed_socket(http, fake, reader, guest)
    original = await fake.send_chat_message(broadcaster=home, chatter=home, text="hi", shared_with=[guest])
    at_home = (await notification(home_ws))["payload"]["event"]
    at_guest = (await notification(guest_ws))["payload"]["event"]
    assert at_home["message_id"] == original
    assert at_home["source_message_id"] is None
    assert set(at_guest) == CHAT_EVENT_KEYS
    assert at_guest["broadcaster_user_id"] == guest.id
    assert at_guest["message_id"] != original
    assert (at_guest["source_broadcaster_user_id"], at_guest["source_broadcaster_user_login"]) == (
        home.id,
        "home",
    )
    assert (at_guest["source_message_id"], at_guest["source_badges"]) == (original, [])
    await home_ws.close()
    await guest_ws.close()


async def test_duplicate_delivery_repeats_ids(fake: FakeTwitch, http: aiohttp.ClientSession) -> None:
    channel, ws, _ = await channel_socket(http, fake)
    await fake.send_chat_message(broadcaster=channel, chatter=channel, text="twice", duplicate=True)
    first, second = await notification(ws), await notification(ws)
    assert first["metadata"]["message_id"] == second["metadata"]["message_id"]
    assert first["payload"]["event"]["message_id"] == second["payload"]["event"]["message_id"]
    await ws.close()


async def test_close_leaves_no_task_or_socket_behind(http: aiohttp.ClientSession) -> None:
    fake = FakeTwitch(reconnect_grace=60, keepalive_interval=30)
    await fake.start()
    reader, channel = fake.add_user("reader"), fake.add_user("channel")
    ws, session = await subscribed_socket(http, fake, reader, channel)
    await fake.send_reconnect(session)  # leaves a grace timer pending
    fake.helix_delay = 30  # a request caught in the delay must not hold close() up
    slow = asyncio.create_task(helix(http, fake, "GET", "users", reader.access_token))
    closing = asyncio.create_task(close_code(ws))
    async with asyncio.timeout(1):
        await fake.close()
    assert await closing == 1001
    try:
        status: int | None = (await slow)[0]  # answered early,
    except aiohttp.ClientError:
        status = None  # or refused
    assert status in (None, 200)
    assert asyncio.all_tasks() == {asyncio.current_task()}


# Real twitchio against the fake


@contextlib.asynccontextmanager
async def running_bot(fake: FakeTwitch, user: FakeUser, channel: FakeUser) -> AsyncIterator[commands.Bot]:
    """A twitchio 3 ``commands.Bot`` for ``user`` reading ``channel``'s chat from the fake: copy this pattern.

    - ``patch_twitchio()`` stays open while the bot runs: twitchio reads the endpoints per request and
      per (re)connect.
    - A public client has no secret, so ``start()`` gets the user's access token (twitchio keeps it as its
      "app token" for calls without ``token_for``), ``with_adapter=False`` (no OAuth server on :4343) and
      ``load_tokens=False, save_tokens=False`` (no shared .tio.tokens.json in the working directory).
    - ``setup_hook`` runs inside ``start()`` before ready: ``add_token`` the user's pair there (so twitchio
      can refresh it and find it for ``token_for=``), then ``subscribe_websocket``.
    - ``start()`` blocks until ``close()``, so it runs as a task; its failure is re-raised here.
    """

    class Bot(commands.Bot):
        async def setup_hook(self) -> None:
            await self.add_token(user.access_token, user.refresh_token)
            payload = twitchio.eventsub.ChatMessageSubscription(
                broadcaster_user_id=channel.id, user_id=user.id
            )
            await self.subscribe_websocket(payload=payload, token_for=user.id)

    with fake.patch_twitchio():
        bot = Bot(client_id=fake.client_id, client_secret=None, bot_id=user.id, prefix="!")
        runner = asyncio.create_task(
            bot.start(user.access_token, with_adapter=False, load_tokens=False, save_tokens=False)
        )
        ready = asyncio.create_task(bot.wait_until_ready())
        try:
            await asyncio.wait({ready, runner}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            if runner.done():
                runner.result()  # start() failed: raise why
            assert ready.done(), "bot not ready within 5 s"
            yield bot
        finally:
            ready.cancel()
            await bot.close()
            async with asyncio.timeout(5):
                await asyncio.gather(runner, return_exceptions=True)


async def next_message(bot: commands.Bot, fake: FakeTwitch, **send: Any) -> twitchio.ChatMessage:
    """Send a chat message from the fake and wait for the bot to dispatch it."""
    received = asyncio.create_task(bot.wait_for("message", timeout=5))
    await asyncio.sleep(0)  # let wait_for register before the message goes out
    await fake.send_chat_message(**send)
    message: twitchio.ChatMessage = await received
    return message


async def test_real_twitchio_bot_round_trip(fake: FakeTwitch) -> None:
    user = fake.add_user("colorbot")
    streamer = fake.add_user("streamer")
    async with running_bot(fake, user, streamer) as bot:
        await fake.wait_for_subscription(user_id=user.id, broadcaster_id=streamer.id)
        message = await next_message(
            bot, fake, broadcaster=streamer, chatter=streamer, text="hi", message_id="m-1", color="#1E90FF"
        )
        assert (message.id, message.text, message.chatter.id) == ("m-1", "hi", streamer.id)
        assert message.broadcaster.id == streamer.id
        assert message.source_broadcaster is None

        await bot.create_partialuser(user.id).update_chatter_color("coral")
        (put,) = await fake.wait_for_color_puts(1, user_id=user.id)
        assert (put.color, put.status, user.color) == ("coral", 204, "#FF7F50")

        # twitchio refreshes on Twitch's exact 401 message and retries; the fake rotates the pair
        old_refresh = user.refresh_token
        fake.expire_access_token(user)
        await bot.create_partialuser(user.id).update_chatter_color("green")
        puts = await fake.wait_for_color_puts(3, user_id=user.id)
        assert [p.status for p in puts] == [204, 401, 204]
        assert user.refresh_token != old_refresh
    # bot.close() closed its socket; the fake saw that and forgot the session and its subscription
    await fake.wait_until(lambda: not fake.sessions() and not fake.subscriptions(), timeout=2)


async def test_real_twitchio_resubscribes_after_a_drop(fake: FakeTwitch) -> None:
    user, streamer = fake.add_user("colorbot"), fake.add_user("streamer")
    async with running_bot(fake, user, streamer) as bot:
        await fake.wait_for_subscription(user_id=user.id)
        (first,) = fake.sessions(user_id=user.id)
        await fake.drop_session(first)
        # twitchio reconnects at once and creates its subscriptions again on the new session
        second = await fake.wait_for_session(user_id=user.id, exclude=[first])
        assert second.id != first.id
        message = await next_message(bot, fake, broadcaster=streamer, chatter=streamer, text="back")
        assert message.text == "back"


async def test_real_twitchio_follows_session_reconnect(fake: FakeTwitch) -> None:
    user, streamer = fake.add_user("colorbot"), fake.add_user("streamer")
    async with running_bot(fake, user, streamer) as bot:
        await fake.wait_for_subscription(user_id=user.id)
        (session,) = fake.sessions(user_id=user.id)
        await fake.send_reconnect(session)
        # twitchio connects to reconnect_url, gets the welcome, then closes the old socket itself
        await fake.wait_until(lambda: not session.reconnecting and session.open_sockets == 1, timeout=2)
        message = await next_message(bot, fake, broadcaster=streamer, chatter=streamer, text="moved")
        assert message.text == "moved"
    # twitchio trap: after following a reconnect the Client no longer tracks the new socket, so
    # bot.close() leaves it open. Close it with a code twitchio does not reconnect on, or it would
    # retry forever once the fake is gone.
    assert fake.sessions() == [session]
    await fake.close_session(session, 4003)

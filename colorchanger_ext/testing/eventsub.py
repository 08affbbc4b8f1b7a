"""EventSub over WebSocket: sessions, their subscriptions, keepalives, reconnects and Twitch's close codes.

A session outlives its socket across a ``session_reconnect``: subscriptions are keyed by session id, so
the client that connects to the ``reconnect_url`` gets a welcome with the same id and keeps them.
Any other end of a session (client close, close code, drop) removes its subscriptions, as Twitch does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .models import FakeSubscription, FakeUser, Token, TwitchError
from .payloads import (
    JSON,
    chat_message_event,
    frame,
    new_id,
    new_token,
    rfc3339,
    session_json,
    subscription_json,
)

if TYPE_CHECKING:
    from .server import FakeTwitch

#: (type, version) pairs the fake can create subscriptions for.
SUPPORTED = {("channel.chat.message", "1"): ("broadcaster_user_id", "user_id")}
#: The status a session's subscriptions get when it ends with a close code.
STATUS_FOR_CODE = {
    4000: "websocket_internal_error",
    4001: "websocket_received_inbound_traffic",
    4002: "websocket_failed_ping_pong",
    4003: "websocket_connection_unused",
    4005: "websocket_network_timeout",
    4006: "websocket_network_error",
}
MAX_SUBSCRIPTIONS_PER_SESSION = 300
MAX_SESSIONS_PER_USER = 3
CLOSE_HANDSHAKE_TIMEOUT = 1.0  # seconds to wait for the client's close frame before dropping the socket


class FakeSession:
    """One EventSub WebSocket session: socket(s), subscriptions and timers; survives ``session_reconnect``."""

    def __init__(self, hub: EventSub, keepalive_timeout: int) -> None:
        """A new session; ``attach`` gives it its first socket."""
        self.id = new_id()
        self.user_id: str | None = None  # whose token created subscriptions on it
        self.keepalive_timeout = keepalive_timeout
        self.connected_at = rfc3339()
        self.silenced = False
        self.closed = False
        self._hub = hub
        self._ws: web.WebSocketResponse | None = None  # the socket notifications go to
        # every open socket, with its request so drop() can abort the TCP connection
        self._requests: dict[web.WebSocketResponse, web.BaseRequest] = {}
        self._pending: list[JSON] | None = None  # frames held while a reconnect is under way
        self._last_sent = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        """Enough to tell sessions apart in assertion messages."""
        subs = len(self.subscriptions)
        return f"<FakeSession {self.id} user={self.user_id} subs={subs} closed={self.closed}>"

    @property
    def subscriptions(self) -> list[FakeSubscription]:
        """The enabled subscriptions on this session."""
        return [s for s in self._hub.subscriptions.values() if s.session_id == self.id]

    @property
    def reconnecting(self) -> bool:
        """True between a ``session_reconnect`` frame and the welcome on the new socket."""
        return self._pending is not None

    @property
    def open_sockets(self) -> int:
        """How many sockets the session still has open (2 while an old one is in its reconnect grace)."""
        return len(self._requests)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a timer owned by this session (cancelled when it ends) and by the fake (cancelled on close)."""
        self._tasks.append(self._hub.fake.spawn(coro))

    async def _send_now(self, message: JSON) -> None:
        """Write a frame to the current socket, ignoring a socket that is already going away."""
        ws = self._ws
        if ws is None or ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json(message)
        self._last_sent = asyncio.get_running_loop().time()

    async def send_raw(self, text: str) -> None:
        """Write any text frame to the current socket (hostile-input tests: non-JSON, missing keys)."""
        ws = self._ws
        if ws is None or ws.closed or self.closed:
            raise RuntimeError(f"{self!r} has no open socket")
        await ws.send_str(text)
        self._last_sent = asyncio.get_running_loop().time()

    async def deliver(self, message: JSON) -> None:
        """Send a frame, or hold it while reconnecting so it arrives once, on the new socket."""
        if self.closed or self.silenced:
            return
        if self._pending is not None:
            self._pending.append(message)
        else:
            await self._send_now(message)

    async def attach(self, ws: web.WebSocketResponse, request: web.BaseRequest) -> None:
        """Welcome a socket; on a reconnect, move delivery to it and flush what was held."""
        reconnect = self._ws is not None
        self._ws, self._requests[ws] = ws, request
        welcome = session_json(self.id, "connected", self.connected_at, self.keepalive_timeout, None)
        await self._send_now(frame("session_welcome", welcome))
        if reconnect:
            held = self._pending or []
            while held:  # frames delivered during these awaits join the same list
                await self._send_now(held.pop(0))
            self._pending = None
        else:
            fake = self._hub.fake
            deadline = fake.subscribe_deadline
            self._spawn(self._close_if_unused(self._keepalive_seconds if deadline is None else deadline))
            self._spawn(self._keepalives())

    @property
    def _keepalive_seconds(self) -> float:
        """Seconds of silence before a keepalive (the fake may shorten Twitch's 10 s minimum for tests)."""
        return self._hub.fake.keepalive_interval or float(self.keepalive_timeout)

    async def _keepalives(self) -> None:
        """Send ``session_keepalive`` whenever the socket has been silent for the keepalive time."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self._last_sent + self._keepalive_seconds - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif self._pending is None:
                await self._send_now(frame("session_keepalive", {}))
            else:  # mid-reconnect: the old socket gets nothing more
                self._last_sent = loop.time()

    async def _close_if_unused(self, seconds: float) -> None:
        """Close with 4003 if nothing was subscribed in time, as Twitch does to unused connections."""
        await asyncio.sleep(seconds)
        if not self.subscriptions:
            await self.close(4003, "connection unused")

    async def serve(self, ws: web.WebSocketResponse) -> None:
        """Read the client's side: answer pings, close 4001 on any data frame, notice the end."""
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.PING:
                    if not self.silenced:  # a dead connection does not answer pings either
                        await ws.pong(msg.data)
                elif msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    if not self.silenced:
                        await self.close(4001, "client sent inbound traffic")
                        break
                elif msg.type is not WSMsgType.PONG:
                    break
        finally:
            self._requests.pop(ws, None)
            if ws is self._ws and self._pending is None:
                self.end("websocket_disconnected")

    async def reconnect(self) -> None:
        """Send ``session_reconnect``, hold frames until the new welcome, close the old socket after grace."""
        if self.closed:
            raise RuntimeError(f"{self!r} has ended")
        url = self._hub.reconnect_url(self)
        old = self._ws
        # hold frames before sending: one written after the reconnect frame would never be read
        self._pending = [] if self._pending is None else self._pending
        payload = session_json(self.id, "reconnecting", self.connected_at, None, url)
        await self._send_now(frame("session_reconnect", payload))
        if old is not None:
            self._spawn(self._end_grace(old))

    async def _end_grace(self, old: web.WebSocketResponse) -> None:
        """After the grace time: close the old socket with 4004; end the session if nobody reconnected."""
        await asyncio.sleep(self._hub.fake.reconnect_grace)
        if self._ws is old:  # the client never came to the reconnect_url
            await self.close(4004, "reconnect grace time expired")
        elif not old.closed:
            await old.close(code=4004, message=b"reconnect grace time expired")

    async def close(self, code: int, reason: str = "") -> None:
        """Close every socket of the session with ``code``; its subscriptions go."""
        sockets = list(self._requests)
        self.end(STATUS_FOR_CODE.get(code, "websocket_disconnected"))
        await asyncio.gather(*(ws.close(code=code, message=reason.encode()) for ws in sockets))

    def drop(self) -> None:
        """Abort the TCP connections without a close frame; subscriptions go."""
        requests = list(self._requests.values())
        self.end("websocket_network_error")
        for request in requests:
            if request.transport is not None:
                request.transport.abort()

    def silence(self) -> None:
        """Play dead: no keepalives, no notifications, no pongs; the client must notice on its own."""
        self.silenced = True
        self._cancel_timers()

    def _cancel_timers(self) -> None:
        """Stop this session's timers, except the one calling (it is finishing anyway)."""
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    def end(self, status: str) -> None:
        """Forget the session and its subscriptions (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._cancel_timers()
        self._hub.remove_session(self, status)


class EventSub:
    """All sessions and subscriptions, the /ws handler, and delivery of notifications."""

    def __init__(self, fake: FakeTwitch) -> None:
        """Bind to the fake that owns the tasks and timings."""
        self.fake = fake
        self.sessions: dict[str, FakeSession] = {}
        self.subscriptions: dict[str, FakeSubscription] = {}
        self._reconnect_keys: dict[str, FakeSession] = {}

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """GET /ws: a new session, or with ``?reconnect=`` the continuation of one."""
        ws = web.WebSocketResponse(autoping=False, timeout=CLOSE_HANDSHAKE_TIMEOUT)
        await ws.prepare(request)
        key = request.query.get("reconnect")
        if key is not None:
            found = self._reconnect_keys.pop(key, None)
            if found is None or found.closed or not found.reconnecting:
                await ws.close(code=4007, message=b"invalid reconnect")
                return ws
            session = found
        else:
            try:
                keepalive = min(600, max(10, int(request.query.get("keepalive_timeout_seconds", "10"))))
            except ValueError:
                keepalive = 10
            session = FakeSession(self, keepalive)
            self.sessions[session.id] = session
        await session.attach(ws, request)
        self.fake.notify()
        await session.serve(ws)
        return ws

    def reconnect_url(self, session: FakeSession) -> str:
        """A one-use URL that resumes ``session``."""
        key = new_token()
        self._reconnect_keys[key] = session
        return f"{self.fake.eventsub_url}?reconnect={key}"

    def remove_session(self, session: FakeSession, status: str) -> None:
        """Drop an ended session and its subscriptions."""
        self.sessions.pop(session.id, None)
        for sub in session.subscriptions:
            sub.status = status
            del self.subscriptions[sub.id]
        self._reconnect_keys = {k: s for k, s in self._reconnect_keys.items() if s is not session}
        self.fake.notify()

    def subscribe(self, token: Token, body: Any) -> FakeSubscription:
        """Validate a create request as Twitch does and add the subscription."""
        if not isinstance(body, dict):
            raise TwitchError(400, "malformed request body")
        condition, transport = body.get("condition"), body.get("transport")
        if not isinstance(condition, dict) or not isinstance(transport, dict):
            raise TwitchError(400, "condition and transport are required")
        type_, version = str(body.get("type", "")), str(body.get("version", ""))
        required = SUPPORTED.get((type_, version))
        if required is None:
            raise TwitchError(400, f"unsupported subscription type and version: {type_} v{version}")
        if transport.get("method") != "websocket":
            raise TwitchError(400, "the fake supports the websocket transport only")
        if token.user_id is None:
            raise TwitchError(400, "invalid transport and auth combination")
        session = self.sessions.get(str(transport.get("session_id", "")))
        if session is None or session.closed:
            raise TwitchError(400, "websocket transport session does not exist or has already disconnected")
        cond = {str(k): str(v) for k, v in condition.items()}
        if missing := [k for k in required if not cond.get(k)]:
            raise TwitchError(400, f"missing condition fields: {', '.join(missing)}")
        if cond["user_id"] != token.user_id or "user:read:chat" not in token.scopes:
            raise TwitchError(403, "subscription missing proper authorization")
        if session.user_id not in (None, token.user_id):
            raise TwitchError(403, "subscription missing proper authorization")
        if any((s.type, s.version, s.condition) == (type_, version, cond) for s in session.subscriptions):
            raise TwitchError(409, "subscription already exists")
        if len(session.subscriptions) >= MAX_SUBSCRIPTIONS_PER_SESSION:
            raise TwitchError(400, "maximum subscriptions per websocket session exceeded")
        others = {s.session_id for s in self.subscriptions.values() if s.user_id == token.user_id}
        others.discard(session.id)
        if len(others) >= MAX_SESSIONS_PER_USER:
            raise TwitchError(429, "websocket transports limit exceeded")
        sub = FakeSubscription(new_id(), type_, version, cond, session.id, token.user_id, rfc3339())
        self.subscriptions[sub.id] = sub
        session.user_id = token.user_id
        self.fake.notify()
        return sub

    async def send(self, sub: FakeSubscription, message: JSON) -> None:
        """Deliver a frame to the session holding ``sub``."""
        session = self.sessions.get(sub.session_id)
        if session is not None:
            await session.deliver(message)

    async def revoke(self, sub: FakeSubscription, status: str) -> None:
        """Send a revocation frame, then remove the subscription."""
        if self.subscriptions.pop(sub.id, None) is None:
            raise KeyError(f"subscription {sub.id} is not enabled")
        sub.status = status
        await self.send(sub, frame("revocation", {"subscription": subscription_json(sub)}, sub=sub))
        self.fake.notify()

    async def chat_message(
        self,
        *,
        broadcaster: FakeUser,
        chatter: FakeUser,
        text: str,
        message_id: str,
        shared_with: tuple[FakeUser, ...],
        duplicate: bool,
        color: str,
    ) -> None:
        """Deliver a chat message to its channel's subscribers, and a copy to each sharing channel's."""
        original = chat_message_event(
            **_message(broadcaster, chatter, text, message_id, color), shared=bool(shared_with)
        )
        copies = [(broadcaster, original)]
        for channel in shared_with:
            event = chat_message_event(
                **_message(channel, chatter, text, new_id(), color),
                source=broadcaster,
                source_message_id=message_id,
                shared=True,
            )
            copies.append((channel, event))
        for channel, event in copies:
            for sub in list(self.subscriptions.values()):
                if sub.type != "channel.chat.message" or sub.condition["broadcaster_user_id"] != channel.id:
                    continue
                payload = {"subscription": subscription_json(sub), "event": event}
                message = frame("notification", payload, sub=sub)
                for _ in range(2 if duplicate else 1):
                    await self.send(sub, message)


def _message(
    broadcaster: FakeUser, chatter: FakeUser, text: str, message_id: str, color: str
) -> dict[str, Any]:
    """The arguments of ``chat_message_event`` every copy shares."""
    return {
        "broadcaster": broadcaster,
        "chatter": chatter,
        "text": text,
        "message_id": message_id,
        "color": color,
    }

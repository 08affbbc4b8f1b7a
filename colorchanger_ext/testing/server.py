"""FakeTwitch: one aiohttp server on 127.0.0.1 serving id.twitch.tv, Helix and EventSub WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from ..twitchio_compat import twitchio_endpoints
from .eventsub import EventSub, FakeSession
from .helix import HelixAPI
from .models import ColorPut, DeviceCode, FakeSubscription, FakeUser, RecordedRequest, TwitchError
from .oauth import OAuthAPI, TokenStore
from .payloads import new_id

T = TypeVar("T")


class FakeTwitch:
    """An in-process Twitch that real twitchio 3 can be pointed at, with knobs for every fault tests need."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str | None = None,  # None: a public client (no client_credentials grant)
        ratelimit_points: int = 800,  # Helix bucket per (client id, user), full again 60 s after first use
        subscribe_deadline: float | None = None,  # welcome -> 4003 if unsubscribed; None: keepalive time
        reconnect_grace: float = 30.0,  # session_reconnect -> old socket closed 4004 if still open
        keepalive_interval: float | None = None,  # silence before session_keepalive; None: as negotiated
        device_interval: int = 5,  # device-code polls sooner than this get "slow_down"
        device_expires_in: int = 1800,
        token_expires_in: int = 14400,
    ) -> None:
        """Configure; every timing is a knob so tests need not wait Twitch's real seconds."""
        self.client_id = client_id
        self.client_secret = client_secret
        self.ratelimit_points = ratelimit_points
        self.subscribe_deadline = subscribe_deadline
        self.reconnect_grace = reconnect_grace
        self.keepalive_interval = keepalive_interval
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.helix_delay = 0.0
        self.requests: list[RecordedRequest] = []
        self.color_puts: list[ColorPut] = []
        self.tokens = TokenStore(token_expires_in)
        self.oauth = OAuthAPI(self)
        self.helix = HelixAPI(self)
        self.eventsub = EventSub(self)
        self._users: dict[str, FakeUser] = {}
        self._next_id = itertools.count(141981764)
        self._changed = asyncio.Event()
        self.stopping = asyncio.Event()  # set by close(): anything waiting on a delay gives up
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # lifecycle

    async def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve."""
        self.stopping.clear()
        app = web.Application(middlewares=[self._record])
        app.add_routes([*self.oauth.routes(), *self.helix.routes(), web.get("/ws", self.eventsub.handle)])
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def close(self) -> None:
        """Close every socket (1001), stop the server and cancel every task the fake started."""
        if self._runner is None:
            return
        self.stopping.set()
        for site in list(self._runner.sites):  # accept no new connections while closing the open ones
            await site.stop()
        sessions = list(self.eventsub.sessions.values())
        await asyncio.gather(*(s.close(1001, "server shutting down") for s in sessions))
        await self._runner.cleanup()
        self._runner = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close on exit."""
        await self.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start a background task that ``close()`` will cancel."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def helix_url(self) -> str:
        """The value for ``twitchio.http.Route.BASE``."""
        return f"{self.base_url}/helix/"

    @property
    def id_url(self) -> str:
        """The value for ``twitchio.http.Route.ID_BASE`` (twitchio appends "oauth2/...")."""
        return f"{self.base_url}/"

    @property
    def eventsub_url(self) -> str:
        """The value for ``twitchio.eventsub.websockets.WSS``."""
        return self.base_url.replace("http://", "ws://", 1) + "/ws"

    def patch_twitchio(self) -> contextlib.AbstractContextManager[None]:
        """Context manager aiming twitchio at the fake; keep it open while any twitchio client runs."""
        return twitchio_endpoints(self.helix_url, self.id_url, self.eventsub_url)

    # users and tokens

    def add_user(
        self,
        login: str,
        *,
        user_id: str | None = None,
        display_name: str | None = None,
        turbo: bool = False,
        scopes: Iterable[str] = ("user:read:chat", "user:manage:chat_color"),
    ) -> FakeUser:
        """Create an account with a live token pair carrying ``scopes``."""
        user = FakeUser(
            id=user_id or str(next(self._next_id)),
            login=login.lower(),
            display_name=display_name or login,
            turbo=turbo,
            scopes=frozenset(scopes),
        )
        if user.id in self._users or any(u.login == user.login for u in self.users):
            raise ValueError(f"a user with id {user.id} or login {user.login} exists already")
        self._users[user.id] = user
        self.tokens.issue(user, sorted(user.scopes))
        return user

    @property
    def users(self) -> list[FakeUser]:
        """Every account, in creation order."""
        return list(self._users.values())

    def user(self, id_or_login: str) -> FakeUser:
        """An account by id or login, or KeyError."""
        if id_or_login in self._users:
            return self._users[id_or_login]
        for user in self._users.values():
            if user.login == id_or_login.lower():
                return user
        raise KeyError(f"no fake user {id_or_login!r}")

    def expire_access_token(self, user: FakeUser) -> None:
        """The user's current access token stops working; its refresh token still works."""
        token = self.tokens.find(user.access_token)
        if token is not None:
            token.access_alive = False

    def revoke_tokens(self, user: FakeUser) -> None:
        """Every access and refresh token of the user dies (the user disconnected the app)."""
        for token in self.tokens.of_user(user.id):
            token.access_alive = token.refresh_alive = False

    def set_color_accepts_hex(self, user: FakeUser, turbo: bool) -> None:
        """Whether Twitch lets the user set hex colours (Turbo or Prime)."""
        user.turbo = turbo

    # recording and waiting

    def notify(self) -> None:
        """Wake every waiter so it re-checks its condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, check: Callable[[], T | None], timeout: float, what: str) -> T:  # noqa: ASYNC109
        """Wait until ``check`` returns something, or raise TimeoutError saying what never happened."""
        try:
            async with asyncio.timeout(timeout):
                while (result := check()) is None:
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"FakeTwitch: no {what} within {timeout} s") from None
        return result

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str = "condition",
    ) -> None:
        """Wait until ``predicate()`` holds; it is re-checked whenever the fake's state changes."""
        await self._wait(lambda: True if predicate() else None, timeout, what)

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer a raised TwitchError with Twitch's body; log every request and colour PUT."""
        started = time.monotonic()
        try:
            response = await handler(request)
        except TwitchError as error:
            response = error.response()
        except web.HTTPException as error:  # aiohttp's own 404/405 for paths Twitch does not have either
            self._log(request, error.status, started)
            raise
        self._log(request, response.status, started)
        return response

    def _log(self, request: web.Request, status: int, started: float) -> None:
        """Append the request (and a colour PUT) to the record and wake waiters."""
        token = self.tokens.find(request.headers.get("Authorization", "").partition(" ")[2].strip())
        query = {key: request.query.getall(key) for key in request.query}
        user_id = token.user_id if token else None
        self.requests.append(RecordedRequest(request.method, request.path, query, status, user_id, started))
        if request.method == "PUT" and request.path == "/helix/chat/color":
            put = ColorPut(request.query.get("user_id", ""), request.query.get("color", ""), status, started)
            self.color_puts.append(put)
        self.notify()

    async def wait_for_color_puts(
        self,
        count: int,
        *,
        user_id: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point of the helper
    ) -> list[ColorPut]:
        """The colour PUTs (for that user) once there are at least ``count``."""

        def check() -> list[ColorPut] | None:
            puts = [p for p in self.color_puts if user_id is None or p.user_id == user_id]
            return puts if len(puts) >= count else None

        return await self._wait(check, timeout, f"{count} colour PUT(s) for user {user_id or 'any'}")

    async def wait_for_subscription(
        self,
        *,
        user_id: str,
        broadcaster_id: str | None = None,
        type: str = "channel.chat.message",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeSubscription:
        """The first enabled subscription of that user (for that channel and type)."""

        def check() -> FakeSubscription | None:
            for sub in self.subscriptions(user_id=user_id):
                if sub.type == type and broadcaster_id in (None, sub.condition.get("broadcaster_user_id")):
                    return sub
            return None

        what = f"{type} subscription by {user_id} for {broadcaster_id or 'any channel'}"
        return await self._wait(check, timeout, what)

    async def wait_for_session(
        self,
        *,
        user_id: str | None = None,
        exclude: Iterable[FakeSession] = (),
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeSession:
        """The first open session (of that user) not in ``exclude``, e.g. the client's new one."""
        old = set(exclude)

        def check() -> FakeSession | None:
            return next((s for s in self.sessions(user_id=user_id) if s not in old), None)

        return await self._wait(check, timeout, f"new EventSub session for {user_id or 'anyone'}")

    def subscriptions(self, *, user_id: str | None = None) -> list[FakeSubscription]:
        """Enabled subscriptions (of that user)."""
        return [s for s in self.eventsub.subscriptions.values() if user_id in (None, s.user_id)]

    def sessions(self, *, user_id: str | None = None) -> list[FakeSession]:
        """Open WebSocket sessions (whose subscriptions that user created)."""
        return [s for s in self.eventsub.sessions.values() if user_id in (None, s.user_id)]

    # driving chat and faults

    async def send_chat_message(
        self,
        *,
        broadcaster: FakeUser,
        chatter: FakeUser,
        text: str,
        message_id: str | None = None,
        shared_with: Sequence[FakeUser] = (),
        duplicate: bool = False,
        color: str = "",
    ) -> str:
        """Deliver a ``channel.chat.message`` to every subscriber of the channel (and sharing channels)."""
        message_id = message_id or new_id()
        await self.eventsub.chat_message(
            broadcaster=broadcaster,
            chatter=chatter,
            text=text,
            message_id=message_id,
            shared_with=tuple(shared_with),
            duplicate=duplicate,
            color=color,
        )
        return message_id

    async def send_reconnect(self, session: FakeSession) -> None:
        """Ask the client to move the session to a new socket (``session_reconnect``)."""
        await session.reconnect()

    async def close_session(self, session: FakeSession, code: int, reason: str = "") -> None:
        """Close the session's socket(s) with a Twitch close code; its subscriptions are removed."""
        await session.close(code, reason)

    async def drop_session(self, session: FakeSession) -> None:
        """Abort the TCP connection without a close frame; its subscriptions are removed."""
        session.drop()

    def silence(self, session: FakeSession) -> None:
        """Stop all traffic to the session (keepalives, notifications, pongs): a dead connection."""
        session.silence()

    async def revoke(self, subscription: FakeSubscription, status: str) -> None:
        """Send a revocation (e.g. "authorization_revoked", "chat_user_banned"); the subscription goes."""
        await self.eventsub.revoke(subscription, status)

    def fail_helix(
        self,
        *,
        path: str,
        status: int,
        count: int = 1,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        user: FakeUser | None = None,
    ) -> None:
        """The next ``count`` requests to that Helix path (e.g. "chat/color") get Twitch's error body.

        With ``user``, only requests made with that user's token fail (a fault that hits one user).
        """
        self.helix.fail(path, status, count, message, dict(headers or {}), user.id if user else None)

    def heal_helix(self) -> None:
        """Drop every injected Helix failure still queued (the end of an outage)."""
        self.helix.failures.clear()

    @property
    def helix_in_flight(self) -> int:
        """Helix requests being answered right now (e.g. held by ``helix_delay``)."""
        return self.helix.in_flight

    async def send_raw(self, session: FakeSession, text: str) -> None:
        """Write ``text`` as one WebSocket text frame to the session, valid EventSub or not."""
        await session.send_raw(text)

    # device code flow

    def approve_device(self, user_code: str, user: FakeUser) -> None:
        """The user approves the code at twitch.tv/activate; the next poll gets tokens."""
        code = self.oauth.find_user_code(user_code)
        code.status, code.user = "approved", user

    def deny_device(self, user_code: str) -> None:
        """The user declines; polls get "authorization_declined"."""
        self.oauth.find_user_code(user_code).status = "denied"

    async def wait_for_device_code(self, timeout: float = 5.0) -> DeviceCode:  # noqa: ASYNC109
        """The newest pending device code, once a client has asked for one."""

        def check() -> DeviceCode | None:
            pending = [c for c in self.oauth.devices.values() if c.status == "pending"]
            return pending[-1] if pending else None

        return await self._wait(check, timeout, "pending device code")

    def slow_down_next_poll(self, count: int = 1) -> None:
        """The next ``count`` device-code polls get "slow_down" whatever their timing."""
        self.oauth.slow_downs += count

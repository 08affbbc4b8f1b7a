"""The api.twitch.tv/helix half of the fake: users, chat colour and EventSub subscriptions.

Every Helix response, errors included, passes one gate that adds Twitch's rate-limit headers
(``Ratelimit-Limit``, ``Ratelimit-Remaining``, ``Ratelimit-Reset``), charges one point to the bucket of
(Client-Id, token user), answers 429 when it is empty, applies injected failures and the configured delay,
and checks ``Authorization: Bearer`` and ``Client-Id``. Error bodies are ``{"error", "status", "message"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from .models import Token, TwitchError
from .payloads import JSON, NAMED_COLORS, subscription_json, user_json

if TYPE_CHECKING:
    from .server import FakeTwitch

HelixHandler = Callable[[web.Request, Token], Awaitable[web.StreamResponse]]
HEX_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
WRONG_USER = "The ID in user_id must match the user ID found in the request's OAuth token."
HEX_NEEDS_TURBO = "Only Turbo and Prime users can use hex colors; use one of the named colors instead"
MAX_IDS = 100


@dataclass
class Bucket:
    """A token bucket that refills completely once its 60-second window has passed."""

    limit: int
    remaining: int
    reset_at: float = 0.0  # unix seconds

    def take(self) -> bool:
        """Spend one point; False when the bucket is empty."""
        now = time.time()
        if now >= self.reset_at:
            self.remaining, self.reset_at = self.limit, now + 60
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def headers(self) -> dict[str, str]:
        """The headers Twitch puts on every Helix response."""
        return {
            "Ratelimit-Limit": str(self.limit),
            "Ratelimit-Remaining": str(self.remaining),
            "Ratelimit-Reset": str(math.ceil(self.reset_at)),
        }


def _ids(request: web.Request, key: str) -> list[str]:
    """A repeatable query parameter, with Twitch's cap of 100 values."""
    values = request.query.getall(key, [])
    if len(values) > MAX_IDS:
        raise TwitchError(400, f"The maximum number of '{key}' parameters is {MAX_IDS}")
    return values


class HelixAPI:
    """Helix handlers plus the gate every one of them passes."""

    def __init__(self, fake: FakeTwitch) -> None:
        """Bind to the fake whose users, tokens and sessions this serves."""
        self.fake = fake
        self.buckets: dict[tuple[str, str | None], Bucket] = {}
        # path -> queued errors, each for one user's requests (None: anyone's), so a fault can hit one user
        self.failures: dict[str, deque[tuple[str | None, TwitchError]]] = {}
        self.in_flight = 0  # requests inside the gate now: lets a test wait until slow ones have finished

    def routes(self) -> list[web.RouteDef]:
        """The Helix routes, each behind the gate; unknown paths get Twitch's 404."""
        return [
            web.get("/helix/users", self._gate(self.get_users)),
            web.get("/helix/chat/color", self._gate(self.get_color)),
            web.put("/helix/chat/color", self._gate(self.put_color)),
            web.get("/helix/eventsub/subscriptions", self._gate(self.list_subscriptions)),
            web.post("/helix/eventsub/subscriptions", self._gate(self.create_subscription)),
            web.delete("/helix/eventsub/subscriptions", self._gate(self.delete_subscription)),
            web.route("*", "/helix/{tail:.*}", self._gate(self.not_found)),
        ]

    def _gate(self, handler: HelixHandler) -> Handler:
        """Wrap a handler in delay, rate limit, injected failures, auth and the rate-limit headers."""

        async def gated(request: web.Request) -> web.StreamResponse:
            self.in_flight += 1
            try:
                return await inner(request)
            finally:
                self.in_flight -= 1  # before the recording middleware's notify() wakes waiters

        async def inner(request: web.Request) -> web.StreamResponse:
            fake = self.fake
            if fake.helix_delay > 0:  # cut short by close() so shutdown need not wait for it
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(fake.helix_delay):
                        await fake.stopping.wait()
            header = request.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            token = fake.tokens.live(value.strip()) if scheme.lower() == "bearer" else None
            client_id = request.headers.get("Client-Id", "")
            key = (client_id, token.user_id if token else None)
            bucket = self.buckets.setdefault(key, Bucket(fake.ratelimit_points, fake.ratelimit_points))
            try:
                if not bucket.take():
                    raise TwitchError(429, "")
                injected = self._take_failure(request.path.removeprefix("/helix/"), key[1])
                if injected is not None:
                    raise injected
                if not header:
                    raise TwitchError(401, "OAuth token is missing")
                if token is None:
                    raise TwitchError(401, "Invalid OAuth token")
                if client_id != fake.client_id:
                    raise TwitchError(401, "Client ID and OAuth token do not match")
                response = await handler(request, token)
            except TwitchError as error:
                response = error.response()
            for name, header_value in bucket.headers().items():
                response.headers.setdefault(name, header_value)
            return response

        return gated

    def fail(
        self,
        path: str,
        status: int,
        count: int,
        message: str | None,
        headers: dict[str, str],
        user_id: str | None = None,
    ) -> None:
        """Queue ``count`` error answers for ``path`` (relative to /helix/), for one user's token or any."""
        if message is None:
            message = "Invalid OAuth token" if status == 401 else ""
        queue = self.failures.setdefault(path.strip("/"), deque())
        queue.extend((user_id, TwitchError(status, message, headers)) for _ in range(count))

    def _take_failure(self, path: str, user_id: str | None) -> TwitchError | None:
        """The first queued error for this path that applies to the request's user, removed from the queue."""
        queue = self.failures.get(path)
        if not queue:
            return None
        for index, (target, error) in enumerate(queue):
            if target is None or target == user_id:
                del queue[index]
                return error
        return None

    async def not_found(self, request: web.Request, token: Token) -> web.StreamResponse:
        """Any Helix path the fake does not implement."""
        raise TwitchError(404, "")

    async def get_users(self, request: web.Request, token: Token) -> web.StreamResponse:
        """GET /users: by id and/or login, or the token's own user."""
        ids, logins = _ids(request, "id"), _ids(request, "login")
        if len(ids) + len(logins) > MAX_IDS:
            raise TwitchError(400, f"The sum of the id and login parameters may not exceed {MAX_IDS}")
        if not ids and not logins:
            if token.user_id is None:
                raise TwitchError(400, "Must provide an ID, Login or OAuth Token")
            ids = [token.user_id]
        found = [u for u in self.fake.users if u.id in ids or u.login in {login.lower() for login in logins}]
        return web.json_response({"data": [user_json(u) for u in found]})

    async def get_color(self, request: web.Request, token: Token) -> web.StreamResponse:
        """GET /chat/color: each known user's colour, "" when never set."""
        ids = _ids(request, "user_id")
        if not ids:
            raise TwitchError(400, 'Missing required parameter "user_id"')
        data = [
            {"user_id": u.id, "user_login": u.login, "user_name": u.display_name, "color": u.color}
            for u in self.fake.users
            if u.id in ids
        ]
        return web.json_response({"data": data})

    async def put_color(self, request: web.Request, token: Token) -> web.StreamResponse:
        """PUT /chat/color: a named colour for anyone, a hex colour for Turbo and Prime users only."""
        user_id, color = request.query.get("user_id", ""), request.query.get("color", "")
        if token.user_id is None:
            raise TwitchError(401, "The OAuth token is not a user access token")
        if not user_id:
            raise TwitchError(400, 'Missing required parameter "user_id"')
        if user_id != token.user_id:
            raise TwitchError(401, WRONG_USER)
        if "user:manage:chat_color" not in token.scopes:
            raise TwitchError(401, "Missing scope: user:manage:chat_color")
        if not color:
            raise TwitchError(400, 'Missing required parameter "color"')
        user = self.fake.user(user_id)
        if color in NAMED_COLORS:
            user.color = NAMED_COLORS[color]
        elif HEX_COLOR.fullmatch(color):
            if not user.turbo:
                raise TwitchError(400, HEX_NEEDS_TURBO)
            user.color = color.upper()
        else:
            raise TwitchError(400, "invalid color")
        return web.Response(status=204)

    def _page(self, subs: list[JSON], token: Token) -> JSON:
        """The totals Twitch adds to subscription lists and creations."""
        total = sum(1 for s in self.fake.eventsub.subscriptions.values() if s.user_id == token.user_id)
        return {"data": subs, "total": total, "total_cost": 0, "max_total_cost": 10}

    def _json(self, sub_id: str) -> JSON:
        """A subscription as Helix shows it, with its session's ``connected_at``."""
        sub = self.fake.eventsub.subscriptions[sub_id]
        session = self.fake.eventsub.sessions.get(sub.session_id)
        return subscription_json(sub, connected_at=session.connected_at if session else None)

    async def create_subscription(self, request: web.Request, token: Token) -> web.StreamResponse:
        """POST /eventsub/subscriptions: 202 with the new subscription."""
        try:
            body = await request.json()
        except ValueError:
            raise TwitchError(400, "malformed request body") from None
        sub = self.fake.eventsub.subscribe(token, body)
        return web.json_response(self._page([self._json(sub.id)], token), status=202)

    async def list_subscriptions(self, request: web.Request, token: Token) -> web.StreamResponse:
        """GET /eventsub/subscriptions: the token user's enabled subscriptions, optionally filtered."""
        q = request.query
        subs = [
            self._json(s.id)
            for s in self.fake.eventsub.subscriptions.values()
            if s.user_id == token.user_id
            and q.get("type", s.type) == s.type
            and q.get("status", s.status) == s.status
            and q.get("subscription_id", s.id) == s.id
            and ("user_id" not in q or q["user_id"] in s.condition.values())
        ]
        return web.json_response(self._page(subs, token) | {"pagination": {}})

    async def delete_subscription(self, request: web.Request, token: Token) -> web.StreamResponse:
        """DELETE /eventsub/subscriptions?id=: 204, or 404 if it is not one of the token user's."""
        sub_id = request.query.get("id")
        if not sub_id:
            raise TwitchError(400, 'Missing required parameter "id"')
        sub = self.fake.eventsub.subscriptions.get(sub_id)
        if sub is None or sub.user_id != token.user_id:
            raise TwitchError(404, "subscription not found")
        del self.fake.eventsub.subscriptions[sub_id]
        self.fake.notify()
        return web.Response(status=204)

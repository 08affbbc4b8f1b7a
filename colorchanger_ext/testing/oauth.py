"""The id.twitch.tv half of the fake: validate, single-use refresh, device code flow, client credentials.

Parameters are read from the query string (where twitchio puts them) and from a form body (where the docs put
them). Bodies are id.twitch.tv's ``{"status": N, "message": "..."}``; the messages used:

- ``GET /oauth2/validate``: 401 "invalid access token" (bad, expired or revoked),
  401 "missing authorization token".
- ``POST /oauth2/revoke``: 200, or 400 "Invalid token" for an unknown or dead one.
- any grant: 400 "missing client id", 400 "invalid client" (unknown client_id),
  403 "invalid client secret" (a secret that does not match), 400 "unsupported grant type".
- refresh: 400 "Invalid refresh token" for an unknown, revoked or already used one (public-client
  refresh tokens are single-use: using one kills it and the access token it came with).
- device code polling: 400 "authorization_pending" while nobody has answered, 400 "slow_down" when
  polled sooner than ``interval`` seconds after the previous poll (or injected), 400
  "authorization_declined" once denied, 400 "invalid device code" when unknown, expired or already
  exchanged (the wording twitchio's ``DeviceCodeRejection.INVALID_DEVICE_CODE`` expects).
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from .models import DeviceCode, FakeUser, Token, TwitchError
from .payloads import JSON, new_token

if TYPE_CHECKING:
    from .server import FakeTwitch

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _fail(status: int, message: str) -> TwitchError:
    """An id.twitch.tv error (its bodies have no "error" key)."""
    return TwitchError(status, message, oauth=True)


class TokenStore:
    """Every token ever issued, so dead ones are still attributable to a user in the request log."""

    def __init__(self, lifetime: int) -> None:
        """Tokens issued here live ``lifetime`` seconds."""
        self.lifetime = lifetime
        self._by_access: dict[str, Token] = {}
        self._by_refresh: dict[str, Token] = {}

    def issue(self, user: FakeUser | None, scopes: Iterable[str]) -> Token:
        """A fresh token (with a refresh token for users) that becomes the user's live pair."""
        token = Token(
            access=new_token(),
            refresh=new_token() if user else None,
            user_id=user.id if user else None,
            scopes=tuple(scopes),
            expires_at=time.monotonic() + self.lifetime,
        )
        self._by_access[token.access] = token
        if user is not None and token.refresh is not None:
            self._by_refresh[token.refresh] = token
            user.access_token, user.refresh_token = token.access, token.refresh
        return token

    def find(self, access: str | None) -> Token | None:
        """The token record, dead or alive."""
        return self._by_access.get(access or "")

    def live(self, access: str | None) -> Token | None:
        """The token if it may still be used."""
        token = self.find(access)
        if token is None or not token.access_alive or token.expires_at <= time.monotonic():
            return None
        return token

    def by_refresh(self, refresh: str) -> Token | None:
        """The token a refresh token belongs to, if that refresh token is still usable."""
        token = self._by_refresh.get(refresh)
        return token if token is not None and token.refresh_alive else None

    def of_user(self, user_id: str) -> list[Token]:
        """Every token issued to a user."""
        return [t for t in self._by_access.values() if t.user_id == user_id]

    @staticmethod
    def expires_in(token: Token) -> int:
        """Whole seconds the token has left, as /validate reports it."""
        return max(0, int(token.expires_at - time.monotonic()))


def token_response(token: Token, lifetime: int) -> JSON:
    """The body of a successful user-token grant."""
    return {
        "access_token": token.access,
        "refresh_token": token.refresh,
        "scope": list(token.scopes),
        "token_type": "bearer",
        "expires_in": lifetime,
    }


class OAuthAPI:
    """Handlers for /oauth2/* plus the device-code state tests drive."""

    def __init__(self, fake: FakeTwitch) -> None:
        """Bind to the fake whose users and tokens this serves."""
        self.fake = fake
        self.devices: dict[str, DeviceCode] = {}
        self.slow_downs = 0  # injected "slow_down" answers still to give

    def routes(self) -> list[web.RouteDef]:
        """The id.twitch.tv routes."""
        return [
            web.get("/oauth2/validate", self.validate),
            web.post("/oauth2/token", self.token),
            web.post("/oauth2/device", self.device),
            web.post("/oauth2/revoke", self.revoke),
        ]

    @staticmethod
    async def _params(request: web.Request) -> dict[str, str]:
        """Query and form parameters merged; the form wins."""
        params = {k: v for k, v in request.query.items()}
        if request.can_read_body and request.content_type == "application/x-www-form-urlencoded":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    def _check_client(self, params: dict[str, str]) -> None:
        """Reject an unknown client id or a wrong secret as id.twitch.tv does."""
        client_id = params.get("client_id")
        if not client_id:
            raise _fail(400, "missing client id")
        if client_id != self.fake.client_id:
            raise _fail(400, "invalid client")
        secret = params.get("client_secret")
        if secret is not None and secret != self.fake.client_secret:
            raise _fail(403, "invalid client secret")

    async def validate(self, request: web.Request) -> web.Response:
        """GET /oauth2/validate: who owns the token, its scopes and how long it has left."""
        header = request.headers.get("Authorization", "")
        if not header:
            raise _fail(401, "missing authorization token")
        token = self.fake.tokens.live(header.partition(" ")[2].strip())
        if token is None:
            raise _fail(401, "invalid access token")
        body: JSON = {"client_id": self.fake.client_id, "scopes": list(token.scopes)}
        if token.user_id is not None:
            user = self.fake.user(token.user_id)
            body |= {"login": user.login, "user_id": user.id}
        body["expires_in"] = self.fake.tokens.expires_in(token)
        return web.json_response(body)

    async def revoke(self, request: web.Request) -> web.Response:
        """POST /oauth2/revoke: kill an access or refresh token and the pair it belongs to."""
        params = await self._params(request)
        self._check_client(params)
        given = params.get("token", "")
        token = self.fake.tokens.find(given) or self.fake.tokens.by_refresh(given)
        if token is None or not (token.access_alive or token.refresh_alive):
            raise _fail(400, "Invalid token")
        token.access_alive = token.refresh_alive = False
        return web.Response(status=200)

    async def token(self, request: web.Request) -> web.Response:
        """POST /oauth2/token: refresh, device code or client credentials grant."""
        params = await self._params(request)
        self._check_client(params)
        grant = params.get("grant_type", "")
        if grant == "refresh_token":
            return self._refresh(params.get("refresh_token", ""))
        if grant == DEVICE_GRANT:
            return self._poll_device(params.get("device_code", ""))
        if grant == "client_credentials":
            if params.get("client_secret") is None or self.fake.client_secret is None:
                raise _fail(403, "invalid client secret")
            app = self.fake.tokens.issue(None, ())
            return web.json_response(
                {"access_token": app.access, "expires_in": self.fake.tokens.lifetime, "token_type": "bearer"}
            )
        raise _fail(400, "unsupported grant type")

    def _refresh(self, refresh: str) -> web.Response:
        """Rotate a pair: the old refresh and access tokens die, a new pair is issued."""
        old = self.fake.tokens.by_refresh(refresh)
        if old is None or old.user_id is None:
            raise _fail(400, "Invalid refresh token")
        old.refresh_alive = old.access_alive = False
        new = self.fake.tokens.issue(self.fake.user(old.user_id), old.scopes)
        return web.json_response(token_response(new, self.fake.tokens.lifetime))

    async def device(self, request: web.Request) -> web.Response:
        """POST /oauth2/device: start a device code flow for the requested scopes."""
        params = await self._params(request)
        self._check_client(params)
        user_code = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
        code = DeviceCode(
            device_code=new_token(),
            user_code=user_code,
            scopes=tuple(params.get("scopes", "").split()),
            expires_at=time.monotonic() + self.fake.device_expires_in,
            interval=self.fake.device_interval,
        )
        self.devices[code.device_code] = code
        self.fake.notify()
        return web.json_response(
            {
                "device_code": code.device_code,
                "expires_in": self.fake.device_expires_in,
                "interval": code.interval,
                "user_code": user_code,
                "verification_uri": f"https://www.twitch.tv/activate?public=true&device-code={user_code}",
            }
        )

    def _poll_device(self, device_code: str) -> web.Response:
        """One poll of a device code: pending, slow_down, declined, invalid or the tokens."""
        code = self.devices.get(device_code)
        now = time.monotonic()
        if code is None or code.status == "used" or code.expires_at <= now:
            raise _fail(400, "invalid device code")
        previous, code.last_poll = code.last_poll, now
        if self.slow_downs > 0 or (previous is not None and now - previous < code.interval):
            self.slow_downs = max(0, self.slow_downs - 1)
            raise _fail(400, "slow_down")
        if code.status == "denied":
            raise _fail(400, "authorization_declined")
        if code.status == "pending" or code.user is None:
            raise _fail(400, "authorization_pending")
        code.status = "used"
        token = self.fake.tokens.issue(code.user, code.scopes)
        return web.json_response(token_response(token, self.fake.tokens.lifetime))

    def find_user_code(self, user_code: str) -> DeviceCode:
        """The device code a human would type in, or KeyError."""
        for code in self.devices.values():
            if code.user_code == user_code:
                return code
        raise KeyError(f"no device code with user_code {user_code!r}")

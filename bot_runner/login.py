"""Logins for ``colorchanger-runner users add``: the device code flow, token checks, channel look-ups.

Plain aiohttp on a session the caller owns (so the CLI and the tests decide its lifetime), with the
OAuth and Helix base URLs passed in. twitchio's own device-flow poll is not used: it raises ValueError on
``slow_down`` and ``authorization_declined``, so the polling (RFC 8628) is done here.

No :class:`LoginError` text ever contains an access token, refresh token, device code or client secret:
Twitch's messages are quoted, but anything secret that was sent is redacted from them first.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import aiohttp

__all__ = [
    "REQUIRED_SCOPES",
    "Channel",
    "DeviceCode",
    "InvalidToken",
    "LoginError",
    "TokenInfo",
    "Tokens",
    "TwitchAuth",
    "check_account",
    "normalize_channel",
    "normalize_channels",
]

REQUIRED_SCOPES: Final[tuple[str, ...]] = ("user:read:chat", "user:manage:chat_color")
DEVICE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP: Final = 5  # RFC 8628 3.5: add 5 seconds to the interval on every "slow_down"
MIN_INTERVAL: Final = 1  # never poll faster than this, whatever the server sent
MAX_LOGINS_PER_REQUEST: Final = 100
TICK: Final = 1.0  # on_tick is called about this often while waiting

DECLINED: Final = "the login was declined on Twitch"
EXPIRED: Final = "the code expired before it was approved: run the command again"
REFRESH_REJECTED: Final = "Twitch rejected the refresh token: log in again with users add"

_LOGIN = re.compile(r"[a-z0-9_]{1,25}")
_DECLINED_MESSAGES = frozenset({"authorization_declined", "access_denied", "authorization_denied"})
_EXPIRED_MESSAGES = frozenset(
    {"invalid device code", "invalid_device_code", "expired_token", "expired_device_code"}
)


class LoginError(Exception):
    """A login or token problem, worded for the user; never carries a secret."""


class InvalidToken(LoginError):
    """Twitch answered 401 to the access token (validate or Helix): it is bad, expired or revoked.

    The caller may refresh once and retry; :meth:`TwitchAuth.import_tokens` does so itself.
    """


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """A started device code login: show ``user_code`` and ``verification_uri`` to the user."""

    user_code: str
    verification_uri: str
    expires_in: int
    interval: int
    device_code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Tokens:
    """A checked user token pair and whom it belongs to."""

    user_id: str
    login: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    scopes: frozenset[str]
    expires_at: float  # unix time, from validate's expires_in


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What GET /oauth2/validate says about an access token."""

    user_id: str
    login: str
    scopes: frozenset[str]
    expires_in: int
    client_id: str


@dataclass(frozen=True, slots=True)
class Channel:
    """A Twitch channel, as Helix /users resolved it."""

    id: str
    login: str


def normalize_channel(name: str) -> str:
    """``" #Alice "`` -> ``"alice"``; LoginError naming the input unless it is a valid Twitch login."""
    login = name.strip().removeprefix("#").lower()
    if not login:
        raise LoginError(f"{name!r} is not a channel name: it is empty")
    if not _LOGIN.fullmatch(login):
        raise LoginError(
            f"{name!r} is not a Twitch channel name: logins are 1 to 25 letters, digits or underscores"
        )
    return login


def normalize_channels(names: Iterable[str]) -> list[str]:
    """Every name normalised, duplicates dropped, first-seen order kept."""
    return list(dict.fromkeys(normalize_channel(name) for name in names))


TOKEN_SOURCES = "env, stdin (or -), or a file"
ACCESS_TOKEN_ENV = "COLORCHANGER_ACCESS_TOKEN"
REFRESH_TOKEN_ENV = "COLORCHANGER_REFRESH_TOKEN"


def read_token_pair(source: str, *, environ: Mapping[str, str], stdin: TextIO) -> tuple[str, str]:
    """The access and refresh token to import, from somewhere other than the command line.

    ``env``: $COLORCHANGER_ACCESS_TOKEN and $COLORCHANGER_REFRESH_TOKEN; ``stdin`` or ``-``: two
    lines, access token first; anything else: a file holding those two lines. Blank lines and
    lines starting with # are skipped. LoginError naming the source when it does not hold a pair.
    """
    if source == "env":
        pair = [environ.get(ACCESS_TOKEN_ENV, "").strip(), environ.get(REFRESH_TOKEN_ENV, "").strip()]
        if not all(pair):
            raise LoginError(f"--tokens-from env: set both {ACCESS_TOKEN_ENV} and {REFRESH_TOKEN_ENV}")
        return pair[0], pair[1]
    where = "standard input" if source in ("stdin", "-") else source
    try:
        text = stdin.read() if source in ("stdin", "-") else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise LoginError(f"--tokens-from {where}: cannot read it: {reason}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 2 or any(len(line.split()) != 1 for line in lines):
        raise LoginError(
            f"--tokens-from {where}: expected two lines, the access token and then the refresh token "
            f"(found {len(lines)} non-blank lines)"
        )
    return lines[0], lines[1]


def check_account(tokens: Tokens, expected_login: str) -> None:
    """LoginError unless the tokens belong to ``expected_login`` and carry every required scope."""
    expected = normalize_channel(expected_login)
    if tokens.login.lower() != expected:
        raise LoginError(
            f"you approved the login as {tokens.login!r}, but asked to add {expected!r}: "
            f"log in to Twitch as {expected} and try again"
        )
    missing = [scope for scope in REQUIRED_SCOPES if scope not in tokens.scopes]
    if missing:
        raise LoginError(
            f"the login for {expected!r} lacks the permission(s) {', '.join(missing)}: "
            "run users add again and approve everything Twitch asks for"
        )


def _redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


@dataclass(frozen=True, slots=True)
class _Reply:
    """A Twitch answer: status, JSON body (empty if there was none) and its message."""

    status: int
    body: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """Twitch's error text: id.twitch.tv puts it in "message", Helix also has "error"."""
        for key in ("message", "error"):
            value = self.body.get(key)
            if isinstance(value, str) and value:
                return value
        return ""


class TwitchAuth:
    """Twitch's OAuth (device code flow, validate, refresh) and Helix /users, over one aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        client_id: str,
        client_secret: str | None = None,
        oauth_url: str,
        helix_url: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``oauth_url`` like "https://id.twitch.tv/", ``helix_url`` like "https://api.twitch.tv/helix/"."""
        self._session = session
        self._client_id = client_id
        self._client_secret = client_secret
        self._oauth_url = oauth_url.rstrip("/") + "/"
        self._helix_url = helix_url.rstrip("/") + "/"
        self._clock = clock
        self._sleep = sleep

    # HTTP

    async def _call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        secrets: Sequence[str | None] = (),
        data: Mapping[str, str] | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        empty_ok: bool = False,
    ) -> _Reply:
        """One request; LoginError (secrets redacted) when Twitch cannot be reached or answers garbage."""
        hide = (*secrets, self._client_secret)
        try:
            async with self._session.request(
                method, url, data=data, params=params, headers=headers
            ) as response:
                status = response.status
                try:
                    body = await response.json(content_type=None)
                except ValueError:  # not JSON (a proxy's HTML page, say)
                    body = None
        except (aiohttp.ClientError, TimeoutError) as error:
            detail = _redact(str(error) or type(error).__name__, hide)
            raise LoginError(f"could not reach Twitch to {what}: {detail}") from None
        if not isinstance(body, dict):
            if 200 <= status < 300 and not empty_ok:
                raise LoginError(f"Twitch answered {what} with HTTP {status} but no JSON body")
            body = {}
        return _Reply(status, body)

    def _failure(self, reply: _Reply, what: str, secrets: Sequence[str | None] = ()) -> LoginError:
        """A LoginError quoting Twitch's status and message (secrets redacted), never the request."""
        message = _redact(reply.message, (*secrets, self._client_secret))
        detail = f"HTTP {reply.status}: {message}" if message else f"HTTP {reply.status}"
        return LoginError(f"Twitch refused to {what} ({detail})")

    def _client_params(self) -> dict[str, str]:
        """client_id, plus client_secret for a confidential client."""
        params = {"client_id": self._client_id}
        if self._client_secret is not None:
            params["client_secret"] = self._client_secret
        return params

    # device code flow

    async def start_device_login(self, scopes: Iterable[str] = REQUIRED_SCOPES) -> DeviceCode:
        """POST /oauth2/device: a code for the user to enter at ``verification_uri``."""
        what = "start a login"
        reply = await self._call(
            "POST",
            f"{self._oauth_url}oauth2/device",
            what=what,
            data={"client_id": self._client_id, "scopes": " ".join(scopes)},
        )
        if not reply.ok:
            raise self._failure(reply, what)
        body = reply.body
        try:
            return DeviceCode(
                user_code=str(body["user_code"]),
                verification_uri=str(body["verification_uri"]),
                expires_in=int(body["expires_in"]),
                interval=int(body.get("interval", 5)),
                device_code=str(body["device_code"]),
            )
        except (KeyError, TypeError, ValueError):
            raise LoginError("Twitch's answer to starting a login lacks the device code fields") from None

    async def wait_for_device_login(
        self, code: DeviceCode, *, on_tick: Callable[[float], None] | None = None
    ) -> Tokens:
        """Poll until the user approves ``code``, then validate the new token.

        The code's lifetime is counted from this call. ``on_tick(seconds_left)`` is called about once a
        second while waiting and at every poll. LoginError when the login is declined, the code
        expires, or Twitch answers anything else unexpected.
        """
        interval = max(code.interval, MIN_INTERVAL)
        start = self._clock()
        deadline = start + code.expires_in
        next_poll = start + interval
        data = {
            **self._client_params(),
            "grant_type": DEVICE_GRANT,
            "device_code": code.device_code,
            "scopes": " ".join(REQUIRED_SCOPES),
        }
        what = "finish the login"
        while True:
            await self._count_down(next_poll, deadline, on_tick)
            reply = await self._call(
                "POST", f"{self._oauth_url}oauth2/token", what=what, data=data, secrets=(code.device_code,)
            )
            if reply.ok:
                break
            key = reply.message.strip().lower()
            if key == "authorization_pending":
                pass
            elif key == "slow_down":
                interval += SLOW_DOWN_STEP
            elif key in _DECLINED_MESSAGES:
                raise LoginError(DECLINED)
            elif key in _EXPIRED_MESSAGES:
                raise LoginError(EXPIRED)
            else:
                raise self._failure(reply, what, (code.device_code,))
            next_poll = self._clock() + interval
        access, refresh = reply.body.get("access_token"), reply.body.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise LoginError("Twitch approved the login but sent no access and refresh token")
        return await self._checked(access, refresh)

    async def _count_down(
        self, next_poll: float, deadline: float, on_tick: Callable[[float], None] | None
    ) -> None:
        """Wait until ``next_poll``, ticking; LoginError once ``deadline`` has passed."""
        while True:
            now = self._clock()
            left = deadline - now
            if left <= 0:
                raise LoginError(EXPIRED)
            if on_tick is not None:
                on_tick(left)
            if now >= next_poll:
                return
            await self._sleep(min(TICK, next_poll - now, left))

    # tokens

    async def validate(self, access_token: str) -> TokenInfo:
        """GET /oauth2/validate; InvalidToken on 401."""
        what = "check the access token"
        reply = await self._call(
            "GET",
            f"{self._oauth_url}oauth2/validate",
            what=what,
            headers={"Authorization": f"OAuth {access_token}"},
            secrets=(access_token,),
        )
        if reply.status == 401:
            message = _redact(reply.message, (access_token, self._client_secret))
            detail = f"HTTP 401: {message}" if message else "HTTP 401"
            raise InvalidToken(f"Twitch says the access token is invalid, expired or revoked ({detail})")
        if not reply.ok:
            raise self._failure(reply, what, (access_token,))
        body = reply.body
        user_id, login = body.get("user_id"), body.get("login")
        if not user_id or not login:
            raise LoginError("the access token is an app token, not a user's: log in with users add")
        return TokenInfo(
            user_id=str(user_id),
            login=str(login),
            scopes=frozenset(body.get("scopes") or ()),
            expires_in=int(body.get("expires_in", 0)),
            client_id=str(body.get("client_id", "")),
        )

    async def refresh(self, refresh_token: str) -> tuple[str, str]:
        """POST /oauth2/token grant_type=refresh_token: the new (access, refresh) pair.

        The old refresh token is dead afterwards (single-use for public clients): store the new pair.
        """
        what = "refresh the token"
        reply = await self._call(
            "POST",
            f"{self._oauth_url}oauth2/token",
            what=what,
            data={**self._client_params(), "grant_type": "refresh_token", "refresh_token": refresh_token},
            secrets=(refresh_token,),
        )
        if reply.status in (400, 401):
            raise LoginError(REFRESH_REJECTED)
        if not reply.ok:
            raise self._failure(reply, what, (refresh_token,))
        access, refresh = reply.body.get("access_token"), reply.body.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise LoginError("Twitch's answer to a token refresh lacks the new tokens")
        return access, refresh

    async def revoke(self, token: str) -> None:
        """POST /oauth2/revoke: the token, and the grant behind it, stop working at Twitch.

        400 "Invalid token" means it was already dead (expired, refreshed or revoked): nothing is left
        to revoke, so that is no failure either.
        """
        what = "revoke the token"
        reply = await self._call(
            "POST",
            f"{self._oauth_url}oauth2/revoke",
            what=what,
            data={"client_id": self._client_id, "token": token},
            secrets=(token,),
            empty_ok=True,  # Twitch answers a revoke with 200 and no body
        )
        if not reply.ok and reply.status != 400:
            raise self._failure(reply, what, (token,))

    async def import_tokens(self, access_token: str, refresh_token: str) -> Tokens:
        """Check a pair given on the command line; refresh once if the access token no longer works.

        The returned Tokens carries the pair that works now: after a refresh that is the NEW pair, and
        the given refresh token is dead.
        """
        try:
            return await self._checked(access_token, refresh_token)
        except InvalidToken:
            pass
        access, refresh = await self.refresh(refresh_token)
        return await self._checked(access, refresh)

    async def _checked(self, access_token: str, refresh_token: str) -> Tokens:
        """Validate the access token (it must be this client's) and build Tokens."""
        info = await self.validate(access_token)
        if info.client_id and info.client_id != self._client_id:
            raise LoginError(
                f"the token was issued to another Twitch application (client id {info.client_id}), "
                f"not to this one ({self._client_id}): log in with users add"
            )
        return Tokens(
            user_id=info.user_id,
            login=info.login,
            access_token=access_token,
            refresh_token=refresh_token,
            scopes=info.scopes,
            expires_at=time.time() + info.expires_in,
        )

    # Helix

    async def resolve_channels(self, tokens: Tokens, names: Iterable[str]) -> list[Channel]:
        """Channels by login (normalised, deduplicated, order kept); LoginError naming every unknown one.

        InvalidToken when Helix rejects the access token (refresh and retry), LoginError for other errors.
        """
        logins = normalize_channels(names)
        headers = {"Authorization": f"Bearer {tokens.access_token}", "Client-Id": self._client_id}
        found: dict[str, Channel] = {}
        what = "look up channels"
        for first in range(0, len(logins), MAX_LOGINS_PER_REQUEST):
            chunk = logins[first : first + MAX_LOGINS_PER_REQUEST]
            reply = await self._call(
                "GET",
                f"{self._helix_url}users",
                what=what,
                params=[("login", login) for login in chunk],
                headers=headers,
                secrets=(tokens.access_token, tokens.refresh_token),
            )
            if reply.status == 401:
                raise InvalidToken(
                    str(self._failure(reply, what, (tokens.access_token, tokens.refresh_token)))
                )
            if not reply.ok:
                raise self._failure(reply, what, (tokens.access_token, tokens.refresh_token))
            data = reply.body.get("data")
            for user in data if isinstance(data, list) else ():
                if isinstance(user, dict) and user.get("id") and user.get("login"):
                    channel = Channel(id=str(user["id"]), login=str(user["login"]).lower())
                    found[channel.login] = channel
        unknown = [login for login in logins if login not in found]
        if len(unknown) == 1:
            raise LoginError(f"no Twitch channel named {unknown[0]!r}")
        if unknown:
            raise LoginError(f"no Twitch channels named {', '.join(repr(login) for login in unknown)}")
        return [found[login] for login in logins]

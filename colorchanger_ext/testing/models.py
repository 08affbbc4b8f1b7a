"""Plain records of the fake's state, kept apart so every module can share them without import cycles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from .payloads import error_body


@dataclass(eq=False)
class FakeUser:
    """A Twitch account; mutate ``turbo`` to change whether Twitch lets it use hex colours."""

    id: str
    login: str
    display_name: str
    turbo: bool
    scopes: frozenset[str]
    color: str = ""  # as GET /helix/chat/color returns it: "#RRGGBB" upper case, "" when never set
    access_token: str = ""  # the newest live pair (tokens rotate on refresh)
    refresh_token: str = ""


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake saw it, so tests can assert on traffic instead of mocks."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    user_id: str | None  # whose token was presented (even a dead one), None for none or an app token
    time: float  # time.monotonic() when the request arrived


@dataclass(frozen=True)
class ColorPut:
    """One PUT /helix/chat/color, recorded whatever its outcome (429s and 401s included)."""

    user_id: str  # the user_id query parameter as sent
    color: str  # the color query parameter, URL-decoded
    status: int
    time: float


@dataclass(eq=False)
class DeviceCode:
    """One device-code authorisation that a test approves or denies in place of a human."""

    device_code: str
    user_code: str
    scopes: tuple[str, ...]
    expires_at: float  # monotonic
    interval: int
    status: Literal["pending", "approved", "denied", "used"] = "pending"
    user: FakeUser | None = None
    last_poll: float | None = None


@dataclass(eq=False)
class FakeSubscription:
    """An EventSub subscription; it lives exactly as long as its WebSocket session."""

    id: str
    type: str
    version: str
    condition: dict[str, str]
    session_id: str
    user_id: str  # the token user that created it
    created_at: str
    status: str = "enabled"
    cost: int = 0


@dataclass(eq=False)
class Token:
    """An issued access token and the refresh token that can replace it."""

    access: str
    refresh: str | None  # None for app tokens
    user_id: str | None  # None for app tokens
    scopes: tuple[str, ...]
    expires_at: float  # monotonic
    access_alive: bool = True
    refresh_alive: bool = True


@dataclass(eq=False)
class TwitchError(Exception):
    """An error answered with Twitch's body; raised by handlers and turned into a response in one place."""

    status: int
    message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    oauth: bool = False  # id.twitch.tv bodies have no "error" key

    def __post_init__(self) -> None:
        """Give the exception a readable str()."""
        super().__init__(self.status, self.message)

    def body(self) -> dict[str, Any]:
        """The JSON Twitch sends for this error."""
        if self.oauth:
            return {"status": self.status, "message": self.message}
        return error_body(self.status, self.message)

    def response(self) -> web.Response:
        """The aiohttp response carrying this error."""
        return web.json_response(self.body(), status=self.status, headers=dict(self.headers))

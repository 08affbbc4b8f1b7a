"""Every place this package leans on twitchio internals or works around one of its traps.

Kept in one file so an upgrade of twitchio is checked here, and each trap has a test that shows
it (``tests/test_twitchio_traps.py``):

* ``commands.Bot.event_message`` returns early for the bot's own messages, so twitchio commands
  never run for the account itself. The component therefore reads chat in a component listener
  (``Client.dispatch`` still delivers own messages there) and parses its commands itself,
  accepting the host bot's prefixes as read by :func:`command_prefixes`.
* A Component's listeners and commands are stored on its CLASS when an instance is created, so two
  bots in one process holding instances of one class end up calling the last instance created.
  :func:`isolated_component_class` gives each instance a class of its own.
* The endpoints are module globals read at call time: :func:`twitchio_endpoints` sets all three.
* After following ``session_reconnect`` the old socket's cleanup removes the NEW socket from the
  client's table (both share the session id), so ``Client.close()`` leaves it open and a later
  subscribe opens yet another connection. :func:`fix_reconnect_tracking` makes cleanup remove only
  a socket's own entry.
* A refreshed token pair is only kept in memory, and the user token a public client starts with
  becomes its "app token", never updated after a refresh, so every later call without
  ``token_for`` refreshes (and rotates the single-use refresh token) again.
  :func:`save_refreshed_tokens_first` persists each new pair before twitchio uses it and keeps
  that app token current; it also makes each refresh run once and to its end, whoever cancels
  (shown in ``tests/test_faults.py``, the database locked during a refresh).
* twitchio's own EventSub reconnect never resets its backoff and stays down after 4001/4003;
  its keepalive check needs up to 25 s to notice a dead socket.
  :func:`leave_reconnects_to_caller` and :func:`seconds_since_last_frame` let the runner own both.
* A frame without ``metadata`` kills twitchio's EventSub listener while its socket stays open:
  :func:`dead_listener_error` tells the runner, which restarts the bot (``tests/test_faults.py``,
  hostile EventSub frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import twitchio
from twitchio.eventsub import websockets
from twitchio.http import Route

if TYPE_CHECKING:
    from twitchio.authentication import ManagedHTTPClient
    from twitchio.ext import commands

T = TypeVar("T", bound=type)

_ISOLATED = "__colorchanger_isolated__"


def isolated_component_class(cls: T) -> T:
    """Return a fresh subclass of ``cls`` so twitchio's class-level listener table is per instance."""
    if cls.__dict__.get(_ISOLATED, False):
        return cls
    return type(
        cls.__name__,
        (cls,),
        {_ISOLATED: True, "__module__": cls.__module__, "__qualname__": cls.__qualname__},
    )  # type: ignore[return-value]  # type() is typed as returning plain `type`


async def command_prefixes(bot: commands.Bot, message: twitchio.ChatMessage) -> list[str]:
    """The host bot's command prefixes for ``message``: twitchio keeps them only privately."""
    assigned: Any = getattr(bot, "_get_prefix", None)
    if assigned is None:
        return []
    if callable(assigned):
        assigned = assigned(bot, message)
        if inspect.isawaitable(assigned):
            assigned = await assigned
    if isinstance(assigned, str):
        return [assigned]
    if isinstance(assigned, Iterable):
        return [p for p in assigned if isinstance(p, str)]
    return []


@contextlib.contextmanager
def twitchio_endpoints(helix: str, oauth: str, eventsub: str) -> Iterator[None]:
    """Point twitchio at other Helix, OAuth and EventSub endpoints; restore the old ones after."""
    saved = Route.BASE, Route.ID_BASE, websockets.WSS
    Route.BASE, Route.ID_BASE, websockets.WSS = helix, oauth, eventsub
    try:
        yield
    finally:
        Route.BASE, Route.ID_BASE, websockets.WSS = saved


_original_cleanup = websockets.Websocket._cleanup


def _cleanup_own_entry_only(self: websockets.Websocket, closed: bool = True) -> None:
    """twitchio's cleanup, minus removing a successor socket registered under the same session id."""
    client: Any = self._client
    if self._shard_id is None and client is not None and self._token_for:
        registered = client._websockets.get(self._token_for, {}).get(self.session_id or "")
        if registered is not None and registered is not self:
            self._closed = closed
            return
    _original_cleanup(self, closed)


def fix_reconnect_tracking() -> None:
    """Make every twitchio client in this process keep track of the socket a reconnect moved to."""
    websockets.Websocket._cleanup = _cleanup_own_entry_only  # type: ignore[method-assign]  # the fix itself


def undo_reconnect_tracking_fix() -> None:
    """Restore twitchio's own cleanup (tests show the bug with it)."""
    websockets.Websocket._cleanup = _original_cleanup  # type: ignore[method-assign]  # undoing the fix


def refresh_token_rejected(error: twitchio.HTTPException) -> bool:
    """Whether Twitch refused the refresh token itself: 400 "Invalid refresh token", or 401.

    Only this (or a revocation) means the user must log in again. twitchio raises the same
    HTTPException for a 429, a 5xx or an application problem, which a later retry or a config fix
    cures: treating every status below 500 as a rejection locked users out over one 429.
    """
    message = str(error.extra.get("message", "")).lower()
    return error.status == 401 or (error.status == 400 and "invalid refresh token" in message)


def from_oauth(error: twitchio.HTTPException) -> bool:
    """Whether the failed request went to id.twitch.tv (a refresh inside a Helix call), not Helix."""
    return bool(getattr(error.route, "use_id", False))


def app_credentials_rejected(error: twitchio.HTTPException) -> bool:
    """Whether Twitch refused the application (client id or secret), not the user's tokens."""
    message = str(error.extra.get("message", "")).lower()
    return message in {"invalid client", "invalid client secret", "missing client id"} or (
        error.status == 403 and "client" in message
    )


OnRefreshed = Callable[[str, str, int | None], Awaitable[None]]
"""Saves ``(access_token, refresh_token, expires_in)``; raising fails the refresh (the pair is lost)."""
OnRejected = Callable[[twitchio.HTTPException], Awaitable[None]]


def save_refreshed_tokens_first(
    http: ManagedHTTPClient, on_refreshed: OnRefreshed, on_rejected: OnRejected
) -> None:
    """Route every refresh of this single-user client through ``on_refreshed`` before the pair is used.

    All three of twitchio's refresh paths (on add, on a 401, in the hourly validation) call the
    same private OAuth object, so wrapping its ``refresh_token`` covers them all.

    Each refresh runs to its end in a task of its own, once per refresh token. A caller's timeout
    (a colour change's) used to cancel it between Twitch rotating the pair and the pair being
    saved, and a second 401 meanwhile refreshed the spent token again (400): either way the
    account was locked out. Callers that come while one runs share its result.
    """
    oauth: Any = http._ManagedHTTPClient__isolated  # type: ignore[attr-defined]  # name-mangled private
    refresh = oauth.refresh_token
    running: dict[str, asyncio.Future[Any]] = {}

    async def rotate(refresh_token: str) -> Any:
        try:
            payload = await refresh(refresh_token)
        except twitchio.HTTPException as error:
            if refresh_token_rejected(error):
                await on_rejected(error)
            raise  # 429, 5xx, a misconfigured application: the caller retries later
        await on_refreshed(payload.access_token, payload.refresh_token, payload.expires_in)
        # twitchio stores the new pair only when the refresh returns to a caller, who may be gone.
        for entry in http._tokens.values():
            if entry.get("refresh") == refresh_token:
                entry["token"], entry["refresh"] = payload.access_token, payload.refresh_token
        if http._app_token is not None:  # the user's own token, for a client started with token=
            http._app_token = payload.access_token
        return payload

    def forget(refresh_token: str, task: asyncio.Future[Any]) -> None:
        if running.get(refresh_token) is task:
            del running[refresh_token]
        if not task.cancelled():
            task.exception()  # retrieved: whoever still waits gets it; nobody else must log it

    async def refresh_then_save(refresh_token: str) -> Any:
        task = running.get(refresh_token)
        if task is None:
            task = running[refresh_token] = asyncio.ensure_future(rotate(refresh_token))
            task.add_done_callback(functools.partial(forget, refresh_token))
        return await asyncio.shield(task)

    oauth.refresh_token = refresh_then_save


def leave_reconnects_to_caller(client: Any, user_id: str) -> None:
    """Stop twitchio reconnecting this user's EventSub sockets by itself.

    Its backoff (3 s growing to 90 s) never resets and it silently stays down after 4001 and
    4003; with reconnects off, every lost socket is closed and reported as ``websocket_closed``,
    and the caller restarts the client on its own schedule. Sockets a ``session_reconnect``
    creates inherit the setting.
    """
    for socket in client._websockets.get(user_id, {}).values():
        socket._reconnect_attempts = 0
        socket._original_attempts = None


def seconds_since_last_frame(client: Any, user_id: str) -> float | None:
    """How long the user's live EventSub socket has been silent; None when none is connected."""
    ages = [
        (datetime.datetime.now() - socket._last_keepalive).total_seconds()
        for socket in client._websockets.get(user_id, {}).values()
        if socket.connected and socket._last_keepalive is not None
    ]
    return min(ages) if ages else None


def dead_listener_error(client: Any, user_id: str) -> BaseException | None:
    """The exception that killed twitchio's reader of a still-open EventSub socket, if one died.

    twitchio indexes every frame's ``metadata`` unguarded, so one malformed frame ends its listener
    task with a KeyError while the socket stays open, read by nobody; asyncio later logs "Task
    exception was never retrieved". Fetching the exception here marks it retrieved, and the caller
    restarts at once instead of waiting for the silence check.
    """
    for socket in client._websockets.get(user_id, {}).values():
        task = socket._listen_task
        if socket.connected and task is not None and task.done() and not task.cancelled():
            error: BaseException | None = task.exception()
            if error is not None:
                return error
    return None


def listener_tasks(client: Any, user_id: str) -> list[asyncio.Task[None]]:
    """The tasks reading the user's EventSub sockets, so a caller can hear at once when one ends."""
    return [
        socket._listen_task
        for socket in client._websockets.get(user_id, {}).values()
        if socket._listen_task is not None
    ]


def any_socket_connected(client: Any, user_id: str) -> bool:
    """Whether the user still has a live EventSub socket (false after a real loss, true mid-reconnect)."""
    return any(socket.connected for socket in client._websockets.get(user_id, {}).values())

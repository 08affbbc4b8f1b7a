"""One Twitch account as a twitchio bot: its tokens from the database, its channels, the component."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

import twitchio
from twitchio.ext import commands

from colorchanger_ext import ColorChanger
from colorchanger_ext.changer import RetryPolicy, describe_error
from colorchanger_ext.ratelimit import RateLimits
from colorchanger_ext.store import StoreError
from colorchanger_ext.twitchio_compat import (
    any_socket_connected,
    app_credentials_rejected,
    dead_listener_error,
    leave_reconnects_to_caller,
    listener_tasks,
    refresh_token_rejected,
    save_refreshed_tokens_first,
    seconds_since_last_frame,
)

from . import restore

if TYPE_CHECKING:
    import aiohttp

    from colorchanger_ext.observer import ChangeObserver
    from colorchanger_ext.settings import ColorSettings

    from .accounts import Account, Accounts
    from .logs import SecretRedactor

logger = logging.getLogger(__name__)

LOGOUT_REASONS = frozenset({"authorization_revoked", "user_removed"})

RESTORE_BUDGET = 3.0
"""Seconds a final stop may spend putting the user's colour back, inside the supervisor's 4 s grace."""


class NeedsLogin(Exception):
    """Twitch no longer accepts this account's tokens; only ``users add`` can fix it."""


class AppMisconfigured(Exception):
    """Twitch refused the application's client id or secret: a problem of the config, not of a user."""


class ConnectionLost(Exception):
    """The EventSub connection is gone (closed, dropped or silent); the supervisor starts afresh."""


class UserBot(commands.Bot):
    """A twitchio bot for one account; ``bot_id`` is that account's own id."""

    def __init__(
        self,
        account: Account,
        *,
        accounts: Accounts,
        client_id: str,
        client_secret: str | None,
        colors: ColorSettings,
        session: aiohttp.ClientSession,
        redactor: SecretRedactor | None = None,
        rate_limits: RateLimits | None = None,
        silence_limit: float | None = None,
        retry: RetryPolicy | None = None,
        observer: ChangeObserver | None = None,
        restore_colors: bool = False,
    ) -> None:
        assert account.tokens is not None
        super().__init__(
            client_id=client_id,
            client_secret=client_secret,
            bot_id=account.user_id,
            prefix="!",
            session=session,
            fetch_client_user=False,  # one Helix request per start that nothing here needs
        )
        self.account = account
        self.access_token = account.tokens.access_token
        self._accounts = accounts
        self._colors = colors
        self._redactor = redactor
        self._rate_limits = rate_limits
        self._silence_limit = silence_limit
        self._retry = retry
        self._observer = observer
        self._restore_colors = restore_colors
        self.original_color: str | None = None
        """With restore_colors: the colour to put back on a final stop (see bot_runner.restore)."""
        self._watchdog: asyncio.Task[None] | None = None
        self._unsaved_tokens: tuple[str, str, float | None] | None = None  # refreshed, not stored yet
        self._token_saver: asyncio.Task[None] | None = None
        self._stopping = False
        self.lost_connection: str | None = None
        self.needs_login: str | None = None
        self._closing: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self.live_channels: dict[str, str] = {}  # channel id -> login, those we get chat from

    @property
    def login_name(self) -> str:
        return self.account.login

    async def serve(self) -> None:
        """Log in, subscribe, and run until closed; raises NeedsLogin when the tokens are dead."""
        try:
            await self.start(self.access_token, with_adapter=False, load_tokens=False, save_tokens=False)
        finally:
            await self.close()  # start() skips its own cleanup when setup fails
        if self.needs_login:
            raise NeedsLogin(self.needs_login)
        if self.lost_connection:
            raise ConnectionLost(self.lost_connection)

    async def close(self, **options: Any) -> None:
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        await super().close(**options)
        if self._token_saver is not None:
            self._token_saver.cancel()
            await asyncio.gather(self._token_saver, return_exceptions=True)
            self._token_saver = None
        if self._unsaved_tokens is not None and await self._save_unsaved_tokens() is not None:
            logger.error(
                "%s: the refreshed tokens could not be saved; if Twitch refuses the stored ones, "
                "run `colorchanger-runner users add %s`",
                self.login_name,
                self.login_name,
            )

    async def stop(self, *, restore_color: bool = False) -> None:
        """Close the bot; for a final stop (removed, disabled, runner exiting) with ``restore_color``
        put the user's own colour back first, after the change in flight (if any) has landed."""
        if restore_color and self.original_color is not None and not self._stopping:
            try:
                async with asyncio.timeout(RESTORE_BUDGET):
                    await self.remove_component("ColorChanger")  # its teardown lets the last change land
                    await restore.put_back(
                        self, self._accounts.store, self.bot_id, self.login_name, self.original_color
                    )
            except TimeoutError:
                logger.warning("%s: no time left to put the colour back; kept for next time", self.login_name)
            except StoreError as error:
                logger.error("%s: %s", self.login_name, error)
        await self.close()

    async def _remember_color(self) -> str | None:
        try:
            return await restore.remember(self, self._accounts.store, self.bot_id, self.login_name)
        except StoreError as error:  # removed meanwhile, or the database failed: carry on without it
            logger.error("%s: could not save the colour to put back: %s", self.login_name, error)
            return None

    async def load_tokens(self, path: str | None = None) -> None:
        """Tokens live encrypted in the database, never in twitchio's JSON file."""

    async def save_tokens(self, path: str | None = None) -> None:
        """Every refreshed pair is saved when it arrives (see setup_hook), never to twitchio's file."""

    async def setup_hook(self) -> None:
        tokens = self.account.tokens
        assert tokens is not None
        save_refreshed_tokens_first(self._http, self._save_refreshed, self._refresh_rejected)
        try:
            await self.add_token(tokens.access_token, tokens.refresh_token)
        except twitchio.InvalidTokenException as error:  # its text holds the token: never show it
            raise await self._token_check_failed(error) from None
        if self._restore_colors:  # before the component exists, so nothing has changed the colour yet
            self.original_color = await self._remember_color()
        await self.add_component(
            ColorChanger(
                self,
                store=self._accounts.store,
                settings=self._colors,
                rate_limits=self._rate_limits,
                retry=self._retry,
                observer=self._observer,
            )
        )
        for channel in self.account.live_channels:
            await self._subscribe(channel.channel_id, channel.login)
        if self.account.live_channels and not self.live_channels:
            raise RuntimeError("could not subscribe to chat in any channel")
        leave_reconnects_to_caller(self, self.bot_id)
        if self.live_channels:
            self._watchdog = asyncio.create_task(
                self._watch_for_silence(), name=f"watchdog:{self.login_name}"
            )
        self.subscribed.set()

    async def _token_check_failed(self, error: twitchio.InvalidTokenException) -> Exception:
        """What a failed validate or refresh at start means: only a refused refresh token is a lock-out.

        twitchio refreshes when validate answers 401, so a failure of ``type`` "refresh" is Twitch's
        answer about the refresh token; anything else (429, 5xx, the application refused) passes
        and the supervisor retries with backoff.
        """
        if error.invalid_type == "refresh" and refresh_token_rejected(error):
            await self._give_up("Twitch rejected the stored tokens")
            return NeedsLogin("Twitch rejected the stored tokens")
        if app_credentials_rejected(error):
            return AppMisconfigured(
                f"Twitch refused the application ({error.extra.get('message', error.status)}): "
                "check twitch.client_id and twitch.client_secret in the config"
            )
        what = "refreshing" if error.invalid_type == "refresh" else "checking"
        return RuntimeError(f"Twitch answered {error.status} while {what} the tokens; retrying")

    async def _watch_for_silence(self) -> None:
        """Twitch sends a keepalive after every quiet stretch: a longer silence means a dead socket.

        It sleeps until the silence could first exceed the limit (once per keepalive, not once a
        second: with a thousand users that is the difference between 0.x and several % of a core
        idle), and wakes at once if twitchio's reader of the socket dies.
        """
        socket = next(iter(self._websockets.get(self.bot_id, {}).values()), None)
        limit = self._silence_limit or (socket.keep_alive_timeout if socket else 10) + 3
        reader_ended = asyncio.Event()
        watched: weakref.WeakSet[asyncio.Task[None]] = weakref.WeakSet()
        while True:
            for task in listener_tasks(self, self.bot_id):
                if task not in watched:
                    watched.add(task)
                    task.add_done_callback(lambda _: reader_ended.set())
            age = seconds_since_last_frame(self, self.bot_id)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, limit - (age or 0.0))):
                    await reader_ended.wait()
            reader_ended.clear()
            # A malformed frame kills twitchio's reader but not the socket (keepalives still arrive,
            # unread): restart now rather than after the silence limit.
            error = dead_listener_error(self, self.bot_id)
            if error is not None:
                self._lose_connection(f"twitchio stopped reading EventSub ({describe_error(error)})")
                return
            age = seconds_since_last_frame(self, self.bot_id)
            if age is not None and age > limit:
                self._lose_connection(f"no message from Twitch for {age:.1f} s")
                return

    def _lose_connection(self, reason: str) -> None:
        if self._stopping:
            return
        self.lost_connection = reason
        logger.warning("%s: %s; reconnecting", self.login_name, reason)
        self._closing = asyncio.get_running_loop().create_task(self.close())

    async def event_websocket_closed(self, payload: Any) -> None:
        if self._stopping or any_socket_connected(self, self.bot_id):
            return  # our own shutdown, or the old socket after a session_reconnect move
        raw = getattr(payload.socket, "_socket", None)
        code = getattr(raw, "close_code", None)
        self._lose_connection(f"connection to Twitch closed{f' (code {code})' if code else ''}")

    async def reload_state(self) -> None:
        """Apply colour settings changed from the CLI while this bot runs."""
        component = self.get_component("ColorChanger")
        if isinstance(component, ColorChanger):
            await component.reload_state()

    async def _subscribe(self, channel_id: str, channel_login: str) -> None:
        payload = twitchio.eventsub.ChatMessageSubscription(
            broadcaster_user_id=channel_id, user_id=self.bot_id
        )
        try:
            await self.subscribe_websocket(payload=payload, token_for=self.bot_id)
        except twitchio.HTTPException as error:
            logger.warning(
                "%s: could not read chat in #%s: %s", self.login_name, channel_login, describe_error(error)
            )
            return
        self.live_channels[channel_id] = channel_login
        logger.info("%s: reading chat in #%s", self.login_name, channel_login)

    async def _save_refreshed(self, access_token: str, refresh_token: str, expires_in: int | None) -> None:
        if self._redactor is not None:
            self._redactor.set_secrets(self.bot_id, access_token, refresh_token)
        expires_at = time.time() + expires_in if expires_in else None
        self._unsaved_tokens = (access_token, refresh_token, expires_at)
        error = await self._save_unsaved_tokens()
        if error is None:
            logger.info("%s: token refreshed and saved", self.login_name)
            return
        # Twitch has already spent the old refresh token, so this pair is the only one that works:
        # raising here (as before) threw it away and locked the account out. Use it; keep saving.
        logger.error("%s: could not save the refreshed tokens: %s; retrying", self.login_name, error)
        if self._token_saver is None or self._token_saver.done():
            self._token_saver = asyncio.create_task(
                self._keep_saving_tokens(), name=f"tokens:{self.login_name}"
            )

    async def _save_unsaved_tokens(self) -> StoreError | None:
        """Store the newest refreshed pair, if any is unsaved; the error when the database refused."""
        pair = self._unsaved_tokens
        if pair is None:
            return None
        access_token, refresh_token, expires_at = pair
        try:
            await self._accounts.save_tokens(self.bot_id, access_token, refresh_token, expires_at=expires_at)
        except StoreError as error:
            return error
        if self._unsaved_tokens == pair:
            self._unsaved_tokens = None
        self.access_token = access_token  # only once stored: the supervisor compares it with the database
        return None

    async def _keep_saving_tokens(self) -> None:
        while self._unsaved_tokens is not None:
            await asyncio.sleep(1.0)
            if self._unsaved_tokens is not None and await self._save_unsaved_tokens() is None:
                logger.info("%s: refreshed tokens saved", self.login_name)

    async def _refresh_rejected(self, error: Any) -> None:
        await self._give_up("Twitch rejected the refresh token")

    async def _give_up(self, reason: str) -> None:
        """Mark the account needs-login (reported once) and stop this bot; retrying cannot help."""
        if self.needs_login:
            return
        self.needs_login = reason
        self._stopping = True
        if await self._accounts.mark_needs_login(self.bot_id, reason):
            logger.error(
                "%s needs login: %s; run `colorchanger-runner users add %s`",
                self.login_name,
                reason,
                self.login_name,
            )
        self._closing = asyncio.get_running_loop().create_task(self.close())

    async def event_subscription_revoked(self, payload: twitchio.SubscriptionRevoked) -> None:
        reason = payload.reason.value
        channel_id = str(payload.raw.get("condition", {}).get("broadcaster_user_id", ""))
        channel = self.live_channels.pop(channel_id, channel_id)
        if reason in LOGOUT_REASONS:
            await self._give_up(f"Twitch revoked access ({reason})")
        elif reason == "chat_user_banned":
            logger.error("%s: banned in #%s; no longer reading chat there", self.login_name, channel)
            # The supervisor restarts a bot whose channels differ from the database's: without the
            # ban in this copy too, the next unrelated change (any CLI command) restarted this bot.
            self.account = dataclasses.replace(
                self.account,
                channels=tuple(
                    dataclasses.replace(row, banned_at=time.time()) if row.channel_id == channel_id else row
                    for row in self.account.channels
                ),
            )
            await self._accounts.mark_channel_banned(self.bot_id, channel_id)
        else:
            logger.error(
                "%s: Twitch ended the chat subscription for #%s (%s)", self.login_name, channel, reason
            )

    async def event_message(self, payload: twitchio.ChatMessage) -> None:
        """Skip twitchio's command parsing: these bots have no twitchio commands (the component reads
        chat through its own listener), and every "!word" anyone typed in the user's channels was
        logged as an ERROR with a CommandNotFound traceback."""

    async def event_websocket_welcome(self, payload: twitchio.WebsocketWelcome) -> None:
        logger.info("%s: connected to Twitch EventSub", self.login_name)

    async def event_error(self, payload: twitchio.EventErrorPayload) -> None:
        logger.error(
            "%s: error in %s: %s",
            self.login_name,
            payload.listener.__qualname__,
            describe_error(payload.error),
        )

"""Runs one UserBot per enabled, logged-in account, restarts failed ones, and follows the database.

The database is the only channel between ``colorchanger-runner users ...`` and a running
``run``: SQLite's ``PRAGMA data_version`` changes when another process commits, so a cheap poll
notices CLI changes within a second without any extra machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from colorchanger_ext.changer import RetryPolicy, describe_error
from colorchanger_ext.observer import ChangeObserver
from colorchanger_ext.ratelimit import RateLimits
from colorchanger_ext.settings import ColorSettings
from colorchanger_ext.store import StoreError

from .accounts import Account, Accounts
from .logs import SecretRedactor
from .userbot import AppMisconfigured, ConnectionLost, NeedsLogin, UserBot

logger = logging.getLogger(__name__)

STOP_GRACE = 4.0
"""Seconds bots get to close on shutdown; the whole stop stays inside Twitch-friendly 5 s."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Restart delays: the first retry is quick, later ones grow to a cap, all with jitter."""

    first: float = 1.0
    cap: float = 300.0
    healthy_after: float = 120.0
    """A bot that ran this long is healthy again: its next failure starts from ``first``."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds before restart number ``attempt`` (0-based): exponential, capped, 50-100 % jitter."""
        # The exponent is clamped: from 2**1024 on it no longer fits a float, and the OverflowError
        # would end the account's restart loop for good after a few days of Twitch being down.
        return float(min(self.cap, self.first * 2 ** min(attempt, 64)) * rng.uniform(0.5, 1.0))


@dataclass(frozen=True, slots=True)
class UserStatus:
    """What the supervisor is doing with one account, for logs, health checks and tests."""

    login: str
    state: str
    """``starting``, ``running`` (subscribed to chat), ``restarting``, ``needs-login`` or ``stopped``."""
    detail: str = ""
    since: float = 0.0


def _running_shape(account: Account) -> tuple[str, tuple[str, ...]]:
    """What a running bot was built from; a change means restarting it."""
    return account.login, tuple(channel.channel_id for channel in account.live_channels)


def _wanted(account: Account) -> bool:
    return account.enabled and account.tokens is not None and account.tokens.status == "ok"


@dataclass
class Supervisor:
    """Keeps the set of running bots equal to the set of enabled, logged-in accounts."""

    accounts: Accounts
    client_id: str
    client_secret: str | None
    colors: ColorSettings
    redactor: SecretRedactor | None = None
    poll_interval: float = 1.0
    silence_limit: float | None = None
    """Seconds without a frame before a socket counts as dead; None: Twitch's keepalive + 3 s."""
    backoff: Backoff = field(default_factory=Backoff)
    retry: RetryPolicy | None = None
    """How colour changes are retried after 5xx and timeouts; None: the component's default."""
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    observer: ChangeObserver | None = None
    """Told about every bot's messages, colour changes and Helix errors (the runner's metrics)."""
    on_status: Callable[[str, UserStatus | None, UserStatus], None] | None = None
    """Called with (user id, previous, new) on every status change (the runner's metrics)."""
    restore_colors: bool = False
    """restore_colour_on_exit: put each user's own colour back when removed, disabled, or at exit."""
    progress_interval: float = 5.0
    """Seconds between "started N/M users" lines while many bots start."""
    bots: dict[str, UserBot] = field(default_factory=dict, init=False)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)
    _restart_now: set[str] = field(default_factory=set, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False)
    rate_limits: RateLimits = field(default_factory=RateLimits, init=False)
    status: dict[str, UserStatus] = field(default_factory=dict, init=False)
    _status_changed: asyncio.Condition = field(default_factory=asyncio.Condition, init=False)
    _reconcile_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _progress: asyncio.Task[None] | None = field(default=None, init=False)
    _reported_app_problem: bool = field(default=False, init=False)
    _removed: set[str] = field(default_factory=set, init=False)

    async def _set_status(self, user_id: str, login: str, state: str, detail: str = "") -> None:
        previous = self.status.get(user_id)
        self.status[user_id] = UserStatus(login, state, detail, time.time())
        if self.on_status is not None:
            self.on_status(user_id, previous, self.status[user_id])
        async with self._status_changed:
            self._status_changed.notify_all()

    async def wait_for_status(self, user_id: str, state: str, *, timeout: float = 5.0) -> UserStatus:  # noqa: ASYNC109
        """Wait until the account reaches ``state`` (for tests and the demo)."""
        async with asyncio.timeout(timeout), self._status_changed:
            await self._status_changed.wait_for(
                lambda: user_id in self.status and self.status[user_id].state == state
            )
            return self.status[user_id]

    async def wait_until_forgotten(self, user_id: str, *, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until a removed account has left the status (for tests)."""
        async with asyncio.timeout(timeout), self._status_changed:
            await self._status_changed.wait_for(lambda: user_id not in self.status)

    async def settled(self) -> None:
        """Apply every database change made before this call, without waiting for the next poll."""
        await self._reconcile()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then close every bot within the grace time."""
        self._session = aiohttp.ClientSession(trace_configs=[self.rate_limits.trace_config()])
        try:
            await self._report_startup()
            version = await self.accounts.data_version()
            await self._reconcile()
            self._progress = asyncio.create_task(self._report_progress(), name="startup-progress")
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await stop.wait()
                current = await self.accounts.data_version()
                if current != version:
                    version = current
                    await self._reconcile()
        finally:
            await self._shutdown()

    async def _report_progress(self) -> None:
        """While the bots of the first reconcile start, say how far along they are; then sum up once."""
        user_ids = set(self._tasks)
        if not user_ids:
            return
        began = last_report = self.clock()

        def count(state: str) -> int:
            return sum(1 for uid in user_ids if uid in self.status and self.status[uid].state == state)

        while count("starting") + sum(1 for uid in user_ids if uid not in self.status):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.25, self.progress_interval)):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            if self.clock() - last_report >= self.progress_interval:
                last_report = self.clock()
                logger.info("started %d/%d users", count("running"), len(user_ids))
        others = [
            f"{count(state)} {state}" for state in ("restarting", "needs-login", "stopped") if count(state)
        ]
        logger.info(
            "started %d/%d users in %.1f s%s",
            count("running"),
            len(user_ids),
            self.clock() - began,
            f" ({', '.join(others)})" if others else "",
        )

    async def _report_startup(self) -> None:
        accounts = await self.accounts.list()
        if not accounts:
            logger.warning("no users yet: add one with `colorchanger-runner users add LOGIN`")
        for account in accounts:
            if account.tokens is not None and account.tokens.status != "ok":
                logger.error(
                    "%s needs login (%s): run `colorchanger-runner users add %s`",
                    account.login,
                    account.tokens.status_reason or "tokens rejected",
                    account.login,
                )
            elif not account.enabled:
                logger.info(
                    "%s is disabled: `colorchanger-runner users enable %s` to start it",
                    account.login,
                    account.login,
                )

    async def _reconcile(self) -> None:
        """Start, stop or restart bots so they match the database."""
        async with self._reconcile_lock:
            await self._reconcile_now()

    async def _reconcile_now(self) -> None:
        accounts = await self.accounts.list()
        wanted = {account.user_id: account for account in accounts if _wanted(account)}
        self._forget_removed({account.user_id for account in accounts})
        for user_id in list(self._tasks):
            bot = self.bots.get(user_id)
            account = wanted.get(user_id)
            if account is None:
                if bot is not None:
                    logger.info("%s: disabled or removed; stopping", bot.login_name)
                    await bot.stop(restore_color=self.restore_colors)
                if self.redactor is not None:
                    self.redactor.forget(user_id)  # its tokens are no longer live here
            elif bot is not None and account.tokens is not None:
                if _running_shape(account) != _running_shape(bot.account):
                    logger.info("%s: channels or login changed; restarting", account.login)
                elif account.tokens.access_token != bot.access_token:
                    logger.info("%s: logged in again; restarting", account.login)
                else:
                    await bot.reload_state()
                    continue
                self._restart_now.add(user_id)
                await bot.close()
        for user_id, account in wanted.items():
            if user_id not in self._tasks:
                task = asyncio.create_task(self._keep_running(user_id), name=f"user:{account.login}")
                task.add_done_callback(functools.partial(self._forget_task, user_id))
                self._tasks[user_id] = task

    def _forget_removed(self, known: set[str]) -> None:
        """Users removed from the database leave the status (and so /healthz and the metrics) for good.

        One still stopping keeps its entry until its task ends; a user added back is not forgotten.
        """
        self._removed = {uid for uid in self.status if uid not in known}
        for user_id in self._removed - set(self._tasks):
            del self.status[user_id]

    def _forget_task(self, user_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(user_id) is task:
            del self._tasks[user_id]

    async def _keep_running(self, user_id: str) -> None:
        """One account's life: run its bot, and restart it with backoff until it is not wanted."""
        attempt = 0
        login = user_id
        try:
            while not self._stopping.is_set():
                started = self.clock()
                try:
                    account = await self.accounts.get(user_id)
                    if account is None or not _wanted(account):
                        return
                    login = account.login
                    await self._set_status(user_id, login, "starting")
                    started = self.clock()
                    reason = await self._run_once(account)
                    if reason is None:  # needs login: reported by the bot, and retrying cannot help
                        await self._set_status(user_id, login, "needs-login")
                        return
                    if self._stopping.is_set():
                        return
                    if user_id in self._restart_now:
                        self._restart_now.discard(user_id)
                        continue
                    account = await self.accounts.get(user_id)
                    if account is None or not _wanted(account):
                        return
                except StoreError as error:  # locked or failing database: retry, never give the user up
                    reason = str(error)
                if self.clock() - started >= self.backoff.healthy_after:
                    attempt = 0
                delay = self.backoff.delay(attempt, self.rng)
                attempt += 1
                logger.warning("%s: %s; restarting in %.1f s", login, reason, delay)
                await self._set_status(user_id, login, "restarting", reason)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
        finally:
            if user_id in self._removed:
                self.status.pop(user_id, None)
                async with self._status_changed:
                    self._status_changed.notify_all()
            elif self.status.get(user_id, UserStatus(login, "")).state != "needs-login":
                await self._set_status(user_id, login, "stopped")

    async def _run_once(self, account: Account) -> str | None:
        """Run one bot until it ends; the reason it ended, or None when it needs a new login."""
        assert self._session is not None
        bot = UserBot(
            account,
            accounts=self.accounts,
            client_id=self.client_id,
            client_secret=self.client_secret,
            colors=self.colors,
            session=self._session,
            redactor=self.redactor,
            rate_limits=self.rate_limits,
            silence_limit=self.silence_limit,
            retry=self.retry,
            observer=self.observer,
            restore_colors=self.restore_colors,
        )
        if self.redactor is not None and account.tokens is not None:
            self.redactor.set_secrets(
                account.user_id, account.tokens.access_token, account.tokens.refresh_token
            )
        self.bots[account.user_id] = bot
        serving = asyncio.create_task(bot.serve(), name=f"bot:{account.login}")
        subscribed = asyncio.create_task(bot.subscribed.wait())
        try:
            await asyncio.wait([serving, subscribed], return_when=asyncio.FIRST_COMPLETED)
            if subscribed.done() and not serving.done():
                await self._set_status(account.user_id, account.login, "running")
            await serving
            return "stopped"
        except NeedsLogin:
            return None
        except ConnectionLost as lost:
            return str(lost)
        except AppMisconfigured as error:
            if not self._reported_app_problem:  # one line for the runner, not one per user and retry
                self._reported_app_problem = True
                logger.error("%s", error)
            return str(error)
        except Exception as error:
            return describe_error(error)
        finally:
            subscribed.cancel()
            if not serving.done():  # cancelled from outside: the bot must still close
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
            self.bots.pop(account.user_id, None)

    async def _shutdown(self) -> None:
        self._stopping.set()
        bots = list(self.bots.values())
        if bots:
            logger.info("stopping %d bot(s)", len(bots))
        try:
            async with asyncio.timeout(STOP_GRACE):
                await asyncio.gather(
                    *(bot.stop(restore_color=self.restore_colors) for bot in bots), return_exceptions=True
                )
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        except TimeoutError:
            logger.warning("some bots did not stop within %.0f s; cancelling them", STOP_GRACE)
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

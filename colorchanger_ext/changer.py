"""One user's colour changes: collapse bursts, retry what Twitch could not do yet, fall back from hex.

At most one Helix request is in flight per user and at most one waits behind it; a newer request
replaces the waiting one, so a burst of messages costs two requests and the colour after the last
message is always the one applied. A change Twitch could not make for a passing reason (429, 5xx,
a timeout, a network error) is retried, once its wait is over, as the newest change by then: after
the rate limit's reset time for a 429, and on a growing, jittered delay otherwise, so a Helix
outage costs a handful of requests per user, not one per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import twitchio

from . import colors
from .observer import ChangeObserver, NullObserver
from .ratelimit import RateLimits
from .settings import ColorSettings
from .store import ModeProgress, Store, StoreError, UserState
from .twitchio_compat import from_oauth

logger = logging.getLogger(__name__)

PutColor = Callable[[str], Awaitable[None]]
"""Sends ``PUT /helix/chat/color`` for the user with the user's own token."""


@dataclass(frozen=True, slots=True)
class NextColor:
    """Pick the next colour by the user's mode."""


@dataclass(frozen=True, slots=True)
class ExactColor:
    """Apply this colour: a Twitch named colour or ``#RRGGBB``."""

    color: str


ChangeRequest = NextColor | ExactColor


def is_hex_refusal(error: BaseException) -> bool:
    """Twitch's 400 for a hex colour on an account without Turbo or Prime."""
    if not isinstance(error, twitchio.HTTPException) or error.status != 400:
        return False
    message = error.extra.get("message", "") if isinstance(error.extra, dict) else str(error.extra)
    message = str(message).lower()
    return "turbo" in message or "prime" in message


def is_transient(error: BaseException) -> bool:
    """A failure worth retrying later: rate limit, Twitch-side error, timeout or network trouble."""
    if isinstance(error, twitchio.HTTPException):
        return error.status == 429 or error.status >= 500
    return isinstance(error, TimeoutError | aiohttp.ClientError | ConnectionError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays between attempts after passing failures other than 429: growing, capped, jittered."""

    first: float = 1.0
    cap: float = 60.0
    request_timeout: float = 10.0
    """A colour request still unanswered after this long counts as failed (and is retried)."""

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` (>= 1) failures in a row."""
        # The exponent is clamped: 2**1024 no longer fits a float, and an outage of a day or two
        # reaches that many failures (OverflowError, and the change was dropped).
        return float(min(self.cap, self.first * 2 ** min(failures - 1, 64)) * rng.uniform(0.5, 1.0))


def describe_error(error: BaseException) -> str:
    """A log-safe account of a failure: twitchio puts tokens in some exception texts, so never str(e)."""
    if isinstance(error, twitchio.HTTPException):
        message = error.extra.get("message", "") if isinstance(error.extra, dict) else ""
        return f"Twitch answered {error.status}" + (f": {message}" if message else "")
    return type(error).__name__


class Changer:
    """The change queue and state of one Twitch user."""

    def __init__(
        self,
        state: UserState,
        *,
        store: Store,
        put_color: PutColor,
        settings: ColorSettings,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        rate_limits: RateLimits | None = None,
        retry: RetryPolicy | None = None,
        observer: ChangeObserver | None = None,
    ) -> None:
        self.state = state
        self._store = store
        self._put_color = put_color
        self._settings = settings
        self._rng = rng or random.Random()
        self._clock = clock
        self._rate_limits = rate_limits or RateLimits()
        self._retry = retry or RetryPolicy()
        self._observer: ChangeObserver = observer or NullObserver()
        self._pending_at = 0.0  # time.monotonic() the waiting change was asked for
        self._applying_since = 0.0  # ... and the change being applied
        self._failures = 0
        self._closing = asyncio.Event()
        self._pending: ChangeRequest | None = None
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def user_id(self) -> str:
        return self.state.user_id

    def request(self, change: ChangeRequest, *, received_at: float | None = None) -> None:
        """Queue a change; it replaces any change still waiting, never the one in flight.

        ``received_at`` (``time.monotonic()``) is when the message asking for it arrived, for the
        observer's message-to-colour time; default now.
        """
        self._pending = change
        self._pending_at = time.monotonic() if received_at is None else received_at
        if self._worker is None:
            self._idle.clear()
            self._worker = asyncio.create_task(self._drain(), name=f"colorchanger:{self.user_id}")

    async def wait_idle(self) -> None:
        """Wait until nothing is in flight or waiting."""
        await self._idle.wait()

    async def close(self, grace: float = 5.0) -> None:
        """Let the change in flight land (within ``grace`` seconds), then stop."""
        self._closing.set()
        worker = self._worker
        if worker is None:
            return
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(worker)
        except TimeoutError:
            logger.warning("%s: a colour change was still waiting on Twitch at shutdown", self.state.login)
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def reload(self) -> None:
        """Re-read the stored state, after another process (the runner's CLI) changed it."""
        state = await self._store.get_user(self.user_id)
        if state is not None:
            self.state = state

    async def set_enabled(self, enabled: bool) -> None:
        """Turn automatic changes on or off, on disk first."""
        self.state = await self._store.set_enabled(self.user_id, enabled)

    async def set_mode(self, mode: str) -> None:
        """Switch colour mode, on disk first (``palette`` needs a palette: NoPaletteError)."""
        self.state = await self._store.set_mode(self.user_id, mode)

    def hex_allowed(self) -> bool:
        """Whether to send hex now: by policy, and for ``auto`` unless refused within the retry window."""
        policy = self.state.hex_policy
        if policy != "auto":
            return policy == "always"
        refused_at = self.state.hex_refused_at
        return refused_at is None or self._clock() - refused_at >= self._settings.hex_retry_after

    async def _drain(self) -> None:
        try:
            while self._pending is not None:
                change, self._pending = self._pending, None
                self._applying_since = self._pending_at
                try:
                    retry_in = await self._apply(change)
                except Exception:
                    logger.exception("%s: unexpected failure while changing colour", self.state.login)
                    retry_in = None
                if retry_in is None:
                    continue
                if self._pending is None:  # a newer change, if any, is what gets retried
                    self._pending = change
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(retry_in):
                        await self._closing.wait()
                if self._closing.is_set():
                    logger.warning(
                        "%s: stopping with a colour change still waiting to be retried", self.state.login
                    )
                    self._pending = None
        finally:
            self._worker = None
            self._idle.set()

    def _choose(self, change: ChangeRequest) -> str:
        """The colour for a change, named when hex is not allowed now.

        A rainbow or palette step is staged with the store and saved with the colour once Twitch
        applied it (``Store.stage_progress``), so a change that fails is picked again from where
        the rainbow or palette stood, and a restart goes on after the last colour applied.
        """
        hex_ok = self.hex_allowed()
        color, progress = self._pick(change, hex_ok)
        self._store.stage_progress(self.user_id, progress)
        return color if hex_ok or not colors.is_hex(color) else colors.nearest_named(color)

    def _pick(self, change: ChangeRequest, hex_ok: bool) -> tuple[str, ModeProgress | None]:
        state = self.state
        if isinstance(change, ExactColor):
            return change.color, None
        if state.mode == "rainbow":
            hue = colors.next_rainbow_hue(state.rainbow_hue, state.rainbow_step)
            color = colors.rainbow_color(
                hue, readability=state.readability, min_contrast=self._settings.min_contrast
            )
            return color, ModeProgress(rainbow_hue=hue)
        if state.mode == "palette" and state.palette:  # an emptied palette falls back to preset
            pick = colors.next_palette_color(
                self._rng,
                state.palette,
                order=state.palette_order,
                position=state.palette_position,
                remaining=state.palette_remaining,
                recent=state.recent_colors,
                no_repeat=self._settings.no_repeat,
            )
            return pick.color, ModeProgress(
                palette=state.palette, palette_position=pick.position, palette_remaining=pick.remaining
            )
        color = colors.next_color(
            self._rng,
            mode="hex" if state.mode == "hex" and hex_ok else "preset",
            recent=state.recent_colors,
            no_repeat=self._settings.no_repeat,
            min_contrast=self._settings.min_contrast,
            readability=state.readability,
        )
        return color, None

    async def _put(self, color: str) -> None:
        async with asyncio.timeout(self._retry.request_timeout):
            await self._put_color(color)

    async def _apply(self, change: ChangeRequest) -> float | None:
        """Make one change; seconds to wait before retrying it, or None when it is done with."""
        color = self._choose(change)
        try:
            await self._put(color)
        except Exception as error:
            if not (colors.is_hex(color) and is_hex_refusal(error)):
                return await self._failed(color, error)
            fallback = colors.nearest_named(color)
            logger.info(
                "%s: hex colours need Turbo or Prime on Twitch; using %s, the nearest named colour",
                self.state.login,
                fallback,
            )
            if self.state.hex_policy == "auto":
                await self._save(self._store.set_hex_refused(self.user_id, self._clock()))
            color = fallback
            try:
                await self._put(color)
            except Exception as retry_error:
                return await self._failed(color, retry_error)
        else:
            if colors.is_hex(color) and self.state.hex_refused_at is not None:
                logger.info("%s: Twitch accepts hex colours again", self.state.login)
                await self._save(self._store.set_hex_refused(self.user_id, None))
        self._failures = 0
        self._observer.color_changed(self.user_id, time.monotonic() - self._applying_since)
        await self._save(
            self._store.record_color(self.user_id, color, keep_recent=max(self._settings.no_repeat, 1))
        )
        logger.info("%s: colour changed to %s", self.state.login, color)
        return None

    async def _failed(self, color: str, error: BaseException) -> float | None:
        """Record a failure; how long to wait before retrying, or None when retrying cannot help."""
        self._observer.helix_error(
            self.user_id, error.status if isinstance(error, twitchio.HTTPException) else None
        )
        reason = describe_error(error) if not isinstance(error, TimeoutError) else "no answer from Twitch"
        await self._save(self._store.record_error(self.user_id, reason))
        if not is_transient(error):
            logger.warning("%s: could not change colour to %s: %s", self.state.login, color, reason)
            return None
        self._failures += 1
        # A 429 from id.twitch.tv (the refresh inside this request) says nothing of the Helix bucket.
        if isinstance(error, twitchio.HTTPException) and error.status == 429 and not from_oauth(error):
            wait = self._rate_limits.wait_before_retry(self.user_id, now=self._clock())
            logger.warning(
                "%s: rate limited by Twitch; retrying the newest colour in %.1f s", self.state.login, wait
            )
        else:
            wait = self._retry.delay(self._failures, self._rng)
            logger.warning("%s: %s; retrying the newest colour in %.1f s", self.state.login, reason, wait)
        return wait

    async def _save(self, write: Awaitable[UserState]) -> None:
        try:
            self.state = await write
        except StoreError as error:
            logger.error("%s: could not save colour state: %s", self.state.login, error)

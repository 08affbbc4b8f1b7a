"""Twitch's rate-limit reset times, read off Helix responses as they pass through aiohttp.

twitchio raises ``HTTPException`` for a 429 without the response headers, so the one header that
says when to retry (``Ratelimit-Reset``, unix seconds) is caught by an aiohttp trace on the
session the bots share instead.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import aiohttp

DEFAULT_WAIT = 60.0
"""Without the header: Twitch's bucket is full again within a minute."""


class RateLimits:
    """The latest ``Ratelimit-Reset`` per user, from answers to that user's colour requests."""

    def __init__(self) -> None:
        self._reset_at: dict[str, float] = {}

    def trace_config(self) -> aiohttp.TraceConfig:
        """Attach to an ``aiohttp.ClientSession(trace_configs=[...])`` the bots share."""
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._on_request_end)
        return trace

    async def _on_request_end(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.response.status != 429 or not params.url.path.endswith("/chat/color"):
            return
        user_id = params.url.query.get("user_id")
        reset = params.response.headers.get("Ratelimit-Reset")
        if user_id and reset:
            try:
                self._reset_at[user_id] = float(reset)
            except ValueError:
                return

    def wait_before_retry(self, user_id: str, *, now: float | None = None) -> float:
        """Seconds until the user's bucket has room again (a little after Twitch's reset time)."""
        reset_at = self._reset_at.pop(user_id, None)
        if reset_at is None:
            return DEFAULT_WAIT
        return max(0.0, reset_at - (time.time() if now is None else now)) + 0.25

"""``colorchanger-runner status``: each user's health from the database, merged with a running runner's
``/healthz`` when one answers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from .accounts import Account
from .health import DEFAULT_HOST

QUERY_TIMEOUT = 2.0
"""Seconds to wait for a runner's /healthz before saying nobody answers."""


@dataclass(frozen=True, slots=True)
class Live:
    """What a runner's /healthz said, or why there is nothing to say."""

    port: int | None
    report: dict[str, Any] | None = None
    problem: str = ""

    def user(self, user_id: str) -> dict[str, Any] | None:
        if self.report is None:
            return None
        users = self.report.get("users", [])
        return next((u for u in users if isinstance(u, dict) and u.get("user_id") == user_id), None)


async def query_health(port: int | None, host: str = DEFAULT_HOST, timeout: float = QUERY_TIMEOUT) -> Live:  # noqa: ASYNC109
    """Ask the runner's health endpoint; a Live with the problem in words when nothing useful answers."""
    if port is None:
        return Live(None, problem="no health port configured (set health_port or pass --health-port)")
    url = f"http://{host}:{port}/healthz"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as response,
        ):
            if response.status not in (200, 503):
                return Live(
                    port, problem=f"port {port} answered {response.status}: not a colorchanger runner"
                )
            report = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, OSError):
        return Live(port, problem=f"no runner answering on port {port}")
    except ValueError:
        return Live(port, problem=f"port {port} answered, but not like a colorchanger runner")
    if not isinstance(report, dict) or not isinstance(report.get("users"), list):
        return Live(port, problem=f"port {port} answered, but not like a colorchanger runner")
    return Live(port, report)


def ago(when: float | None, now: float) -> str:
    """'-' or a short age: 12s, 5m, 3h, 2d (ago)."""
    if when is None:
        return "-"
    seconds = max(0, int(now - when))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def db_status(account: Account) -> str:
    """What the database says: ok (the runner should run it), disabled, or needs-login."""
    if account.tokens is None or account.tokens.status != "ok":
        return "needs-login"
    return "ok" if account.enabled else "disabled"


def live_state(account: Account, live: Live) -> str:
    entry = live.user(account.user_id)
    if live.report is None:
        return "?"
    if entry is None:
        return "-"
    state = str(entry.get("state", "?"))
    return f"{state} ({entry['detail']})" if entry.get("detail") and state != "running" else state


def live_channels(account: Account, live: Live) -> str:
    entry = live.user(account.user_id)
    if entry is not None and entry.get("connected"):
        return ", ".join(f"#{name}" for name in entry.get("subscribed", [])) or "none"
    return ", ".join(f"#{channel.login}" for channel in account.live_channels) or "none"


def render(accounts: Sequence[Account], live: Live, now: float | None = None) -> list[str]:
    """The status table and the runner line under it."""
    now = time.time() if now is None else now
    header = (
        "LOGIN",
        "STATUS",
        "LIVE",
        "READING" if live.report is not None else "CHANNELS",
        "LAST COLOUR",
        "LAST CHANGE",
        "CHANGES",
        "ERRORS",
        "LAST ERROR",
    )
    table = [header]
    for account in accounts:
        state = account.state
        last_error = "-"
        if state.last_error:
            last_error = f"{state.last_error} ({ago(state.last_error_at, now)})"
        table.append(
            (
                account.login,
                db_status(account),
                live_state(account, live),
                live_channels(account, live),
                state.last_color or "-",
                ago(state.last_changed_at, now),
                str(state.changes),
                str(state.errors),
                last_error,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.append("")
    lines.append(runner_line(live))
    return lines


def runner_line(live: Live) -> str:
    if live.report is None:
        return f"live state: {live.problem}"
    users = [u for u in live.report["users"] if isinstance(u, dict) and u.get("expected")]
    down = [str(u.get("login")) for u in users if u.get("state") != "running"]
    if live.report.get("healthy"):
        return f"runner on port {live.port}: healthy, {len(users)} of {len(users)} users connected"
    return (
        f"runner on port {live.port}: UNHEALTHY, {len(users) - len(down)} of {len(users)} users "
        f"connected; not connected: {', '.join(down)}"
    )

"""The runner's HTTP endpoints for operators: ``GET /healthz`` and ``GET /metrics``.

Bound to 127.0.0.1 unless told otherwise. ``/healthz`` answers 200 only when every enabled user's
bot is connected and subscribed (supervisor state ``running``), else 503; its JSON body has one
entry per user and never a token or secret. ``/metrics`` is the Prometheus text format of the
runner's own registry.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from colorchanger_ext.store import StoreError

from .accounts import Account, Accounts
from .metrics import Metrics
from .supervisor import Supervisor

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"


class HealthPortError(Exception):
    """The health endpoint cannot listen (port taken, address not local): said before any bot starts."""


def user_health(account: Account, supervisor: Supervisor, redact: Callable[[str], str]) -> dict[str, Any]:
    """One user's entry: what the database says they should be doing and what their bot does."""
    status = supervisor.status.get(account.user_id)
    bot = supervisor.bots.get(account.user_id)
    expected = account.enabled  # disabled users are listed, but do not count
    if not account.enabled:
        state, detail = "disabled", ""
    elif account.tokens is not None and account.tokens.status != "ok":
        state, detail = "needs-login", account.tokens.status_reason or ""
    elif status is None:
        state, detail = "starting", "not started yet"
    else:
        state, detail = status.state, status.detail
    running = state == "running"
    return {
        "login": account.login,
        "user_id": account.user_id,
        "state": state,
        "detail": redact(detail),
        "since": status.since if status is not None else None,
        "expected": expected,
        "connected": running,
        "channels": [channel.login for channel in account.live_channels],
        "subscribed": sorted(bot.live_channels.values()) if running and bot is not None else [],
    }


def health_report(
    accounts: list[Account], supervisor: Supervisor, redact: Callable[[str], str] = str
) -> dict[str, Any]:
    """The ``/healthz`` body: healthy when every enabled user is running; needs-login is unhealthy."""
    users = [user_health(account, supervisor, redact) for account in accounts if account.tokens is not None]
    healthy = all(user["state"] == "running" for user in users if user["expected"])
    return {"healthy": healthy, "users": users}


def make_app(
    accounts: Accounts,
    supervisor: Supervisor,
    registry: CollectorRegistry,
    redact: Callable[[str], str] = str,
) -> web.Application:
    """The aiohttp application: nothing but the two GET routes."""

    async def healthz(request: web.Request) -> web.Response:
        try:
            listed = await accounts.list()
        except StoreError as error:  # locked or broken: unhealthy, said plainly, no traceback
            return web.json_response({"healthy": False, "error": redact(str(error)), "users": []}, status=503)
        report = health_report(listed, supervisor, redact)
        return web.json_response(
            report, status=200 if report["healthy"] else 503, dumps=lambda d: json.dumps(d, indent=1)
        )

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` on host:port (0: any free port) while the block runs; yields the bound port.

    A port in use raises HealthPortError before anything else has started.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            raise HealthPortError(
                f"cannot serve health checks on {host}:{port}: {error.strerror or error}"
            ) from None
        bound = int(runner.addresses[0][1]) if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        logger.info("health and metrics on http://%s:%d/healthz and /metrics", shown, bound)
        yield bound
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def operations(
    accounts: Accounts,
    supervisor: Supervisor,
    metrics: Metrics,
    *,
    port: int | None,
    host: str = DEFAULT_HOST,
    redact: Callable[[str], str] = str,
) -> AsyncIterator[int | None]:
    """What ``run`` adds for operators: metrics follow the supervisor, and /healthz and /metrics are
    served when a port is given (yields the bound port, or None)."""
    metrics.watch(lambda: supervisor.status)
    if port is None:
        yield None
        return
    async with serving(make_app(accounts, supervisor, metrics.registry, redact), host, port) as bound:
        yield bound

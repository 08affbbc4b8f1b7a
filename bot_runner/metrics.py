"""The runner's Prometheus metrics, on a registry the runner creates (never the global default one).

``Metrics`` is the component's ``ChangeObserver`` (messages, changes, Helix errors, the time from a
message to its colour) and the supervisor's status listener (bot restarts by reason class, bots
by state). Labels are bounded: per-user detail is in ``/healthz``, not in label values, so a
thousand users do not make a thousand series per metric.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from .supervisor import UserStatus

__all__ = ["STATES", "Metrics", "restart_reason"]

STATES = ("starting", "running", "restarting", "needs-login", "stopped")
"""Every supervisor state, so each ``colorchanger_bots`` series exists from the first scrape."""

MESSAGE_TO_COLOR_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds: a healthy change lands well under a second; retries after a 429 or an outage take longer."""


def restart_reason(detail: str) -> str:
    """A bounded label for why a bot restarted, from the supervisor's plain-words reason."""
    text = detail.lower()
    if "connection to twitch closed" in text:
        return "connection_closed"
    if "no message from twitch" in text:
        return "silence"
    if text.startswith("twitch answered 429"):
        return "rate_limited"
    if text.startswith("twitch answered 5"):
        return "twitch_5xx"
    if text.startswith("twitch answered"):
        return "twitch_4xx"
    if text == "stopped":
        return "stopped"
    return "error"


class Metrics:
    """Counters and a histogram on ``registry``, plus bots-by-state read at scrape time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.own_messages = Counter(
            "colorchanger_own_messages",
            "Chat messages the accounts sent themselves, each counted once.",
            registry=registry,
        )
        self.color_changes = Counter(
            "colorchanger_color_changes",
            "Colour changes Twitch accepted.",
            registry=registry,
        )
        self.helix_errors = Counter(
            "colorchanger_helix_errors",
            "Failed colour requests, by Twitch's HTTP status ('none': timeout or network error).",
            ["status"],
            registry=registry,
        )
        self.bot_restarts = Counter(
            "colorchanger_bot_restarts",
            "Bots restarted (reconnects), by reason class.",
            ["reason"],
            registry=registry,
        )
        self.message_to_color = Histogram(
            "colorchanger_message_to_color_seconds",
            "Seconds from receiving an own message to Twitch answering its colour change.",
            buckets=MESSAGE_TO_COLOR_BUCKETS,
            registry=registry,
        )
        self._statuses: Callable[[], Mapping[str, UserStatus]] = dict
        registry.register(_BotStates(lambda: self._statuses()))

    def watch(self, statuses: Callable[[], Mapping[str, UserStatus]]) -> None:
        """Where ``colorchanger_bots`` reads the supervisor's per-user status from."""
        self._statuses = statuses

    # ChangeObserver

    def message_seen(self, user_id: str) -> None:
        self.own_messages.inc()

    def color_changed(self, user_id: str, seconds: float) -> None:
        self.color_changes.inc()
        self.message_to_color.observe(max(0.0, seconds))

    def helix_error(self, user_id: str, status: int | None) -> None:
        self.helix_errors.labels(status=str(status) if status is not None else "none").inc()

    # the supervisor's status listener

    def status_changed(self, user_id: str, previous: UserStatus | None, current: UserStatus) -> None:
        """Count restarts: after a failure (``restarting``), or a running bot started afresh (re-login)."""
        if current.state == "restarting":
            self.bot_restarts.labels(reason=restart_reason(current.detail)).inc()
        elif current.state == "starting" and previous is not None and previous.state == "running":
            self.bot_restarts.labels(reason="reconfigured").inc()


class _BotStates:
    """``colorchanger_bots{state}``: how many accounts the supervisor has in each state right now."""

    def __init__(self, statuses: Callable[[], Mapping[str, UserStatus]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[Metric]:
        tally = Tally(status.state for status in self._statuses().values())
        family = GaugeMetricFamily(
            "colorchanger_bots", "Accounts by supervisor state (since the runner started).", labels=["state"]
        )
        for state in (*STATES, *sorted(set(tally) - set(STATES))):
            family.add_metric([state], tally.get(state, 0))
        yield family

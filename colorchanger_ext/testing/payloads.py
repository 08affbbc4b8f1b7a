"""Builders of Twitch-shaped JSON, so every body and frame the fake sends has exactly Twitch's keys."""

from __future__ import annotations

import secrets
import string
import time
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .models import FakeSubscription, FakeUser

JSON = dict[str, Any]

#: The 15 named colours every account may set, with the hex value Twitch then reports.
NAMED_COLORS: Final[Mapping[str, str]] = {
    "blue": "#0000FF",
    "blue_violet": "#8A2BE2",
    "cadet_blue": "#5F9EA0",
    "chocolate": "#D2691E",
    "coral": "#FF7F50",
    "dodger_blue": "#1E90FF",
    "firebrick": "#B22222",
    "golden_rod": "#DAA520",
    "green": "#008000",
    "hot_pink": "#FF69B4",
    "orange_red": "#FF4500",
    "red": "#FF0000",
    "sea_green": "#2E8B57",
    "spring_green": "#00FF7F",
    "yellow_green": "#9ACD32",
}

_TOKEN_ALPHABET: Final = string.ascii_lowercase + string.digits


def rfc3339(ns: int | None = None) -> str:
    """A UTC timestamp with nanoseconds, as EventSub writes them (clients must cope with 9 digits)."""
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def new_id() -> str:
    """An opaque id (Twitch uses UUIDs for message, subscription and session ids)."""
    return str(uuid.uuid4())


def new_token() -> str:
    """An opaque 30-character token like Twitch's, safe to put in a URL unescaped."""
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(30))


def error_body(status: int, message: str) -> JSON:
    """Helix's error body: the HTTP reason phrase, the status and a message."""
    return {"error": HTTPStatus(status).phrase, "status": status, "message": message}


def user_json(user: FakeUser) -> JSON:
    """A GET /helix/users entry with every key twitchio's ``User`` model indexes."""
    return {
        "id": user.id,
        "login": user.login,
        "display_name": user.display_name,
        "type": "",
        "broadcaster_type": "",
        "description": "",
        "profile_image_url": "",
        "offline_image_url": "",
        "view_count": 0,
        "created_at": "2016-12-14T20:32:28Z",
    }


def subscription_json(sub: FakeSubscription, *, connected_at: str | None = None) -> JSON:
    """A subscription as Helix lists it (with ``connected_at``) or as a frame embeds it (without)."""
    transport: JSON = {"method": "websocket", "session_id": sub.session_id}
    if connected_at is not None:
        transport["connected_at"] = connected_at
    return {
        "id": sub.id,
        "status": sub.status,
        "type": sub.type,
        "version": sub.version,
        "condition": dict(sub.condition),
        "created_at": sub.created_at,
        "transport": transport,
        "cost": sub.cost,
    }


def frame(
    message_type: str, payload: JSON, *, sub: FakeSubscription | None = None, message_id: str = ""
) -> JSON:
    """An EventSub WebSocket message: metadata (with the subscription type if any) and payload."""
    metadata: JSON = {
        "message_id": message_id or new_id(),
        "message_type": message_type,
        "message_timestamp": rfc3339(),
    }
    if sub is not None:
        metadata["subscription_type"] = sub.type
        metadata["subscription_version"] = sub.version
    return {"metadata": metadata, "payload": payload}


def session_json(
    session_id: str, status: str, connected_at: str, keepalive: int | None, reconnect_url: str | None
) -> JSON:
    """The ``payload.session`` object of welcome and reconnect frames."""
    return {
        "session": {
            "id": session_id,
            "status": status,
            "connected_at": connected_at,
            "keepalive_timeout_seconds": keepalive,
            "reconnect_url": reconnect_url,
            "recovery_url": None,
        }
    }


def chat_message_event(
    *,
    broadcaster: FakeUser,
    chatter: FakeUser,
    text: str,
    message_id: str,
    color: str,
    source: FakeUser | None = None,
    source_message_id: str | None = None,
    shared: bool = False,
) -> JSON:
    """A ``channel.chat.message`` v1 event with every documented key (null if unused): twitchio reads all."""
    return {
        "broadcaster_user_id": broadcaster.id,
        "broadcaster_user_login": broadcaster.login,
        "broadcaster_user_name": broadcaster.display_name,
        "chatter_user_id": chatter.id,
        "chatter_user_login": chatter.login,
        "chatter_user_name": chatter.display_name,
        "message_id": message_id,
        "message": {
            "text": text,
            "fragments": [{"type": "text", "text": text, "cheermote": None, "emote": None, "mention": None}],
        },
        "color": color,
        "badges": [],
        "message_type": "text",
        "cheer": None,
        "reply": None,
        "channel_points_custom_reward_id": None,
        "channel_points_animation_id": None,
        "source_broadcaster_user_id": source.id if source else None,
        "source_broadcaster_user_login": source.login if source else None,
        "source_broadcaster_user_name": source.display_name if source else None,
        "source_message_id": source_message_id,
        "source_badges": [] if source else None,
        "is_source_only": False if shared else None,
    }

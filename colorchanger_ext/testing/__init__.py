"""An in-process fake of Twitch (OAuth, Helix, EventSub WebSocket) that real twitchio 3 can be pointed at.

Usage::

    async with FakeTwitch() as fake:
        user = fake.add_user("alice")
        with fake.patch_twitchio():
            ...  # run a twitchio client with user.access_token; drive chat with fake.send_chat_message
"""

from .eventsub import FakeSession
from .models import ColorPut, DeviceCode, FakeSubscription, FakeUser, RecordedRequest
from .payloads import NAMED_COLORS
from .server import FakeTwitch

__all__ = [
    "NAMED_COLORS",
    "ColorPut",
    "DeviceCode",
    "FakeSession",
    "FakeSubscription",
    "FakeTwitch",
    "FakeUser",
    "RecordedRequest",
]

"""The least a Python colour changer can do: a reference client, NOT the product.

    python benchmarks/floor_client.py USERS.json

One process, plain aiohttp (no twitchio, no database, no logging): per user one EventSub
WebSocket (10 s keepalives, as the runner asks), one chat subscription, and for every own chat
message one ``PUT /helix/chat/color`` on a shared session. The benchmark measures it exactly
like the runner, so its figures are the floor for Python + aiohttp on the machine: what
twitchio, the component and the runner add is the difference. Stops on SIGTERM, closing its
sockets. ``USERS.json``: ``{"client_id", "helix", "eventsub", "users": [{"id", "token"}]}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from typing import Any

import aiohttp

COLORS = (
    "blue",
    "blue_violet",
    "cadet_blue",
    "chocolate",
    "coral",
    "dodger_blue",
    "firebrick",
    "golden_rod",
    "green",
    "hot_pink",
    "orange_red",
    "red",
    "sea_green",
    "spring_green",
    "yellow_green",
)


async def serve_user(
    sockets: aiohttp.ClientSession,
    session: aiohttp.ClientSession,
    config: dict[str, Any],
    user: dict[str, str],
) -> None:
    headers = {"Authorization": f"Bearer {user['token']}", "Client-Id": config["client_id"]}
    color_url = config["helix"] + "chat/color"
    async with sockets.ws_connect(config["eventsub"] + "?keepalive_timeout_seconds=10") as ws:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            kind = data["metadata"]["message_type"]
            if kind == "notification":
                if data["payload"]["event"]["chatter_user_id"] == user["id"]:
                    params = {"user_id": user["id"], "color": random.choice(COLORS)}
                    async with session.put(color_url, params=params, headers=headers) as response:
                        await response.read()
            elif kind == "session_welcome":
                body = {
                    "type": "channel.chat.message",
                    "version": "1",
                    "condition": {"broadcaster_user_id": user["id"], "user_id": user["id"]},
                    "transport": {"method": "websocket", "session_id": data["payload"]["session"]["id"]},
                }
                url = config["helix"] + "eventsub/subscriptions"
                async with session.post(url, json=body, headers=headers) as response:
                    if response.status != 202:
                        raise RuntimeError(f"subscribing failed: {response.status}")


async def main(config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # Sockets on their own unlimited pool (each holds a connection for good), Helix on a shared one.
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as sockets,
        aiohttp.ClientSession() as session,
    ):
        tasks = [asyncio.create_task(serve_user(sockets, session, config, user)) for user in config["users"]]
        waiter: asyncio.Task[Any] = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise SystemExit(f"floor client failed: {task.exception()!r}")


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        users = json.load(file)
    asyncio.run(main(users))

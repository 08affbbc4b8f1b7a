"""``restore_colour_on_exit``: remember each user's own colour, and put it back when the runner is done.

The colour a user had before the runner first changed it is read once (``GET /helix/chat/color``)
when their bot starts, and saved in the ``original_colors`` table before any change is made, so a
crash or a kill -9 does not lose it: the next start finds it there and keeps it instead of reading
the colour the runner itself had set. It is put back when the user is removed or disabled while
the runner runs, and when the runner stops for good (SIGTERM, SIGINT); once Twitch accepted it, the
row is deleted, so the next start reads the user's colour afresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from colorchanger_ext import colors
from colorchanger_ext.changer import describe_error, is_hex_refusal

if TYPE_CHECKING:
    from twitchio.ext import commands

    from colorchanger_ext.store import Store

logger = logging.getLogger(__name__)

READ_TIMEOUT = 5.0
"""Seconds to wait for Twitch's answer to the colour read at start."""

_NAME_OF = {hex_value.upper(): name for name, hex_value in colors.NAMED_COLORS.items()}


async def load_original(store: Store, user_id: str) -> str | None:
    """The saved colour ("" when the user had none set), or None when nothing is saved."""
    async with store.connection(f"reading the original colour of user {user_id}") as conn:
        rows = list(
            await conn.execute_fetchall("SELECT color FROM original_colors WHERE user_id = ?", (user_id,))
        )
    return str(rows[0][0]) if rows else None


async def save_original(store: Store, user_id: str, color: str) -> str:
    """Save the colour unless one is saved already (the first one wins); returns the saved colour."""
    async with store.connection(f"saving the original colour of user {user_id}") as conn:
        await conn.execute_fetchall(
            "INSERT INTO original_colors (user_id, color, saved_at) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO NOTHING",
            (user_id, color, time.time()),
        )
        rows = list(
            await conn.execute_fetchall("SELECT color FROM original_colors WHERE user_id = ?", (user_id,))
        )
    return str(rows[0][0]) if rows else color


async def forget_original(store: Store, user_id: str) -> None:
    """Drop the saved colour (it was put back); a user removed meanwhile is not an error."""
    async with store.connection(f"forgetting the original colour of user {user_id}") as conn:
        await conn.execute_fetchall("DELETE FROM original_colors WHERE user_id = ?", (user_id,))


def color_to_set(original: str) -> str | None:
    """What to PUT to get ``original`` (Twitch reports "#RRGGBB"): a named colour's name if it is
    one (every account may set those), the hex otherwise; None when the user had no colour set."""
    if not original:
        return None
    upper = original.upper()
    return _NAME_OF.get(upper, upper)


async def remember(bot: commands.Bot, store: Store, user_id: str, login: str) -> str | None:
    """The user's colour from before the runner changed it: saved, else read from Twitch and saved.

    None when it could not be read (logged); the next start of the bot tries again.
    """
    saved = await load_original(store, user_id)
    if saved is not None:
        return saved
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            found = await bot.fetch_chatters_color([user_id], token_for=user_id)
    except Exception as error:
        reason = "no answer from Twitch" if isinstance(error, TimeoutError) else describe_error(error)
        logger.warning("%s: could not read the current colour (%s); it will not be put back", login, reason)
        return None
    colour = found[0].colour if found else None
    original = f"#{colour.hex_clean.upper()}" if colour is not None else ""
    original = await save_original(store, user_id, original)
    logger.info(
        "%s: colour before changes is %s; it is put back on exit",
        login,
        color_to_set(original) or "Twitch's default (none set)",
    )
    return original


async def put_back(bot: commands.Bot, store: Store, user_id: str, login: str, original: str) -> bool:
    """PUT the original colour back (the nearest named colour if Twitch refuses a hex); True when done."""
    target = color_to_set(original)
    if target is None:
        logger.info("%s: had no colour of their own set; leaving the current one", login)
        await forget_original(store, user_id)
        return True
    user = bot.create_partialuser(user_id)
    try:
        try:
            await user.update_chatter_color(target)
        except Exception as error:
            if not (colors.is_hex(target) and is_hex_refusal(error)):
                raise
            target = colors.nearest_named(target)
            await user.update_chatter_color(target)
    except Exception as error:
        reason = "no answer from Twitch" if isinstance(error, TimeoutError) else describe_error(error)
        logger.warning("%s: could not put the colour back to %s: %s", login, target, reason)
        return False
    await forget_original(store, user_id)
    logger.info("%s: colour put back to %s", login, target)
    return True

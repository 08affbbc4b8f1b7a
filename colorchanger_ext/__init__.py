"""Change a Twitch account's chat colour after every message it sends (a twitchio 3 component)."""

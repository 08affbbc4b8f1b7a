-- 0002: the runner's accounts: each user's Twitch tokens, whether the runner runs their bot, and
-- the channels their bot joins. (users.enabled is the chat-level switch, `cce`/`ccd`: a bot must
-- keep running while changes are off, or it could never hear `cce`.)
--
-- Never edit this file once shipped; later changes are new files. Tokens are Fernet ciphertext
-- (bot_runner.secret_key), never plain text: the key lives outside the database. Both halves of
-- a token pair are always written by one statement, since Twitch refresh tokens are single-use.
-- The runner wraps this file in one transaction with the version bump.

CREATE TABLE tokens (
    user_id         TEXT    PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    access_token    BLOB    NOT NULL,                           -- Fernet ciphertext
    refresh_token   BLOB    NOT NULL,                           -- Fernet ciphertext
    scopes          TEXT    NOT NULL,                           -- space separated, sorted
    expires_at      REAL,                                       -- unix time the access token expires; NULL = unknown
    status          TEXT    NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'needs-login')),
    status_reason   TEXT,                                       -- short, log-safe reason for needs-login
    bot_enabled     INTEGER NOT NULL DEFAULT 1 CHECK (bot_enabled IN (0, 1)),  -- `users enable/disable`
    updated_at      REAL    NOT NULL                            -- unix time of the last write to the row
);

CREATE TABLE channels (
    user_id         TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    channel_id      TEXT    NOT NULL,                           -- Twitch user id of the channel's broadcaster
    channel_login   TEXT    NOT NULL,                           -- last known login, for display and lookup
    position        INTEGER NOT NULL,                           -- order the channels were added in
    banned_at       REAL,                                       -- unix time Twitch revoked the chat subscription
                                                                -- (chat_user_banned); skipped until re-added
    PRIMARY KEY (user_id, channel_id)
);

PRAGMA user_version = 2;

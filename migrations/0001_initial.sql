-- 0001: per-user colour state, one row per Twitch account.
--
-- Later schema changes are NEW files (0002_..., 0003_...); never edit this one, databases in the
-- wild already ran it. `mode` has no CHECK on purpose: new modes must not need a table rebuild,
-- so Python validates it. The runner wraps this file in one transaction with the version bump.

CREATE TABLE users (
    user_id         TEXT    PRIMARY KEY,                        -- Twitch user id (stable across renames)
    login           TEXT    NOT NULL,                           -- last seen login name, for display
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    mode            TEXT    NOT NULL DEFAULT 'preset',          -- how the next colour is picked
    hex_policy      TEXT    NOT NULL DEFAULT 'auto'
                            CHECK (hex_policy IN ('auto', 'always', 'never')),
    hex_refused_at  REAL,                                       -- unix time `auto` saw Twitch refuse hex; NULL = not known refused
    recent_colors   TEXT    NOT NULL DEFAULT '[]',              -- JSON list, oldest -> newest
    changes         INTEGER NOT NULL DEFAULT 0,                 -- successful colour changes
    errors          INTEGER NOT NULL DEFAULT 0,                 -- failed colour changes
    last_color      TEXT,
    last_changed_at REAL,                                       -- unix time
    last_error      TEXT,                                       -- short, log-safe reason
    last_error_at   REAL,                                       -- unix time
    created_at      REAL    NOT NULL,                           -- unix time
    updated_at      REAL    NOT NULL                            -- unix time of the last write to the row
);

PRAGMA user_version = 1;

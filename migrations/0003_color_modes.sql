-- 0003: colour modes. rainbow steps the hue round the wheel and continues where it stopped, so
-- the current hue is stored; palette cycles or shuffles the user's own list of colours, so the
-- list and where it stands are stored; readability says which chat theme random colours must read
-- well on.
--
-- Never edit this file once shipped; later changes are new files. Like `mode`, the new words
-- (readability, palette_order) and the step's range have no CHECK on purpose, so a new choice needs
-- no table rebuild: Python validates them (colorchanger_ext.colors, .settings). The defaults are
-- what an existing user gets; new users get the configured defaults. The runner wraps this file
-- in one transaction with the version bump.

ALTER TABLE users ADD COLUMN readability TEXT NOT NULL DEFAULT 'dark';      -- dark | light | both | off
ALTER TABLE users ADD COLUMN rainbow_step INTEGER NOT NULL DEFAULT 30;      -- degrees between rainbow colours, 1..359
ALTER TABLE users ADD COLUMN rainbow_hue INTEGER;                           -- hue (0..359) of the last rainbow colour applied; NULL = not begun
ALTER TABLE users ADD COLUMN palette TEXT NOT NULL DEFAULT '[]';            -- JSON list of colours (named or #RRGGBB), in the user's order
ALTER TABLE users ADD COLUMN palette_order TEXT NOT NULL DEFAULT 'cycle';   -- cycle | shuffle
ALTER TABLE users ADD COLUMN palette_position INTEGER NOT NULL DEFAULT 0;   -- cycle: index of the next colour
ALTER TABLE users ADD COLUMN palette_remaining TEXT NOT NULL DEFAULT '[]';  -- shuffle: JSON list of the indices this round has not used

PRAGMA user_version = 3;

-- 0004: restore_colour_on_exit. The colour each user had before the runner first changed it, read
-- once from Twitch (GET /helix/chat/color) when their bot starts and kept until the runner has put
-- it back, so a crash between the two does not lose it. A row exists only while the runner owes
-- the user their colour; it is deleted once Twitch accepted the colour put back.
--
-- Never edit this file once shipped; later changes are new files. The runner wraps this file in
-- one transaction with the version bump.

CREATE TABLE original_colors (
    user_id         TEXT    PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    color           TEXT    NOT NULL,                           -- '#RRGGBB' as Twitch reported it; '' = none set
    saved_at        REAL    NOT NULL                            -- unix time it was read
);

PRAGMA user_version = 4;

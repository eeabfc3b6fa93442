ALTER TABLE {tenant}.notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
CREATE INDEX notes_pinned_idx ON {tenant}.notes (pinned) WHERE pinned;
-- down
ALTER TABLE {tenant}.notes DROP COLUMN pinned;

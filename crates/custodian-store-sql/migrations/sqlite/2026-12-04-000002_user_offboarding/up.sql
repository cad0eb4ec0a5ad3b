-- A tenant admin can disable a user: every token of theirs is refused from then on.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;

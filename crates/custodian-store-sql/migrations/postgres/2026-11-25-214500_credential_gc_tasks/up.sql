-- What `custodian gc` has to do for a record: prune_below NULL removes every version (a
-- deleted record; every row written before this migration was one), a number removes the
-- versions older than it (a rotation whose prune failed).
ALTER TABLE credential_gc ADD COLUMN prune_below BIGINT;

-- `custodian gc` works oldest first.
CREATE INDEX credential_gc_by_age ON credential_gc (recorded_at, team_id, record_id, kind);

DROP INDEX credential_gc_by_age;

-- Without the column every row means "remove every version": drop the prune tasks first so
-- none of them turns into a deletion (an old version left behind is harmless).
DELETE FROM credential_gc WHERE prune_below IS NOT NULL;
ALTER TABLE credential_gc DROP COLUMN prune_below;

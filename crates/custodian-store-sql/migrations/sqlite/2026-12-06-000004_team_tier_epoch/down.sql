DROP TRIGGER teams_delete;
DROP TRIGGER teams_tier_update;

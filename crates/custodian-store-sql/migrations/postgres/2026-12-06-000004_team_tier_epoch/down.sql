DROP TRIGGER teams_delete ON teams;
DROP TRIGGER teams_tier_update ON teams;

-- Servers keep each team's tier in memory as well as authenticated subjects: the tier
-- decides the team's limits, and reading it cost a round trip per create. A change of tier
-- or a team removed moves the identity epoch too, so that the other servers forget what
-- they remember, as they do for a revoked token.
CREATE TRIGGER teams_tier_update AFTER UPDATE OF tier ON teams
    FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier) EXECUTE FUNCTION identity_changed();
CREATE TRIGGER teams_delete AFTER DELETE ON teams
    FOR EACH STATEMENT EXECUTE FUNCTION identity_changed();

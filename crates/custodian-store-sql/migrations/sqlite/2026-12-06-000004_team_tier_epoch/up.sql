-- Servers keep each team's tier in memory as well as authenticated subjects: the tier
-- decides the team's limits, and reading it cost a read per create. A change of tier or a
-- team removed moves the identity epoch too, so that the other servers forget what they
-- remember, as they do for a revoked token.
CREATE TRIGGER teams_tier_update AFTER UPDATE OF tier ON teams
    WHEN OLD.tier IS NOT NEW.tier
BEGIN
    UPDATE identity_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER teams_delete AFTER DELETE ON teams
BEGIN
    UPDATE identity_epoch SET epoch = epoch + 1 WHERE id = 1;
END;

-- A counter that every change to who a token authenticates as moves forward: a token
-- revoked or re-dated, a user changed or removed, a virtual account changed or removed.
-- Every server keeps authenticated subjects in memory and drops them when it sees the
-- counter move, so a change made through one server reaches the others. Recording a
-- token's use (last_used_at) is not such a change.
CREATE TABLE identity_epoch (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO identity_epoch (id, epoch) VALUES (1, 0);

CREATE FUNCTION identity_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE identity_epoch SET epoch = epoch + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_identity_update AFTER UPDATE OF digest, expires_at, revoked_at, user_id, virtual_account_id ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION identity_changed();
CREATE TRIGGER tokens_identity_delete AFTER DELETE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION identity_changed();
CREATE TRIGGER users_identity_update AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION identity_changed();
CREATE TRIGGER virtual_accounts_identity_update AFTER UPDATE OR DELETE ON virtual_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION identity_changed();

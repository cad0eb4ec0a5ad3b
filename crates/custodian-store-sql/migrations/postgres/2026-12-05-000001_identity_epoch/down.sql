DROP TRIGGER virtual_accounts_identity_update ON virtual_accounts;
DROP TRIGGER users_identity_update ON users;
DROP TRIGGER tokens_identity_delete ON tokens;
DROP TRIGGER tokens_identity_update ON tokens;
DROP FUNCTION identity_changed();
DROP TABLE identity_epoch;

DROP TRIGGER virtual_accounts_identity_delete;
DROP TRIGGER virtual_accounts_identity_update;
DROP TRIGGER users_identity_delete;
DROP TRIGGER users_identity_update;
DROP TRIGGER tokens_identity_delete;
DROP TRIGGER tokens_identity_update;
DROP TABLE identity_epoch;

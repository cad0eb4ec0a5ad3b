DROP INDEX storage_secrets_team_name_id_idx;
DROP TRIGGER storage_secrets_counted ON storage_secrets;
DROP FUNCTION storage_secrets_counted();
DROP TABLE team_secret_counts;

DROP TABLE group_secret_reads;
DROP TABLE group_secret_versions;
DROP TABLE group_secrets;
DROP TABLE secret_groups;

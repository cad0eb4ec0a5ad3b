DROP TABLE credential_store_binding;

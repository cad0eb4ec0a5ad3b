//! [`SecretRepository`] on SQL: the `storage_secrets` table.
//!
//! An external secret's field mappings are one JSON document in `field_mappings`:
//! `{"vault_type": "doppler", "mappings": [{"field_name": "…", "reference": "…"}]}`. The
//! vault type is kept with the references because a reference is checked against the type
//! of vault it points into, and is read back the same way.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use custodian_domain::{
    AuditEvent, AuthMethod, CredentialField, Description, FieldMapping, FieldMappings, LimitKind, LinkedLocation, Name,
    SecretId, SecretStorage, SecretType, StorageMode, StorageSecret, SubjectId, TeamId, VaultConnectionId,
    VaultReference, VaultType,
};
use custodian_ports::{ConflictKind, Page, Paged, RepoError, SealedCredential, SecretFilter, SecretRepository};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::convert::{AuditRow, checked, count, db_time, id_text, page_bounds, parse_id, parse_text, utc};
use crate::db::{
    Conn, Database, SqliteConn, check_limit, one_statement, prepared_once, single_statement, transaction, with_conn,
};
use crate::error::{DbError, foreign_key_means, foreign_key_of};
use crate::local_store::{BlobRow, StagedBlob};
use crate::locations::{LinkedRow, linked_location};
use crate::schema::{
    audit_events, credential_blobs, locations, storage_secrets, team_secret_counts, vault_connections,
};

/// How many storage secrets `team` holds (on a connection of either backend): the sum of
/// the rows the database keeps with every insert and delete (`team_secret_counts`, a few
/// rows per team on PostgreSQL so that concurrent creates do not wait for each other), not
/// a count of the team's rows. Evaluates to `Result<i64, diesel::result::Error>`.
macro_rules! held_secrets {
    ($conn:expr, $team:expr) => {
        team_secret_counts::table
            .select(team_secret_counts::storage_secrets)
            .filter(team_secret_counts::team_id.eq($team))
            .load::<i64>($conn)
            .await
            .map(|shards| shards.iter().sum::<i64>())
    };
}
use crate::search::{contains_pattern, lower};

const T: &str = "storage_secrets";

/// A row of `storage_secrets`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = storage_secrets, treat_none_as_default_value = false)]
struct SecretRow {
    id: String,
    team_id: String,
    name: String,
    description: Option<String>,
    secret_type: String,
    auth_method: String,
    storage_mode: String,
    vault_connection_id: Option<String>,
    field_mappings: Option<String>,
    credentials_version: i64,
    credentials_updated_at: NaiveDateTime,
    created_at: NaiveDateTime,
    created_by: String,
    updated_at: NaiveDateTime,
    updated_by: String,
}

/// The columns an update replaces (the storage mode and the vault connection never change).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = storage_secrets, treat_none_as_null = true)]
struct SecretChanges {
    name: String,
    description: Option<String>,
    secret_type: String,
    auth_method: String,
    credentials_version: i64,
    credentials_updated_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    updated_by: String,
}

fn mappings_json(vault_type: VaultType, mappings: &FieldMappings) -> String {
    let items: Vec<serde_json::Value> = mappings
        .iter()
        .map(|m| serde_json::json!({ "field_name": m.field.as_str(), "reference": m.reference.as_str() }))
        .collect();
    serde_json::json!({ "vault_type": vault_type.as_str(), "mappings": items }).to_string()
}

fn parse_mappings(json: &str) -> Result<FieldMappings, DbError> {
    let corrupt = || DbError::corrupt(T, "field_mappings");
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|_| corrupt())?;
    let vault_type: VaultType = doc
        .get("vault_type")
        .and_then(serde_json::Value::as_str)
        .and_then(|v| v.parse().ok())
        .ok_or_else(corrupt)?;
    let items = doc
        .get("mappings")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(corrupt)?;
    let mut mappings = Vec::with_capacity(items.len());
    for item in items {
        let text = |key: &str| item.get(key).and_then(serde_json::Value::as_str).ok_or_else(corrupt);
        let field: CredentialField = text("field_name")?.parse().map_err(|_| corrupt())?;
        let reference = VaultReference::parse(vault_type, text("reference")?).map_err(|_| corrupt())?;
        mappings.push(FieldMapping { field, reference });
    }
    Ok(FieldMappings::from_stored(mappings))
}

impl SecretRow {
    /// The row of `secret`; `vault_type` is the type of its vault connection (external only).
    fn new(secret: &StorageSecret, vault_type: Option<VaultType>) -> Self {
        let (vault_connection_id, field_mappings) = match (&secret.storage, vault_type) {
            (
                SecretStorage::External {
                    vault_connection_id,
                    field_mappings,
                },
                Some(vault_type),
            ) => (
                Some(id_text(vault_connection_id.as_uuid())),
                Some(mappings_json(vault_type, field_mappings)),
            ),
            _ => (None, None),
        };
        Self {
            id: id_text(secret.id.as_uuid()),
            team_id: id_text(secret.team_id.as_uuid()),
            name: secret.name.as_str().to_owned(),
            description: secret.description.as_ref().map(|d| d.as_str().to_owned()),
            secret_type: secret.secret_type.as_str().to_owned(),
            auth_method: secret.auth_method.as_str().to_owned(),
            storage_mode: secret.storage.mode().as_str().to_owned(),
            vault_connection_id,
            field_mappings,
            credentials_version: secret.credentials_version,
            credentials_updated_at: db_time(secret.credentials_updated_at),
            created_at: db_time(secret.created_at),
            created_by: id_text(secret.created_by.as_uuid()),
            updated_at: db_time(secret.updated_at),
            updated_by: id_text(secret.updated_by.as_uuid()),
        }
    }

    fn into_secret(self) -> Result<StorageSecret, DbError> {
        let mode: StorageMode = parse_text(&self.storage_mode, T, "storage_mode")?;
        let storage = match (mode, self.vault_connection_id, self.field_mappings) {
            (StorageMode::Managed, None, None) => SecretStorage::Managed,
            (StorageMode::External, Some(connection), Some(mappings)) => SecretStorage::External {
                vault_connection_id: parse_id::<VaultConnectionId>(&connection, T, "vault_connection_id")?,
                field_mappings: parse_mappings(&mappings)?,
            },
            _ => return Err(DbError::corrupt(T, "storage_mode")),
        };
        Ok(StorageSecret {
            id: parse_id::<SecretId>(&self.id, T, "id")?,
            team_id: parse_id::<TeamId>(&self.team_id, T, "team_id")?,
            name: checked(Name::parse_at("name", self.name), T, "name")?,
            description: self
                .description
                .map(|d| checked(Description::parse_at("description", d), T, "description"))
                .transpose()?,
            secret_type: parse_text::<SecretType>(&self.secret_type, T, "secret_type")?,
            auth_method: parse_text::<AuthMethod>(&self.auth_method, T, "auth_method")?,
            storage,
            credentials_version: self.credentials_version,
            credentials_updated_at: utc(self.credentials_updated_at),
            created_at: utc(self.created_at),
            created_by: parse_id::<SubjectId>(&self.created_by, T, "created_by")?,
            updated_at: utc(self.updated_at),
            updated_by: parse_id::<SubjectId>(&self.updated_by, T, "updated_by")?,
        })
    }
}

fn rows_into_secrets(rows: Vec<SecretRow>) -> Result<Vec<StorageSecret>, DbError> {
    rows.into_iter().map(SecretRow::into_secret).collect()
}

/// [`SecretRepository`] over a [`Database`].
#[derive(Debug, Clone)]
pub struct SqlSecretRepository {
    db: Database,
}

impl SqlSecretRepository {
    /// The storage secrets of `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The transaction of [`SecretRepository::create`], writing `blob` (the secret's
    /// credentials, sealed by the local store) with the row when given.
    async fn insert(
        &self,
        secret: &StorageSecret,
        limit: Option<u32>,
        audit: &AuditEvent,
        blob: Option<BlobRow>,
    ) -> Result<(), RepoError> {
        let team = id_text(secret.team_id.as_uuid());
        let connection = match &secret.storage {
            SecretStorage::External {
                vault_connection_id, ..
            } => Some(id_text(vault_connection_id.as_uuid())),
            SecretStorage::Managed => None,
        };
        if limit.is_none() && connection.is_none() {
            // Nothing to count or look up first: the writes alone, which on PostgreSQL are
            // one statement and so need no `BEGIN` and `COMMIT`.
            let row = SecretRow::new(secret, None);
            let audit = audit.clone();
            return single_statement!(self.db, |conn| {
                conn.insert_created(&row, blob.as_ref(), &audit).await
            });
        }
        let secret = secret.clone();
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            // Counted only against a limit. Without one, nothing is locked: the row's foreign
            // key keeps the team (and refuses a team that does not exist: `NotFound`).
            if limit.is_some() {
                conn.lock_team(&team).await?;
                let held = held_secrets!(conn, &team)?;
                check_limit(held, limit, LimitKind::StorageSecrets)?;
            }
            let vault_type = match &connection {
                None => None,
                Some(connection) => {
                    let stored: Option<String> = vault_connections::table
                        .select(vault_connections::vault_type)
                        .filter(vault_connections::team_id.eq(&team))
                        .filter(vault_connections::id.eq(connection))
                        .get_result(conn)
                        .await
                        .optional()?;
                    let stored = stored.ok_or(RepoError::NotFound)?;
                    Some(parse_text::<VaultType>(&stored, "vault_connections", "vault_type")?)
                }
            };
            let row = SecretRow::new(&secret, vault_type);
            conn.insert_created(&row, blob.as_ref(), &audit).await
        })
    }
}

/// The writes of a create once its checks have passed, in this order: the row (whose
/// foreign key refuses a missing team, `NotFound`), the credentials' blob when given (whose
/// only foreign key is the master key it is sealed under) and the audit event. On SQLite
/// they run inside the caller's transaction; on PostgreSQL they are one statement, which
/// needs none.
trait InsertCreated {
    async fn insert_created(
        &mut self,
        row: &SecretRow,
        blob: Option<&BlobRow>,
        audit: &AuditEvent,
    ) -> Result<(), DbError>;
}

impl InsertCreated for AsyncPgConnection {
    /// As one statement ([`one_statement`]): one round trip, and a transaction of its own
    /// where the caller has none. A refusal of the blob's foreign key is told from the
    /// row's by its table.
    async fn insert_created(
        &mut self,
        row: &SecretRow,
        blob: Option<&BlobRow>,
        audit: &AuditEvent,
    ) -> Result<(), DbError> {
        let mut writes: Vec<Box<dyn QueryFragment<Pg> + Send + '_>> =
            vec![Box::new(diesel::insert_into(storage_secrets::table).values(row))];
        if let Some(blob) = blob {
            writes.push(Box::new(diesel::insert_into(credential_blobs::table).values(blob)));
        }
        writes.push(Box::new(
            diesel::insert_into(audit_events::table).values(AuditRow::from_event(audit)),
        ));
        one_statement(writes)
            .execute(self)
            .await
            .map_err(foreign_key_of("credential_blobs", master_key_removed()))?;
        Ok(())
    }
}

impl InsertCreated for SqliteConn {
    /// In turn, on the writer connection.
    async fn insert_created(
        &mut self,
        row: &SecretRow,
        blob: Option<&BlobRow>,
        audit: &AuditEvent,
    ) -> Result<(), DbError> {
        diesel::insert_into(storage_secrets::table)
            .values(row)
            .execute(self)
            .await?;
        if let Some(blob) = blob {
            diesel::insert_into(credential_blobs::table)
                .values(blob)
                .execute(self)
                .await
                .map_err(foreign_key_means(master_key_removed()))?;
        }
        self.insert_audit(audit).await
    }
}

/// The master key a staged blob is sealed under was removed after it was chosen (its
/// foreign key refused the row): nothing is written, and the client may retry.
fn master_key_removed() -> RepoError {
    RepoError::Unavailable("the master key the credentials were sealed under was removed meanwhile; retry".into())
}

#[async_trait]
impl SecretRepository for SqlSecretRepository {
    async fn create(&self, secret: &StorageSecret, limit: Option<u32>, audit: &AuditEvent) -> Result<(), RepoError> {
        self.insert(secret, limit, audit, None).await
    }

    async fn create_with_credentials(
        &self,
        secret: &StorageSecret,
        limit: Option<u32>,
        audit: &AuditEvent,
        credentials: &SealedCredential,
    ) -> Result<(), RepoError> {
        let staged = credentials
            .sealed::<StagedBlob>()
            .filter(|staged| staged.db.is_same_database(&self.db))
            .ok_or_else(|| {
                RepoError::Internal("the credentials were not sealed by the local store of this database".into())
            })?;
        let created = self.insert(secret, limit, audit, Some(staged.row.clone())).await;
        if let Err(RepoError::Unavailable(_)) = &created {
            // Perhaps the key it was sealed under was removed: the store reads it again.
            staged.sealing.forget();
        }
        created
    }

    async fn get(&self, team: TeamId, id: SecretId) -> Result<StorageSecret, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: SecretRow = storage_secrets::table
                .select(SecretRow::as_select())
                .filter(storage_secrets::team_id.eq(&team))
                .filter(storage_secrets::id.eq(&id))
                .get_result(conn)
                .await?;
            row.into_secret()
        })
    }

    async fn get_with_locations(
        &self,
        team: TeamId,
        id: SecretId,
    ) -> Result<(StorageSecret, Vec<LinkedLocation>), RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            // One row per location using the secret, or one with no location.
            let rows: Vec<(SecretRow, Option<LinkedRow>)> = storage_secrets::table
                .left_join(
                    locations::table.on(locations::team_id
                        .eq(storage_secrets::team_id)
                        .and(locations::secret_id.eq(storage_secrets::id))),
                )
                .select((
                    SecretRow::as_select(),
                    (locations::id, locations::name, locations::location_type).nullable(),
                ))
                .filter(storage_secrets::team_id.eq(&team))
                .filter(storage_secrets::id.eq(&id))
                .order((locations::name.asc(), locations::id.asc()))
                .load(conn)
                .await?;
            let mut rows = rows.into_iter();
            let Some((row, first)) = rows.next() else {
                return Err(RepoError::NotFound.into());
            };
            let linked = first
                .into_iter()
                .chain(rows.filter_map(|(_, location)| location))
                .map(linked_location)
                .collect::<Result<_, _>>()?;
            Ok((row.into_secret()?, linked))
        })
    }

    async fn list(&self, team: TeamId, filter: &SecretFilter, page: Page) -> Result<Paged<StorageSecret>, RepoError> {
        let team = id_text(team.as_uuid());
        let secret_type = filter.secret_type.map(|t| t.as_str().to_owned());
        let pattern = filter.search.as_deref().map(contains_pattern);
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            macro_rules! matching {
                () => {{
                    let mut query = storage_secrets::table
                        .filter(storage_secrets::team_id.eq(&team))
                        .into_boxed();
                    if let Some(t) = &secret_type {
                        query = query.filter(storage_secrets::secret_type.eq(t));
                    }
                    if let Some(p) = &pattern {
                        query = query.filter(lower(storage_secrets::name).like(p).escape('\\'));
                    }
                    query
                }};
            }
            // Unfiltered, the database's own count of the team's rows; filtered, a count of
            // the matching rows.
            let total: i64 = if secret_type.is_none() && pattern.is_none() {
                held_secrets!(conn, &team)?
            } else {
                matching!().count().get_result(conn).await?
            };
            let rows: Vec<SecretRow> = matching!()
                .select(SecretRow::as_select())
                // Names are unique within a team: the order of the unique (team_id, name)
                // index, read without a sort.
                .order(storage_secrets::name.asc())
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            Ok(Paged {
                items: rows_into_secrets(rows)?,
                total: count(total),
            })
        })
    }

    async fn update(&self, secret: &StorageSecret, expected_version: i64, audit: &AuditEvent) -> Result<(), RepoError> {
        let team = id_text(secret.team_id.as_uuid());
        let id = id_text(secret.id.as_uuid());
        let changes = SecretChanges {
            name: secret.name.as_str().to_owned(),
            description: secret.description.as_ref().map(|d| d.as_str().to_owned()),
            secret_type: secret.secret_type.as_str().to_owned(),
            auth_method: secret.auth_method.as_str().to_owned(),
            credentials_version: secret.credentials_version,
            credentials_updated_at: db_time(secret.credentials_updated_at),
            updated_at: db_time(secret.updated_at),
            updated_by: id_text(secret.updated_by.as_uuid()),
        };
        let mappings = match &secret.storage {
            SecretStorage::External { field_mappings, .. } => Some(field_mappings.clone()),
            SecretStorage::Managed => None,
        };
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            let stored: Option<(i64, Option<String>)> = storage_secrets::table
                .left_join(
                    vault_connections::table.on(vault_connections::id
                        .nullable()
                        .eq(storage_secrets::vault_connection_id)),
                )
                .select((
                    storage_secrets::credentials_version,
                    vault_connections::vault_type.nullable(),
                ))
                .filter(storage_secrets::team_id.eq(&team))
                .filter(storage_secrets::id.eq(&id))
                .get_result(conn)
                .await
                .optional()?;
            let (version, vault_type) = stored.ok_or(RepoError::NotFound)?;
            if version != expected_version {
                return Err(RepoError::Conflict(ConflictKind::Stale).into());
            }
            let updated = prepared_once(
                diesel::update(storage_secrets::table)
                    .filter(storage_secrets::team_id.eq(&team))
                    .filter(storage_secrets::id.eq(&id))
                    .filter(storage_secrets::credentials_version.eq(expected_version))
                    .set(&changes),
            )
            .execute(conn)
            .await?;
            // Another writer moved the version between the read and this update.
            if updated == 0 {
                return Err(RepoError::Conflict(ConflictKind::Stale).into());
            }
            if let (Some(mappings), Some(vault_type)) = (&mappings, &vault_type) {
                let vault_type = parse_text::<VaultType>(vault_type, "vault_connections", "vault_type")?;
                diesel::update(storage_secrets::table)
                    .filter(storage_secrets::id.eq(&id))
                    .set(storage_secrets::field_mappings.eq(mappings_json(vault_type, mappings)))
                    .execute(conn)
                    .await?;
            }
            conn.insert_audit(&audit).await?;
            Ok(())
        })
    }

    async fn delete(&self, team: TeamId, id: SecretId, audit: &AuditEvent) -> Result<StorageSecret, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            let row: SecretRow = storage_secrets::table
                .select(SecretRow::as_select())
                .filter(storage_secrets::team_id.eq(&team))
                .filter(storage_secrets::id.eq(&id))
                .get_result(conn)
                .await?;
            let users: i64 = locations::table
                .filter(locations::secret_id.eq(&id))
                .count()
                .get_result(conn)
                .await?;
            if users > 0 {
                return Err(RepoError::Conflict(ConflictKind::SecretInUse).into());
            }
            diesel::delete(storage_secrets::table.filter(storage_secrets::id.eq(&id)))
                .execute(conn)
                .await
                .map_err(foreign_key_means(RepoError::Conflict(ConflictKind::SecretInUse)))?;
            conn.insert_audit(&audit).await?;
            row.into_secret()
        })
    }

    async fn count(&self, team: TeamId) -> Result<u64, RepoError> {
        let team = id_text(team.as_uuid());
        with_conn!(self.db, |conn| { Ok(count(held_secrets!(conn, &team)?)) })
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::db::is_prepared_once;

    /// A create's three inserts (the row, its credentials, its event) are prepared once per
    /// connection, not at every create.
    #[test]
    fn a_creates_inserts_are_prepared_once() {
        let now = DateTime::UNIX_EPOCH.naive_utc();
        let row = SecretRow {
            id: "secret".into(),
            team_id: "team".into(),
            name: "name".into(),
            description: None,
            secret_type: "s3".into(),
            auth_method: "s3_access_key".into(),
            storage_mode: "managed".into(),
            vault_connection_id: None,
            field_mappings: None,
            credentials_version: 1,
            credentials_updated_at: now,
            created_at: now,
            created_by: "user".into(),
            updated_at: now,
            updated_by: "user".into(),
        };
        assert!(is_prepared_once(
            &diesel::insert_into(storage_secrets::table).values(&row)
        ));
        let described = SecretRow {
            description: Some("described".into()),
            ..row
        };
        assert!(is_prepared_once(
            &diesel::insert_into(storage_secrets::table).values(&described)
        ));
        assert!(is_prepared_once(
            &diesel::insert_into(credential_blobs::table).values(&BlobRow::for_tests())
        ));
        let event = AuditRow {
            id: "event".into(),
            occurred_at: now,
            team_id: Some("team".into()),
            actor_id: None,
            actor_kind: None,
            action: "create".into(),
            resource_type: "storage_secret".into(),
            resource_id: None,
            resource_name: None,
            outcome: "success".into(),
            detail: None,
            request_id: None,
            client_ip: None,
            user_agent: None,
        };
        assert!(is_prepared_once(
            &diesel::insert_into(audit_events::table).values(&event)
        ));
        // On PostgreSQL the three are one statement, prepared once as well.
        let blob = BlobRow::for_tests();
        let together = one_statement(vec![
            Box::new(diesel::insert_into(storage_secrets::table).values(&described)),
            Box::new(diesel::insert_into(credential_blobs::table).values(&blob)),
            Box::new(diesel::insert_into(audit_events::table).values(&event)),
        ]);
        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&together, &Pg).expect("walked"));
        let sql = diesel::debug_query::<Pg, _>(&together).to_string();
        assert!(
            sql.starts_with(r#"WITH "w0" AS (INSERT INTO "storage_secrets" ("#),
            "{sql}"
        );
        assert!(sql.contains(r#"), "w1" AS (INSERT INTO "credential_blobs" ("#), "{sql}");
        assert!(sql.contains(r#") INSERT INTO "audit_events" ("#), "{sql}");
        assert!(
            QueryFragment::<Pg>::is_safe_to_cache_prepared(&one_statement(Vec::new()), &Pg).is_err(),
            "no statement without a write"
        );
    }

    /// A secret's update (a rotation, a rename) is prepared once too, though diesel caches
    /// no `UPDATE` by itself: its changeset binds `None` as `NULL`, so its SQL is fixed.
    #[test]
    fn an_update_is_prepared_once() {
        let now = DateTime::UNIX_EPOCH.naive_utc();
        let changes = SecretChanges {
            name: "name".into(),
            description: None,
            secret_type: "s3".into(),
            auth_method: "s3_access_key".into(),
            credentials_version: 2,
            credentials_updated_at: now,
            updated_at: now,
            updated_by: "user".into(),
        };
        let update = diesel::update(storage_secrets::table)
            .filter(storage_secrets::id.eq("secret"))
            .set(&changes);
        assert!(!is_prepared_once(&update), "diesel's own rule for updates");
        assert!(is_prepared_once(&prepared_once(update)));
    }
}

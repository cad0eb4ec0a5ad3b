//! [`VaultConnectionRepository`] on SQL: the `vault_connections` table. The non-secret
//! settings are one JSON object in `settings`, its keys those of the vault type
//! (`{}` for 1Password, `{"project", "config"}` for Doppler, `{"client_id", "project_id",
//! "environment", "secret_path"}` for Infisical); the secret setting is in the credential
//! store, never here.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use custodian_domain::{
    AuditEvent, Description, LimitKind, Name, SubjectId, TeamId, VaultConnection, VaultConnectionId, VaultSettings,
    VaultType,
};
use custodian_ports::{ConflictKind, Page, Paged, RepoError, VaultConnectionRepository};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::convert::{checked, count, db_time, id_text, page_bounds, parse_id, parse_text, utc, utc_opt};
use crate::db::{Conn, Database, check_limit, transaction, with_conn};
use crate::error::{DbError, foreign_key_means};
use crate::schema::{storage_secrets, vault_connections};

const T: &str = "vault_connections";

/// A row of `vault_connections`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = vault_connections, treat_none_as_default_value = false)]
struct ConnectionRow {
    id: String,
    team_id: String,
    name: String,
    description: Option<String>,
    vault_type: String,
    settings: String,
    secret_version: i64,
    last_verified_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    created_by: String,
    updated_at: NaiveDateTime,
    updated_by: String,
}

/// The columns an update replaces.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = vault_connections, treat_none_as_null = true)]
struct ConnectionChanges {
    name: String,
    description: Option<String>,
    vault_type: String,
    settings: String,
    secret_version: i64,
    last_verified_at: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
    updated_by: String,
}

fn settings_json(settings: &VaultSettings) -> String {
    match settings {
        VaultSettings::OnePassword => serde_json::json!({}),
        VaultSettings::Doppler { project, config } => serde_json::json!({ "project": project, "config": config }),
        VaultSettings::Infisical {
            client_id,
            project_id,
            environment,
            secret_path,
            api_url,
        } => serde_json::json!({
            "client_id": client_id,
            "project_id": project_id,
            "environment": environment,
            "secret_path": secret_path,
            "api_url": api_url,
        }),
    }
    .to_string()
}

fn parse_settings(vault_type: VaultType, json: &str) -> Result<VaultSettings, DbError> {
    let corrupt = || DbError::corrupt(T, "settings");
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|_| corrupt())?;
    let text = |key: &str| {
        doc.get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(corrupt)
    };
    Ok(match vault_type {
        VaultType::OnePassword => VaultSettings::OnePassword,
        VaultType::Doppler => VaultSettings::Doppler {
            project: text("project")?,
            config: text("config")?,
        },
        VaultType::Infisical => VaultSettings::Infisical {
            client_id: text("client_id")?,
            project_id: text("project_id")?,
            environment: text("environment")?,
            secret_path: text("secret_path")?,
            // Absent in rows written before connections could name their own instance.
            api_url: doc
                .get("api_url")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        },
    })
}

impl ConnectionRow {
    fn new(c: &VaultConnection) -> Self {
        Self {
            id: id_text(c.id.as_uuid()),
            team_id: id_text(c.team_id.as_uuid()),
            name: c.name.as_str().to_owned(),
            description: c.description.as_ref().map(|d| d.as_str().to_owned()),
            vault_type: c.vault_type().as_str().to_owned(),
            settings: settings_json(&c.settings),
            secret_version: c.secret_version,
            last_verified_at: c.last_verified_at.map(db_time),
            created_at: db_time(c.created_at),
            created_by: id_text(c.created_by.as_uuid()),
            updated_at: db_time(c.updated_at),
            updated_by: id_text(c.updated_by.as_uuid()),
        }
    }

    fn into_connection(self) -> Result<VaultConnection, DbError> {
        let vault_type = parse_text::<VaultType>(&self.vault_type, T, "vault_type")?;
        Ok(VaultConnection {
            id: parse_id::<VaultConnectionId>(&self.id, T, "id")?,
            team_id: parse_id::<TeamId>(&self.team_id, T, "team_id")?,
            name: checked(Name::parse_at("name", self.name), T, "name")?,
            description: self
                .description
                .map(|d| checked(Description::parse_at("description", d), T, "description"))
                .transpose()?,
            settings: parse_settings(vault_type, &self.settings)?,
            secret_version: self.secret_version,
            last_verified_at: utc_opt(self.last_verified_at),
            created_at: utc(self.created_at),
            created_by: parse_id::<SubjectId>(&self.created_by, T, "created_by")?,
            updated_at: utc(self.updated_at),
            updated_by: parse_id::<SubjectId>(&self.updated_by, T, "updated_by")?,
        })
    }
}

/// [`VaultConnectionRepository`] over a [`Database`].
#[derive(Debug, Clone)]
pub struct SqlVaultConnectionRepository {
    db: Database,
}

impl SqlVaultConnectionRepository {
    /// The vault connections of `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl VaultConnectionRepository for SqlVaultConnectionRepository {
    async fn create(
        &self,
        connection: &VaultConnection,
        limit: Option<u32>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let row = ConnectionRow::new(connection);
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            conn.lock_team(&row.team_id).await?;
            let held: i64 = vault_connections::table
                .filter(vault_connections::team_id.eq(&row.team_id))
                .count()
                .get_result(conn)
                .await?;
            check_limit(held, limit, LimitKind::VaultConnections)?;
            diesel::insert_into(vault_connections::table)
                .values(&row)
                .execute(conn)
                .await?;
            conn.insert_audit(&audit).await?;
            Ok(())
        })
    }

    async fn get(&self, team: TeamId, id: VaultConnectionId) -> Result<VaultConnection, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: ConnectionRow = vault_connections::table
                .select(ConnectionRow::as_select())
                .filter(vault_connections::team_id.eq(&team))
                .filter(vault_connections::id.eq(&id))
                .get_result(conn)
                .await?;
            row.into_connection()
        })
    }

    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<VaultConnection>, RepoError> {
        let team = id_text(team.as_uuid());
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let total: i64 = vault_connections::table
                .filter(vault_connections::team_id.eq(&team))
                .count()
                .get_result(conn)
                .await?;
            let rows: Vec<ConnectionRow> = vault_connections::table
                .select(ConnectionRow::as_select())
                .filter(vault_connections::team_id.eq(&team))
                .order((vault_connections::name.asc(), vault_connections::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            Ok(Paged {
                items: rows
                    .into_iter()
                    .map(ConnectionRow::into_connection)
                    .collect::<Result<_, _>>()?,
                total: count(total),
            })
        })
    }

    async fn secret_count(&self, team: TeamId, id: VaultConnectionId) -> Result<u64, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let used: i64 = storage_secrets::table
                .filter(storage_secrets::team_id.eq(&team))
                .filter(storage_secrets::vault_connection_id.eq(&id))
                .count()
                .get_result(conn)
                .await?;
            Ok(count(used))
        })
    }

    async fn update(
        &self,
        connection: &VaultConnection,
        expected_secret_version: i64,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let row = ConnectionRow::new(connection);
        let changes = ConnectionChanges {
            name: row.name.clone(),
            description: row.description.clone(),
            vault_type: row.vault_type.clone(),
            settings: row.settings.clone(),
            secret_version: row.secret_version,
            last_verified_at: row.last_verified_at,
            updated_at: row.updated_at,
            updated_by: row.updated_by.clone(),
        };
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            let version: i64 = vault_connections::table
                .select(vault_connections::secret_version)
                .filter(vault_connections::team_id.eq(&row.team_id))
                .filter(vault_connections::id.eq(&row.id))
                .get_result(conn)
                .await?;
            if version != expected_secret_version {
                return Err(RepoError::Conflict(ConflictKind::Stale).into());
            }
            let updated = diesel::update(vault_connections::table)
                .filter(vault_connections::team_id.eq(&row.team_id))
                .filter(vault_connections::id.eq(&row.id))
                .filter(vault_connections::secret_version.eq(expected_secret_version))
                .set(&changes)
                .execute(conn)
                .await?;
            if updated == 0 {
                return Err(RepoError::Conflict(ConflictKind::Stale).into());
            }
            conn.insert_audit(&audit).await?;
            Ok(())
        })
    }

    async fn delete(
        &self,
        team: TeamId,
        id: VaultConnectionId,
        audit: &AuditEvent,
    ) -> Result<VaultConnection, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            let row: ConnectionRow = vault_connections::table
                .select(ConnectionRow::as_select())
                .filter(vault_connections::team_id.eq(&team))
                .filter(vault_connections::id.eq(&id))
                .get_result(conn)
                .await?;
            let used: i64 = storage_secrets::table
                .filter(storage_secrets::vault_connection_id.eq(&id))
                .count()
                .get_result(conn)
                .await?;
            if used > 0 {
                return Err(RepoError::Conflict(ConflictKind::VaultConnectionInUse).into());
            }
            diesel::delete(vault_connections::table.filter(vault_connections::id.eq(&id)))
                .execute(conn)
                .await
                .map_err(foreign_key_means(RepoError::Conflict(
                    ConflictKind::VaultConnectionInUse,
                )))?;
            conn.insert_audit(&audit).await?;
            row.into_connection()
        })
    }
}

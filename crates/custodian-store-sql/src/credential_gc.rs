//! The `credential_gc` table: records whose credentials could not be removed from the
//! credential store after their row was deleted, kept for `custodian gc` to retry.

use chrono::{DateTime, NaiveDateTime, Utc};
use custodian_domain::TeamId;
use custodian_ports::{CredentialKey, CredentialKind, RepoError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{db_time, id_text, parse_id, utc};
use crate::db::{transaction, with_conn};
use crate::error::DbError;
use crate::schema::credential_gc;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = credential_gc)]
struct GcRow {
    team_id: String,
    kind: String,
    record_id: String,
    recorded_at: NaiveDateTime,
}

/// The list of credential records left for `custodian gc`.
#[derive(Debug, Clone)]
pub struct CredentialGcLog {
    db: Database,
}

impl CredentialGcLog {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Remember that the credentials of `key` must still be deleted. Recording a key that
    /// is already listed keeps its first instant.
    pub async fn record(&self, key: &CredentialKey, at: DateTime<Utc>) -> Result<(), RepoError> {
        let row = GcRow {
            team_id: id_text(key.team_id.as_uuid()),
            kind: key.kind.as_str().to_owned(),
            record_id: id_text(key.record_id),
            recorded_at: db_time(at),
        };
        transaction!(self.db, |conn| {
            diesel::insert_into(credential_gc::table)
                .values(&row)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Every listed key with the instant it was recorded, oldest first.
    pub async fn pending(&self) -> Result<Vec<(CredentialKey, DateTime<Utc>)>, RepoError> {
        with_conn!(self.db, |conn| {
            let rows: Vec<GcRow> = credential_gc::table
                .select(GcRow::as_select())
                .order((
                    credential_gc::recorded_at.asc(),
                    credential_gc::team_id.asc(),
                    credential_gc::kind.asc(),
                    credential_gc::record_id.asc(),
                ))
                .load(conn)
                .await?;
            rows.into_iter()
                .map(|row| {
                    let key = CredentialKey {
                        team_id: parse_id::<TeamId>(&row.team_id, "credential_gc", "team_id")?,
                        kind: CredentialKind::parse(&row.kind)
                            .ok_or_else(|| DbError::corrupt("credential_gc", "kind"))?,
                        record_id: parse_id(&row.record_id, "credential_gc", "record_id")?,
                    };
                    Ok((key, utc(row.recorded_at)))
                })
                .collect()
        })
    }

    /// Forget `key` once its credentials are gone. Succeeds when it is not listed.
    pub async fn resolve(&self, key: &CredentialKey) -> Result<(), RepoError> {
        let (team, kind, record) = (
            id_text(key.team_id.as_uuid()),
            key.kind.as_str(),
            id_text(key.record_id),
        );
        transaction!(self.db, |conn| {
            diesel::delete(credential_gc::table.find((&team, kind, &record)))
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

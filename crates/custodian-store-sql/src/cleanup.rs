//! [`CleanupQueue`] on SQL: one row of `credential_gc` per record, `prune_below` NULL for
//! [`CleanupTask::DeleteAll`]. No foreign key: the record's team may be gone.
//!
//! A record merges with plain statements that are each atomic on both backends, so
//! concurrent records of one key lose nothing: an insert that does nothing when the key
//! has a row, then an update that only ever moves the row towards the bigger task (a
//! higher bound, or NULL). `done` deletes the row only while it still holds the task done.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use custodian_ports::{CleanupQueue, CleanupTask, CredentialKey, CredentialKind, PendingCleanup, RepoError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{db_time, id_text, parse_id, utc};
use crate::db::{transaction, with_conn};
use crate::error::DbError;
use crate::schema::credential_gc;

/// A row of `credential_gc`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credential_gc, treat_none_as_default_value = false)]
struct CleanupRow {
    team_id: String,
    kind: String,
    record_id: String,
    recorded_at: NaiveDateTime,
    prune_below: Option<i64>,
}

impl CleanupRow {
    fn into_pending(self) -> Result<PendingCleanup, DbError> {
        const T: &str = "credential_gc";
        let kind = CredentialKind::parse(&self.kind).ok_or_else(|| DbError::corrupt(T, "kind"))?;
        Ok(PendingCleanup {
            key: CredentialKey {
                team_id: parse_id(&self.team_id, T, "team_id")?,
                kind,
                record_id: parse_id(&self.record_id, T, "record_id")?,
            },
            task: task_of(self.prune_below),
            recorded_at: utc(self.recorded_at),
        })
    }
}

/// The `prune_below` column of a task.
fn bound_of(task: CleanupTask) -> Option<i64> {
    match task {
        CleanupTask::DeleteAll => None,
        CleanupTask::PruneBelow(keep) => Some(keep),
    }
}

/// The task a `prune_below` column holds.
fn task_of(prune_below: Option<i64>) -> CleanupTask {
    prune_below.map_or(CleanupTask::DeleteAll, CleanupTask::PruneBelow)
}

/// The key's columns: team, kind and record as stored.
fn key_columns(key: &CredentialKey) -> (String, &'static str, String) {
    (
        id_text(key.team_id.as_uuid()),
        key.kind.as_str(),
        id_text(key.record_id),
    )
}

/// Clean-up tasks of the credential store on SQL.
#[derive(Debug, Clone)]
pub struct SqlCleanupQueue {
    db: Database,
}

impl SqlCleanupQueue {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// The row of one key, as a filter on `credential_gc`.
macro_rules! row_of {
    ($team:expr, $kind:expr, $record:expr) => {
        credential_gc::table
            .filter(credential_gc::team_id.eq($team))
            .filter(credential_gc::kind.eq($kind))
            .filter(credential_gc::record_id.eq($record))
    };
}

#[async_trait]
impl CleanupQueue for SqlCleanupQueue {
    async fn record(&self, key: &CredentialKey, task: CleanupTask, at: DateTime<Utc>) -> Result<(), RepoError> {
        let (team, kind, record) = key_columns(key);
        let row = CleanupRow {
            team_id: team.clone(),
            kind: kind.to_owned(),
            record_id: record.clone(),
            recorded_at: db_time(at),
            prune_below: bound_of(task),
        };
        transaction!(self.db, |conn| {
            // A new key takes the task as it is; an existing one keeps its row and
            // recorded_at, and is merged below.
            diesel::insert_into(credential_gc::table)
                .values(&row)
                .on_conflict((credential_gc::team_id, credential_gc::kind, credential_gc::record_id))
                .do_nothing()
                .execute(conn)
                .await?;
            match task {
                CleanupTask::DeleteAll => {
                    diesel::update(row_of!(&team, kind, &record).filter(credential_gc::prune_below.is_not_null()))
                        .set(credential_gc::prune_below.eq(None::<i64>))
                        .execute(conn)
                        .await?;
                }
                CleanupTask::PruneBelow(keep) => {
                    // A NULL bound (delete everything) is never lowered to a prune.
                    diesel::update(row_of!(&team, kind, &record).filter(credential_gc::prune_below.lt(keep)))
                        .set(credential_gc::prune_below.eq(keep))
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })
    }

    async fn pending(&self, limit: u32) -> Result<Vec<PendingCleanup>, RepoError> {
        let limit = i64::from(limit);
        with_conn!(self.db, |conn| {
            let rows: Vec<CleanupRow> = credential_gc::table
                .select(CleanupRow::as_select())
                .order((
                    credential_gc::recorded_at.asc(),
                    credential_gc::team_id.asc(),
                    credential_gc::record_id.asc(),
                    credential_gc::kind.asc(),
                ))
                .limit(limit)
                .load(conn)
                .await?;
            rows.into_iter().map(CleanupRow::into_pending).collect()
        })
    }

    async fn done(&self, key: &CredentialKey, task: CleanupTask) -> Result<(), RepoError> {
        let (team, kind, record) = key_columns(key);
        transaction!(self.db, |conn| {
            match task {
                CleanupTask::DeleteAll => {
                    diesel::delete(row_of!(&team, kind, &record).filter(credential_gc::prune_below.is_null()))
                        .execute(conn)
                        .await?;
                }
                CleanupTask::PruneBelow(keep) => {
                    diesel::delete(row_of!(&team, kind, &record).filter(credential_gc::prune_below.eq(keep)))
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_column_round_trips_every_task() {
        for task in [
            CleanupTask::DeleteAll,
            CleanupTask::PruneBelow(1),
            CleanupTask::PruneBelow(i64::MAX),
        ] {
            assert_eq!(task_of(bound_of(task)), task);
        }
    }
}

//! [`AuditRepository`] on SQL.

use async_trait::async_trait;
use custodian_domain::{AuditEvent, TeamId};
use custodian_ports::{AuditFilter, AuditRepository, Page, Paged, RepoError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{AuditRow, count, db_time, id_text, page_bounds};
use crate::db::{Conn, transaction, with_conn};
use crate::schema::audit_events;

/// Audit events on SQL.
#[derive(Debug, Clone)]
pub struct SqlAuditRepository {
    db: Database,
}

impl SqlAuditRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// The team's events (the tenant's, with no team, for `None`) matching the filter, as a
/// boxed query of the connection's backend.
macro_rules! matching {
    ($team:expr, $resource_type:expr, $actor:expr, $since:expr, $until:expr) => {{
        let mut query = audit_events::table.into_boxed();
        query = match $team {
            Some(team) => query.filter(audit_events::team_id.eq(team)),
            None => query.filter(audit_events::team_id.is_null()),
        };
        if let Some(resource_type) = $resource_type {
            query = query.filter(audit_events::resource_type.eq(resource_type));
        }
        if let Some(actor) = $actor {
            query = query.filter(audit_events::actor_id.eq(actor));
        }
        if let Some(since) = $since {
            query = query.filter(audit_events::occurred_at.ge(since));
        }
        if let Some(until) = $until {
            query = query.filter(audit_events::occurred_at.lt(until));
        }
        query
    }};
}

#[async_trait]
impl AuditRepository for SqlAuditRepository {
    async fn record(&self, event: &AuditEvent) -> Result<(), RepoError> {
        transaction!(self.db, |conn| { conn.insert_audit(event).await })
    }

    async fn list(&self, team: TeamId, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError> {
        self.list_scoped(Some(id_text(team.as_uuid())), filter, page).await
    }

    async fn list_tenant(&self, filter: &AuditFilter, page: Page) -> Result<Paged<AuditEvent>, RepoError> {
        self.list_scoped(None, filter, page).await
    }
}

impl SqlAuditRepository {
    /// The events of `team` (`None`: the tenant's, which belong to no team).
    async fn list_scoped(
        &self,
        team: Option<String>,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Paged<AuditEvent>, RepoError> {
        let resource_type = filter.resource_type.map(|r| r.as_str().to_owned());
        let actor = filter.actor_id.map(|a| id_text(a.as_uuid()));
        let since = filter.since.map(db_time);
        let until = filter.until.map(db_time);
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let rows: Vec<AuditRow> = matching!(team.as_ref(), &resource_type, &actor, since, until)
                .select(AuditRow::as_select())
                .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = matching!(team.as_ref(), &resource_type, &actor, since, until)
                .count()
                .get_result(conn)
                .await?;
            Ok(Paged {
                items: rows.into_iter().map(AuditRow::into_event).collect::<Result<_, _>>()?,
                total: count(total),
            })
        })
    }
}

//! Conversions between domain values and the portable column types: ids as uuid text,
//! times as UTC `NaiveDateTime` with microsecond precision (what PostgreSQL keeps, so both
//! backends give back exactly what they were given), enums as their wire spelling.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use custodian_domain::{
    AuditAction, AuditEvent, AuditEventId, Outcome, RequestContext, ResourceType, SubjectId, SubjectKind, TeamId,
};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::DbError;
use crate::schema::audit_events;

/// A time as stored: UTC, truncated to the microsecond.
pub(crate) fn db_time(at: DateTime<Utc>) -> NaiveDateTime {
    let naive = at.naive_utc();
    let micros = naive.and_utc().timestamp_subsec_micros();
    naive.with_nanosecond(micros * 1_000).unwrap_or(naive)
}

/// A stored time back as UTC.
pub(crate) fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

/// An optional stored time back as UTC.
pub(crate) fn utc_opt(at: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    at.map(utc)
}

/// An id as stored.
pub(crate) fn id_text(id: impl Into<Uuid>) -> String {
    id.into().to_string()
}

/// A stored id back as a typed id; a malformed one is a corrupt row of `table`.
pub(crate) fn parse_id<T: From<Uuid>>(value: &str, table: &str, column: &str) -> Result<T, DbError> {
    Uuid::parse_str(value)
        .map(T::from)
        .map_err(|_| DbError::corrupt(table, column))
}

/// A stored enum or checked text back as its domain type.
pub(crate) fn parse_text<T: FromStr>(value: &str, table: &str, column: &str) -> Result<T, DbError> {
    value.parse().map_err(|_| DbError::corrupt(table, column))
}

/// A stored value that must pass a domain constructor (`Name::parse_at`, …).
pub(crate) fn checked<T, E>(result: Result<T, E>, table: &str, column: &str) -> Result<T, DbError> {
    result.map_err(|_| DbError::corrupt(table, column))
}

/// `SubjectKind` has no `FromStr`: its two stored spellings.
pub(crate) fn parse_subject_kind(value: &str) -> Result<SubjectKind, DbError> {
    match value {
        v if v == SubjectKind::User.as_str() => Ok(SubjectKind::User),
        v if v == SubjectKind::VirtualAccount.as_str() => Ok(SubjectKind::VirtualAccount),
        _ => Err(DbError::corrupt("audit_events", "actor_kind")),
    }
}

/// A page's limit and offset as SQL wants them.
pub(crate) fn page_bounds(page: custodian_ports::Page) -> (i64, i64) {
    (i64::from(page.limit), i64::try_from(page.offset).unwrap_or(i64::MAX))
}

/// A `COUNT(*)` as the port's `u64`.
pub(crate) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A row of `audit_events`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub(crate) struct AuditRow {
    pub(crate) id: String,
    pub(crate) occurred_at: NaiveDateTime,
    pub(crate) team_id: Option<String>,
    pub(crate) actor_id: Option<String>,
    pub(crate) actor_kind: Option<String>,
    pub(crate) action: String,
    pub(crate) resource_type: String,
    pub(crate) resource_id: Option<String>,
    pub(crate) resource_name: Option<String>,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) client_ip: Option<String>,
    pub(crate) user_agent: Option<String>,
}

impl AuditRow {
    pub(crate) fn from_event(event: &AuditEvent) -> Self {
        Self {
            id: id_text(event.id.as_uuid()),
            occurred_at: db_time(event.occurred_at),
            team_id: event.team_id.map(|t| id_text(t.as_uuid())),
            actor_id: event.actor_id.map(|a| id_text(a.as_uuid())),
            actor_kind: event.actor_kind.map(|k| k.as_str().to_owned()),
            action: event.action.as_str().to_owned(),
            resource_type: event.resource_type.as_str().to_owned(),
            resource_id: event.resource_id.map(id_text),
            resource_name: event.resource_name.clone(),
            outcome: event.outcome.as_str().to_owned(),
            detail: event.detail.clone(),
            request_id: event.context.request_id.clone(),
            client_ip: event.context.client_ip.clone(),
            user_agent: event.context.user_agent.clone(),
        }
    }

    pub(crate) fn into_event(self) -> Result<AuditEvent, DbError> {
        const T: &str = "audit_events";
        Ok(AuditEvent {
            id: parse_id::<AuditEventId>(&self.id, T, "id")?,
            occurred_at: utc(self.occurred_at),
            team_id: self
                .team_id
                .as_deref()
                .map(|t| parse_id::<TeamId>(t, T, "team_id"))
                .transpose()?,
            actor_id: self
                .actor_id
                .as_deref()
                .map(|a| parse_id::<SubjectId>(a, T, "actor_id"))
                .transpose()?,
            actor_kind: self.actor_kind.as_deref().map(parse_subject_kind).transpose()?,
            action: parse_text::<AuditAction>(&self.action, T, "action")?,
            resource_type: parse_text::<ResourceType>(&self.resource_type, T, "resource_type")?,
            resource_id: self
                .resource_id
                .as_deref()
                .map(|r| parse_id::<Uuid>(r, T, "resource_id"))
                .transpose()?,
            resource_name: self.resource_name,
            outcome: parse_text::<Outcome>(&self.outcome, T, "outcome")?,
            detail: self.detail,
            context: RequestContext {
                request_id: self.request_id,
                client_ip: self.client_ip,
                user_agent: self.user_agent,
            },
        })
    }
}

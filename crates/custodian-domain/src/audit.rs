//! Audit events: who did what to which resource, when, and how it ended. Never a value.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::enums::{AuditAction, Outcome, ResourceType};
use crate::identity::SubjectKind;
use crate::ids::{AuditEventId, SubjectId, TeamId};

/// Where a request came from, as far as an audit trail needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One audit event. `detail` is a short human sentence written by Custodian itself
/// (never user-supplied values, never credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub occurred_at: DateTime<Utc>,
    pub team_id: Option<TeamId>,
    pub actor_id: Option<SubjectId>,
    pub actor_kind: Option<SubjectKind>,
    pub action: AuditAction,
    pub resource_type: ResourceType,
    pub resource_id: Option<Uuid>,
    pub resource_name: Option<String>,
    pub outcome: Outcome,
    pub detail: Option<String>,
    pub context: RequestContext,
}

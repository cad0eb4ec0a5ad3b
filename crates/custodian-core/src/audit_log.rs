//! Reading a team's audit trail.

use custodian_domain::{AuditEvent, Subject, TeamId};
use custodian_ports::{AuditFilter, Page, Paged};

use crate::authz::Action;
use crate::{CoreError, Custodian};

impl Custodian {
    /// The team's audit events matching `filter`, newest first (viewer).
    pub async fn list_audit_events(
        &self,
        subject: &Subject,
        team: TeamId,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Paged<AuditEvent>, CoreError> {
        self.authorize(subject, team, Action::ReadAuditEvents).await?;
        Ok(self.ports.repos.audit.list(team, filter, page).await?)
    }

    /// The tenant's audit trail (tenant admin): the events of no team — refused
    /// authentications, users created and changed — matching `filter`, newest first.
    pub async fn list_tenant_audit_events(
        &self,
        subject: &Subject,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Paged<AuditEvent>, CoreError> {
        crate::authz::require_tenant_admin(subject)?;
        Ok(self.ports.repos.audit.list_tenant(filter, page).await?)
    }
}

#[cfg(test)]
mod tests {
    use custodian_domain::Role;

    use super::*;
    use crate::test_support::*;

    #[tokio::test]
    async fn a_viewer_reads_the_trail_and_a_stranger_sees_nothing() {
        let mut mocks = Mocks::new();
        mocks.member(team_id(), alice_id(), Role::Viewer);
        mocks
            .audit
            .expect_list()
            .withf(|team, _, page| *team == team_id() && page.limit == 50)
            .times(1)
            .returning(|_, _, _| {
                Ok(Paged {
                    items: Vec::new(),
                    total: 0,
                })
            });
        let custodian = mocks.build();
        let page = custodian
            .list_audit_events(&alice(), team_id(), &AuditFilter::default(), Page::default())
            .await
            .unwrap();
        assert_eq!(page.total, 0);
        let result = custodian
            .list_audit_events(
                &account(other_team_id(), Role::Admin),
                team_id(),
                &AuditFilter::default(),
                Page::default(),
            )
            .await;
        assert_eq!(result, Err(CoreError::NotFound));
    }
}

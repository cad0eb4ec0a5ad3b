//! Secret groups: named groups of key/value application secrets, each key with numbered
//! versions whose values live in the group's integration (the deployment's credential
//! store). Create, list, read, replace the key set, delete; read one key's value and
//! versions, list keys (with values for those allowed), delete one key.
//!
//! Values follow the credential-write protocol: every new version is written to the store
//! before the rows that point at it are committed, and removed again when the commit
//! fails; values no committed row uses any more (deleted keys, a deleted group) are removed
//! after the commit, and a removal that fails is recorded for `custodian gc`.
//!
//! Who may do what: a group belongs to one team, and the team's roles apply (viewer: the
//! keys; operator: the values; admin: changes). Groups of other teams are not found. The
//! deployment may turn value reads off for everyone ([`Settings::disable_secret_value_view`]).
//! Every change and every value read is an audit event naming the key and version, never
//! the value.
//!
//! [`Settings::disable_secret_value_view`]: crate::Settings::disable_secret_value_view

use std::collections::HashMap;

use custodian_domain::{
    AuditAction, AuditEvent, CreateGroupInput, FieldError, GroupName, GroupSecretId, GroupSecretVersion, GroupUpdate,
    KeyFqn, Name, NewSecretGroup, Outcome, RequestContext, ResourceType, SecretGroup, SecretGroupId, Subject,
    SubjectId, SubjectKind, TeamId, UpdateGroupInput, UserId, ValidationErrors, ValueToStore, VirtualAccountId,
    active_reads_since, error::kind, group_fqn, integration_fqn, key_fqn, parse_group_fqn,
};
use custodian_ports::{
    CleanupTask, CredentialKey, CredentialKind, GroupFilter, GroupKeyDetails, KeyFilter, Page, Paged, RepoError,
    StoreError, TeamScope,
};
use secrecy::SecretString;

use crate::authz::Action;
use crate::credential_writes::Attempt;
use crate::{CoreError, Custodian};

/// An integration a group's values can live in: the deployment's credential store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// What `integrationId` names: the store's configuration name (`local`, `aws-ssm`).
    pub id: String,
    /// `custodian://<tenant>/integration/<id>`.
    pub fqn: String,
    /// The store's kind: `local` or `aws-ssm`.
    pub kind: &'static str,
    /// A name for people.
    pub name: String,
}

/// Who created a record, as the secret-group API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSummary {
    pub id: SubjectId,
    /// `None` when the subject no longer exists (a deleted user or virtual account).
    pub kind: Option<SubjectKind>,
    /// A user's email or a virtual account's name.
    pub slug: Option<String>,
    /// A user's display name or a virtual account's name.
    pub display_name: Option<String>,
}

impl SubjectSummary {
    /// An authenticated caller, as `createdBySubject` shows it.
    pub fn of(subject: &Subject) -> Self {
        match subject {
            Subject::User {
                id,
                email,
                display_name,
                ..
            } => SubjectSummary {
                id: (*id).into(),
                kind: Some(SubjectKind::User),
                slug: Some(email.as_str().to_owned()),
                display_name: Some(display_name.as_str().to_owned()),
            },
            Subject::VirtualAccount { id, name, .. } => SubjectSummary {
                id: (*id).into(),
                kind: Some(SubjectKind::VirtualAccount),
                slug: Some(name.as_str().to_owned()),
                display_name: Some(name.as_str().to_owned()),
            },
        }
    }
}

/// One version of a key, with its value when the caller asked for values and may see them.
#[derive(Clone)]
pub struct VersionView {
    pub version: GroupSecretVersion,
    pub value: Option<SecretString>,
}

impl std::fmt::Debug for VersionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionView")
            .field("version", &self.version)
            .field("value", &self.value.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A key as the secret-group API shows it.
#[derive(Clone)]
pub struct KeyView {
    pub details: GroupKeyDetails,
    pub created_by: SubjectSummary,
    /// Distinct virtual accounts that read a value of this key in the last 24 hours.
    pub active_deployments: u64,
    /// The value of the version read (the current one unless one was asked for), when
    /// values were read.
    pub value: Option<SecretString>,
    /// The versions shown: every version, or the one asked for.
    pub versions: Vec<VersionView>,
}

impl std::fmt::Debug for KeyView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyView")
            .field("details", &self.details)
            .field("created_by", &self.created_by)
            .field("active_deployments", &self.active_deployments)
            .field("value", &self.value.as_ref().map(|_| "[REDACTED]"))
            .field("versions", &self.versions)
            .finish()
    }
}

impl KeyView {
    /// `custodian://<tenant>:<group>:<key>`.
    pub fn fqn(&self, tenant: &str) -> String {
        key_fqn(tenant, &self.details.group_name, &self.details.secret.key)
    }
}

/// A group as the secret-group API shows it: never a value.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub group: SecretGroup,
    pub created_by: SubjectSummary,
    pub keys: Vec<KeyView>,
}

impl GroupView {
    /// `custodian://<tenant>:<group>`.
    pub fn fqn(&self, tenant: &str) -> String {
        group_fqn(tenant, &self.group.name)
    }
}

/// A group manifest (create or update by name): `{type: "secret-group", name,
/// integration_fqn, owned_by?, collaborators?}` as it arrives.
#[derive(Debug, Default, Clone)]
pub struct GroupManifestInput {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub integration_fqn: Option<String>,
    /// The owning team's name (`ownedBy.account`).
    pub owned_by: Option<String>,
    /// How many collaborators the manifest names (access follows the team's roles, so
    /// none may be named).
    pub collaborators: usize,
}

/// Filters of the group list as they arrive: `search` (a substring of a group or key name)
/// and `fqn` (one group).
#[derive(Debug, Default, Clone)]
pub struct GroupListInput {
    pub search: Option<String>,
    pub fqn: Option<String>,
}

/// Filters of the key list as they arrive.
#[derive(Debug, Default, Clone)]
pub struct KeyListInput {
    pub secret_fqns: Option<Vec<String>>,
    pub secret_group_id: Option<SecretGroupId>,
    pub with_value: bool,
}

/// Where version `version` of key `id` of a group of `team` is kept.
fn value_key(team: TeamId, id: GroupSecretId) -> CredentialKey {
    CredentialKey {
        team_id: team,
        kind: CredentialKind::GroupSecret,
        record_id: id.as_uuid(),
    }
}

impl Custodian {
    /// The integrations a group's values can live in: the deployment's credential store.
    pub fn integrations(&self) -> Vec<Integration> {
        let id = self.ports.credential_store.backend();
        let name = match id {
            "local" => "Custodian's encrypted store".to_owned(),
            "aws-ssm" => "AWS SSM Parameter Store".to_owned(),
            other => other.to_owned(),
        };
        vec![Integration {
            id: id.to_owned(),
            fqn: integration_fqn(&self.settings.tenant_name, id),
            kind: id,
            name,
        }]
    }

    /// The teams whose groups `subject` sees.
    async fn group_scope(&self, subject: &Subject) -> Result<TeamScope, CoreError> {
        Ok(match subject {
            Subject::User { tenant_admin: true, .. } => TeamScope::All,
            Subject::User { id, .. } => TeamScope::Teams(
                self.ports
                    .repos
                    .memberships
                    .list_for_user(*id)
                    .await?
                    .into_iter()
                    .map(|m| m.team_id)
                    .collect(),
            ),
            Subject::VirtualAccount { team_id, .. } => TeamScope::Teams(vec![*team_id]),
        })
    }

    /// The team a new group goes to: `team` when given; else a virtual account's own team,
    /// or the one team a user belongs to. A user in several teams (or none) must say which
    /// (422 at `loc`).
    async fn owning_team(&self, subject: &Subject, team: Option<TeamId>, loc: &[&str]) -> Result<TeamId, CoreError> {
        if let Some(team) = team {
            return Ok(team);
        }
        match subject {
            Subject::VirtualAccount { team_id, .. } => Ok(*team_id),
            Subject::User { id, .. } => {
                let teams = self.ports.repos.memberships.list_for_user(*id).await?;
                match teams.as_slice() {
                    [one] => Ok(one.team_id),
                    [] => Err(CoreError::from(FieldError::new(
                        loc,
                        kind::MISSING,
                        "is required: the caller belongs to no team, so the team that owns the group must be named",
                    ))),
                    _ => Err(CoreError::from(FieldError::new(
                        loc,
                        kind::MISSING,
                        format!(
                            "is required: the caller belongs to {} teams, so the team that owns the group must be named",
                            teams.len()
                        ),
                    ))),
                }
            }
        }
    }

    /// Who `id` is, for `createdBySubject`; `cache` holds the answers of this request.
    async fn subject_summary(
        &self,
        id: SubjectId,
        cache: &mut HashMap<SubjectId, SubjectSummary>,
    ) -> Result<SubjectSummary, CoreError> {
        if let Some(known) = cache.get(&id) {
            return Ok(known.clone());
        }
        let summary = match self.ports.repos.users.get(UserId::from_uuid(id.as_uuid())).await {
            Ok(user) => SubjectSummary {
                id,
                kind: Some(SubjectKind::User),
                slug: Some(user.email.as_str().to_owned()),
                display_name: Some(user.display_name.as_str().to_owned()),
            },
            Err(RepoError::NotFound) => match self
                .ports
                .repos
                .virtual_accounts
                .get_by_id(VirtualAccountId::from_uuid(id.as_uuid()))
                .await
            {
                Ok(account) => SubjectSummary {
                    id,
                    kind: Some(SubjectKind::VirtualAccount),
                    slug: Some(account.name.as_str().to_owned()),
                    display_name: Some(account.name.as_str().to_owned()),
                },
                Err(RepoError::NotFound) => SubjectSummary {
                    id,
                    kind: None,
                    slug: None,
                    display_name: None,
                },
                Err(other) => return Err(other.into()),
            },
            Err(other) => return Err(other.into()),
        };
        cache.insert(id, summary.clone());
        Ok(summary)
    }

    /// The views of `keys` without values, with their creators and active readers.
    async fn key_views(
        &self,
        keys: Vec<GroupKeyDetails>,
        cache: &mut HashMap<SubjectId, SubjectSummary>,
    ) -> Result<Vec<KeyView>, CoreError> {
        let readers = self.active_readers_of(keys.iter()).await?;
        self.key_views_with(keys, &readers, cache).await
    }

    /// How many deployments read each of `keys` lately, in one query.
    async fn active_readers_of(
        &self,
        keys: impl Iterator<Item = &GroupKeyDetails>,
    ) -> Result<HashMap<GroupSecretId, u64>, CoreError> {
        let ids: Vec<GroupSecretId> = keys.map(|k| k.secret.id).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .ports
            .repos
            .secret_groups
            .active_readers(&ids, active_reads_since(self.now()))
            .await?)
    }

    /// [`key_views`](Self::key_views), with the active readers already counted.
    async fn key_views_with(
        &self,
        keys: Vec<GroupKeyDetails>,
        readers: &HashMap<GroupSecretId, u64>,
        cache: &mut HashMap<SubjectId, SubjectSummary>,
    ) -> Result<Vec<KeyView>, CoreError> {
        let mut views = Vec::with_capacity(keys.len());
        for details in keys {
            let created_by = self.subject_summary(details.secret.created_by, cache).await?;
            let versions = details
                .versions
                .iter()
                .map(|v| VersionView {
                    version: v.clone(),
                    value: None,
                })
                .collect();
            views.push(KeyView {
                active_deployments: readers.get(&details.secret.id).copied().unwrap_or(0),
                created_by,
                value: None,
                versions,
                details,
            });
        }
        Ok(views)
    }

    async fn group_view(
        &self,
        group: SecretGroup,
        cache: &mut HashMap<SubjectId, SubjectSummary>,
    ) -> Result<GroupView, CoreError> {
        let keys = self.ports.repos.secret_groups.keys(group.team_id, group.id).await?;
        let keys = self.key_views(keys, cache).await?;
        self.group_view_with(group, keys, cache).await
    }

    async fn group_view_with(
        &self,
        group: SecretGroup,
        keys: Vec<KeyView>,
        cache: &mut HashMap<SubjectId, SubjectSummary>,
    ) -> Result<GroupView, CoreError> {
        let created_by = self.subject_summary(group.created_by, cache).await?;
        Ok(GroupView {
            group,
            created_by,
            keys,
        })
    }

    fn group_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        group: &SecretGroup,
        detail: Option<String>,
    ) -> AuditEvent {
        let mut event = self.audit_event(
            subject,
            ctx,
            Some(group.team_id),
            action,
            (
                ResourceType::SecretGroup,
                Some(group.id.as_uuid()),
                Some(group.name.as_str()),
            ),
            Outcome::Success,
        );
        event.detail = detail;
        event
    }

    fn key_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        key: &GroupKeyDetails,
        detail: String,
    ) -> AuditEvent {
        let name = format!("{}:{}", key.group_name, key.secret.key);
        let mut event = self.audit_event(
            subject,
            ctx,
            Some(key.team_id),
            action,
            (ResourceType::GroupSecret, Some(key.secret.id.as_uuid()), Some(&name)),
            Outcome::Success,
        );
        event.detail = Some(detail);
        event
    }

    /// Write `values` of a group of `team` to the store, in order; the error of the first
    /// that fails (a value the store refuses is reported at `secrets.<i>.value`, `i` its
    /// place in the request) after removing those already written.
    ///
    /// A version already stored belongs to no row (rows are committed after their values):
    /// most likely to a concurrent update about to commit, so the attempt is lost
    /// (`Conflict(Stale)`, made again by [`Custodian::last_writer_wins`]); from a later
    /// `attempt` on, it is taken to be a leftover of a write that failed, and replaced.
    async fn write_values(
        &self,
        team: TeamId,
        values: &[ValueToStore],
        index_of: impl Fn(GroupSecretId) -> Option<usize>,
        attempt: Attempt,
    ) -> Result<(), CoreError> {
        for (written, value) in values.iter().enumerate() {
            let key = value_key(team, value.secret_id);
            let store = &self.ports.credential_store;
            let mut put = store.put(&key, value.version, value.value.secret()).await;
            if matches!(put, Err(StoreError::AlreadyExists)) && attempt.steps_over_taken_versions() {
                tracing::warn!(%key, version = value.version, "a value no row points at is in the way; replacing it");
                put = match store.delete_version(&key, value.version).await {
                    Ok(()) => store.put(&key, value.version, value.value.secret()).await,
                    Err(error) => Err(error),
                };
            }
            if let Err(error) = put {
                self.discard_values(team, &values[..written]).await;
                let index = index_of(value.secret_id).map(|i| i.to_string());
                let loc: Vec<&str> = match &index {
                    Some(i) => vec!["secrets", i, "value"],
                    None => vec!["secrets"],
                };
                return Err(match error {
                    StoreError::AlreadyExists => CoreError::Conflict(custodian_ports::ConflictKind::Stale),
                    other => CoreError::from_store_write(other, &loc),
                });
            }
        }
        Ok(())
    }

    /// Remove values written for rows that were not committed. A version 1 that cannot be
    /// removed belongs to a key no row names: its record is queued for `custodian gc`; a
    /// later version is logged (the key's row exists and names an older version).
    async fn discard_values(&self, team: TeamId, values: &[ValueToStore]) {
        for value in values {
            let key = value_key(team, value.secret_id);
            if let Err(error) = self.ports.credential_store.delete_version(&key, value.version).await {
                if value.version == 1 {
                    self.queue_cleanup(&key, error).await;
                } else {
                    tracing::error!(%key, version = value.version, %error, "could not remove an uncommitted value of a group key");
                }
            }
        }
    }

    /// Record `key` for `custodian gc` after its removal from the store failed with `error`.
    async fn queue_cleanup(&self, key: &CredentialKey, error: StoreError) {
        match self
            .ports
            .repos
            .cleanup
            .record(key, CleanupTask::DeleteAll, self.now())
            .await
        {
            Ok(()) => {
                tracing::warn!(%key, %error, "could not remove the values of a group key; recorded for `custodian gc`");
            }
            Err(record_error) => tracing::error!(
                %key,
                %error,
                %record_error,
                "could not remove the values of a group key, nor record it for `custodian gc`"
            ),
        }
    }

    /// Remove every value of `keys` (committed as deleted). Returns how many keys' values
    /// could not be removed now (each queued for `custodian gc`).
    async fn remove_values(&self, team: TeamId, keys: impl IntoIterator<Item = GroupSecretId>) -> usize {
        let mut left = 0;
        for id in keys {
            let key = value_key(team, id);
            if let Err(error) = self.ports.credential_store.delete_all(&key).await {
                left += 1;
                self.queue_cleanup(&key, error).await;
            }
        }
        left
    }

    /// Create a secret group (admin of its team) with every key at version 1: the values are
    /// written first, then the rows with the audit event; a failed commit removes the values.
    /// The group's team is `team`, or the caller's only team (see [`Self::owning_team`]).
    pub async fn create_group(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: Option<TeamId>,
        input: CreateGroupInput,
    ) -> Result<GroupView, CoreError> {
        let team = self.owning_team(subject, team, &["team_id"]).await?;
        self.authorize(subject, team, Action::WriteSecretGroups).await?;
        let integrations = self.integrations();
        let ids: Vec<&str> = integrations.iter().map(|i| i.id.as_str()).collect();
        let new = NewSecretGroup::parse(input, &ids)?;
        let order: Vec<String> = new.secrets.iter().map(|s| s.key.as_str().to_owned()).collect();
        let draft = new.into_draft(team, subject.id(), self.now(), &mut || self.ports.ids.new_id());
        let index_of = |id: GroupSecretId| {
            draft
                .keys
                .iter()
                .find(|k| k.secret.id == id)
                .and_then(|k| order.iter().position(|o| o == k.secret.key.as_str()))
        };
        self.write_values(team, &draft.values, index_of, Attempt::FIRST).await?;
        let audit = self.group_event(
            subject,
            ctx,
            AuditAction::Create,
            &draft.group,
            Some(format!("{} key(s) at version 1", draft.keys.len())),
        );
        if let Err(error) = self
            .ports
            .repos
            .secret_groups
            .create(&draft.group, &draft.keys, &audit)
            .await
        {
            self.discard_values(team, &draft.values).await;
            return Err(error.into());
        }
        self.group_view(draft.group, &mut HashMap::new()).await
    }

    /// The groups `subject` sees (viewer of their team) matching `filter`, ordered by name,
    /// each with its keys; never a value.
    pub async fn list_groups(
        &self,
        subject: &Subject,
        filter: GroupListInput,
        page: Page,
    ) -> Result<Paged<GroupView>, CoreError> {
        let name = filter
            .fqn
            .as_deref()
            .map(|fqn| parse_group_fqn("fqn", &self.settings.tenant_name, fqn))
            .transpose();
        let name = match name {
            Ok(name) => name,
            // An FQN of another tenant names nothing here.
            Err(e) if e.kind == kind::NOT_FOUND => {
                return Ok(Paged {
                    items: Vec::new(),
                    total: 0,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let scope = self.group_scope(subject).await?;
        let groups = self
            .ports
            .repos
            .secret_groups
            .list(
                &scope,
                &GroupFilter {
                    search: filter.search.filter(|s| !s.is_empty()),
                    name,
                },
                page,
            )
            .await?;
        // The page's keys and their readers in a few queries, not a few per group.
        let mut keys = self.ports.repos.secret_groups.keys_of_groups(&groups.items).await?;
        let readers = self.active_readers_of(keys.values().flatten()).await?;
        let mut cache = HashMap::new();
        let mut items = Vec::with_capacity(groups.items.len());
        for group in groups.items {
            // A group deleted since the page was read is left out.
            let Some(group_keys) = keys.remove(&group.id) else {
                continue;
            };
            let group_keys = self.key_views_with(group_keys, &readers, &mut cache).await?;
            items.push(self.group_view_with(group, group_keys, &mut cache).await?);
        }
        Ok(Paged {
            items,
            total: groups.total,
        })
    }

    /// The group `id` with its keys (viewer of its team); never a value.
    pub async fn get_group(&self, subject: &Subject, id: SecretGroupId) -> Result<GroupView, CoreError> {
        let group = self.visible_group(subject, id, Action::ReadGroupKeys).await?;
        self.group_view(group, &mut HashMap::new()).await
    }

    /// The group `id` when `subject` sees it and may do `action` in its team.
    async fn visible_group(
        &self,
        subject: &Subject,
        id: SecretGroupId,
        action: Action,
    ) -> Result<SecretGroup, CoreError> {
        let scope = self.group_scope(subject).await?;
        let group = self.ports.repos.secret_groups.get_in(&scope, id).await?;
        self.authorize(subject, group.team_id, action).await?;
        Ok(group)
    }

    /// Replace the group's key set (admin): a key with a changed value gets a new version,
    /// a key without a value (or with its current value) is kept, a new key starts at
    /// version 1, and the keys left out are deleted with every version. New values are
    /// written before the change is committed; the deleted keys' values are removed after.
    /// A change that loses a race with another is made again over it.
    pub async fn update_group(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        id: SecretGroupId,
        input: UpdateGroupInput,
    ) -> Result<GroupView, CoreError> {
        let group = self.visible_group(subject, id, Action::WriteSecretGroups).await?;
        let order: Vec<Option<String>> = input
            .secrets
            .as_ref()
            .map(|s| s.iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default();
        let update = GroupUpdate::parse(input)?;
        let deleted = self
            .last_writer_wins(|attempt| {
                let update = update.clone();
                let group = &group;
                let order = &order;
                async move {
                    self.apply_group_update(subject, ctx, group, update, order, attempt)
                        .await
                }
            })
            .await?;
        self.remove_values(group.team_id, deleted).await;
        let group = self.ports.repos.secret_groups.get(group.team_id, group.id).await?;
        self.group_view(group, &mut HashMap::new()).await
    }

    /// One attempt of an update: read the keys and the values to compare, plan, write the
    /// new values, commit. Returns the keys deleted.
    async fn apply_group_update(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        group: &SecretGroup,
        update: GroupUpdate,
        order: &[Option<String>],
        attempt: Attempt,
    ) -> Result<Vec<GroupSecretId>, CoreError> {
        let keys = self.ports.repos.secret_groups.keys(group.team_id, group.id).await?;
        let current: Vec<_> = keys.iter().map(|k| k.secret.clone()).collect();
        let mut values = HashMap::new();
        for id in update.values_to_compare(&current) {
            let Some(secret) = current.iter().find(|s| s.id == id) else {
                continue;
            };
            let value = self
                .ports
                .credential_store
                .get(&value_key(group.team_id, id), secret.version)
                .await?;
            values.insert(id, value);
        }
        let plan = update.plan(&current, &values)?;
        if plan.is_unchanged() {
            return Ok(Vec::new());
        }
        let detail = format!(
            "{} key(s) added, {} changed, {} deleted",
            plan.added.len(),
            plan.changed.len(),
            plan.deleted.len()
        );
        let (changes, to_write) = plan.into_changes(group, subject.id(), self.now(), &mut || self.ports.ids.new_id());
        let key_name = |id: GroupSecretId| -> Option<String> {
            changes
                .added
                .iter()
                .find(|k| k.secret.id == id)
                .map(|k| k.secret.key.as_str().to_owned())
                .or_else(|| current.iter().find(|s| s.id == id).map(|s| s.key.as_str().to_owned()))
        };
        let index_of = |id: GroupSecretId| {
            let name = key_name(id)?;
            order.iter().position(|o| o.as_deref() == Some(name.as_str()))
        };
        self.write_values(group.team_id, &to_write, index_of, attempt).await?;
        let audit = self.group_event(subject, ctx, AuditAction::Update, group, Some(detail));
        if let Err(error) = self.ports.repos.secret_groups.apply(&changes, &audit).await {
            self.discard_values(group.team_id, &to_write).await;
            return Err(error.into());
        }
        Ok(changes.deleted)
    }

    /// Delete the group (admin) with its keys and every version. Without `force`, the
    /// integration must answer first (one current value is read), so that a store that is
    /// down refuses the delete (503) instead of leaving values behind; with `force`, the
    /// rows go regardless and values that cannot be removed are recorded for `custodian gc`
    /// and named in the audit event.
    pub async fn delete_group(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        id: SecretGroupId,
        force: bool,
    ) -> Result<(), CoreError> {
        let group = self.visible_group(subject, id, Action::WriteSecretGroups).await?;
        if !force {
            let keys = self.ports.repos.secret_groups.keys(group.team_id, group.id).await?;
            if let Some(first) = keys.first() {
                let probe = self
                    .ports
                    .credential_store
                    .get(&value_key(group.team_id, first.secret.id), first.secret.version)
                    .await;
                if let Err(error @ StoreError::Unavailable { .. }) = probe {
                    return Err(error.into());
                }
            }
        }
        let audit = self.group_event(subject, ctx, AuditAction::Delete, &group, None);
        let deleted = self
            .ports
            .repos
            .secret_groups
            .delete(group.team_id, group.id, &audit)
            .await?;
        let left = self
            .remove_values(group.team_id, deleted.keys.iter().map(|k| k.secret.id))
            .await;
        if left > 0 {
            let mut event = self.group_event(
                subject,
                ctx,
                AuditAction::Delete,
                &group,
                Some(format!(
                    "the values of {left} key(s) could not be removed from the integration yet; recorded for `custodian gc`"
                )),
            );
            event.outcome = Outcome::Failure;
            self.record(&event).await?;
        }
        Ok(())
    }

    /// Create a group from a manifest, or find the one of that name (create or update by
    /// name). The manifest names the integration by FQN or id and, optionally, the owning
    /// team (`owned_by`, a team name); a group found must match both (its integration and
    /// team do not change). With `dry_run`, everything is checked and nothing is written:
    /// the answer is the group as it would be.
    pub async fn apply_group_manifest(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        manifest: GroupManifestInput,
        dry_run: bool,
    ) -> Result<GroupView, CoreError> {
        let mut errors = ValidationErrors::new();
        match manifest.kind.as_deref() {
            Some("secret-group") | None => {}
            Some(_) => errors.push(FieldError::new(
                &["manifest", "type"],
                kind::INVALID_ENUM,
                "must be \"secret-group\"",
            )),
        }
        let name = match manifest.name.as_deref() {
            Some(n) => errors.check(GroupName::parse_at("name", n).map_err(|e| e.under("manifest"))),
            None => {
                errors.push(FieldError::new(&["manifest", "name"], kind::MISSING, "is required"));
                None
            }
        };
        let integrations = self.integrations();
        let integration = match manifest.integration_fqn.as_deref() {
            None => {
                errors.push(FieldError::new(
                    &["manifest", "integration_fqn"],
                    kind::MISSING,
                    "is required",
                ));
                None
            }
            Some(given) => match integrations.iter().find(|i| i.fqn == given || i.id == given) {
                Some(found) => Some(found.id.clone()),
                None => {
                    errors.push(FieldError::new(
                        &["manifest", "integration_fqn"],
                        kind::NOT_FOUND,
                        format!(
                            "must name a configured integration; configured: {}",
                            integrations
                                .iter()
                                .map(|i| i.fqn.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                    None
                }
            },
        };
        if manifest.collaborators > 0 {
            errors.push(FieldError::new(
                &["manifest", "collaborators"],
                kind::NOT_ALLOWED,
                "must be empty: access to a group follows the roles of its team; add members to the team instead",
            ));
        }
        let owner = match manifest.owned_by.as_deref() {
            None => None,
            Some(team_name) => {
                let found = match Name::parse_at("account", team_name) {
                    Ok(name) => self.ports.repos.teams.find_by_name(&name).await?,
                    Err(_) => None,
                };
                match found {
                    // A team the caller is not in is not found, as everywhere.
                    Some(team) if self.authorize(subject, team.id, Action::ReadGroupKeys).await.is_ok() => {
                        Some(team.id)
                    }
                    _ => {
                        errors.push(FieldError::new(
                            &["manifest", "owned_by", "account"],
                            kind::NOT_FOUND,
                            "must name a team the caller belongs to",
                        ));
                        None
                    }
                }
            }
        };
        let (Some(name), Some(integration_id)) = (name, integration) else {
            return Err(errors.into());
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let existing = self
            .ports
            .repos
            .secret_groups
            .list(
                &TeamScope::All,
                &GroupFilter {
                    search: None,
                    name: Some(name.clone()),
                },
                Page { limit: 1, offset: 0 },
            )
            .await?
            .items
            .pop();
        if let Some(group) = existing {
            let scope = self.group_scope(subject).await?;
            if !scope.contains(group.team_id) {
                // The name is taken in a team the caller cannot see: as a create would answer.
                return Err(CoreError::Conflict(custodian_ports::ConflictKind::DuplicateName));
            }
            self.authorize(subject, group.team_id, Action::WriteSecretGroups)
                .await?;
            if group.integration_id != integration_id {
                return Err(CoreError::from(FieldError::new(
                    &["manifest", "integration_fqn"],
                    kind::NOT_ALLOWED,
                    format!(
                        "cannot change: the group's values are in the integration {}",
                        group.integration_id
                    ),
                )));
            }
            if owner.is_some_and(|team| team != group.team_id) {
                return Err(CoreError::from(FieldError::new(
                    &["manifest", "owned_by", "account"],
                    kind::NOT_ALLOWED,
                    "cannot change: a group stays in the team that created it",
                )));
            }
            // Nothing else in a manifest describes a group: it is up to date.
            return self.group_view(group, &mut HashMap::new()).await;
        }
        let input = CreateGroupInput {
            name: Some(name.as_str().to_owned()),
            integration_id: Some(integration_id),
            secrets: Some(Vec::new()),
        };
        let team = self
            .owning_team(subject, owner, &["manifest", "owned_by", "account"])
            .await?;
        if !dry_run {
            return self.create_group(subject, ctx, Some(team), input).await;
        }
        // The checks of a create, and the group it would make; nothing is written.
        self.authorize(subject, team, Action::WriteSecretGroups).await?;
        let ids: Vec<&str> = integrations.iter().map(|i| i.id.as_str()).collect();
        let new = NewSecretGroup::parse(input, &ids)?;
        let draft = new.into_draft(team, subject.id(), self.now(), &mut || self.ports.ids.new_id());
        Ok(GroupView {
            group: draft.group,
            created_by: SubjectSummary::of(subject),
            keys: Vec::new(),
        })
    }

    /// Read `subject`'s permission to see values in `team`: operator, and the deployment
    /// does not turn value reads off.
    async fn authorize_value_read(&self, subject: &Subject, team: TeamId) -> Result<(), CoreError> {
        match self.authorize(subject, team, Action::ReadGroupValues).await {
            Err(CoreError::Forbidden { .. }) => return Err(CoreError::ValueViewForbidden { by_setting: false }),
            other => other?,
        };
        if self.settings.disable_secret_value_view {
            return Err(CoreError::ValueViewForbidden { by_setting: true });
        }
        Ok(())
    }

    /// Record the read of `versions` of `key` by `subject`: an audit event, and for a
    /// virtual account the read that `activeDeploymentsCount` counts.
    async fn record_value_read(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        key: &GroupKeyDetails,
        versions: &[i64],
    ) -> Result<(), CoreError> {
        let name = format!("{}:{}", key.group_name, key.secret.key);
        let detail = match versions {
            [one] => format!("value of {name} version {one} read"),
            many => format!(
                "values of {name} versions {} read",
                many.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let event = self.key_event(subject, ctx, AuditAction::ReadValue, key, detail);
        match subject {
            Subject::VirtualAccount { id, .. } => {
                self.ports
                    .repos
                    .secret_groups
                    .record_read(key.secret.id, *id, self.now(), &event)
                    .await?;
                Ok(())
            }
            Subject::User { .. } => self.record(&event).await,
        }
    }

    /// One key with its value and versions (operator): every version with its value, or
    /// only `version` when given (`NotFound` at `version` when the key has no such version).
    /// The read is audited.
    pub async fn read_group_key(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        id: GroupSecretId,
        version: Option<i64>,
    ) -> Result<KeyView, CoreError> {
        let scope = self.group_scope(subject).await?;
        let details = self.ports.repos.secret_groups.get_key(&scope, id).await?;
        self.authorize_value_read(subject, details.team_id).await?;
        let wanted: Vec<GroupSecretVersion> = match version {
            None => details.versions.clone(),
            Some(n) => match details.versions.iter().find(|v| v.version == n) {
                Some(v) => vec![v.clone()],
                None => {
                    return Err(CoreError::from(FieldError::new(
                        &["version"],
                        kind::NOT_FOUND,
                        format!(
                            "names no version of this key; it has versions 1 to {}",
                            details.secret.version
                        ),
                    )));
                }
            },
        };
        let store_key = value_key(details.team_id, details.secret.id);
        let mut versions = Vec::with_capacity(wanted.len());
        for v in wanted {
            let value = self.ports.credential_store.get(&store_key, v.version).await?;
            versions.push(VersionView {
                version: v,
                value: Some(value),
            });
        }
        let shown = version.unwrap_or(details.secret.version);
        let value = versions
            .iter()
            .find(|v| v.version.version == shown)
            .and_then(|v| v.value.clone());
        let numbers: Vec<i64> = versions.iter().map(|v| v.version.version).collect();
        self.record_value_read(subject, ctx, &details, &numbers).await?;
        let mut view = self
            .key_views(vec![details], &mut HashMap::new())
            .await?
            .pop()
            .ok_or_else(|| CoreError::internal("a key view went missing"))?;
        view.value = value;
        view.versions = versions;
        Ok(view)
    }

    /// The keys `subject` sees matching `filter` (viewer), ordered by group then key; with
    /// `with_value`, each with its current value (operator of every team listed; each read
    /// audited).
    pub async fn list_group_keys(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        filter: KeyListInput,
        page: Page,
    ) -> Result<Paged<KeyView>, CoreError> {
        let fqns = match filter.secret_fqns {
            None => None,
            Some(raw) => {
                let mut errors = ValidationErrors::new();
                let mut parsed = Vec::with_capacity(raw.len());
                for (i, fqn) in raw.iter().enumerate() {
                    match KeyFqn::parse_at("fqn", &self.settings.tenant_name, fqn) {
                        Ok(f) => parsed.push(f),
                        // Another tenant's key is no key here.
                        Err(e) if e.kind == kind::NOT_FOUND => {}
                        Err(e) => errors.push(FieldError::new(&["secret_fqns", &i.to_string()], e.kind, e.msg)),
                    }
                }
                errors.finish(|| ())?;
                Some(parsed)
            }
        };
        let scope = self.group_scope(subject).await?;
        if let Some(group) = filter.secret_group_id {
            // A group the caller cannot see is not found, rather than an empty list.
            self.ports.repos.secret_groups.get_in(&scope, group).await?;
        }
        let keys = self
            .ports
            .repos
            .secret_groups
            .list_keys(
                &scope,
                &KeyFilter {
                    secret_group_id: filter.secret_group_id,
                    fqns,
                },
                page,
            )
            .await?;
        if filter.with_value {
            let mut teams: Vec<TeamId> = keys.items.iter().map(|k| k.team_id).collect();
            teams.sort_unstable();
            teams.dedup();
            for team in teams {
                self.authorize_value_read(subject, team).await?;
            }
        }
        let total = keys.total;
        let mut views = self.key_views(keys.items, &mut HashMap::new()).await?;
        if filter.with_value {
            for view in &mut views {
                let details = &view.details;
                let value = self
                    .ports
                    .credential_store
                    .get(&value_key(details.team_id, details.secret.id), details.secret.version)
                    .await?;
                self.record_value_read(subject, ctx, details, &[details.secret.version])
                    .await?;
                view.value = Some(value);
            }
        }
        Ok(Paged { items: views, total })
    }

    /// Delete one key (admin of its group's team) with every version; its values are
    /// removed from the integration after the commit. Returns how many keys were deleted (1).
    pub async fn delete_group_key(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        id: GroupSecretId,
    ) -> Result<u64, CoreError> {
        let scope = self.group_scope(subject).await?;
        let details = self.ports.repos.secret_groups.get_key(&scope, id).await?;
        self.authorize(subject, details.team_id, Action::WriteSecretGroups)
            .await?;
        let event = self.key_event(
            subject,
            ctx,
            AuditAction::Delete,
            &details,
            format!("key deleted with versions 1 to {}", details.secret.version),
        );
        let deleted = self
            .ports
            .repos
            .secret_groups
            .delete_key(details.team_id, id, &event)
            .await?;
        self.remove_values(deleted.team_id, [deleted.secret.id]).await;
        Ok(1)
    }
}

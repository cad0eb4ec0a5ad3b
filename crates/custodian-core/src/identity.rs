//! Identity: authentication, the caller, users and personal access tokens.

use std::fmt;

use chrono::{DateTime, Utc};
use custodian_domain::{
    AuditAction, AuditEvent, DisplayName, Email, FieldError, Outcome, RequestContext, ResourceType, Role, Subject,
    SubjectId, Team, TokenId, TokenName, TokenOwner, TokenRecord, User, UserId, UserPatch, UserPatchInput,
    ValidationErrors, error::kind,
};
use custodian_ports::{ConflictKind, Page, Paged, RepoError};
use secrecy::{ExposeSecret, SecretString};

use crate::{CoreError, Custodian};
use crate::{authz, subject_cache};

/// The prefix of every bearer token Custodian issues.
const TOKEN_PREFIX: &str = "cus_";

/// The most teams `me` lists.
const ME_TEAMS: u32 = 200;

/// A freshly issued bearer token: its record and the token itself, shown once.
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct IssuedToken {
    pub record: TokenRecord,
    pub token: SecretString,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// The caller and the teams they act in, with their role in each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub subject: Subject,
    pub teams: Vec<(Team, Role)>,
}

/// A request to create a user, as it arrives.
#[derive(Debug, Clone, Default)]
pub struct NewUserInput {
    pub email: Option<String>,
    /// Defaults to the part of the email before `@`.
    pub display_name: Option<String>,
    pub tenant_admin: bool,
}

/// Why a bearer token was refused. Holds the token record's id at most, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Not shaped like a Custodian token (no `cus_` prefix).
    Malformed,
    /// No token has this digest.
    Unknown,
    Expired(TokenId),
    Revoked(TokenId),
    /// The token's user or virtual account no longer exists.
    OwnerGone(TokenId),
    /// The token's virtual account has expired.
    AccountExpired(TokenId),
    /// The token's user was disabled by a tenant admin.
    OwnerDisabled(TokenId),
}

impl Refusal {
    fn token(self) -> Option<TokenId> {
        match self {
            Refusal::Malformed | Refusal::Unknown => None,
            Refusal::Expired(id)
            | Refusal::Revoked(id)
            | Refusal::OwnerGone(id)
            | Refusal::AccountExpired(id)
            | Refusal::OwnerDisabled(id) => Some(id),
        }
    }

    /// The audit event's `detail`: a fixed sentence, never anything the caller sent.
    fn detail(self) -> &'static str {
        match self {
            Refusal::Malformed => "not a Custodian token",
            Refusal::Unknown => "unknown token",
            Refusal::Expired(_) => "expired token",
            Refusal::Revoked(_) => "revoked token",
            Refusal::OwnerGone(_) => "the token's owner no longer exists",
            Refusal::AccountExpired(_) => "the token's virtual account has expired",
            Refusal::OwnerDisabled(_) => "the token's user is disabled",
        }
    }
}

/// The refusals of unknown tokens this process recorded in the current minute, and those it
/// only counted (since the last one recorded).
#[derive(Debug, Default)]
pub(crate) struct RefusalWindow {
    minute: i64,
    recorded: u32,
    uncounted: u64,
}

/// Whether a refusal of an unknown token is recorded.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// Record it, noting how many were only counted before it.
    Record { uncounted: u64 },
    /// Only count it; `first` for the first one counted this minute.
    Count { first: bool },
}

impl RefusalWindow {
    fn admit(&mut self, minute: i64, budget: u32) -> Admission {
        if minute != self.minute {
            self.minute = minute;
            self.recorded = 0;
        }
        if self.recorded < budget {
            self.recorded += 1;
            let uncounted = std::mem::take(&mut self.uncounted);
            Admission::Record { uncounted }
        } else {
            self.uncounted += 1;
            Admission::Count {
                first: self.recorded == budget && self.uncounted == 1,
            }
        }
    }
}

impl Custodian {
    /// The subject a bearer token belongs to, for a caller with no request context (an
    /// embedding service); see [`authenticate_with_context`](Self::authenticate_with_context).
    pub async fn authenticate(&self, token: &SecretString) -> Result<Subject, CoreError> {
        self.authenticate_with_context(token, &RequestContext::default()).await
    }

    /// The subject a bearer token belongs to.
    ///
    /// `Unauthenticated` when the token is not one of Custodian's, unknown, expired,
    /// revoked, or its owner is gone or (a virtual account) expired. Every such refusal is
    /// recorded as an `authenticate` audit event with outcome `failure`, no team and no
    /// actor, naming the token record when there is one and never the token or its digest;
    /// a refusal that cannot be recorded is logged and still answered `Unauthenticated`.
    /// A database that cannot be reached is an error, not a refusal. Records the use
    /// (`last_used_at`) on a best-effort basis, at most once per
    /// [`touch_interval`](crate::SubjectCacheSettings::touch_interval). A token accepted
    /// recently is answered from memory ([`subject_cache`](crate::subject_cache)).
    pub async fn authenticate_with_context(
        &self,
        token: &SecretString,
        ctx: &RequestContext,
    ) -> Result<Subject, CoreError> {
        match self.identify(token).await? {
            Ok(subject) => Ok(subject),
            Err(refusal) => {
                self.record_refusal(refusal, ctx).await;
                Err(CoreError::Unauthenticated)
            }
        }
    }

    /// The subject of `token`, or why it is refused; `Err` only when a port fails.
    async fn identify(&self, token: &SecretString) -> Result<Result<Subject, Refusal>, CoreError> {
        let token = token.expose_secret();
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(Err(Refusal::Malformed));
        }
        let digest = self.ports.token_issuer.digest(token);
        let now = self.now();
        let generation = match self.subjects.lookup(&digest, now, &*self.ports.repos.tokens).await {
            subject_cache::Lookup::Hit(subject) => {
                metrics::counter!("custodian_subject_cache_total", "outcome" => "hit").increment(1);
                return Ok(Ok(subject));
            }
            subject_cache::Lookup::Miss { generation } => {
                metrics::counter!("custodian_subject_cache_total", "outcome" => "miss").increment(1);
                generation
            }
        };
        let Some(record) = self.ports.repos.tokens.find_by_digest(&digest).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        if record.revoked_at.is_some_and(|r| r <= now) {
            return Ok(Err(Refusal::Revoked(record.id)));
        }
        if !record.is_usable(now) {
            return Ok(Err(Refusal::Expired(record.id)));
        }
        // The instants after which this subject may no longer be served from memory.
        let mut ends = vec![record.revoked_at, record.expires_at];
        let subject = match record.owner {
            TokenOwner::User(id) => match self.ports.repos.users.get(id).await {
                Ok(user) if user.disabled_at.is_some_and(|d| d <= now) => {
                    return Ok(Err(Refusal::OwnerDisabled(record.id)));
                }
                Ok(user) => {
                    ends.push(user.disabled_at);
                    Subject::User {
                        id: user.id,
                        email: user.email,
                        display_name: user.display_name,
                        tenant_admin: user.tenant_admin,
                    }
                }
                Err(RepoError::NotFound) => return Ok(Err(Refusal::OwnerGone(record.id))),
                Err(e) => return Err(e.into()),
            },
            TokenOwner::VirtualAccount(id) => match self.ports.repos.virtual_accounts.get_by_id(id).await {
                Ok(account) if account.expires_at.is_none_or(|e| e > now) => {
                    ends.push(account.expires_at);
                    Subject::VirtualAccount {
                        id: account.id,
                        team_id: account.team_id,
                        name: account.name,
                        role: account.role,
                    }
                }
                Ok(_) => return Ok(Err(Refusal::AccountExpired(record.id))),
                Err(RepoError::NotFound) => return Ok(Err(Refusal::OwnerGone(record.id))),
                Err(e) => return Err(e.into()),
            },
        };
        // A use is recorded at most once per interval: a token in steady use writes once
        // a minute, not on every request.
        let touch_due = chrono::Duration::from_std(self.subjects.settings().touch_interval).map_or(true, |interval| {
            record.last_used_at.is_none_or(|used| now - used >= interval)
        });
        if touch_due && let Err(error) = self.ports.repos.tokens.touch(record.id, now).await {
            tracing::warn!(token_id = %record.id, %error, "could not record a token's use");
        }
        self.subjects
            .keep(&digest, &subject, now, ends.into_iter().flatten(), generation);
        Ok(Ok(subject))
    }

    /// Record a refused authentication. The answer is `Unauthenticated` either way, so a
    /// failure to record is logged, not returned. A refusal of a token that names nothing
    /// (what random guesses are) is recorded one by one only up to the per-minute budget;
    /// past it, it is counted, and the count goes into the next one recorded.
    async fn record_refusal(&self, refusal: Refusal, ctx: &RequestContext) {
        let mut detail = refusal.detail().to_owned();
        if refusal.token().is_none() {
            let minute = self.now().timestamp().div_euclid(60);
            let budget = self.settings.unknown_token_events_per_minute;
            let admitted = self
                .unknown_refusals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .admit(minute, budget);
            match admitted {
                Admission::Record { uncounted: 0 } => {}
                Admission::Record { uncounted } => detail.push_str(&format!(
                    "; {uncounted} earlier refusal(s) of unknown tokens were counted, not recorded one by one"
                )),
                Admission::Count { first } => {
                    if first {
                        tracing::warn!(
                            budget,
                            "refused authentications of unknown tokens are over the per-minute budget; the rest \
                             of this minute is counted, not recorded one by one"
                        );
                    }
                    return;
                }
            }
        }
        let event = AuditEvent {
            detail: Some(detail),
            ..self.event_by(
                None,
                ctx,
                None,
                AuditAction::Authenticate,
                (ResourceType::Token, refusal.token().map(|id| id.as_uuid()), None),
                Outcome::Failure,
            )
        };
        if let Err(error) = self.ports.repos.audit.record(&event).await {
            tracing::error!(
                reason = refusal.detail(),
                token_id = ?event.resource_id,
                %error,
                "could not record a refused authentication"
            );
        }
    }

    /// The caller and their teams (a tenant admin's own memberships; a virtual account's
    /// one team).
    pub async fn me(&self, subject: &Subject) -> Result<Me, CoreError> {
        let teams = match subject {
            Subject::User { id, .. } => {
                self.ports
                    .repos
                    .teams
                    .list_for_user(
                        *id,
                        Page {
                            limit: ME_TEAMS,
                            offset: 0,
                        },
                    )
                    .await?
                    .items
            }
            Subject::VirtualAccount { team_id, role, .. } => {
                vec![(self.ports.repos.teams.get(*team_id).await?, *role)]
            }
        };
        Ok(Me {
            subject: subject.clone(),
            teams,
        })
    }

    /// Create a user with a first personal access token (tenant admin only).
    /// `Conflict(DuplicateEmail)` when the email is taken.
    pub async fn create_user(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        input: NewUserInput,
    ) -> Result<(User, IssuedToken), CoreError> {
        authz::require_tenant_admin(subject)?;
        let mut errors = ValidationErrors::new();
        let email = match input.email.as_deref() {
            Some(e) => errors.check(Email::parse_at("email", e)),
            None => {
                errors.push(FieldError::new(&["email"], kind::MISSING, "is required"));
                None
            }
        };
        let display_name = match (input.display_name, &email) {
            (Some(d), _) => errors.check(DisplayName::parse_at("display_name", d)),
            (None, Some(e)) => errors.check(DisplayName::from_email(e)),
            (None, None) => None,
        };
        let (Some(email), Some(display_name)) = (email, display_name) else {
            return Err(errors.into());
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let now = self.now();
        let user = User {
            id: UserId::from_uuid(self.ports.ids.new_id()),
            email,
            display_name,
            tenant_admin: input.tenant_admin,
            created_at: now,
            disabled_at: None,
        };
        let name = TokenName::parse_at("name", "initial").map_err(|e| CoreError::internal(e.to_string()))?;
        let issued = self.issue_token(TokenOwner::User(user.id), Some(name), None);
        let audit = self.audit_event(
            subject,
            ctx,
            None,
            AuditAction::Create,
            (ResourceType::User, Some(user.id.as_uuid()), Some(user.email.as_str())),
            Outcome::Success,
        );
        self.ports
            .repos
            .users
            .create(&user, Some(issued.record.clone()), &audit)
            .await?;
        Ok((user, issued))
    }

    /// Every user, by email (tenant admin only).
    pub async fn list_users(&self, subject: &Subject, page: Page) -> Result<Paged<User>, CoreError> {
        authz::require_tenant_admin(subject)?;
        Ok(self.ports.repos.users.list(page).await?)
    }

    /// One user (tenant admin).
    pub async fn get_user(&self, subject: &Subject, id: UserId) -> Result<User, CoreError> {
        authz::require_tenant_admin(subject)?;
        Ok(self.ports.repos.users.get(id).await?)
    }

    /// Change a user's display name, tenant-admin flag or disabled state (tenant admin), in
    /// one write with its audit event. Disabling refuses every token of the user from the
    /// next request on; enabling accepts them again (those not revoked or expired meanwhile).
    /// A tenant admin cannot disable themselves or give up their own tenant admin: another
    /// one must, so the tenant always keeps an admin who can undo it.
    pub async fn update_user(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        id: UserId,
        input: UserPatchInput,
    ) -> Result<User, CoreError> {
        authz::require_tenant_admin(subject)?;
        let patch = UserPatch::parse(input)?;
        let current = self.ports.repos.users.get(id).await?;
        if subject.id() == SubjectId::from(id) {
            let mut errors = ValidationErrors::new();
            if patch.disabled == Some(true) {
                errors.push(FieldError::new(
                    &["disabled"],
                    "self_lockout",
                    "a tenant admin cannot disable themselves; another tenant admin can",
                ));
            }
            if patch.tenant_admin == Some(false) {
                errors.push(FieldError::new(
                    &["tenant_admin"],
                    "self_lockout",
                    "a tenant admin cannot give up their own tenant admin; another tenant admin can",
                ));
            }
            if !errors.is_empty() {
                return Err(errors.into());
            }
        }
        let mut next = current.clone();
        if let Some(display_name) = patch.display_name {
            next.display_name = display_name;
        }
        if let Some(tenant_admin) = patch.tenant_admin {
            next.tenant_admin = tenant_admin;
        }
        let detail = match patch.disabled {
            Some(true) if current.disabled_at.is_none() => {
                next.disabled_at = Some(self.now());
                "disabled the user: every token of theirs is refused"
            }
            Some(false) if current.disabled_at.is_some() => {
                next.disabled_at = None;
                "enabled the user"
            }
            _ => "updated the user",
        };
        let mut audit = self.audit_event(
            subject,
            ctx,
            None,
            AuditAction::Update,
            (ResourceType::User, Some(next.id.as_uuid()), Some(next.email.as_str())),
            Outcome::Success,
        );
        audit.detail = Some(detail.to_owned());
        self.ports.repos.users.update(&next, &audit).await?;
        self.subjects.forget_all();
        Ok(next)
    }

    /// Delete a user (tenant admin): their tokens and memberships go with them, in one
    /// write with its audit event. Refused (409 `last_owner`, naming the teams) while they
    /// are the only owner of a team: make someone else owner first. A tenant admin cannot
    /// delete themselves.
    pub async fn delete_user(&self, subject: &Subject, ctx: &RequestContext, id: UserId) -> Result<(), CoreError> {
        authz::require_tenant_admin(subject)?;
        if subject.id() == SubjectId::from(id) {
            let mut errors = ValidationErrors::new();
            errors.push(FieldError::new(
                &["user_id"],
                "self_lockout",
                "a tenant admin cannot delete themselves; another tenant admin can",
            ));
            return Err(errors.into());
        }
        let user = self.ports.repos.users.get(id).await?;
        let audit = self.audit_event(
            subject,
            ctx,
            None,
            AuditAction::Delete,
            (ResourceType::User, Some(user.id.as_uuid()), Some(user.email.as_str())),
            Outcome::Success,
        );
        let deleted = self.ports.repos.users.delete(id, &audit).await;
        self.subjects.forget_all();
        match deleted {
            Err(RepoError::Conflict(ConflictKind::LastOwner)) => Err(CoreError::LastOwnerOf {
                teams: self.teams_only_owned_by(id).await?,
            }),
            other => Ok(other?),
        }
    }

    /// The names of the teams whose only owner is `user`, by name.
    async fn teams_only_owned_by(&self, user: UserId) -> Result<Vec<String>, CoreError> {
        let mut names = Vec::new();
        for membership in self.ports.repos.memberships.list_for_user(user).await? {
            if membership.role != Role::Owner {
                continue;
            }
            let members = self
                .ports
                .repos
                .memberships
                .list(membership.team_id, Page { limit: 1000, offset: 0 })
                .await?;
            let owners = members.items.iter().filter(|(m, _)| m.role == Role::Owner).count();
            if owners <= 1 {
                names.push(
                    self.ports
                        .repos
                        .teams
                        .get(membership.team_id)
                        .await?
                        .name
                        .as_str()
                        .to_owned(),
                );
            }
        }
        names.sort();
        Ok(names)
    }

    /// Issue a personal access token to the calling user. `name`: 3–36 of `[a-z][a-z0-9-]*`;
    /// `expires_at`, when given, must be in the future.
    pub async fn create_personal_token(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedToken, CoreError> {
        let user = authz::require_user(subject)?;
        let mut errors = ValidationErrors::new();
        let name = errors.check(TokenName::parse_at("name", name));
        let now = self.now();
        if expires_at.is_some_and(|e| e <= now) {
            errors.push(FieldError::new(
                &["expirationDate"],
                kind::OUT_OF_RANGE,
                "must be in the future",
            ));
        }
        let name = match name {
            Some(n) if errors.is_empty() => n,
            _ => return Err(errors.into()),
        };
        let issued = self.issue_token(TokenOwner::User(user), Some(name), expires_at);
        let audit = self.token_event(subject, ctx, AuditAction::Create, &issued.record);
        self.ports.repos.tokens.create(&issued.record, &audit).await?;
        Ok(issued)
    }

    /// The calling user's personal access tokens, newest first (never the tokens themselves).
    pub async fn list_personal_tokens(&self, subject: &Subject) -> Result<Vec<TokenRecord>, CoreError> {
        let user = authz::require_user(subject)?;
        Ok(self.ports.repos.tokens.list_for_owner(TokenOwner::User(user)).await?)
    }

    /// Revoke one of the calling user's personal access tokens now. Another user's token is
    /// `NotFound`, like one that does not exist.
    pub async fn revoke_personal_token(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        id: TokenId,
    ) -> Result<(), CoreError> {
        let user = authz::require_user(subject)?;
        let record = self.ports.repos.tokens.get(id).await?;
        if record.owner != TokenOwner::User(user) {
            return Err(CoreError::NotFound);
        }
        let audit = self.token_event(subject, ctx, AuditAction::Revoke, &record);
        self.ports.repos.tokens.revoke(id, self.now(), &audit).await?;
        self.subjects.forget_all();
        Ok(())
    }

    /// A new token for `owner` and its record (not yet stored).
    pub(crate) fn issue_token(
        &self,
        owner: TokenOwner,
        name: Option<TokenName>,
        expires_at: Option<DateTime<Utc>>,
    ) -> IssuedToken {
        let token = self.ports.token_issuer.generate();
        let record = TokenRecord {
            id: TokenId::from_uuid(self.ports.ids.new_id()),
            owner,
            name,
            digest: self.ports.token_issuer.digest(token.expose_secret()),
            created_at: self.now(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        IssuedToken { record, token }
    }

    fn token_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        record: &TokenRecord,
    ) -> custodian_domain::AuditEvent {
        self.audit_event(
            subject,
            ctx,
            None,
            action,
            (
                ResourceType::Token,
                Some(record.id.as_uuid()),
                record.name.as_ref().map(TokenName::as_str),
            ),
            Outcome::Success,
        )
    }
}

#[cfg(test)]
mod tests;

//! Secret groups (`/api/svc/v1`, the secret-group API): named groups of key/value application
//! secrets. Each key has numbered versions 1, 2, 3…; every version's value lives in the
//! group's integration (a credential store), never in these records.
//!
//! Create: `NewSecretGroup::parse` checks the request, `into_draft` gives the records to
//! store and the values to write. Update (a `PUT` that replaces the key set):
//! `GroupUpdate::parse` checks the request, `plan` compares it with the stored keys
//! (keys to add, keys whose value changes, keys kept, keys left out and so deleted), and
//! `GroupUpdatePlan::into_changes` gives the change set to store and the values to write.
//!
//! Paths of field errors are relative to the request body and use the domain's snake_case
//! names (`["secrets", "2", "key"]`, `["integration_id"]`); the HTTP layer renames them
//! for its wire shape.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::error::{FieldError, ValidationErrors, kind};
use crate::ids::{GroupSecretId, GroupSecretVersionId, SecretGroupId, SubjectId, TeamId};
use crate::text::bounded;

/// The largest value of one key, in bytes (UTF-8).
pub const MAX_GROUP_SECRET_VALUE_BYTES: usize = 32 * 1024;

/// The longest integration id accepted.
pub const MAX_INTEGRATION_ID_CHARS: usize = 255;

/// How far back a virtual account's read of a key counts for `activeDeploymentsCount`.
pub const ACTIVE_READ_WINDOW_HOURS: i64 = 24;

/// The earliest read that still counts for `activeDeploymentsCount` at `now`.
pub fn active_reads_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::hours(ACTIVE_READ_WINDOW_HOURS)
}

/// The scheme every fully qualified name starts with.
const FQN_SCHEME: &str = "custodian://";

/// A secret group's name: 3–64 characters of `[a-z0-9-]`, starting with a letter. Unique
/// per tenant, so it can appear in an FQN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 64;

    /// Parse `value`, reporting a failure at path `[loc]`.
    pub fn parse_at(loc: &str, value: &str) -> Result<Self, FieldError> {
        let len = value.chars().count();
        if len < Self::MIN_CHARS {
            return Err(FieldError::new(
                &[loc],
                kind::TOO_SHORT,
                format!("must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if len > Self::MAX_CHARS {
            return Err(FieldError::new(
                &[loc],
                kind::TOO_LONG,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(FieldError::new(
                &[loc],
                kind::INVALID_FORMAT,
                "must start with a lowercase letter and hold only lowercase letters, digits and '-'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of one secret in a group: `^[A-Za-z_][A-Za-z0-9_]*$`, 1–255 characters, unique
/// in its group (case-sensitive, like an environment variable).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretKey(String);

impl SecretKey {
    pub const MAX_CHARS: usize = 255;

    /// Parse `value`, reporting a failure at path `[loc]`.
    pub fn parse_at(loc: &str, value: &str) -> Result<Self, FieldError> {
        if value.is_empty() {
            return Err(FieldError::new(&[loc], kind::TOO_SHORT, "must not be empty"));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                &[loc],
                kind::TOO_LONG,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(FieldError::new(
                &[loc],
                kind::INVALID_FORMAT,
                "must match ^[A-Za-z_][A-Za-z0-9_]*$ (letters, digits and '_', not starting with a digit)",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The value of one version of a key: 1 byte to 32 KiB, kept exactly as given (no
/// trimming: values are opaque). `Debug` never shows it.
#[derive(Clone)]
pub struct GroupSecretValue(SecretString);

impl GroupSecretValue {
    /// Parse `value`, reporting a failure at path `[loc]` (the message never holds the value).
    pub fn parse_at(loc: &str, value: SecretString) -> Result<Self, FieldError> {
        let len = value.expose_secret().len();
        if len == 0 {
            return Err(FieldError::new(&[loc], kind::TOO_SHORT, "must not be empty"));
        }
        if len > MAX_GROUP_SECRET_VALUE_BYTES {
            return Err(FieldError::new(
                &[loc],
                kind::TOO_LONG,
                format!("must be at most {MAX_GROUP_SECRET_VALUE_BYTES} bytes"),
            ));
        }
        Ok(Self(value))
    }

    /// The value, as a secret.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// The value's length in bytes (for size rules of an integration).
    pub fn len_bytes(&self) -> usize {
        self.0.expose_secret().len()
    }

    /// Whether this value equals `other` (compared in full, never printed).
    pub fn same_as(&self, other: &SecretString) -> bool {
        self.0.expose_secret() == other.expose_secret()
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl fmt::Debug for GroupSecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupSecretValue([REDACTED])")
    }
}

/// A secret group's metadata. Its keys are [`GroupSecret`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretGroup {
    pub id: SecretGroupId,
    pub team_id: TeamId,
    pub name: GroupName,
    /// The integration (configured credential store) holding the values.
    pub integration_id: String,
    pub created_at: DateTime<Utc>,
    pub created_by: SubjectId,
    pub updated_at: DateTime<Utc>,
    pub updated_by: SubjectId,
}

/// One key of a group and the version of its value in use. The value of version `n` is in
/// the credential store under the key's id, version `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSecret {
    pub id: GroupSecretId,
    pub group_id: SecretGroupId,
    pub key: SecretKey,
    /// The current version (the newest); starts at 1.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: SubjectId,
    pub updated_at: DateTime<Utc>,
    pub updated_by: SubjectId,
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSecretVersion {
    pub id: GroupSecretVersionId,
    pub secret_id: GroupSecretId,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

/// One `{key, value}` entry as it arrives. `None` means absent or `null`.
#[derive(Debug, Default, Clone)]
pub struct GroupSecretInput {
    pub key: Option<String>,
    pub value: Option<SecretString>,
}

/// A create request as it arrives: `{name, integration_id, secrets: [{key, value}]}`.
#[derive(Debug, Default, Clone)]
pub struct CreateGroupInput {
    pub name: Option<String>,
    pub integration_id: Option<String>,
    pub secrets: Option<Vec<GroupSecretInput>>,
}

/// A checked key with its first value.
#[derive(Debug, Clone)]
pub struct NewGroupSecret {
    pub key: SecretKey,
    pub value: GroupSecretValue,
}

/// A checked create request.
#[derive(Debug, Clone)]
pub struct NewSecretGroup {
    pub name: GroupName,
    pub integration_id: String,
    pub secrets: Vec<NewGroupSecret>,
}

/// A value to write to the credential store: `version` of the key `secret_id`.
#[derive(Debug, Clone)]
pub struct ValueToStore {
    pub secret_id: GroupSecretId,
    pub version: i64,
    pub value: GroupSecretValue,
}

/// A key to insert, with its version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroupKey {
    pub secret: GroupSecret,
    pub first_version: GroupSecretVersion,
}

/// Everything a create stores: the group row, its keys at version 1, and the values to
/// write to the credential store first.
#[derive(Debug, Clone)]
pub struct GroupDraft {
    pub group: SecretGroup,
    pub keys: Vec<NewGroupKey>,
    pub values: Vec<ValueToStore>,
}

fn missing(loc: &[&str]) -> FieldError {
    FieldError::new(loc, kind::MISSING, "is required")
}

/// A checked `(key, value)` list: every key well-formed and given once, every given value
/// within bounds. Errors are at `["secrets", i, "key" | "value"]`; `value_required` makes
/// an absent value an error.
fn parse_entries(
    errors: &mut ValidationErrors,
    raw: Vec<GroupSecretInput>,
    value_required: bool,
) -> Vec<(usize, SecretKey, Option<GroupSecretValue>)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(raw.len());
    for (i, entry) in raw.into_iter().enumerate() {
        let index = i.to_string();
        let at = |e: FieldError| e.under(&index).under("secrets");
        let key = match entry.key {
            None => {
                errors.push(missing(&["secrets", &index, "key"]));
                None
            }
            Some(raw_key) => match SecretKey::parse_at("key", &raw_key) {
                Err(e) => {
                    errors.push(at(e));
                    None
                }
                Ok(key) => match seen.get(key.as_str()) {
                    Some(first) => {
                        errors.push(FieldError::new(
                            &["secrets", &index, "key"],
                            kind::DUPLICATE,
                            format!("is given more than once in the group (first at secrets.{first})"),
                        ));
                        None
                    }
                    None => {
                        seen.insert(key.as_str().to_owned(), i);
                        Some(key)
                    }
                },
            },
        };
        let value = match entry.value {
            None if value_required => {
                errors.push(missing(&["secrets", &index, "value"]));
                None
            }
            None => None,
            Some(v) => match GroupSecretValue::parse_at("value", v) {
                Ok(value) => Some(value),
                Err(e) => {
                    errors.push(at(e));
                    None
                }
            },
        };
        if let Some(key) = key {
            entries.push((i, key, value));
        }
    }
    entries
}

impl NewSecretGroup {
    /// Check a create request. `integrations` are the ids of the configured integrations;
    /// `integration_id` must be one of them.
    ///
    /// Rules: `name` a [`GroupName`]; `integration_id` present, 1–255 characters, naming an
    /// integration; `secrets` present (it may be empty), each entry with a [`SecretKey`]
    /// given once in the group and a [`GroupSecretValue`]. Every failing field is reported,
    /// at `["name"]`, `["integration_id"]`, `["secrets"]` or `["secrets", i, "key"|"value"]`.
    /// Whether the name is free in the tenant is the repository's check.
    pub fn parse(input: CreateGroupInput, integrations: &[&str]) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = match input.name {
            Some(n) => errors.check(GroupName::parse_at("name", &n)),
            None => {
                errors.push(missing(&["name"]));
                None
            }
        };
        let integration_id = match input.integration_id {
            None => {
                errors.push(missing(&["integration_id"]));
                None
            }
            Some(id) => match bounded("integration_id", &id, 1, MAX_INTEGRATION_ID_CHARS) {
                Err(e) => {
                    errors.push(e);
                    None
                }
                Ok(()) if !integrations.contains(&id.as_str()) => {
                    errors.push(FieldError::new(
                        &["integration_id"],
                        kind::NOT_FOUND,
                        format!(
                            "must name a configured integration; configured: {}",
                            integrations.join(", ")
                        ),
                    ));
                    None
                }
                Ok(()) => Some(id),
            },
        };
        let secrets = match input.secrets {
            None => {
                errors.push(missing(&["secrets"]));
                None
            }
            Some(raw) => Some(parse_entries(&mut errors, raw, true)),
        };
        match (name, integration_id, secrets) {
            (Some(name), Some(integration_id), Some(secrets)) if errors.is_empty() => Ok(Self {
                name,
                integration_id,
                secrets: secrets
                    .into_iter()
                    .filter_map(|(_, key, value)| value.map(|value| NewGroupSecret { key, value }))
                    .collect(),
            }),
            _ => Err(errors),
        }
    }

    /// The records of the new group in `team`, created by `actor` at `now`, with fresh ids
    /// from `new_id`: every key at version 1, and the values to write first.
    pub fn into_draft(
        self,
        team_id: TeamId,
        actor: SubjectId,
        now: DateTime<Utc>,
        new_id: &mut dyn FnMut() -> Uuid,
    ) -> GroupDraft {
        let group = SecretGroup {
            id: SecretGroupId::from_uuid(new_id()),
            team_id,
            name: self.name,
            integration_id: self.integration_id,
            created_at: now,
            created_by: actor,
            updated_at: now,
            updated_by: actor,
        };
        let mut keys = Vec::with_capacity(self.secrets.len());
        let mut values = Vec::with_capacity(self.secrets.len());
        for entry in self.secrets {
            let key = new_key(group.id, entry.key, actor, now, new_id);
            values.push(ValueToStore {
                secret_id: key.secret.id,
                version: 1,
                value: entry.value,
            });
            keys.push(key);
        }
        GroupDraft { group, keys, values }
    }
}

fn new_key(
    group_id: SecretGroupId,
    key: SecretKey,
    actor: SubjectId,
    now: DateTime<Utc>,
    new_id: &mut dyn FnMut() -> Uuid,
) -> NewGroupKey {
    let secret = GroupSecret {
        id: GroupSecretId::from_uuid(new_id()),
        group_id,
        key,
        version: 1,
        created_at: now,
        created_by: actor,
        updated_at: now,
        updated_by: actor,
    };
    let first_version = GroupSecretVersion {
        id: GroupSecretVersionId::from_uuid(new_id()),
        secret_id: secret.id,
        version: 1,
        created_at: now,
    };
    NewGroupKey { secret, first_version }
}

/// An update request as it arrives: `{secrets: [{key, value?}]}`.
#[derive(Debug, Default, Clone)]
pub struct UpdateGroupInput {
    pub secrets: Option<Vec<GroupSecretInput>>,
}

/// A checked update request, not yet compared with the stored keys.
#[derive(Debug, Clone)]
pub struct GroupUpdate {
    /// `(index in the request, key, new value if given)`.
    entries: Vec<(usize, SecretKey, Option<GroupSecretValue>)>,
}

/// A key whose value changes: `secret` as read, and the value of its next version
/// (`secret.version + 1`).
#[derive(Debug, Clone)]
pub struct ChangedGroupSecret {
    pub secret: GroupSecret,
    pub value: GroupSecretValue,
}

/// What an update does to a group's keys. Every stored key is in exactly one of
/// `changed`, `kept` and `deleted`.
#[derive(Debug, Clone)]
pub struct GroupUpdatePlan {
    /// Keys the group does not have yet: stored at version 1.
    pub added: Vec<NewGroupSecret>,
    /// Keys given with a value that differs from the current one: a new version each.
    pub changed: Vec<ChangedGroupSecret>,
    /// Keys given without a value, or with their current value: untouched.
    pub kept: Vec<GroupSecret>,
    /// Keys left out of the request: deleted with every version.
    pub deleted: Vec<GroupSecret>,
}

/// A group update ready to store, with an optimistic check: it applies only while the
/// group's keys are exactly `expected` (same ids, same versions, no other key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChanges {
    pub team_id: TeamId,
    pub group_id: SecretGroupId,
    /// Every key of the group as read, with its version.
    pub expected: Vec<(GroupSecretId, i64)>,
    /// New keys at version 1.
    pub added: Vec<NewGroupKey>,
    /// A new version of each changed key; it becomes the key's current version.
    pub new_versions: Vec<GroupSecretVersion>,
    /// Keys deleted with all their versions.
    pub deleted: Vec<GroupSecretId>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: SubjectId,
}

impl GroupUpdate {
    /// Check an update request: `secrets` present (empty deletes every key), each entry with
    /// a [`SecretKey`] given once and, when given, a [`GroupSecretValue`]. Every failing
    /// field is reported, at `["secrets"]` or `["secrets", i, "key"|"value"]`.
    pub fn parse(input: UpdateGroupInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let entries = match input.secrets {
            None => {
                errors.push(missing(&["secrets"]));
                Vec::new()
            }
            Some(raw) => parse_entries(&mut errors, raw, false),
        };
        errors.finish(|| Self { entries })
    }

    /// The stored keys (of `current`) that the request gives a value for: the caller reads
    /// their current values so [`plan`](Self::plan) can tell a changed value from the same one.
    pub fn values_to_compare(&self, current: &[GroupSecret]) -> Vec<GroupSecretId> {
        current
            .iter()
            .filter(|s| {
                self.entries
                    .iter()
                    .any(|(_, key, value)| value.is_some() && *key == s.key)
            })
            .map(|s| s.id)
            .collect()
    }

    /// Compare the request with the group's stored keys `current`. `current_values` holds
    /// the current value of keys named by [`values_to_compare`](Self::values_to_compare);
    /// a key whose current value is not there counts as changed.
    ///
    /// A key the group does not have needs a value: else an error at `["secrets", i, "value"]`.
    pub fn plan(
        self,
        current: &[GroupSecret],
        current_values: &HashMap<GroupSecretId, SecretString>,
    ) -> Result<GroupUpdatePlan, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let by_key: HashMap<&SecretKey, &GroupSecret> = current.iter().map(|s| (&s.key, s)).collect();
        let mut named: HashSet<GroupSecretId> = HashSet::new();
        let mut plan = GroupUpdatePlan {
            added: Vec::new(),
            changed: Vec::new(),
            kept: Vec::new(),
            deleted: Vec::new(),
        };
        for (index, key, value) in self.entries {
            match (by_key.get(&key), value) {
                (None, Some(value)) => plan.added.push(NewGroupSecret { key, value }),
                (None, None) => errors.push(FieldError::new(
                    &["secrets", &index.to_string(), "value"],
                    kind::MISSING,
                    "is required for a key the group does not have",
                )),
                (Some(stored), value) => {
                    named.insert(stored.id);
                    match value {
                        Some(value) if !current_values.get(&stored.id).is_some_and(|v| value.same_as(v)) => {
                            plan.changed.push(ChangedGroupSecret {
                                secret: (*stored).clone(),
                                value,
                            });
                        }
                        _ => plan.kept.push((*stored).clone()),
                    }
                }
            }
        }
        plan.deleted = current.iter().filter(|s| !named.contains(&s.id)).cloned().collect();
        errors.finish(|| plan)
    }
}

impl GroupUpdatePlan {
    /// Whether the update changes nothing (every key kept).
    pub fn is_unchanged(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }

    /// The change set for `group`, made by `actor` at `now` with fresh ids from `new_id`,
    /// and the values to write to the credential store before storing it.
    pub fn into_changes(
        self,
        group: &SecretGroup,
        actor: SubjectId,
        now: DateTime<Utc>,
        new_id: &mut dyn FnMut() -> Uuid,
    ) -> (GroupChanges, Vec<ValueToStore>) {
        let mut expected: Vec<(GroupSecretId, i64)> = Vec::new();
        expected.extend(self.kept.iter().map(|s| (s.id, s.version)));
        expected.extend(self.changed.iter().map(|c| (c.secret.id, c.secret.version)));
        expected.extend(self.deleted.iter().map(|s| (s.id, s.version)));
        let mut values = Vec::new();
        let mut added = Vec::with_capacity(self.added.len());
        for entry in self.added {
            let key = new_key(group.id, entry.key, actor, now, new_id);
            values.push(ValueToStore {
                secret_id: key.secret.id,
                version: 1,
                value: entry.value,
            });
            added.push(key);
        }
        let mut new_versions = Vec::with_capacity(self.changed.len());
        for changed in self.changed {
            let version = changed.secret.version + 1;
            new_versions.push(GroupSecretVersion {
                id: GroupSecretVersionId::from_uuid(new_id()),
                secret_id: changed.secret.id,
                version,
                created_at: now,
            });
            values.push(ValueToStore {
                secret_id: changed.secret.id,
                version,
                value: changed.value,
            });
        }
        let changes = GroupChanges {
            team_id: group.team_id,
            group_id: group.id,
            expected,
            added,
            new_versions,
            deleted: self.deleted.iter().map(|s| s.id).collect(),
            updated_at: now,
            updated_by: actor,
        };
        (changes, values)
    }
}

/// The FQN of a group: `custodian://<tenant>:<group>`.
pub fn group_fqn(tenant: &str, group: &GroupName) -> String {
    format!("{FQN_SCHEME}{tenant}:{group}")
}

/// The FQN of an integration (a credential store group values can live in):
/// `custodian://<tenant>/integration/<id>`. The `/` keeps it apart from group and key FQNs.
pub fn integration_fqn(tenant: &str, id: &str) -> String {
    format!("{FQN_SCHEME}{tenant}/integration/{id}")
}

/// The FQN of a key: `custodian://<tenant>:<group>:<key>`.
pub fn key_fqn(tenant: &str, group: &GroupName, key: &SecretKey) -> String {
    format!("{FQN_SCHEME}{tenant}:{group}:{key}")
}

/// The part of `value` after `custodian://<tenant>:`, or an error at `[loc]`.
fn fqn_rest<'a>(loc: &str, tenant: &str, value: &'a str, shape: &str) -> Result<&'a str, FieldError> {
    let rest = value.strip_prefix(FQN_SCHEME).ok_or_else(|| {
        FieldError::new(
            &[loc],
            kind::INVALID_FORMAT,
            format!("must be an FQN {FQN_SCHEME}{shape}"),
        )
    })?;
    rest.strip_prefix(tenant)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(|| FieldError::new(&[loc], kind::NOT_FOUND, format!("must name this tenant ({tenant})")))
}

/// Parse a group FQN `custodian://<tenant>:<group>` of this `tenant`, reporting a failure at
/// `[loc]`: `invalid_format` when malformed, `not_found` when it names another tenant.
pub fn parse_group_fqn(loc: &str, tenant: &str, value: &str) -> Result<GroupName, FieldError> {
    let rest = fqn_rest(loc, tenant, value, "<tenant>:<group>")?;
    GroupName::parse_at(loc, rest).map_err(|_| {
        FieldError::new(
            &[loc],
            kind::INVALID_FORMAT,
            format!("must be a group FQN {FQN_SCHEME}<tenant>:<group>"),
        )
    })
}

/// A parsed key FQN `custodian://<tenant>:<group>:<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyFqn {
    pub group: GroupName,
    pub key: SecretKey,
}

impl KeyFqn {
    /// Parse a key FQN of this `tenant`, reporting a failure at `[loc]`: `invalid_format`
    /// when malformed, `not_found` when it names another tenant.
    pub fn parse_at(loc: &str, tenant: &str, value: &str) -> Result<Self, FieldError> {
        let malformed = || {
            FieldError::new(
                &[loc],
                kind::INVALID_FORMAT,
                format!("must be a key FQN {FQN_SCHEME}<tenant>:<group>:<key>"),
            )
        };
        let rest = fqn_rest(loc, tenant, value, "<tenant>:<group>:<key>")?;
        let (group, key) = rest.split_once(':').ok_or_else(malformed)?;
        Ok(Self {
            group: GroupName::parse_at(loc, group).map_err(|_| malformed())?,
            key: SecretKey::parse_at(loc, key).map_err(|_| malformed())?,
        })
    }

    /// The FQN again, for `tenant`.
    pub fn to_fqn(&self, tenant: &str) -> String {
        key_fqn(tenant, &self.group, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn secret(value: &str) -> SecretString {
        SecretString::from(value)
    }

    fn entry(key: &str, value: Option<&str>) -> GroupSecretInput {
        GroupSecretInput {
            key: Some(key.to_owned()),
            value: value.map(secret),
        }
    }

    fn create(name: &str, secrets: Vec<GroupSecretInput>) -> CreateGroupInput {
        CreateGroupInput {
            name: Some(name.to_owned()),
            integration_id: Some("local".to_owned()),
            secrets: Some(secrets),
        }
    }

    const INTEGRATIONS: &[&str] = &["local", "aws-ssm"];

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("a valid instant")
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    fn paths(errors: &ValidationErrors) -> Vec<String> {
        errors.errors().iter().map(FieldError::path).collect()
    }

    #[test]
    fn group_names_follow_the_rule() {
        for ok in ["abc", "a-1", "payments-prod", "a23", &"a".repeat(64)] {
            assert!(GroupName::parse_at("name", ok).is_ok(), "{ok} is a valid group name");
        }
        for (bad, expected) in [
            ("ab", kind::TOO_SHORT),
            ("", kind::TOO_SHORT),
            (&"a".repeat(65) as &str, kind::TOO_LONG),
            ("1abc", kind::INVALID_FORMAT),
            ("-abc", kind::INVALID_FORMAT),
            ("Abc", kind::INVALID_FORMAT),
            ("ab_c", kind::INVALID_FORMAT),
            ("ab c", kind::INVALID_FORMAT),
            ("abé", kind::INVALID_FORMAT),
            ("ab:c", kind::INVALID_FORMAT),
        ] {
            let err = GroupName::parse_at("name", bad).expect_err(bad);
            assert_eq!(err.kind, expected, "{bad}");
            assert_eq!(err.loc, vec!["name"]);
        }
    }

    #[test]
    fn secret_keys_follow_the_rule() {
        for ok in ["A", "_", "DATABASE_URL", "api_key2", "_x9", &"K".repeat(255)] {
            assert!(SecretKey::parse_at("key", ok).is_ok(), "{ok} is a valid key");
        }
        for (bad, expected) in [
            ("", kind::TOO_SHORT),
            (&"K".repeat(256) as &str, kind::TOO_LONG),
            ("9LIVES", kind::INVALID_FORMAT),
            ("MY-KEY", kind::INVALID_FORMAT),
            ("MY KEY", kind::INVALID_FORMAT),
            (" KEY", kind::INVALID_FORMAT),
            ("KÉY", kind::INVALID_FORMAT),
            ("a.b", kind::INVALID_FORMAT),
        ] {
            let err = SecretKey::parse_at("key", bad).expect_err(bad);
            assert_eq!(err.kind, expected, "{bad:?}");
        }
        assert_ne!(
            SecretKey::parse_at("key", "abc").unwrap(),
            SecretKey::parse_at("key", "ABC").unwrap(),
            "keys are case-sensitive"
        );
    }

    #[test]
    fn values_are_one_byte_to_32_kib_and_kept_as_given() {
        let max = "x".repeat(MAX_GROUP_SECRET_VALUE_BYTES);
        assert_eq!(
            GroupSecretValue::parse_at("value", secret(&max)).unwrap().len_bytes(),
            32768
        );
        let padded = GroupSecretValue::parse_at("value", secret("  spaced  ")).unwrap();
        assert_eq!(padded.secret().expose_secret(), "  spaced  ");
        assert!(GroupSecretValue::parse_at("value", secret(" ")).is_ok());

        let err = GroupSecretValue::parse_at("value", secret("")).unwrap_err();
        assert_eq!(err.kind, kind::TOO_SHORT);
        let over = "x".repeat(MAX_GROUP_SECRET_VALUE_BYTES + 1);
        assert_eq!(
            GroupSecretValue::parse_at("value", secret(&over)).unwrap_err().kind,
            kind::TOO_LONG
        );
        // Counted in bytes: 16385 two-byte characters are 32770 bytes.
        let wide = "é".repeat(MAX_GROUP_SECRET_VALUE_BYTES / 2 + 1);
        assert_eq!(
            GroupSecretValue::parse_at("value", secret(&wide)).unwrap_err().kind,
            kind::TOO_LONG
        );
    }

    #[test]
    fn values_never_show_in_debug_or_errors() {
        let canary = "canary-7f3a9c";
        let value = GroupSecretValue::parse_at("value", secret(canary)).unwrap();
        let input = create("my-group", vec![entry("OK", Some(canary)), entry("9BAD", Some(canary))]);
        let shown = format!("{value:?} {input:?}");
        assert!(!shown.contains(canary), "{shown}");
        let errors = NewSecretGroup::parse(input.clone(), INTEGRATIONS).unwrap_err();
        assert!(!format!("{errors:?} {errors}").contains(canary));
        let parsed = NewSecretGroup::parse(create("my-group", vec![entry("OK", Some(canary))]), INTEGRATIONS).unwrap();
        let draft = parsed.clone().into_draft(
            TeamId::from_uuid(Uuid::from_u128(99)),
            SubjectId::from_uuid(Uuid::from_u128(98)),
            now(),
            &mut ids(),
        );
        assert!(!format!("{parsed:?} {draft:?}").contains(canary));
        let too_long =
            GroupSecretValue::parse_at("value", secret(&format!("{canary}{}", "x".repeat(40_000)))).unwrap_err();
        assert!(!format!("{too_long:?} {too_long}").contains(canary));
    }

    #[test]
    fn create_parses_a_valid_request() {
        let parsed = NewSecretGroup::parse(
            create(
                "payments",
                vec![entry("DATABASE_URL", Some("postgres://x")), entry("API_KEY", Some("k"))],
            ),
            INTEGRATIONS,
        )
        .unwrap();
        assert_eq!(parsed.name.as_str(), "payments");
        assert_eq!(parsed.integration_id, "local");
        let keys: Vec<&str> = parsed.secrets.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["DATABASE_URL", "API_KEY"]);
        assert_eq!(parsed.secrets[0].value.secret().expose_secret(), "postgres://x");
    }

    #[test]
    fn create_accepts_an_empty_key_list() {
        let parsed = NewSecretGroup::parse(create("empty-group", vec![]), INTEGRATIONS).unwrap();
        assert!(parsed.secrets.is_empty());
    }

    #[test]
    fn create_reports_every_failing_field_at_once_with_its_path() {
        let input = CreateGroupInput {
            name: Some("Bad Name".to_owned()),
            integration_id: Some("vault-x".to_owned()),
            secrets: Some(vec![
                entry("GOOD", Some("v")),
                entry("9BAD", Some("v")),
                entry("GOOD", Some("v2")),
                GroupSecretInput {
                    key: None,
                    value: Some(secret("v")),
                },
                entry("NO_VALUE", None),
                entry("EMPTY", Some("")),
            ]),
        };
        let errors = NewSecretGroup::parse(input, INTEGRATIONS).unwrap_err();
        assert_eq!(
            paths(&errors),
            [
                "name",
                "integration_id",
                "secrets.1.key",
                "secrets.2.key",
                "secrets.3.key",
                "secrets.4.value",
                "secrets.5.value",
            ]
        );
        assert!(errors.has(&["secrets", "2", "key"]));
        let kinds: Vec<&str> = errors.errors().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                kind::INVALID_FORMAT,
                kind::NOT_FOUND,
                kind::INVALID_FORMAT,
                kind::DUPLICATE,
                kind::MISSING,
                kind::MISSING,
                kind::TOO_SHORT,
            ]
        );
        assert!(
            errors.errors()[3].msg.contains("secrets.0"),
            "{}",
            errors.errors()[3].msg
        );
    }

    #[test]
    fn create_requires_name_integration_and_secrets() {
        let errors = NewSecretGroup::parse(CreateGroupInput::default(), INTEGRATIONS).unwrap_err();
        assert_eq!(paths(&errors), ["name", "integration_id", "secrets"]);
        assert!(errors.errors().iter().all(|e| e.kind == kind::MISSING));
        let blank = CreateGroupInput {
            integration_id: Some(String::new()),
            ..create("abc", vec![])
        };
        let errors = NewSecretGroup::parse(blank, INTEGRATIONS).unwrap_err();
        assert_eq!(paths(&errors), ["integration_id"]);
    }

    #[test]
    fn draft_puts_every_key_at_version_1_with_its_value() {
        let team = TeamId::from_uuid(Uuid::from_u128(1000));
        let actor = SubjectId::from_uuid(Uuid::from_u128(2000));
        let parsed = NewSecretGroup::parse(
            create("abc", vec![entry("A", Some("1")), entry("B", Some("2"))]),
            INTEGRATIONS,
        )
        .unwrap();
        let draft = parsed.into_draft(team, actor, now(), &mut ids());
        assert_eq!(draft.group.team_id, team);
        assert_eq!(draft.group.created_by, actor);
        assert_eq!(draft.group.updated_at, now());
        assert_eq!(draft.keys.len(), 2);
        for (key, value) in draft.keys.iter().zip(&draft.values) {
            assert_eq!(key.secret.group_id, draft.group.id);
            assert_eq!(key.secret.version, 1);
            assert_eq!(key.first_version.version, 1);
            assert_eq!(key.first_version.secret_id, key.secret.id);
            assert_eq!(value.secret_id, key.secret.id);
            assert_eq!(value.version, 1);
        }
        assert_eq!(draft.values[1].value.secret().expose_secret(), "2");
        let mut all_ids: Vec<Uuid> = vec![draft.group.id.as_uuid()];
        all_ids.extend(
            draft
                .keys
                .iter()
                .flat_map(|k| [k.secret.id.as_uuid(), k.first_version.id.as_uuid()]),
        );
        let unique: HashSet<Uuid> = all_ids.iter().copied().collect();
        assert_eq!(unique.len(), all_ids.len(), "every record has its own id");
    }

    fn stored(key: &str, version: i64, n: u128) -> GroupSecret {
        let actor = SubjectId::from_uuid(Uuid::from_u128(1));
        GroupSecret {
            id: GroupSecretId::from_uuid(Uuid::from_u128(n)),
            group_id: SecretGroupId::from_uuid(Uuid::from_u128(500)),
            key: SecretKey::parse_at("key", key).unwrap(),
            version,
            created_at: now(),
            created_by: actor,
            updated_at: now(),
            updated_by: actor,
        }
    }

    fn update(entries: Vec<GroupSecretInput>) -> GroupUpdate {
        GroupUpdate::parse(UpdateGroupInput { secrets: Some(entries) }).unwrap()
    }

    fn keys_of<'a>(secrets: impl IntoIterator<Item = &'a GroupSecret>) -> Vec<&'a str> {
        secrets.into_iter().map(|s| s.key.as_str()).collect()
    }

    #[test]
    fn plan_sorts_keys_into_added_changed_kept_and_deleted() {
        let current = vec![
            stored("SAME", 1, 11),
            stored("CHANGED", 3, 12),
            stored("NO_VALUE", 2, 13),
            stored("LEFT_OUT", 1, 14),
        ];
        let request = update(vec![
            entry("SAME", Some("same value")),
            entry("CHANGED", Some("new value")),
            entry("NO_VALUE", None),
            entry("NEW", Some("fresh")),
        ]);
        let to_read = request.values_to_compare(&current);
        assert_eq!(
            to_read,
            [current[0].id, current[1].id],
            "only keys sent with a value are read"
        );
        let values = HashMap::from([
            (current[0].id, secret("same value")),
            (current[1].id, secret("old value")),
        ]);
        let plan = request.plan(&current, &values).unwrap();
        assert_eq!(plan.added.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["NEW"]);
        assert_eq!(keys_of(plan.changed.iter().map(|c| &c.secret)), ["CHANGED"]);
        assert_eq!(plan.changed[0].value.secret().expose_secret(), "new value");
        assert_eq!(keys_of(&plan.kept), ["SAME", "NO_VALUE"]);
        assert_eq!(keys_of(&plan.deleted), ["LEFT_OUT"]);
        assert!(!plan.is_unchanged());
    }

    #[test]
    fn plan_counts_a_value_it_could_not_compare_as_changed() {
        let current = vec![stored("K", 1, 11)];
        let plan = update(vec![entry("K", Some("v"))])
            .plan(&current, &HashMap::new())
            .unwrap();
        assert_eq!(plan.changed.len(), 1);
        assert!(plan.kept.is_empty());
    }

    #[test]
    fn plan_of_the_same_keys_and_values_changes_nothing() {
        let current = vec![stored("A", 1, 11), stored("B", 4, 12)];
        let values = HashMap::from([(current[0].id, secret("a"))]);
        let plan = update(vec![entry("A", Some("a")), entry("B", None)])
            .plan(&current, &values)
            .unwrap();
        assert!(plan.is_unchanged());
        assert_eq!(plan.kept.len(), 2);
    }

    #[test]
    fn an_empty_key_list_deletes_every_key() {
        let current = vec![stored("A", 1, 11), stored("B", 2, 12)];
        let plan = update(vec![]).plan(&current, &HashMap::new()).unwrap();
        assert_eq!(keys_of(&plan.deleted), ["A", "B"]);
        assert!(plan.added.is_empty() && plan.changed.is_empty() && plan.kept.is_empty());
    }

    #[test]
    fn plan_needs_a_value_for_a_new_key() {
        let current = vec![stored("A", 1, 11)];
        let errors = update(vec![entry("A", None), entry("NEW", None), entry("OTHER", None)])
            .plan(&current, &HashMap::new())
            .unwrap_err();
        assert_eq!(paths(&errors), ["secrets.1.value", "secrets.2.value"]);
        assert!(errors.errors().iter().all(|e| e.kind == kind::MISSING));
    }

    #[test]
    fn update_reports_every_failing_field_at_once() {
        let errors = GroupUpdate::parse(UpdateGroupInput {
            secrets: Some(vec![
                entry("A", None),
                entry("A", Some("x")),
                entry("b-c", Some("")),
                GroupSecretInput::default(),
            ]),
        })
        .unwrap_err();
        assert_eq!(
            paths(&errors),
            ["secrets.1.key", "secrets.2.key", "secrets.2.value", "secrets.3.key"]
        );
        let errors = GroupUpdate::parse(UpdateGroupInput::default()).unwrap_err();
        assert_eq!(paths(&errors), ["secrets"]);
    }

    #[test]
    fn changes_bump_versions_and_expect_the_keys_as_read() {
        let team = TeamId::from_uuid(Uuid::from_u128(1000));
        let actor = SubjectId::from_uuid(Uuid::from_u128(2000));
        let group = SecretGroup {
            id: SecretGroupId::from_uuid(Uuid::from_u128(500)),
            team_id: team,
            name: GroupName::parse_at("name", "abc").unwrap(),
            integration_id: "local".into(),
            created_at: now(),
            created_by: actor,
            updated_at: now(),
            updated_by: actor,
        };
        let current = vec![stored("KEEP", 2, 11), stored("CHANGE", 3, 12), stored("DROP", 5, 13)];
        let plan = update(vec![
            entry("KEEP", None),
            entry("CHANGE", Some("three")),
            entry("ADD", Some("one")),
        ])
        .plan(&current, &HashMap::new())
        .unwrap();
        let later = now() + chrono::Duration::hours(1);
        let mut next = {
            let mut n = 10_000u128;
            move || {
                n += 1;
                Uuid::from_u128(n)
            }
        };
        let (changes, values) = plan.into_changes(&group, actor, later, &mut next);
        assert_eq!(changes.team_id, team);
        assert_eq!(changes.group_id, group.id);
        let mut expected = changes.expected.clone();
        expected.sort();
        assert_eq!(
            expected,
            [(current[0].id, 2), (current[1].id, 3), (current[2].id, 5)],
            "every stored key as read"
        );
        assert_eq!(changes.deleted, [current[2].id]);
        assert_eq!(changes.new_versions.len(), 1);
        assert_eq!(changes.new_versions[0].secret_id, current[1].id);
        assert_eq!(changes.new_versions[0].version, 4);
        assert_eq!(changes.new_versions[0].created_at, later);
        assert_eq!(changes.added.len(), 1);
        let added = &changes.added[0];
        assert_eq!((added.secret.key.as_str(), added.secret.version), ("ADD", 1));
        assert_eq!(added.secret.group_id, group.id);
        assert_eq!(added.secret.created_by, actor);
        assert_eq!(changes.updated_at, later);
        assert_eq!(changes.updated_by, actor);
        let writes: Vec<(GroupSecretId, i64, &str)> = values
            .iter()
            .map(|v| (v.secret_id, v.version, v.value.secret().expose_secret()))
            .collect();
        assert_eq!(writes, [(added.secret.id, 1, "one"), (current[1].id, 4, "three")]);
    }

    #[test]
    fn reads_count_for_24_hours() {
        let since = active_reads_since(now());
        assert_eq!(now() - since, chrono::Duration::hours(24));
    }

    #[test]
    fn fqns_name_tenant_group_and_key() {
        let group = GroupName::parse_at("name", "payments").unwrap();
        let key = SecretKey::parse_at("key", "DB_URL").unwrap();
        assert_eq!(group_fqn("acme", &group), "custodian://acme:payments");
        assert_eq!(key_fqn("acme", &group, &key), "custodian://acme:payments:DB_URL");

        assert_eq!(
            parse_group_fqn("fqn", "acme", "custodian://acme:payments").unwrap(),
            group
        );
        let parsed = KeyFqn::parse_at("fqn", "acme", "custodian://acme:payments:DB_URL").unwrap();
        assert_eq!((parsed.group.clone(), parsed.key.clone()), (group.clone(), key.clone()));
        assert_eq!(parsed.to_fqn("acme"), "custodian://acme:payments:DB_URL");

        for bad in [
            "payments",
            "custodian://acme:payments",
            "custodian://acme:payments:",
            "custodian://acme:Payments:DB_URL",
            "custodian://acme:payments:DB-URL",
            "custodian://acme:payments:DB_URL:extra",
            "https://acme:payments:DB_URL",
        ] {
            let err = KeyFqn::parse_at("fqn", "acme", bad).expect_err(bad);
            assert_eq!(err.kind, kind::INVALID_FORMAT, "{bad}");
            assert_eq!(err.loc, vec!["fqn"]);
        }
        for bad in [
            "custodian://acme:payments:K",
            "custodian://acme:",
            "custodian://acme:9x",
        ] {
            assert_eq!(
                parse_group_fqn("fqn", "acme", bad).expect_err(bad).kind,
                kind::INVALID_FORMAT,
                "{bad}"
            );
        }
        let other = KeyFqn::parse_at("fqn", "acme", "custodian://other:payments:DB_URL").unwrap_err();
        assert_eq!(other.kind, kind::NOT_FOUND);
        let prefix = parse_group_fqn("fqn", "acme", "custodian://acmex:payments").unwrap_err();
        assert_eq!(
            prefix.kind,
            kind::NOT_FOUND,
            "a tenant name that only starts like ours is another tenant"
        );
    }
}

//! Parameter names and the SSM rules on names and values, checked before any call.
//!
//! Layout: `<prefix>/<tenant>/<team_id>/<kind>/<record_id>/v<version>` — one SecureString
//! parameter per credential version (docs/DECISIONS.md, "AWS SSM: one parameter per
//! credential version").

use custodian_ports::{CredentialKey, StoreError};

/// Most levels a parameter name may have (`/a/b/c` has 3).
pub const MAX_LEVELS: usize = 15;

/// Longest name we write. SSM allows 1011 characters for the whole parameter ARN
/// (`arn:<partition>:ssm:<region>:<account>:parameter` followed by the name); this keeps
/// room for the longest partition, region and account id.
pub const MAX_NAME_LEN: usize = 1011 - ARN_RESERVE;
const ARN_RESERVE: usize = 64;

/// Largest value of a Standard-tier parameter, in bytes; larger values use Advanced.
pub const STANDARD_MAX_VALUE: usize = 4096;
/// Largest value of an Advanced-tier parameter, in bytes; larger values are refused.
pub const ADVANCED_MAX_VALUE: usize = 8192;

/// Levels the layout adds below the prefix: tenant, team, kind, record, version.
const LEVELS_BELOW_PREFIX: usize = 5;

/// Which tier a value of `len` bytes needs, or why SSM would refuse it.
pub(crate) fn tier_for(len: usize) -> Result<Tier, StoreError> {
    match len {
        0 => Err(StoreError::Rejected("AWS SSM cannot store an empty value".to_owned())),
        n if n <= STANDARD_MAX_VALUE => Ok(Tier::Standard),
        n if n <= ADVANCED_MAX_VALUE => Ok(Tier::Advanced),
        n => Err(StoreError::Rejected(format!(
            "the value is {n} bytes; AWS SSM stores at most {ADVANCED_MAX_VALUE} bytes per parameter"
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Standard,
    Advanced,
}

/// The checked prefix and tenant every name starts with (`/custodian/default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    base: String,
}

impl Layout {
    /// Checks `prefix` (absolute, e.g. `/custodian`; a trailing `/` is dropped) and
    /// `tenant` (one level) against SSM's name rules.
    pub(crate) fn new(prefix: &str, tenant: &str) -> Result<Layout, StoreError> {
        // `/` alone (names right under the root) and trailing slashes are fine.
        let Some(relative) = prefix.strip_prefix('/').map(|rest| rest.trim_end_matches('/')) else {
            return Err(StoreError::Rejected(format!(
                "the SSM prefix {prefix:?} must start with '/' (e.g. /custodian)"
            )));
        };
        let mut levels: Vec<&str> = if relative.is_empty() {
            Vec::new()
        } else {
            relative.split('/').collect()
        };
        for level in &levels {
            check_level("the SSM prefix", level)?;
        }
        check_level("the tenant", tenant)?;
        levels.push(tenant);
        if let Some(first) = levels.first() {
            check_not_reserved(first)?;
        }
        // `levels` already holds the tenant.
        if levels.len() + LEVELS_BELOW_PREFIX - 1 > MAX_LEVELS {
            return Err(StoreError::Rejected(format!(
                "the SSM prefix {prefix:?} has {} levels; with the tenant, team, kind, record and version \
                 a name would have {} levels, and AWS SSM allows {MAX_LEVELS}",
                levels.len() - 1,
                levels.len() + LEVELS_BELOW_PREFIX - 1
            )));
        }
        let layout = Layout {
            base: format!("/{}", levels.join("/")),
        };
        // The longest name this layout writes must fit: check it now, not on the first put.
        let longest = layout.base.len() + "/".len() + LONGEST_KEY_PATH + "/v".len() + i64::MAX.to_string().len();
        if longest > MAX_NAME_LEN {
            return Err(StoreError::Rejected(format!(
                "the SSM prefix and tenant are {} characters; names under them would exceed \
                 the {MAX_NAME_LEN} characters AWS SSM allows",
                layout.base.len()
            )));
        }
        Ok(layout)
    }

    /// `<prefix>/<tenant>`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `<prefix>/<tenant>/<team_id>/<kind>/<record_id>`: the path listing a record's versions.
    pub(crate) fn record_path(&self, key: &CredentialKey) -> String {
        format!("{}/{}/{}/{}", self.base, key.team_id, key.kind.as_str(), key.record_id)
    }

    /// The parameter holding `version` of `key`.
    pub(crate) fn parameter_name(&self, key: &CredentialKey, version: i64) -> Result<String, StoreError> {
        if version < 1 {
            return Err(StoreError::Rejected(format!(
                "credential versions start at 1, not {version}"
            )));
        }
        let name = format!("{}/v{version}", self.record_path(key));
        check_name(&name)?;
        Ok(name)
    }
}

/// The version a parameter name under `record_path` stands for, if it is one of ours.
pub(crate) fn version_of(record_path: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(record_path)?.strip_prefix("/v")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// The record and version a parameter name under `base` (`<prefix>/<tenant>`) stands for,
/// if it is one of ours.
pub(crate) fn key_of(base: &str, name: &str) -> Option<(CredentialKey, i64)> {
    let rest = name.strip_prefix(base)?.strip_prefix('/')?;
    let mut levels = rest.split('/');
    let (team, kind, record, _version) = (levels.next()?, levels.next()?, levels.next()?, levels.next()?);
    if levels.next().is_some() {
        return None;
    }
    let key = CredentialKey {
        team_id: custodian_domain::TeamId::from_uuid(uuid::Uuid::parse_str(team).ok()?),
        kind: custodian_ports::CredentialKind::parse(kind)?,
        record_id: uuid::Uuid::parse_str(record).ok()?,
    };
    let version = version_of(&format!("{base}/{team}/{kind}/{record}"), name)?;
    Some((key, version))
}

/// `<team uuid>/<kind>/<record uuid>`, the longest kind.
const LONGEST_KEY_PATH: usize = 36 + 1 + LONGEST_KIND + 1 + 36;
const LONGEST_KIND: usize = "vault-connection".len();

/// The full rules for a parameter name, as SSM documents them.
pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    let Some(relative) = name.strip_prefix('/') else {
        return Err(StoreError::Rejected(format!(
            "the parameter name {name:?} must start with '/'"
        )));
    };
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::Rejected(format!(
            "the parameter name is {} characters; AWS SSM allows {MAX_NAME_LEN}",
            name.len()
        )));
    }
    let levels: Vec<&str> = relative.split('/').collect();
    if levels.len() > MAX_LEVELS {
        return Err(StoreError::Rejected(format!(
            "the parameter name has {} levels; AWS SSM allows {MAX_LEVELS}",
            levels.len()
        )));
    }
    for level in &levels {
        check_level("the parameter name", level)?;
    }
    if let Some(first) = levels.first() {
        check_not_reserved(first)?;
    }
    Ok(())
}

/// One level: non-empty, only `a-zA-Z0-9_.-`.
fn check_level(what: &str, level: &str) -> Result<(), StoreError> {
    if level.is_empty() {
        return Err(StoreError::Rejected(format!(
            "{what} has an empty level ('//'); levels are separated by single '/'"
        )));
    }
    if let Some(bad) = level
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(StoreError::Rejected(format!(
            "{what} level {level:?} holds {bad:?}; AWS SSM names allow only letters, digits, '_', '.' and '-'"
        )));
    }
    Ok(())
}

/// SSM reserves names whose first level starts with `aws` or `ssm`, in any case.
fn check_not_reserved(first: &str) -> Result<(), StoreError> {
    let lower = first.to_ascii_lowercase();
    if lower.starts_with("aws") || lower.starts_with("ssm") {
        return Err(StoreError::Rejected(format!(
            "parameter names may not start with \"aws\" or \"ssm\" (any case), and {first:?} does"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use custodian_domain::TeamId;
    use custodian_ports::CredentialKind;
    use uuid::Uuid;

    use super::*;

    fn key() -> CredentialKey {
        CredentialKey {
            team_id: TeamId::from_uuid(Uuid::nil()),
            kind: CredentialKind::VaultConnection,
            record_id: Uuid::max(),
        }
    }

    fn rejected(result: Result<impl std::fmt::Debug, StoreError>) -> String {
        match result {
            Err(StoreError::Rejected(message)) => message,
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    #[test]
    fn names_follow_the_layout() {
        let layout = Layout::new("/custodian", "default").unwrap();
        assert_eq!(
            layout.parameter_name(&key(), 3).unwrap(),
            format!(
                "/custodian/default/{}/vault-connection/ffffffff-ffff-ffff-ffff-ffffffffffff/v3",
                TeamId::from_uuid(Uuid::nil())
            )
        );
        assert_eq!(
            layout.record_path(&key()),
            format!(
                "/custodian/default/{}/vault-connection/ffffffff-ffff-ffff-ffff-ffffffffffff",
                TeamId::from_uuid(Uuid::nil())
            )
        );
    }

    #[test]
    fn a_trailing_slash_and_a_deeper_prefix_are_accepted() {
        assert_eq!(Layout::new("/custodian/", "t").unwrap().base(), "/custodian/t");
        assert_eq!(
            Layout::new("/org/prod/custodian", "acme-1").unwrap().base(),
            "/org/prod/custodian/acme-1"
        );
        assert_eq!(Layout::new("/", "t").unwrap().base(), "/t");
    }

    #[test]
    fn bad_prefixes_and_tenants_are_rejected_with_the_rule() {
        assert!(rejected(Layout::new("custodian", "t")).contains("must start with '/'"));
        assert!(rejected(Layout::new("/cust odian", "t")).contains("' '"));
        assert!(rejected(Layout::new("/a//b", "t")).contains("empty level"));
        assert!(rejected(Layout::new("/custodian", "a/b")).contains("'/'"));
        assert!(rejected(Layout::new("/custodian", "")).contains("empty level"));
        assert!(rejected(Layout::new("/aws/custodian", "t")).contains("\"aws\""));
        assert!(rejected(Layout::new("/SSMthing", "t")).contains("\"ssm\""));
        assert!(rejected(Layout::new("/", "awsome")).contains("\"aws\""));
        let deep = "/l".repeat(11);
        assert!(rejected(Layout::new(&deep, "t")).contains("15"));
        let long = format!("/{}", "x".repeat(900));
        assert!(rejected(Layout::new(&long, "t")).contains("characters"));
    }

    #[test]
    fn the_deepest_and_longest_allowed_prefix_still_fits() {
        let ten = "/l".repeat(10);
        let layout = Layout::new(&ten, "t").unwrap();
        let name = layout.parameter_name(&key(), i64::MAX).unwrap();
        assert_eq!(name.split('/').count() - 1, MAX_LEVELS);

        let room = MAX_NAME_LEN - (1 + LONGEST_KEY_PATH + 2 + 19) - "/t".len() - 1;
        let long = format!("/{}", "x".repeat(room));
        let layout = Layout::new(&long, "t").unwrap();
        assert!(layout.parameter_name(&key(), i64::MAX).unwrap().len() <= MAX_NAME_LEN);
        assert!(Layout::new(&format!("{long}x"), "t").is_err());
    }

    #[test]
    fn versions_below_one_have_no_name() {
        let layout = Layout::new("/custodian", "default").unwrap();
        assert!(rejected(layout.parameter_name(&key(), 0)).contains("start at 1"));
        assert!(rejected(layout.parameter_name(&key(), -1)).contains("start at 1"));
    }

    #[test]
    fn whole_names_are_checked() {
        assert!(check_name("/custodian/a.b_c-D/9").is_ok());
        assert!(rejected(check_name("custodian/x")).contains("'/'"));
        assert!(rejected(check_name(&"/a".repeat(16))).contains("16 levels"));
        assert!(rejected(check_name(&format!("/{}", "a".repeat(MAX_NAME_LEN)))).contains("characters"));
        assert!(rejected(check_name("/a/b c")).contains("' '"));
        assert!(rejected(check_name("/a/é")).contains("'é'"));
        assert!(rejected(check_name("/Aws/x")).contains("\"aws\""));
    }

    #[test]
    fn tiers_follow_the_value_size_in_bytes() {
        assert!(rejected(tier_for(0)).contains("empty"));
        assert_eq!(tier_for(1).unwrap(), Tier::Standard);
        assert_eq!(tier_for(4096).unwrap(), Tier::Standard);
        assert_eq!(tier_for(4097).unwrap(), Tier::Advanced);
        assert_eq!(tier_for(8192).unwrap(), Tier::Advanced);
        assert!(rejected(tier_for(8193)).contains("8193 bytes"));
    }

    #[test]
    fn keys_and_versions_are_read_back_from_whole_names() {
        let layout = Layout::new("/custodian", "acme").unwrap();
        let name = layout.parameter_name(&key(), 12).unwrap();
        assert_eq!(key_of(layout.base(), &name), Some((key(), 12)));
        for other in [
            name.replace("/v12", "/v0"),
            name.replace("/v12", "/x12"),
            format!("{name}/deeper"),
            name.replace("vault-connection", "other-kind"),
            name.replace("/acme/", "/globex/"),
            "/custodian/acme".to_owned(),
        ] {
            assert_eq!(key_of(layout.base(), &other), None, "{other}");
        }
    }

    #[test]
    fn versions_are_read_back_from_names_under_the_record() {
        let path = "/custodian/t/team/storage-secret/rec";
        assert_eq!(version_of(path, &format!("{path}/v1")), Some(1));
        assert_eq!(version_of(path, &format!("{path}/v42")), Some(42));
        assert_eq!(version_of(path, &format!("{path}/v")), None);
        assert_eq!(version_of(path, &format!("{path}/v01")), None);
        assert_eq!(version_of(path, &format!("{path}/v-1")), None);
        assert_eq!(version_of(path, &format!("{path}/x1")), None);
        assert_eq!(version_of(path, &format!("{path}/v1/deeper")), None);
        assert_eq!(version_of(path, "/custodian/t/team/storage-secret/other/v1"), None);
        assert_eq!(version_of(path, &format!("{path}/v99999999999999999999")), None);
    }
}

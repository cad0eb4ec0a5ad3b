//! [`SecretGroupRepository`] on SQL: `secret_groups`, `group_secrets` (one row per key, with
//! its current version), `group_secret_versions` and `group_secret_reads`.
//!
//! An update ([`SecretGroupRepository::apply`]) first touches the group row, which on
//! PostgreSQL locks it until commit (on SQLite the transaction holds the database's write
//! lock already), so concurrent updates of one group run one after the other; each then
//! compares the stored keys with the keys it was built from and fails with `Stale` when they
//! differ.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use custodian_domain::{
    AuditEvent, GroupChanges, GroupName, GroupSecret, GroupSecretId, GroupSecretVersion, GroupSecretVersionId,
    NewGroupKey, SecretGroup, SecretGroupId, SecretKey, SubjectId, TeamId, VirtualAccountId,
};
use custodian_ports::{
    ConflictKind, DeletedGroup, GroupFilter, GroupKeyDetails, KeyFilter, Page, Paged, RepoError, SecretGroupRepository,
    TeamScope,
};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{checked, count, db_time, id_text, page_bounds, parse_id, utc};
use crate::db::{Conn, transaction, with_conn};
use crate::error::DbError;
use crate::schema::{group_secret_reads, group_secret_versions, group_secrets, secret_groups, teams};
use crate::search::{contains_pattern, lower};

/// Most ids bound in one `IN (…)` list (SQLite allows 32766 parameters per statement).
const IDS_PER_QUERY: usize = 1000;

/// A row of `secret_groups`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = secret_groups, treat_none_as_default_value = false)]
struct GroupRow {
    id: String,
    team_id: String,
    name: String,
    integration_id: String,
    created_at: NaiveDateTime,
    created_by: String,
    updated_at: NaiveDateTime,
    updated_by: String,
}

impl GroupRow {
    fn from_group(group: &SecretGroup) -> Self {
        Self {
            id: id_text(group.id.as_uuid()),
            team_id: id_text(group.team_id.as_uuid()),
            name: group.name.as_str().to_owned(),
            integration_id: group.integration_id.clone(),
            created_at: db_time(group.created_at),
            created_by: id_text(group.created_by.as_uuid()),
            updated_at: db_time(group.updated_at),
            updated_by: id_text(group.updated_by.as_uuid()),
        }
    }

    fn into_group(self) -> Result<SecretGroup, DbError> {
        const T: &str = "secret_groups";
        Ok(SecretGroup {
            id: parse_id::<SecretGroupId>(&self.id, T, "id")?,
            team_id: parse_id::<TeamId>(&self.team_id, T, "team_id")?,
            name: checked(GroupName::parse_at("name", &self.name), T, "name")?,
            integration_id: self.integration_id,
            created_at: utc(self.created_at),
            created_by: parse_id::<SubjectId>(&self.created_by, T, "created_by")?,
            updated_at: utc(self.updated_at),
            updated_by: parse_id::<SubjectId>(&self.updated_by, T, "updated_by")?,
        })
    }
}

/// A row of `group_secrets`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = group_secrets, treat_none_as_default_value = false)]
struct KeyRow {
    id: String,
    group_id: String,
    key_name: String,
    version: i64,
    created_at: NaiveDateTime,
    created_by: String,
    updated_at: NaiveDateTime,
    updated_by: String,
}

impl KeyRow {
    fn from_secret(secret: &GroupSecret) -> Self {
        Self {
            id: id_text(secret.id.as_uuid()),
            group_id: id_text(secret.group_id.as_uuid()),
            key_name: secret.key.as_str().to_owned(),
            version: secret.version,
            created_at: db_time(secret.created_at),
            created_by: id_text(secret.created_by.as_uuid()),
            updated_at: db_time(secret.updated_at),
            updated_by: id_text(secret.updated_by.as_uuid()),
        }
    }

    fn into_secret(self) -> Result<GroupSecret, DbError> {
        const T: &str = "group_secrets";
        Ok(GroupSecret {
            id: parse_id::<GroupSecretId>(&self.id, T, "id")?,
            group_id: parse_id::<SecretGroupId>(&self.group_id, T, "group_id")?,
            key: checked(SecretKey::parse_at("key", &self.key_name), T, "key_name")?,
            version: self.version,
            created_at: utc(self.created_at),
            created_by: parse_id::<SubjectId>(&self.created_by, T, "created_by")?,
            updated_at: utc(self.updated_at),
            updated_by: parse_id::<SubjectId>(&self.updated_by, T, "updated_by")?,
        })
    }
}

/// A row of `group_secret_versions`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = group_secret_versions, treat_none_as_default_value = false)]
struct VersionRow {
    id: String,
    secret_id: String,
    version: i64,
    created_at: NaiveDateTime,
}

impl VersionRow {
    fn from_version(version: &GroupSecretVersion) -> Self {
        Self {
            id: id_text(version.id.as_uuid()),
            secret_id: id_text(version.secret_id.as_uuid()),
            version: version.version,
            created_at: db_time(version.created_at),
        }
    }

    fn into_version(self) -> Result<GroupSecretVersion, DbError> {
        const T: &str = "group_secret_versions";
        Ok(GroupSecretVersion {
            id: parse_id::<GroupSecretVersionId>(&self.id, T, "id")?,
            secret_id: parse_id::<GroupSecretId>(&self.secret_id, T, "secret_id")?,
            version: self.version,
            created_at: utc(self.created_at),
        })
    }
}

/// A row of `group_secret_reads`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = group_secret_reads, treat_none_as_default_value = false)]
struct ReadRow {
    secret_id: String,
    virtual_account_id: String,
    read_at: NaiveDateTime,
}

/// Keys (each with the row of its group) and their versions, as loaded, into details in the
/// order of `keys`.
fn assemble(keys: Vec<(KeyRow, GroupRow)>, versions: Vec<VersionRow>) -> Result<Vec<GroupKeyDetails>, DbError> {
    let mut by_key: HashMap<GroupSecretId, Vec<GroupSecretVersion>> = HashMap::new();
    for row in versions {
        let version = row.into_version()?;
        by_key.entry(version.secret_id).or_default().push(version);
    }
    keys.into_iter()
        .map(|(key, group)| {
            let group = group.into_group()?;
            let secret = key.into_secret()?;
            let mut versions = by_key.remove(&secret.id).unwrap_or_default();
            versions.sort_by_key(|v| v.version);
            Ok(GroupKeyDetails {
                team_id: group.team_id,
                group_name: group.name,
                versions,
                secret,
            })
        })
        .collect()
}

/// The team ids of a scope as stored; `None` for every team.
fn scope_teams(scope: &TeamScope) -> Option<Vec<String>> {
    match scope {
        TeamScope::All => None,
        TeamScope::Teams(teams) => Some(teams.iter().map(|t| id_text(t.as_uuid())).collect()),
    }
}

/// Whether a scope sees nothing at all (no query needed).
fn scope_is_empty(scope: &TeamScope) -> bool {
    matches!(scope, TeamScope::Teams(teams) if teams.is_empty())
}

/// The versions of the keys `ids`, loaded in chunks (inside a query body).
macro_rules! versions_of {
    ($conn:expr, $ids:expr) => {{
        let mut rows: Vec<VersionRow> = Vec::new();
        for chunk in $ids.chunks(IDS_PER_QUERY) {
            let mut part: Vec<VersionRow> = group_secret_versions::table
                .filter(group_secret_versions::secret_id.eq_any(chunk))
                .select(VersionRow::as_select())
                .load($conn)
                .await?;
            rows.append(&mut part);
        }
        rows
    }};
}

/// The keys of group `$group_id` (a stored id) with their group rows and versions, ordered
/// by key (inside a query body).
macro_rules! keys_of_group {
    ($conn:expr, $group_id:expr) => {{
        let keys: Vec<(KeyRow, GroupRow)> = group_secrets::table
            .inner_join(secret_groups::table)
            .filter(group_secrets::group_id.eq($group_id))
            .select((KeyRow::as_select(), GroupRow::as_select()))
            .order((group_secrets::key_name.asc(), group_secrets::id.asc()))
            .load($conn)
            .await?;
        let versions: Vec<VersionRow> = group_secret_versions::table
            .inner_join(group_secrets::table)
            .filter(group_secrets::group_id.eq($group_id))
            .select(VersionRow::as_select())
            .load($conn)
            .await?;
        assemble(keys, versions)?
    }};
}

/// One key (a stored id) with its group row and versions, or `NotFound` (inside a query body).
macro_rules! one_key {
    ($conn:expr, $id:expr) => {{
        let key: (KeyRow, GroupRow) = group_secrets::table
            .inner_join(secret_groups::table)
            .filter(group_secrets::id.eq($id))
            .select((KeyRow::as_select(), GroupRow::as_select()))
            .get_result($conn)
            .await?;
        let versions: Vec<VersionRow> = group_secret_versions::table
            .filter(group_secret_versions::secret_id.eq($id))
            .select(VersionRow::as_select())
            .load($conn)
            .await?;
        assemble(vec![key], versions)?
            .pop()
            .ok_or(DbError::Repo(RepoError::NotFound))?
    }};
}

/// Delete the keys `ids` (stored ids) with their versions and reads (inside a transaction).
macro_rules! delete_keys {
    ($conn:expr, $ids:expr) => {{
        for chunk in $ids.chunks(IDS_PER_QUERY) {
            diesel::delete(group_secret_reads::table.filter(group_secret_reads::secret_id.eq_any(chunk)))
                .execute($conn)
                .await?;
            diesel::delete(group_secret_versions::table.filter(group_secret_versions::secret_id.eq_any(chunk)))
                .execute($conn)
                .await?;
            diesel::delete(group_secrets::table.filter(group_secrets::id.eq_any(chunk)))
                .execute($conn)
                .await?;
        }
    }};
}

/// Lock group `$id` of team `$team` (stored ids) until the transaction ends, or fail with
/// `NotFound`. A no-op update: on PostgreSQL it takes the row lock that [`apply`] takes, so
/// writes to one group's keys run one after the other; SQLite's write transaction holds the
/// database lock already.
///
/// [`apply`]: SecretGroupRepository::apply
macro_rules! lock_group {
    ($conn:expr, $id:expr, $team:expr) => {{
        let locked = diesel::update(
            secret_groups::table
                .filter(secret_groups::id.eq($id))
                .filter(secret_groups::team_id.eq($team)),
        )
        .set(secret_groups::integration_id.eq(secret_groups::integration_id))
        .execute($conn)
        .await?;
        if locked == 0 {
            return Err(DbError::Repo(RepoError::NotFound));
        }
    }};
}

/// The groups matching a scope and filter, as a boxed query of the connection's backend.
macro_rules! groups_matching {
    ($teams:expr, $name:expr, $pattern:expr) => {{
        let mut query = secret_groups::table.into_boxed();
        if let Some(teams) = $teams {
            query = query.filter(secret_groups::team_id.eq_any(teams));
        }
        if let Some(name) = $name {
            query = query.filter(secret_groups::name.eq(name));
        }
        if let Some(pattern) = $pattern {
            let key_matches = group_secrets::table
                .filter(group_secrets::group_id.eq(secret_groups::id))
                .filter(lower(group_secrets::key_name).like(pattern.clone()).escape('\\'));
            query = query.filter(
                lower(secret_groups::name)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(diesel::dsl::exists(key_matches)),
            );
        }
        query
    }};
}

/// The keys (joined with their groups) matching a scope and filter, as a boxed query.
macro_rules! keys_matching {
    ($teams:expr, $group:expr, $fqns:expr) => {{
        let mut query = group_secrets::table.inner_join(secret_groups::table).into_boxed();
        if let Some(teams) = $teams {
            query = query.filter(secret_groups::team_id.eq_any(teams));
        }
        if let Some(group) = $group {
            query = query.filter(group_secrets::group_id.eq(group));
        }
        if let Some(fqns) = $fqns {
            // `<group>:<key>`: neither a group name nor a key can hold ':'.
            query = query.filter(
                secret_groups::name
                    .concat(":")
                    .concat(group_secrets::key_name)
                    .eq_any(fqns),
            );
        }
        query
    }};
}

/// Secret groups on SQL.
#[derive(Debug, Clone)]
pub struct SqlSecretGroupRepository {
    db: Database,
}

impl SqlSecretGroupRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SecretGroupRepository for SqlSecretGroupRepository {
    async fn create(&self, group: &SecretGroup, keys: &[NewGroupKey], audit: &AuditEvent) -> Result<(), RepoError> {
        let row = GroupRow::from_group(group);
        let key_rows: Vec<KeyRow> = keys.iter().map(|k| KeyRow::from_secret(&k.secret)).collect();
        let version_rows: Vec<VersionRow> = keys
            .iter()
            .map(|k| VersionRow::from_version(&k.first_version))
            .collect();
        transaction!(self.db, |conn| {
            teams::table
                .find(&row.team_id)
                .select(teams::id)
                .get_result::<String>(conn)
                .await?;
            diesel::insert_into(secret_groups::table)
                .values(&row)
                .execute(conn)
                .await?;
            for key in &key_rows {
                diesel::insert_into(group_secrets::table)
                    .values(key)
                    .execute(conn)
                    .await?;
            }
            for version in &version_rows {
                diesel::insert_into(group_secret_versions::table)
                    .values(version)
                    .execute(conn)
                    .await?;
            }
            conn.insert_audit(audit).await
        })
    }

    async fn get(&self, team: TeamId, id: SecretGroupId) -> Result<SecretGroup, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: GroupRow = secret_groups::table
                .filter(secret_groups::id.eq(&id))
                .filter(secret_groups::team_id.eq(&team))
                .select(GroupRow::as_select())
                .get_result(conn)
                .await?;
            row.into_group()
        })
    }

    async fn get_in(&self, scope: &TeamScope, id: SecretGroupId) -> Result<SecretGroup, RepoError> {
        let id = id_text(id.as_uuid());
        let group = with_conn!(self.db, |conn| {
            let row: GroupRow = secret_groups::table
                .find(&id)
                .select(GroupRow::as_select())
                .get_result(conn)
                .await?;
            row.into_group()
        })?;
        if scope.contains(group.team_id) {
            Ok(group)
        } else {
            Err(RepoError::NotFound)
        }
    }

    async fn list(&self, scope: &TeamScope, filter: &GroupFilter, page: Page) -> Result<Paged<SecretGroup>, RepoError> {
        if scope_is_empty(scope) {
            return Ok(Paged {
                items: Vec::new(),
                total: 0,
            });
        }
        let teams = scope_teams(scope);
        let name = filter.name.as_ref().map(|n| n.as_str().to_owned());
        let pattern = filter.search.as_deref().map(contains_pattern);
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let rows: Vec<GroupRow> = groups_matching!(&teams, &name, &pattern)
                .select(GroupRow::as_select())
                .order((secret_groups::name.asc(), secret_groups::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = groups_matching!(&teams, &name, &pattern)
                .count()
                .get_result(conn)
                .await?;
            Ok(Paged {
                items: rows.into_iter().map(GroupRow::into_group).collect::<Result<_, _>>()?,
                total: count(total),
            })
        })
    }

    async fn keys(&self, team: TeamId, id: SecretGroupId) -> Result<Vec<GroupKeyDetails>, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            secret_groups::table
                .filter(secret_groups::id.eq(&id))
                .filter(secret_groups::team_id.eq(&team))
                .select(secret_groups::id)
                .get_result::<String>(conn)
                .await?;
            Ok(keys_of_group!(conn, &id))
        })
    }

    /// Three queries for the whole page: the groups, their keys, the keys' versions.
    async fn keys_of_groups(
        &self,
        groups: &[SecretGroup],
    ) -> Result<HashMap<SecretGroupId, Vec<GroupKeyDetails>>, RepoError> {
        if groups.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = groups.iter().map(|g| id_text(g.id.as_uuid())).collect();
        let (stored, keys) = with_conn!(self.db, |conn| {
            let stored: Vec<GroupRow> = secret_groups::table
                .filter(secret_groups::id.eq_any(&ids))
                .select(GroupRow::as_select())
                .load(conn)
                .await?;
            let keys: Vec<(KeyRow, GroupRow)> = group_secrets::table
                .inner_join(secret_groups::table)
                .filter(group_secrets::group_id.eq_any(&ids))
                .select((KeyRow::as_select(), GroupRow::as_select()))
                .order((group_secrets::key_name.asc(), group_secrets::id.asc()))
                .load(conn)
                .await?;
            let versions: Vec<VersionRow> = group_secret_versions::table
                .inner_join(group_secrets::table)
                .filter(group_secrets::group_id.eq_any(&ids))
                .select(VersionRow::as_select())
                .load(conn)
                .await?;
            Ok((stored, assemble(keys, versions)?))
        })?;
        // Only the groups still in the team they were listed in.
        let listed: HashMap<SecretGroupId, TeamId> = groups.iter().map(|g| (g.id, g.team_id)).collect();
        let mut by_group: HashMap<SecretGroupId, Vec<GroupKeyDetails>> = HashMap::with_capacity(groups.len());
        for row in stored {
            let group = row.into_group()?;
            if listed.get(&group.id) == Some(&group.team_id) {
                by_group.insert(group.id, Vec::new());
            }
        }
        for key in keys {
            if let Some(list) = by_group.get_mut(&key.secret.group_id) {
                list.push(key);
            }
        }
        Ok(by_group)
    }

    async fn apply(&self, changes: &GroupChanges, audit: &AuditEvent) -> Result<(), RepoError> {
        let team = id_text(changes.team_id.as_uuid());
        let group = id_text(changes.group_id.as_uuid());
        let updated_at = db_time(changes.updated_at);
        let updated_by = id_text(changes.updated_by.as_uuid());
        let expected: HashSet<(String, i64)> = changes
            .expected
            .iter()
            .map(|(id, version)| (id_text(id.as_uuid()), *version))
            .collect();
        let duplicated_expectation = expected.len() != changes.expected.len();
        let deleted: Vec<String> = changes.deleted.iter().map(|id| id_text(id.as_uuid())).collect();
        let added_keys: Vec<KeyRow> = changes.added.iter().map(|k| KeyRow::from_secret(&k.secret)).collect();
        let added_versions: Vec<VersionRow> = changes
            .added
            .iter()
            .map(|k| VersionRow::from_version(&k.first_version))
            .collect();
        let new_versions: Vec<VersionRow> = changes.new_versions.iter().map(VersionRow::from_version).collect();
        transaction!(self.db, |conn| {
            // Touching the group row first locks it (PostgreSQL) until commit.
            let touched = diesel::update(
                secret_groups::table
                    .filter(secret_groups::id.eq(&group))
                    .filter(secret_groups::team_id.eq(&team)),
            )
            .set((
                secret_groups::updated_at.eq(updated_at),
                secret_groups::updated_by.eq(&updated_by),
            ))
            .execute(conn)
            .await?;
            if touched == 0 {
                return Err(DbError::Repo(RepoError::NotFound));
            }
            let stored: Vec<(String, i64)> = group_secrets::table
                .filter(group_secrets::group_id.eq(&group))
                .select((group_secrets::id, group_secrets::version))
                .load(conn)
                .await?;
            let stored: HashMap<String, i64> = stored.into_iter().collect();
            let stale = DbError::Repo(RepoError::Conflict(ConflictKind::Stale));
            let matches = !duplicated_expectation
                && stored.len() == expected.len()
                && expected.iter().all(|(id, v)| stored.get(id) == Some(v));
            if !matches || deleted.iter().any(|id| !stored.contains_key(id)) {
                return Err(stale);
            }
            for version in &new_versions {
                let current = stored.get(&version.secret_id);
                if deleted.contains(&version.secret_id) || current.is_none_or(|v| version.version != v + 1) {
                    return Err(stale);
                }
            }

            delete_keys!(conn, &deleted);
            for key in &added_keys {
                diesel::insert_into(group_secrets::table)
                    .values(key)
                    .execute(conn)
                    .await?;
            }
            for version in added_versions.iter().chain(&new_versions) {
                diesel::insert_into(group_secret_versions::table)
                    .values(version)
                    .execute(conn)
                    .await?;
            }
            for version in &new_versions {
                diesel::update(group_secrets::table.find(&version.secret_id))
                    .set((
                        group_secrets::version.eq(version.version),
                        group_secrets::updated_at.eq(updated_at),
                        group_secrets::updated_by.eq(&updated_by),
                    ))
                    .execute(conn)
                    .await?;
            }
            conn.insert_audit(audit).await
        })
    }

    async fn delete(&self, team: TeamId, id: SecretGroupId, audit: &AuditEvent) -> Result<DeletedGroup, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        transaction!(self.db, |conn| {
            // Locked first, so no concurrent update adds a key this delete would not return.
            lock_group!(conn, &id, &team);
            let row: GroupRow = secret_groups::table
                .find(&id)
                .select(GroupRow::as_select())
                .get_result(conn)
                .await?;
            let keys = keys_of_group!(conn, &id);
            let key_ids: Vec<String> = keys.iter().map(|k| id_text(k.secret.id.as_uuid())).collect();
            delete_keys!(conn, &key_ids);
            diesel::delete(secret_groups::table.find(&id)).execute(conn).await?;
            conn.insert_audit(audit).await?;
            Ok(DeletedGroup {
                group: row.into_group()?,
                keys,
            })
        })
    }

    async fn get_key(&self, scope: &TeamScope, id: GroupSecretId) -> Result<GroupKeyDetails, RepoError> {
        let id = id_text(id.as_uuid());
        let details = with_conn!(self.db, |conn| { Ok(one_key!(conn, &id)) })?;
        if scope.contains(details.team_id) {
            Ok(details)
        } else {
            Err(RepoError::NotFound)
        }
    }

    async fn list_keys(
        &self,
        scope: &TeamScope,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Paged<GroupKeyDetails>, RepoError> {
        let nothing_named = filter.fqns.as_ref().is_some_and(Vec::is_empty);
        if scope_is_empty(scope) || nothing_named {
            return Ok(Paged {
                items: Vec::new(),
                total: 0,
            });
        }
        let teams = scope_teams(scope);
        let group = filter.secret_group_id.map(|g| id_text(g.as_uuid()));
        let fqns: Option<Vec<String>> = filter
            .fqns
            .as_ref()
            .map(|fqns| fqns.iter().map(|f| format!("{}:{}", f.group, f.key)).collect());
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let keys: Vec<(KeyRow, GroupRow)> = keys_matching!(&teams, &group, &fqns)
                .select((KeyRow::as_select(), GroupRow::as_select()))
                .order((
                    secret_groups::name.asc(),
                    group_secrets::key_name.asc(),
                    group_secrets::id.asc(),
                ))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = keys_matching!(&teams, &group, &fqns).count().get_result(conn).await?;
            let ids: Vec<String> = keys.iter().map(|(k, _)| k.id.clone()).collect();
            let versions = versions_of!(conn, ids);
            Ok(Paged {
                items: assemble(keys, versions)?,
                total: count(total),
            })
        })
    }

    async fn delete_key(
        &self,
        team: TeamId,
        id: GroupSecretId,
        audit: &AuditEvent,
    ) -> Result<GroupKeyDetails, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        transaction!(self.db, |conn| {
            let group: String = group_secrets::table
                .find(&id)
                .select(group_secrets::group_id)
                .get_result(conn)
                .await?;
            // Serialised with updates of the group: an update never writes a version of a
            // key deleted under it (it fails as stale instead).
            lock_group!(conn, &group, &team);
            let details = one_key!(conn, &id);
            delete_keys!(conn, std::slice::from_ref(&id));
            conn.insert_audit(audit).await?;
            Ok(details)
        })
    }

    async fn record_read(
        &self,
        id: GroupSecretId,
        reader: VirtualAccountId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let row = ReadRow {
            secret_id: id_text(id.as_uuid()),
            virtual_account_id: id_text(reader.as_uuid()),
            read_at: db_time(at),
        };
        transaction!(self.db, |conn| {
            group_secrets::table
                .find(&row.secret_id)
                .select(group_secrets::id)
                .get_result::<String>(conn)
                .await?;
            // Move an older read forward; else insert the first read, unless a concurrent
            // request inserted it meanwhile, in which case move that one forward if older.
            let newer = diesel::update(
                group_secret_reads::table
                    .find((&row.secret_id, &row.virtual_account_id))
                    .filter(group_secret_reads::read_at.lt(row.read_at)),
            )
            .set(group_secret_reads::read_at.eq(row.read_at));
            if newer.clone().execute(conn).await? == 0 {
                let inserted = diesel::insert_into(group_secret_reads::table)
                    .values(&row)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if inserted == 0 {
                    newer.execute(conn).await?;
                }
            }
            conn.insert_audit(audit).await
        })
    }

    async fn active_readers(
        &self,
        ids: &[GroupSecretId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<GroupSecretId, u64>, RepoError> {
        let mut counts: HashMap<GroupSecretId, u64> = ids.iter().map(|id| (*id, 0)).collect();
        if ids.is_empty() {
            return Ok(counts);
        }
        let stored: Vec<String> = ids.iter().map(|id| id_text(id.as_uuid())).collect();
        let since = db_time(since);
        let rows = with_conn!(self.db, |conn| {
            let mut rows: Vec<(String, i64)> = Vec::new();
            for chunk in stored.chunks(IDS_PER_QUERY) {
                // One row per (key, account): counting rows counts distinct accounts.
                let mut part: Vec<(String, i64)> = group_secret_reads::table
                    .filter(group_secret_reads::secret_id.eq_any(chunk))
                    .filter(group_secret_reads::read_at.ge(since))
                    .group_by(group_secret_reads::secret_id)
                    .select((group_secret_reads::secret_id, diesel::dsl::count_star()))
                    .load(conn)
                    .await?;
                rows.append(&mut part);
            }
            Ok(rows)
        })?;
        for (id, readers) in rows {
            let id = parse_id::<GroupSecretId>(&id, "group_secret_reads", "secret_id")?;
            counts.insert(id, count(readers));
        }
        Ok(counts)
    }
}

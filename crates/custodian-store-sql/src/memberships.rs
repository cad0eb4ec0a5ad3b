//! [`MembershipRepository`] on SQL.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use custodian_domain::{AuditEvent, LimitKind, Membership, Role, TeamId, User, UserId};
use custodian_ports::{ConflictKind, MembershipRepository, Page, Paged, RepoError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{count, db_time, id_text, page_bounds, parse_id, parse_text, utc};
use crate::db::{Conn, check_limit, transaction, with_conn};
use crate::error::DbError;
use crate::schema::{memberships, users};
use crate::users::UserRow;

/// A row of `memberships`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships, treat_none_as_default_value = false)]
pub(crate) struct MembershipRow {
    team_id: String,
    user_id: String,
    role: String,
    created_at: NaiveDateTime,
}

impl MembershipRow {
    pub(crate) fn from_membership(membership: &Membership) -> Self {
        Self {
            team_id: id_text(membership.team_id.as_uuid()),
            user_id: id_text(membership.user_id.as_uuid()),
            role: membership.role.as_str().to_owned(),
            created_at: db_time(membership.created_at),
        }
    }

    fn into_membership(self) -> Result<Membership, DbError> {
        const T: &str = "memberships";
        Ok(Membership {
            team_id: parse_id::<TeamId>(&self.team_id, T, "team_id")?,
            user_id: parse_id::<UserId>(&self.user_id, T, "user_id")?,
            role: parse_text::<Role>(&self.role, T, "role")?,
            created_at: utc(self.created_at),
        })
    }
}

/// Memberships on SQL.
#[derive(Debug, Clone)]
pub struct SqlMembershipRepository {
    db: Database,
}

impl SqlMembershipRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// `LastOwner` when `current` is an owner's role, `next` is not owner (or the member is
/// leaving) and the team has no other owner. Runs after the team row is locked.
macro_rules! keep_an_owner {
    ($conn:expr, $team:expr, $current:expr, $next:expr) => {
        if $current == Role::Owner.as_str() && $next != Some(Role::Owner) {
            let owners: i64 = memberships::table
                .filter(memberships::team_id.eq($team))
                .filter(memberships::role.eq(Role::Owner.as_str()))
                .count()
                .get_result($conn)
                .await?;
            if owners <= 1 {
                return Err(DbError::Repo(RepoError::Conflict(ConflictKind::LastOwner)));
            }
        }
    };
}

#[async_trait]
impl MembershipRepository for SqlMembershipRepository {
    async fn add(
        &self,
        membership: &Membership,
        member_limit: Option<u32>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let row = MembershipRow::from_membership(membership);
        transaction!(self.db, |conn| {
            // The team lock makes the count and the insert one step for concurrent adds.
            conn.lock_team(&row.team_id).await?;
            let existing: Option<String> = memberships::table
                .find((&row.team_id, &row.user_id))
                .select(memberships::role)
                .get_result(conn)
                .await
                .optional()?;
            if existing.is_some() {
                return Err(DbError::Repo(RepoError::Conflict(ConflictKind::AlreadyMember)));
            }
            let members: i64 = memberships::table
                .filter(memberships::team_id.eq(&row.team_id))
                .count()
                .get_result(conn)
                .await?;
            check_limit(members, member_limit, LimitKind::Members)?;
            diesel::insert_into(memberships::table)
                .values(&row)
                .execute(conn)
                .await?;
            conn.insert_audit(audit).await
        })
    }

    async fn get(&self, team: TeamId, user: UserId) -> Result<Option<Membership>, RepoError> {
        let key = (id_text(team.as_uuid()), id_text(user.as_uuid()));
        with_conn!(self.db, |conn| {
            let row: Option<MembershipRow> = memberships::table
                .find((&key.0, &key.1))
                .select(MembershipRow::as_select())
                .get_result(conn)
                .await
                .optional()?;
            row.map(MembershipRow::into_membership).transpose()
        })
    }

    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<(Membership, User)>, RepoError> {
        let team = id_text(team.as_uuid());
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let rows: Vec<(MembershipRow, UserRow)> = memberships::table
                .inner_join(users::table)
                .filter(memberships::team_id.eq(&team))
                .select((MembershipRow::as_select(), UserRow::as_select()))
                .order((users::email.asc(), users::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = memberships::table
                .filter(memberships::team_id.eq(&team))
                .count()
                .get_result(conn)
                .await?;
            let items = rows
                .into_iter()
                .map(|(m, u)| Ok((m.into_membership()?, u.into_user()?)))
                .collect::<Result<_, DbError>>()?;
            Ok(Paged {
                items,
                total: count(total),
            })
        })
    }

    async fn list_for_user(&self, user: UserId) -> Result<Vec<Membership>, RepoError> {
        let user = id_text(user.as_uuid());
        with_conn!(self.db, |conn| {
            let rows: Vec<MembershipRow> = memberships::table
                .filter(memberships::user_id.eq(&user))
                .select(MembershipRow::as_select())
                .order(memberships::team_id.asc())
                .load(conn)
                .await?;
            rows.into_iter().map(MembershipRow::into_membership).collect()
        })
    }

    async fn update_role(
        &self,
        team: TeamId,
        user: UserId,
        role: Role,
        audit: &AuditEvent,
    ) -> Result<Membership, RepoError> {
        let (team, user) = (id_text(team.as_uuid()), id_text(user.as_uuid()));
        transaction!(self.db, |conn| {
            // Locked so that two owners demoting each other cannot both succeed.
            conn.lock_team(&team).await?;
            let current: MembershipRow = memberships::table
                .find((&team, &user))
                .select(MembershipRow::as_select())
                .get_result(conn)
                .await?;
            keep_an_owner!(conn, &team, current.role, Some(role));
            diesel::update(memberships::table.find((&team, &user)))
                .set(memberships::role.eq(role.as_str()))
                .execute(conn)
                .await?;
            conn.insert_audit(audit).await?;
            let mut updated = current.into_membership()?;
            updated.role = role;
            Ok(updated)
        })
    }

    async fn remove(&self, team: TeamId, user: UserId, audit: &AuditEvent) -> Result<(), RepoError> {
        let (team, user) = (id_text(team.as_uuid()), id_text(user.as_uuid()));
        transaction!(self.db, |conn| {
            conn.lock_team(&team).await?;
            let current: String = memberships::table
                .find((&team, &user))
                .select(memberships::role)
                .get_result(conn)
                .await?;
            keep_an_owner!(conn, &team, current, None);
            diesel::delete(memberships::table.find((&team, &user)))
                .execute(conn)
                .await?;
            conn.insert_audit(audit).await
        })
    }
}

//! [`TeamRepository`] on SQL.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use custodian_domain::{AuditEvent, Description, Membership, Name, Role, SubjectId, Team, TeamId, Tier, UserId};
use custodian_ports::{ConflictKind, Page, Paged, RepoError, TeamRepository};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{checked, count, db_time, id_text, page_bounds, parse_id, parse_text, utc};
use crate::db::{Conn, transaction, with_conn};
use crate::error::DbError;
use crate::memberships::MembershipRow;
use crate::schema::{locations, memberships, secret_groups, storage_secrets, teams, vault_connections};
use crate::tokens::found;

/// A row of `teams`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = teams, treat_none_as_default_value = false)]
pub(crate) struct TeamRow {
    id: String,
    name: String,
    description: Option<String>,
    tier: String,
    created_at: NaiveDateTime,
    created_by: String,
    updated_at: NaiveDateTime,
}

impl TeamRow {
    fn from_team(team: &Team) -> Self {
        Self {
            id: id_text(team.id.as_uuid()),
            name: team.name.as_str().to_owned(),
            description: team.description.as_ref().map(|d| d.as_str().to_owned()),
            tier: team.tier.as_str().to_owned(),
            created_at: db_time(team.created_at),
            created_by: id_text(team.created_by.as_uuid()),
            updated_at: db_time(team.updated_at),
        }
    }

    pub(crate) fn into_team(self) -> Result<Team, DbError> {
        const T: &str = "teams";
        Ok(Team {
            id: parse_id::<TeamId>(&self.id, T, "id")?,
            name: checked(Name::parse_at("name", self.name), T, "name")?,
            description: self
                .description
                .map(|d| checked(Description::parse_at("description", d), T, "description"))
                .transpose()?,
            tier: parse_text::<Tier>(&self.tier, T, "tier")?,
            created_at: utc(self.created_at),
            created_by: parse_id::<SubjectId>(&self.created_by, T, "created_by")?,
            updated_at: utc(self.updated_at),
        })
    }
}

/// Teams on SQL.
#[derive(Debug, Clone)]
pub struct SqlTeamRepository {
    db: Database,
}

impl SqlTeamRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl TeamRepository for SqlTeamRepository {
    async fn create(&self, team: &Team, owner: &Membership, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = TeamRow::from_team(team);
        let owner = MembershipRow::from_membership(owner);
        transaction!(self.db, |conn| {
            diesel::insert_into(teams::table).values(&row).execute(conn).await?;
            diesel::insert_into(memberships::table)
                .values(&owner)
                .execute(conn)
                .await?;
            conn.insert_audit(audit).await
        })
    }

    async fn get(&self, id: TeamId) -> Result<Team, RepoError> {
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: TeamRow = teams::table
                .find(&id)
                .select(TeamRow::as_select())
                .get_result(conn)
                .await?;
            row.into_team()
        })
    }

    async fn find_by_name(&self, name: &Name) -> Result<Option<Team>, RepoError> {
        let name = name.as_str().to_owned();
        with_conn!(self.db, |conn| {
            let row: Option<TeamRow> = teams::table
                .filter(teams::name.eq(&name))
                .select(TeamRow::as_select())
                .get_result(conn)
                .await
                .optional()?;
            row.map(TeamRow::into_team).transpose()
        })
    }

    async fn list_all(&self, page: Page) -> Result<Paged<Team>, RepoError> {
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let rows: Vec<TeamRow> = teams::table
                .select(TeamRow::as_select())
                .order((teams::name.asc(), teams::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = teams::table.count().get_result(conn).await?;
            Ok(Paged {
                items: rows.into_iter().map(TeamRow::into_team).collect::<Result<_, _>>()?,
                total: count(total),
            })
        })
    }

    async fn list_for_user(&self, user: UserId, page: Page) -> Result<Paged<(Team, Role)>, RepoError> {
        let user = id_text(user.as_uuid());
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let rows: Vec<(TeamRow, String)> = teams::table
                .inner_join(memberships::table)
                .filter(memberships::user_id.eq(&user))
                .select((TeamRow::as_select(), memberships::role))
                .order((teams::name.asc(), teams::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = memberships::table
                .filter(memberships::user_id.eq(&user))
                .count()
                .get_result(conn)
                .await?;
            let items = rows
                .into_iter()
                .map(|(team, role)| Ok((team.into_team()?, parse_text::<Role>(&role, "memberships", "role")?)))
                .collect::<Result<_, DbError>>()?;
            Ok(Paged {
                items,
                total: count(total),
            })
        })
    }

    async fn update(&self, team: &Team, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = TeamRow::from_team(team);
        transaction!(self.db, |conn| {
            let updated = diesel::update(teams::table.find(&row.id))
                .set((
                    teams::name.eq(&row.name),
                    teams::description.eq(&row.description),
                    teams::tier.eq(&row.tier),
                    teams::updated_at.eq(row.updated_at),
                ))
                .execute(conn)
                .await?;
            found(updated)?;
            conn.insert_audit(audit).await
        })
    }

    async fn delete(&self, id: TeamId, audit: &AuditEvent) -> Result<(), RepoError> {
        let id = id_text(id.as_uuid());
        transaction!(self.db, |conn| {
            conn.lock_team(&id).await?;
            let secrets: i64 = storage_secrets::table
                .filter(storage_secrets::team_id.eq(&id))
                .count()
                .get_result(conn)
                .await?;
            let locations: i64 = locations::table
                .filter(locations::team_id.eq(&id))
                .count()
                .get_result(conn)
                .await?;
            let connections: i64 = vault_connections::table
                .filter(vault_connections::team_id.eq(&id))
                .count()
                .get_result(conn)
                .await?;
            // Secret groups hold values in the credential store: a team keeps them too.
            let groups: i64 = secret_groups::table
                .filter(secret_groups::team_id.eq(&id))
                .count()
                .get_result(conn)
                .await?;
            if secrets + locations + connections + groups > 0 {
                return Err(DbError::Repo(RepoError::Conflict(ConflictKind::TeamNotEmpty)));
            }
            // Memberships, virtual accounts and their tokens go with the team (ON DELETE CASCADE).
            diesel::delete(teams::table.find(&id)).execute(conn).await?;
            conn.insert_audit(audit).await
        })
    }
}

//! [`VirtualAccountRepository`] on SQL.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use custodian_domain::{AuditEvent, Name, Role, SubjectId, TeamId, TokenRecord, VirtualAccount, VirtualAccountId};
use custodian_ports::{Page, Paged, RepoError, VirtualAccountRepository};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{checked, count, db_time, id_text, page_bounds, parse_id, parse_text, utc, utc_opt};
use crate::db::{Conn, transaction, with_conn};
use crate::error::DbError;
use crate::schema::{tokens, virtual_accounts};
use crate::tokens::{TokenRow, found};

/// A row of `virtual_accounts`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = virtual_accounts, treat_none_as_default_value = false)]
struct VirtualAccountRow {
    id: String,
    team_id: String,
    name: String,
    role: String,
    expires_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    created_by: String,
}

impl VirtualAccountRow {
    fn from_account(account: &VirtualAccount) -> Self {
        Self {
            id: id_text(account.id.as_uuid()),
            team_id: id_text(account.team_id.as_uuid()),
            name: account.name.as_str().to_owned(),
            role: account.role.as_str().to_owned(),
            expires_at: account.expires_at.map(db_time),
            created_at: db_time(account.created_at),
            created_by: id_text(account.created_by.as_uuid()),
        }
    }

    fn into_account(self) -> Result<VirtualAccount, DbError> {
        const T: &str = "virtual_accounts";
        Ok(VirtualAccount {
            id: parse_id::<VirtualAccountId>(&self.id, T, "id")?,
            team_id: parse_id::<TeamId>(&self.team_id, T, "team_id")?,
            name: checked(Name::parse_at("name", self.name), T, "name")?,
            role: parse_text::<Role>(&self.role, T, "role")?,
            expires_at: utc_opt(self.expires_at),
            created_at: utc(self.created_at),
            created_by: parse_id::<SubjectId>(&self.created_by, T, "created_by")?,
        })
    }
}

/// Virtual accounts on SQL.
#[derive(Debug, Clone)]
pub struct SqlVirtualAccountRepository {
    db: Database,
}

impl SqlVirtualAccountRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl VirtualAccountRepository for SqlVirtualAccountRepository {
    async fn create(&self, account: &VirtualAccount, token: &TokenRecord, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = VirtualAccountRow::from_account(account);
        let token = TokenRow::from_record(token);
        transaction!(self.db, |conn| {
            diesel::insert_into(virtual_accounts::table)
                .values(&row)
                .execute(conn)
                .await?;
            diesel::insert_into(tokens::table).values(&token).execute(conn).await?;
            conn.insert_audit(audit).await
        })
    }

    async fn get(&self, team: TeamId, id: VirtualAccountId) -> Result<VirtualAccount, RepoError> {
        let (team, id) = (id_text(team.as_uuid()), id_text(id.as_uuid()));
        with_conn!(self.db, |conn| {
            let row: VirtualAccountRow = virtual_accounts::table
                .find(&id)
                .filter(virtual_accounts::team_id.eq(&team))
                .select(VirtualAccountRow::as_select())
                .get_result(conn)
                .await?;
            row.into_account()
        })
    }

    async fn get_by_id(&self, id: VirtualAccountId) -> Result<VirtualAccount, RepoError> {
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: VirtualAccountRow = virtual_accounts::table
                .find(&id)
                .select(VirtualAccountRow::as_select())
                .get_result(conn)
                .await?;
            row.into_account()
        })
    }

    async fn list(&self, team: TeamId, page: Page) -> Result<Paged<VirtualAccount>, RepoError> {
        let team = id_text(team.as_uuid());
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let rows: Vec<VirtualAccountRow> = virtual_accounts::table
                .filter(virtual_accounts::team_id.eq(&team))
                .select(VirtualAccountRow::as_select())
                .order((virtual_accounts::name.asc(), virtual_accounts::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = virtual_accounts::table
                .filter(virtual_accounts::team_id.eq(&team))
                .count()
                .get_result(conn)
                .await?;
            Ok(Paged {
                items: rows
                    .into_iter()
                    .map(VirtualAccountRow::into_account)
                    .collect::<Result<_, _>>()?,
                total: count(total),
            })
        })
    }

    async fn delete(&self, team: TeamId, id: VirtualAccountId, audit: &AuditEvent) -> Result<(), RepoError> {
        let (team, id) = (id_text(team.as_uuid()), id_text(id.as_uuid()));
        transaction!(self.db, |conn| {
            // Its tokens go with it (ON DELETE CASCADE).
            let deleted = diesel::delete(
                virtual_accounts::table
                    .find(&id)
                    .filter(virtual_accounts::team_id.eq(&team)),
            )
            .execute(conn)
            .await?;
            found(deleted)?;
            conn.insert_audit(audit).await
        })
    }
}

//! [`UserRepository`] on SQL.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use custodian_domain::{AuditEvent, DisplayName, Email, Role, TokenRecord, User, UserId};
use custodian_ports::{ConflictKind, Page, Paged, RepoError, UserRepository};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{checked, count, db_time, id_text, page_bounds, parse_id, utc};
use crate::db::{Conn, transaction, with_conn};
use crate::error::DbError;
use crate::schema::{memberships, users};
use crate::tokens::TokenRow;

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub(crate) struct UserRow {
    id: String,
    email: String,
    display_name: String,
    tenant_admin: bool,
    created_at: NaiveDateTime,
    disabled_at: Option<NaiveDateTime>,
}

impl UserRow {
    fn from_user(user: &User) -> Self {
        Self {
            id: id_text(user.id.as_uuid()),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            tenant_admin: user.tenant_admin,
            created_at: db_time(user.created_at),
            disabled_at: user.disabled_at.map(db_time),
        }
    }

    pub(crate) fn into_user(self) -> Result<User, DbError> {
        const T: &str = "users";
        Ok(User {
            id: parse_id::<UserId>(&self.id, T, "id")?,
            email: checked(Email::parse_at("email", &self.email), T, "email")?,
            display_name: checked(
                DisplayName::parse_at("display_name", self.display_name),
                T,
                "display_name",
            )?,
            tenant_admin: self.tenant_admin,
            created_at: utc(self.created_at),
            disabled_at: self.disabled_at.map(utc),
        })
    }
}

/// Users on SQL.
#[derive(Debug, Clone)]
pub struct SqlUserRepository {
    db: Database,
}

impl SqlUserRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UserRepository for SqlUserRepository {
    async fn create(&self, user: &User, first_token: Option<TokenRecord>, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = UserRow::from_user(user);
        let token = first_token.as_ref().map(TokenRow::from_record);
        transaction!(self.db, |conn| {
            diesel::insert_into(users::table).values(&row).execute(conn).await?;
            if let Some(token) = &token {
                diesel::insert_into(crate::schema::tokens::table)
                    .values(token)
                    .execute(conn)
                    .await?;
            }
            conn.insert_audit(audit).await
        })
    }

    async fn get(&self, id: UserId) -> Result<User, RepoError> {
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: UserRow = users::table
                .find(&id)
                .select(UserRow::as_select())
                .get_result(conn)
                .await?;
            row.into_user()
        })
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        with_conn!(self.db, |conn| {
            let row: Option<UserRow> = users::table
                .filter(users::email.eq(email.as_str()))
                .select(UserRow::as_select())
                .get_result(conn)
                .await
                .optional()?;
            row.map(UserRow::into_user).transpose()
        })
    }

    async fn list(&self, page: Page) -> Result<Paged<User>, RepoError> {
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            let rows: Vec<UserRow> = users::table
                .select(UserRow::as_select())
                .order((users::email.asc(), users::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            let total: i64 = users::table.count().get_result(conn).await?;
            Ok(Paged {
                items: rows.into_iter().map(UserRow::into_user).collect::<Result<_, _>>()?,
                total: count(total),
            })
        })
    }

    async fn count(&self) -> Result<u64, RepoError> {
        with_conn!(self.db, |conn| {
            let total: i64 = users::table.count().get_result(conn).await?;
            Ok(count(total))
        })
    }

    async fn update(&self, user: &User, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = UserRow::from_user(user);
        transaction!(self.db, |conn| {
            let updated = diesel::update(users::table.find(&row.id))
                .set((
                    users::display_name.eq(&row.display_name),
                    users::tenant_admin.eq(row.tenant_admin),
                    users::disabled_at.eq(row.disabled_at),
                ))
                .execute(conn)
                .await?;
            if updated == 0 {
                return Err(RepoError::NotFound.into());
            }
            conn.insert_audit(audit).await
        })
    }

    async fn delete(&self, id: UserId, audit: &AuditEvent) -> Result<(), RepoError> {
        let id = id_text(id.as_uuid());
        transaction!(self.db, |conn| {
            let owned: Vec<String> = memberships::table
                .filter(memberships::user_id.eq(&id))
                .filter(memberships::role.eq(Role::Owner.as_str()))
                .select(memberships::team_id)
                .order(memberships::team_id)
                .load(conn)
                .await?;
            for team in &owned {
                conn.lock_team(team).await?;
                let others: i64 = memberships::table
                    .filter(memberships::team_id.eq(team))
                    .filter(memberships::role.eq(Role::Owner.as_str()))
                    .filter(memberships::user_id.ne(&id))
                    .count()
                    .get_result(conn)
                    .await?;
                if others == 0 {
                    return Err(RepoError::Conflict(ConflictKind::LastOwner).into());
                }
            }
            // Tokens and memberships go with the user (ON DELETE CASCADE).
            let deleted = diesel::delete(users::table.find(&id)).execute(conn).await?;
            if deleted == 0 {
                return Err(RepoError::NotFound.into());
            }
            conn.insert_audit(audit).await
        })
    }
}

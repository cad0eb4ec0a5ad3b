//! [`TokenRepository`] on SQL.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use custodian_domain::{
    AuditEvent, TokenDigest, TokenId, TokenName, TokenOwner, TokenRecord, UserId, VirtualAccountId,
};
use custodian_ports::{RepoError, TokenRepository};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Database;
use crate::convert::{checked, db_time, id_text, parse_id, utc, utc_opt};
use crate::db::{Conn, transaction, with_conn};
use crate::error::DbError;
use crate::schema::{identity_epoch, tokens};

/// A row of `tokens`: exactly one of `user_id` and `virtual_account_id` is set.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tokens, treat_none_as_default_value = false)]
pub(crate) struct TokenRow {
    id: String,
    user_id: Option<String>,
    virtual_account_id: Option<String>,
    name: Option<String>,
    digest: Vec<u8>,
    created_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    last_used_at: Option<NaiveDateTime>,
}

impl TokenRow {
    pub(crate) fn from_record(token: &TokenRecord) -> Self {
        let (user_id, virtual_account_id) = owner_columns(token.owner);
        Self {
            id: id_text(token.id.as_uuid()),
            user_id,
            virtual_account_id,
            name: token.name.as_ref().map(|n| n.as_str().to_owned()),
            digest: token.digest.0.to_vec(),
            created_at: db_time(token.created_at),
            expires_at: token.expires_at.map(db_time),
            revoked_at: token.revoked_at.map(db_time),
            last_used_at: token.last_used_at.map(db_time),
        }
    }

    fn into_record(self) -> Result<TokenRecord, DbError> {
        const T: &str = "tokens";
        let owner = match (self.user_id.as_deref(), self.virtual_account_id.as_deref()) {
            (Some(user), None) => TokenOwner::User(parse_id::<UserId>(user, T, "user_id")?),
            (None, Some(account)) => {
                TokenOwner::VirtualAccount(parse_id::<VirtualAccountId>(account, T, "virtual_account_id")?)
            }
            _ => return Err(DbError::corrupt(T, "owner")),
        };
        let digest: [u8; 32] = self
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| DbError::corrupt(T, "digest"))?;
        Ok(TokenRecord {
            id: parse_id::<TokenId>(&self.id, T, "id")?,
            owner,
            name: self
                .name
                .as_deref()
                .map(|n| checked(TokenName::parse_at("name", n), T, "name"))
                .transpose()?,
            digest: TokenDigest(digest),
            created_at: utc(self.created_at),
            expires_at: utc_opt(self.expires_at),
            revoked_at: utc_opt(self.revoked_at),
            last_used_at: utc_opt(self.last_used_at),
        })
    }
}

/// `(user_id, virtual_account_id)` of an owner.
fn owner_columns(owner: TokenOwner) -> (Option<String>, Option<String>) {
    match owner {
        TokenOwner::User(id) => (Some(id_text(id.as_uuid())), None),
        TokenOwner::VirtualAccount(id) => (None, Some(id_text(id.as_uuid()))),
    }
}

/// Tokens on SQL.
#[derive(Debug, Clone)]
pub struct SqlTokenRepository {
    db: Database,
}

impl SqlTokenRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl TokenRepository for SqlTokenRepository {
    async fn create(&self, token: &TokenRecord, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = TokenRow::from_record(token);
        transaction!(self.db, |conn| {
            diesel::insert_into(tokens::table).values(&row).execute(conn).await?;
            conn.insert_audit(audit).await
        })
    }

    async fn find_by_digest(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, RepoError> {
        let digest = digest.0.to_vec();
        with_conn!(self.db, |conn| {
            let row: Option<TokenRow> = tokens::table
                .filter(tokens::digest.eq(&digest))
                .select(TokenRow::as_select())
                .get_result(conn)
                .await
                .optional()?;
            row.map(TokenRow::into_record).transpose()
        })
    }

    async fn get(&self, id: TokenId) -> Result<TokenRecord, RepoError> {
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: TokenRow = tokens::table
                .find(&id)
                .select(TokenRow::as_select())
                .get_result(conn)
                .await?;
            row.into_record()
        })
    }

    async fn list_for_owner(&self, owner: TokenOwner) -> Result<Vec<TokenRecord>, RepoError> {
        let (user_id, account_id) = owner_columns(owner);
        with_conn!(self.db, |conn| {
            let rows: Vec<TokenRow> = match (&user_id, &account_id) {
                (Some(user), _) => {
                    tokens::table
                        .filter(tokens::user_id.eq(user))
                        .select(TokenRow::as_select())
                        .order((tokens::created_at.desc(), tokens::id.desc()))
                        .load(conn)
                        .await?
                }
                (None, account) => {
                    tokens::table
                        .filter(tokens::virtual_account_id.eq(account))
                        .select(TokenRow::as_select())
                        .order((tokens::created_at.desc(), tokens::id.desc()))
                        .load(conn)
                        .await?
                }
            };
            rows.into_iter().map(TokenRow::into_record).collect()
        })
    }

    async fn identity_epoch(&self) -> Result<u64, RepoError> {
        with_conn!(self.db, |conn| {
            let epoch: i64 = identity_epoch::table
                .select(identity_epoch::epoch)
                .find(1)
                .get_result(conn)
                .await?;
            Ok(u64::try_from(epoch).unwrap_or_default())
        })
    }

    async fn touch(&self, id: TokenId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let id = id_text(id.as_uuid());
        let at = db_time(at);
        transaction!(self.db, |conn| {
            let updated = diesel::update(tokens::table.find(&id))
                .set(tokens::last_used_at.eq(Some(at)))
                .execute(conn)
                .await?;
            found(updated)
        })
    }

    async fn revoke(&self, id: TokenId, at: DateTime<Utc>, audit: &AuditEvent) -> Result<(), RepoError> {
        let id = id_text(id.as_uuid());
        let at = db_time(at);
        transaction!(self.db, |conn| {
            let updated = diesel::update(tokens::table.find(&id))
                .set(tokens::revoked_at.eq(Some(at)))
                .execute(conn)
                .await?;
            found(updated)?;
            conn.insert_audit(audit).await
        })
    }

    async fn replace_for_owner(
        &self,
        owner: TokenOwner,
        revoke_at: DateTime<Utc>,
        replacement: &TokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let (user_id, account_id) = owner_columns(owner);
        let revoke_at = db_time(revoke_at);
        let row = TokenRow::from_record(replacement);
        transaction!(self.db, |conn| {
            // A token already revoked earlier keeps its earlier instant.
            let still_valid = tokens::revoked_at.is_null().or(tokens::revoked_at.gt(revoke_at));
            match (&user_id, &account_id) {
                (Some(user), _) => {
                    diesel::update(tokens::table.filter(tokens::user_id.eq(user)).filter(still_valid))
                        .set(tokens::revoked_at.eq(Some(revoke_at)))
                        .execute(conn)
                        .await?
                }
                (None, account) => {
                    diesel::update(
                        tokens::table
                            .filter(tokens::virtual_account_id.eq(account))
                            .filter(still_valid),
                    )
                    .set(tokens::revoked_at.eq(Some(revoke_at)))
                    .execute(conn)
                    .await?
                }
            };
            diesel::insert_into(tokens::table).values(&row).execute(conn).await?;
            conn.insert_audit(audit).await
        })
    }
}

/// `NotFound` when an update by key touched no row.
pub(crate) fn found(updated: usize) -> Result<(), DbError> {
    if updated == 0 {
        Err(DbError::Repo(RepoError::NotFound))
    } else {
        Ok(())
    }
}

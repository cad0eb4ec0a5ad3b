//! The `local` credential store: envelope-encrypted blobs in the `credential_blobs` table of
//! the SQL database, sealed with `custodian-crypto`'s [`Keyring`].
//!
//! Every version of a record is one row holding the id of the master key that wrapped its
//! data key, the wrapped data key, the nonce and the ciphertext; never the value. The
//! associated data binds tenant, team, kind, record id and version, so a row copied onto
//! another key fails to open with `Integrity`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDateTime, Utc};
use custodian_crypto::{Aad, CryptoError, Keyring, SealedValue, SharedKeyring};
use custodian_domain::TeamId;
use custodian_ports::{
    CredentialKey, CredentialKind, CredentialStore, RepoError, SealedCredential, StoreError, StoredPage, StoredVersion,
};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use secrecy::SecretString;
use uuid::Uuid;

use crate::Database;
use crate::convert::{db_time, id_text};
use crate::db::{single_statement, transaction, with_conn};
use crate::master_keys::SealingKeyCache;
use crate::schema::credential_blobs;

/// A row of `credential_blobs`.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credential_blobs, treat_none_as_default_value = false)]
pub(crate) struct BlobRow {
    tenant: String,
    team_id: String,
    kind: String,
    record_id: String,
    version: i64,
    key_id: String,
    wrapped_key: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    created_at: NaiveDateTime,
}

impl BlobRow {
    /// A row of made-up bytes, for tests of the statements that write it.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self {
            tenant: "default".into(),
            team_id: "team".into(),
            kind: "storage-secret".into(),
            record_id: "record".into(),
            version: 1,
            key_id: "key".into(),
            wrapped_key: vec![1; 40],
            nonce: vec![2; 12],
            ciphertext: vec![3; 64],
            created_at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
        }
    }

    fn sealed(&self) -> SealedValue {
        SealedValue {
            key_id: self.key_id.clone(),
            wrapped_key: self.wrapped_key.clone(),
            nonce: self.nonce.clone(),
            ciphertext: self.ciphertext.clone(),
        }
    }
}

/// A version sealed by [`LocalCredentialStore::seal_for_commit`]: the row to insert, the
/// database it belongs in (the repositories of another database refuse it), and the
/// sealing store's memory of its key, which a failed insert clears.
pub(crate) struct StagedBlob {
    pub(crate) db: Database,
    pub(crate) row: BlobRow,
    pub(crate) sealing: Arc<SealingKeyCache>,
}

/// The local, encrypted [`CredentialStore`] over a [`Database`].
#[derive(Clone)]
pub struct LocalCredentialStore {
    pub(crate) db: Database,
    pub(crate) keyring: SharedKeyring,
    tenant: String,
    /// The key new values were last sealed under (see `sealing_key`), shared by clones.
    pub(crate) sealing: Arc<SealingKeyCache>,
}

impl fmt::Debug for LocalCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCredentialStore")
            .field("db", &self.db)
            .field("keyring", &self.keyring)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// The three columns of a record's key as stored.
struct KeyColumns {
    team_id: String,
    kind: &'static str,
    record_id: String,
}

impl KeyColumns {
    fn of(key: &CredentialKey) -> Self {
        Self {
            team_id: id_text(key.team_id.as_uuid()),
            kind: key.kind.as_str(),
            record_id: id_text(key.record_id),
        }
    }
}

impl LocalCredentialStore {
    /// A store for the deployment's `tenant` sealing new values under the database's
    /// active master key, which `keyring` must hold (see [`LocalCredentialStore::register_keys`]).
    pub fn new(db: Database, keyring: impl Into<SharedKeyring>, tenant: impl Into<String>) -> Self {
        Self {
            db,
            keyring: keyring.into(),
            tenant: tenant.into(),
            sealing: Arc::default(),
        }
    }

    /// The keyring it seals and opens with.
    pub fn keyring(&self) -> &SharedKeyring {
        &self.keyring
    }

    fn aad<'a>(&'a self, key: &CredentialKey, version: i64) -> Aad<'a> {
        Aad {
            tenant: &self.tenant,
            team_id: key.team_id.as_uuid(),
            kind: key.kind.as_str(),
            record_id: key.record_id,
            version,
        }
    }

    /// The row that stores `value` as `version` of `key`, sealed under the key new values
    /// are sealed under now. `Rejected` for a version below 1.
    async fn sealed_row(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<BlobRow, StoreError> {
        if version < 1 {
            return Err(StoreError::Rejected("versions start at 1".into()));
        }
        let (keyring, key_id) = self.sealing_key().await?;
        let sealed = keyring
            .seal_under(&key_id, &self.aad(key, version), value)
            .map_err(crypto_error)?;
        let columns = KeyColumns::of(key);
        Ok(BlobRow {
            tenant: self.tenant.clone(),
            team_id: columns.team_id,
            kind: columns.kind.to_owned(),
            record_id: columns.record_id,
            version,
            key_id: sealed.key_id,
            wrapped_key: sealed.wrapped_key,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            created_at: db_time(Utc::now()),
        })
    }

    /// Whether any value of this store's tenant is stored (a deployment that used the local
    /// store before the database recorded which store it uses).
    pub async fn holds_values(&self) -> Result<bool, StoreError> {
        let tenant = self.tenant.clone();
        let found: Option<String> = with_conn!(self.db, |conn| {
            Ok(credential_blobs::table
                .filter(credential_blobs::tenant.eq(tenant))
                .select(credential_blobs::record_id)
                .first(conn)
                .await
                .optional()?)
        })
        .map_err(store_error)?;
        Ok(found.is_some())
    }

    /// The distinct master-key ids that stored values (of any tenant) are sealed under and
    /// that are not among `known`, sorted: keys a keyring holding only `known` would lack to
    /// open them. Empty when every value opens, or nothing is stored. Key ids are not
    /// secret.
    pub async fn unknown_key_ids(&self, known: &[String]) -> Result<Vec<String>, StoreError> {
        let known = known.to_vec();
        let mut unknown: Vec<String> = with_conn!(self.db, |conn| {
            Ok(credential_blobs::table
                .filter(credential_blobs::key_id.ne_all(known))
                .select(credential_blobs::key_id)
                .distinct()
                .load(conn)
                .await?)
        })
        .map_err(store_error)?;
        unknown.sort();
        Ok(unknown)
    }

    /// Re-wrap the data key of every stored value (and of the sealed token pepper) that is
    /// not under the database's active key (after `keys rotate`), leaving the data
    /// ciphertext as it is. Returns how many were re-wrapped. `Integrity` when a stored
    /// value does not open with this keyring (its key is missing, or the row was tampered
    /// with or moved); nothing after it is re-wrapped. Values are read
    /// [`REWRAP_BATCH`] at a time, so memory does not grow with the store.
    pub async fn rewrap_all(&self) -> Result<u64, StoreError> {
        self.rewrap_in_batches(REWRAP_BATCH).await
    }

    async fn rewrap_in_batches(&self, batch: i64) -> Result<u64, StoreError> {
        let active = self
            .active_key_id()
            .await?
            .ok_or_else(|| StoreError::Internal("the database has no active master key".into()))?;
        let mut keyring = self.keyring.current();
        if !keyring.has_key(&active) {
            keyring = self.keyring.reload().map_err(crypto_error)?;
        }
        if !keyring.has_key(&active) {
            return Err(StoreError::Rejected(format!(
                "the database's active master key {active} is not in this keyring"
            )));
        }
        let mut rewrapped = 0;
        loop {
            let not_active = active.clone();
            let stale: Vec<BlobRow> = with_conn!(self.db, |conn| {
                Ok(credential_blobs::table
                    .filter(credential_blobs::key_id.ne(&not_active))
                    .order((
                        credential_blobs::team_id,
                        credential_blobs::kind,
                        credential_blobs::record_id,
                        credential_blobs::version,
                    ))
                    .limit(batch)
                    .select(BlobRow::as_select())
                    .load(conn)
                    .await?)
            })
            .map_err(store_error)?;
            let read = stale.len();
            let done = self.rewrap_rows(&keyring, &active, stale).await?;
            rewrapped += done;
            // The last batch; or none of this one was still stale when it was written (each
            // was replaced or removed meanwhile): the next run finds what is left.
            if i64::try_from(read).unwrap_or(i64::MAX) < batch || done == 0 {
                break;
            }
        }
        Ok(rewrapped + self.rewrap_pepper(&keyring, &active).await?)
    }

    /// Re-wrap `stale` under `active`, each only if nobody re-wrapped or replaced it
    /// meanwhile; how many were.
    async fn rewrap_rows(&self, keyring: &Keyring, active: &str, stale: Vec<BlobRow>) -> Result<u64, StoreError> {
        let mut rewrapped = 0;
        for row in stale {
            let kind = CredentialKind::parse(&row.kind).ok_or(StoreError::Integrity)?;
            let team = Uuid::parse_str(&row.team_id).map_err(|_| StoreError::Integrity)?;
            let record = Uuid::parse_str(&row.record_id).map_err(|_| StoreError::Integrity)?;
            let aad = Aad {
                tenant: &row.tenant,
                team_id: team,
                kind: kind.as_str(),
                record_id: record,
                version: row.version,
            };
            let sealed = keyring
                .rewrap_under(active, &aad, &row.sealed())
                .map_err(crypto_error)?;
            let previous_key = row.key_id.clone();
            let updated = transaction!(self.db, |conn| {
                // Only if nobody re-wrapped or replaced it meanwhile.
                Ok(diesel::update(
                    credential_blobs::table
                        .find((&row.team_id, &row.kind, &row.record_id, row.version))
                        .filter(credential_blobs::key_id.eq(&previous_key)),
                )
                .set((
                    credential_blobs::key_id.eq(&sealed.key_id),
                    credential_blobs::wrapped_key.eq(&sealed.wrapped_key),
                ))
                .execute(conn)
                .await?)
            })
            .map_err(store_error)?;
            rewrapped += u64::try_from(updated).unwrap_or(0);
        }
        Ok(rewrapped)
    }
}

/// How many stored values `rewrap_all` reads at a time.
const REWRAP_BATCH: i64 = 500;

#[async_trait]
impl CredentialStore for LocalCredentialStore {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn put(&self, key: &CredentialKey, version: i64, value: &SecretString) -> Result<(), StoreError> {
        // A key removed between choosing it and the insert (its foreign key refuses the
        // row): choose again, once.
        let mut retried = false;
        loop {
            let row = self.sealed_row(key, version, value).await?;
            let inserted = single_statement!(self.db, |conn| {
                diesel::insert_into(credential_blobs::table)
                    .values(&row)
                    .execute(conn)
                    .await?;
                Ok(())
            });
            return match inserted {
                Ok(()) => Ok(()),
                Err(RepoError::NotFound) if !retried => {
                    retried = true;
                    self.sealing.forget();
                    continue;
                }
                Err(RepoError::NotFound) => Err(StoreError::Unavailable {
                    message: "the master key values are sealed under was removed meanwhile; retry".into(),
                    retry_after: None,
                }),
                Err(RepoError::Conflict(_)) => Err(StoreError::AlreadyExists),
                Err(other) => Err(store_error(other)),
            };
        }
    }

    async fn seal_for_commit(
        &self,
        key: &CredentialKey,
        version: i64,
        value: &SecretString,
    ) -> Result<Option<SealedCredential>, StoreError> {
        let row = self.sealed_row(key, version, value).await?;
        Ok(Some(SealedCredential::new(
            *key,
            version,
            StagedBlob {
                db: self.db.clone(),
                row,
                sealing: self.sealing.clone(),
            },
        )))
    }

    async fn get(&self, key: &CredentialKey, version: i64) -> Result<SecretString, StoreError> {
        let columns = KeyColumns::of(key);
        let row: BlobRow = with_conn!(self.db, |conn| {
            Ok(credential_blobs::table
                .find((&columns.team_id, columns.kind, &columns.record_id, version))
                .select(BlobRow::as_select())
                .get_result(conn)
                .await?)
        })
        .map_err(store_error)?;
        let aad = self.aad(key, version);
        match self.keyring.current().open(&aad, &row.sealed()) {
            // Sealed under a key added since this process read its keyring.
            Err(CryptoError::UnknownKey(_)) => self.keyring.reload().map_err(crypto_error)?.open(&aad, &row.sealed()),
            other => other,
        }
        .map_err(crypto_error)
    }

    async fn delete_version(&self, key: &CredentialKey, version: i64) -> Result<(), StoreError> {
        let columns = KeyColumns::of(key);
        transaction!(self.db, |conn| {
            diesel::delete(credential_blobs::table.find((&columns.team_id, columns.kind, &columns.record_id, version)))
                .execute(conn)
                .await?;
            Ok(())
        })
        .map_err(store_error)
    }

    async fn prune(&self, key: &CredentialKey, keep: i64) -> Result<(), StoreError> {
        let columns = KeyColumns::of(key);
        transaction!(self.db, |conn| {
            diesel::delete(
                credential_blobs::table
                    .filter(credential_blobs::team_id.eq(&columns.team_id))
                    .filter(credential_blobs::kind.eq(columns.kind))
                    .filter(credential_blobs::record_id.eq(&columns.record_id))
                    .filter(credential_blobs::version.lt(keep)),
            )
            .execute(conn)
            .await?;
            Ok(())
        })
        .map_err(store_error)
    }

    async fn list_stored(&self, page: Option<String>, limit: u32) -> Result<StoredPage, StoreError> {
        // The token is the last row's primary key: team, kind, record, version.
        let after = match page {
            None => None,
            Some(token) => {
                let parts: Vec<&str> = token.split('/').collect();
                match parts.as_slice() {
                    [team, kind, record, version] => Some((
                        (*team).to_owned(),
                        (*kind).to_owned(),
                        (*record).to_owned(),
                        version
                            .parse::<i64>()
                            .map_err(|_| StoreError::Rejected("not a page token of this store".into()))?,
                    )),
                    _ => return Err(StoreError::Rejected("not a page token of this store".into())),
                }
            }
        };
        let tenant = self.tenant.clone();
        let rows: Vec<(String, String, String, i64, NaiveDateTime)> = with_conn!(self.db, |conn| {
            let mut query = credential_blobs::table
                .filter(credential_blobs::tenant.eq(tenant))
                .select((
                    credential_blobs::team_id,
                    credential_blobs::kind,
                    credential_blobs::record_id,
                    credential_blobs::version,
                    credential_blobs::created_at,
                ))
                .order((
                    credential_blobs::team_id,
                    credential_blobs::kind,
                    credential_blobs::record_id,
                    credential_blobs::version,
                ))
                .limit(i64::from(limit.max(1)))
                .into_boxed();
            if let Some((team, kind, record, version)) = after {
                use credential_blobs::dsl as b;
                query = query.filter(
                    b::team_id.gt(team.clone()).or(b::team_id.eq(team.clone()).and(
                        b::kind.gt(kind.clone()).or(b::kind.eq(kind.clone()).and(
                            b::record_id
                                .gt(record.clone())
                                .or(b::record_id.eq(record).and(b::version.gt(version))),
                        )),
                    )),
                );
            }
            Ok(query.load(conn).await?)
        })
        .map_err(store_error)?;
        let next = (rows.len() >= limit.max(1) as usize)
            .then(|| rows.last().map(|(t, k, r, v, _)| format!("{t}/{k}/{r}/{v}")))
            .flatten();
        let versions = rows
            .into_iter()
            .map(|(team, kind, record, version, written)| {
                Ok(StoredVersion {
                    key: CredentialKey {
                        team_id: TeamId::from_uuid(Uuid::parse_str(&team).map_err(|_| StoreError::Integrity)?),
                        kind: CredentialKind::parse(&kind).ok_or(StoreError::Integrity)?,
                        record_id: Uuid::parse_str(&record).map_err(|_| StoreError::Integrity)?,
                    },
                    version,
                    written_at: written.and_utc(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(StoredPage { versions, next })
    }

    async fn delete_all(&self, key: &CredentialKey) -> Result<(), StoreError> {
        let columns = KeyColumns::of(key);
        transaction!(self.db, |conn| {
            diesel::delete(
                credential_blobs::table
                    .filter(credential_blobs::team_id.eq(&columns.team_id))
                    .filter(credential_blobs::kind.eq(columns.kind))
                    .filter(credential_blobs::record_id.eq(&columns.record_id)),
            )
            .execute(conn)
            .await?;
            Ok(())
        })
        .map_err(store_error)
    }
}

/// A repository-level failure as the credential store reports it.
pub(crate) fn store_error(e: RepoError) -> StoreError {
    match e {
        RepoError::NotFound => StoreError::NotFound,
        RepoError::Conflict(_) => StoreError::AlreadyExists,
        RepoError::Unavailable(message) => StoreError::Unavailable {
            message,
            retry_after: None,
        },
        RepoError::LimitExceeded { .. } | RepoError::Internal(_) => StoreError::Internal(e.to_string()),
    }
}

/// A crypto failure as the credential store reports it: a value that does not open is an
/// integrity failure, whichever key it names.
pub(crate) fn crypto_error(e: CryptoError) -> StoreError {
    match e {
        CryptoError::Integrity | CryptoError::UnknownKey(_) => StoreError::Integrity,
        CryptoError::Keyring(message) => StoreError::Internal(message),
        CryptoError::Io(_) => StoreError::Internal("the keyring cannot be read".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use custodian_crypto::Keyring;
    use custodian_domain::TeamId;

    use super::*;
    use crate::test_support;

    fn key() -> CredentialKey {
        CredentialKey {
            team_id: TeamId::from_uuid(Uuid::now_v7()),
            kind: CredentialKind::StorageSecret,
            record_id: Uuid::now_v7(),
        }
    }

    async fn unknown_key_ids_names_the_keys_a_keyring_lacks(db: Database) {
        let first = Arc::new(Keyring::generate());
        let store = LocalCredentialStore::new(db.clone(), first.clone(), "default");
        assert!(store.unknown_key_ids(&[]).await.unwrap().is_empty(), "nothing stored");
        store.put(&key(), 1, &SecretString::from("one")).await.unwrap();
        store.put(&key(), 1, &SecretString::from("two")).await.unwrap();

        let mut rotated = (*first).clone();
        let second_id = rotated.rotate();
        let other_tenant = LocalCredentialStore::new(db.clone(), Arc::new(rotated.clone()), "globex");
        other_tenant.activate(&second_id).await.unwrap();
        other_tenant.put(&key(), 1, &SecretString::from("three")).await.unwrap();

        let first_id = first.active_key_id().to_owned();
        assert!(store.unknown_key_ids(&rotated.key_ids()).await.unwrap().is_empty());
        assert_eq!(
            store.unknown_key_ids(std::slice::from_ref(&second_id)).await.unwrap(),
            vec![first_id.clone()]
        );
        let mut both = vec![first_id, second_id];
        both.sort();
        assert_eq!(store.unknown_key_ids(&[]).await.unwrap(), both, "distinct, sorted");
        assert_eq!(
            store.unknown_key_ids(&["env-00000000".to_owned()]).await.unwrap(),
            both,
            "whichever tenant's values"
        );
    }

    /// `rewrap_all` reads the stale values a batch at a time and re-wraps every one of
    /// them, across batch boundaries, with their values intact.
    async fn rewrap_goes_through_every_batch(db: Database) {
        use secrecy::ExposeSecret;
        let mut keyring = Keyring::generate();
        let store = LocalCredentialStore::new(db.clone(), Arc::new(keyring.clone()), "default");
        let keys: Vec<CredentialKey> = (0..5).map(|_| key()).collect();
        for (i, k) in keys.iter().enumerate() {
            store
                .put(k, 1, &SecretString::from(format!("value-{i}")))
                .await
                .unwrap();
        }
        let new_key = keyring.rotate();
        let rotated = LocalCredentialStore::new(db.clone(), Arc::new(keyring.clone()), "default");
        rotated.activate(&new_key).await.unwrap();
        assert_eq!(rotated.rewrap_in_batches(2).await.unwrap(), 5, "three batches: 2, 2, 1");
        assert!(
            rotated
                .unknown_key_ids(std::slice::from_ref(&new_key))
                .await
                .unwrap()
                .is_empty(),
            "every value is under the new key"
        );
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(rotated.get(k, 1).await.unwrap().expose_secret(), format!("value-{i}"));
        }
        assert_eq!(rotated.rewrap_in_batches(2).await.unwrap(), 0, "nothing left");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rewrap_goes_through_every_batch_on_sqlite() {
        rewrap_goes_through_every_batch(test_support::sqlite().await).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rewrap_goes_through_every_batch_on_postgres() {
        let Some(db) = test_support::postgres().await else {
            eprintln!("SKIPPED (postgres): rewrap_goes_through_every_batch");
            return;
        };
        rewrap_goes_through_every_batch(db).await;
    }

    /// A store seals under the key it last read for a moment, then reads again: a key
    /// another process makes active is used within `SEALING_KEY_REREAD`, and a key this
    /// process makes active at once.
    async fn the_sealing_key_is_read_again(db: Database) {
        let mut keyring = Keyring::generate();
        let old_key = keyring.active_key_id().to_owned();
        let before = LocalCredentialStore::new(db.clone(), Arc::new(keyring.clone()), "default");
        before.register_keys().await.unwrap();
        let new_key = keyring.rotate();
        let keyring = Arc::new(keyring);
        let server = LocalCredentialStore::new(db.clone(), keyring.clone(), "default");
        let operator = LocalCredentialStore::new(db.clone(), keyring, "default");
        server.register_keys().await.unwrap();
        assert_eq!(
            server.sealing_key_id().await.unwrap(),
            old_key,
            "the database's active key"
        );

        operator.activate(&new_key).await.unwrap();
        tokio::time::sleep(crate::master_keys::SEALING_KEY_REREAD + std::time::Duration::from_millis(100)).await;
        assert_eq!(
            server.sealing_key_id().await.unwrap(),
            new_key,
            "another process's rotation is seen once the key is read again"
        );
        server.put(&key(), 1, &SecretString::from("after")).await.unwrap();

        server.activate(&old_key).await.unwrap();
        assert_eq!(
            server.sealing_key_id().await.unwrap(),
            old_key,
            "this process's own rotation is seen at once"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_sealing_key_is_read_again_on_sqlite() {
        the_sealing_key_is_read_again(test_support::sqlite().await).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_sealing_key_is_read_again_on_postgres() {
        let Some(db) = test_support::postgres().await else {
            eprintln!("SKIPPED (postgres): the_sealing_key_is_read_again");
            return;
        };
        the_sealing_key_is_read_again(db).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unknown_key_ids_on_sqlite() {
        unknown_key_ids_names_the_keys_a_keyring_lacks(test_support::sqlite().await).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unknown_key_ids_on_postgres() {
        let Some(db) = test_support::postgres().await else {
            eprintln!("SKIPPED (postgres): unknown_key_ids");
            return;
        };
        unknown_key_ids_names_the_keys_a_keyring_lacks(db).await;
    }
}

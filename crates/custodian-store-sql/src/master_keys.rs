//! Which master keys the database accepts values sealed under, which one is active, and
//! the sealed token pepper: what makes `custodian keys rotate` safe while servers run.
//!
//! Every sealed value names its key, and `credential_blobs.key_id` is a foreign key into
//! `master_keys`. So a key is removed only when no value is sealed under it (the database
//! refuses the delete otherwise, and PostgreSQL's check sees writes that commit meanwhile),
//! and once it is removed, a write sealed under it by a server that has not learnt of the
//! rotation is refused and done again under a key the database accepts. Removed keys are
//! recorded in `retired_master_keys` and never accepted again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use custodian_crypto::{Aad, Keyring, SealedValue};
use custodian_ports::{RepoError, StoreError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use secrecy::SecretString;
use uuid::Uuid;

use crate::convert::db_time;
use crate::db::{transaction, with_conn};
use crate::local_store::{LocalCredentialStore, crypto_error, store_error};
use crate::schema::{credential_blobs, master_keys, retired_master_keys, sealed_token_pepper};

/// How long a process seals new values under the key it last read as the one to seal
/// under before it reads again. A rotation by another process is seen within this long;
/// until then values are sealed under the previous key, which the database still accepts
/// (`keys remove` re-wraps them, and refuses a key anything is still sealed under).
pub(crate) const SEALING_KEY_REREAD: Duration = Duration::from_millis(100);

/// The key new values were last sealed under, with the keyring holding it and when it was
/// read: a create reads the master keys at most every [`SEALING_KEY_REREAD`], not once per
/// value.
#[derive(Default)]
pub(crate) struct SealingKeyCache(Mutex<Option<(Arc<Keyring>, String, Instant)>>);

impl SealingKeyCache {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(Arc<Keyring>, String, Instant)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh(&self) -> Option<(Arc<Keyring>, String)> {
        self.slot()
            .as_ref()
            .filter(|(_, _, read)| read.elapsed() < SEALING_KEY_REREAD)
            .map(|(keyring, id, _)| (keyring.clone(), id.clone()))
    }

    fn remember(&self, keyring: &Arc<Keyring>, id: &str) {
        *self.slot() = Some((keyring.clone(), id.to_owned(), Instant::now()));
    }

    /// Read the key again before the next value is sealed.
    pub(crate) fn forget(&self) {
        *self.slot() = None;
    }
}

/// A master key as the database knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeyUsage {
    /// The key's id (not secret).
    pub id: String,
    /// Whether new values are sealed under it.
    pub active: bool,
    /// How many stored values (and the sealed token pepper) are sealed under it.
    pub values: u64,
    /// Whether this process's keyring holds it.
    pub in_keyring: bool,
}

/// Why `custodian keys remove` refused to remove a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyRemovalError {
    /// It is the active key.
    #[error("key {0} is the active key; `custodian keys rotate` makes a new one active first")]
    Active(String),
    /// The database knows no such key.
    #[error("the database knows no key {0}")]
    Unknown(String),
    /// Values are still sealed under it.
    #[error("values are still sealed under key {0}")]
    InUse(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The accepted keys (id, active), the blob count per key id, and the pepper's key id.
type UsageRows = (Vec<(String, bool)>, Vec<(String, i64)>, Option<String>);

/// Associated data of the sealed token pepper: deployment-wide, one version.
const PEPPER_KIND: &str = "token_pepper";

fn pepper_aad() -> Aad<'static> {
    Aad {
        tenant: "",
        team_id: Uuid::nil(),
        kind: PEPPER_KIND,
        record_id: Uuid::nil(),
        version: 1,
    }
}

/// A row of `sealed_token_pepper`.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sealed_token_pepper, treat_none_as_default_value = false)]
struct PepperRow {
    id: i32,
    key_id: String,
    wrapped_key: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    created_at: chrono::NaiveDateTime,
}

impl PepperRow {
    fn sealed(&self) -> SealedValue {
        SealedValue {
            key_id: self.key_id.clone(),
            wrapped_key: self.wrapped_key.clone(),
            nonce: self.nonce.clone(),
            ciphertext: self.ciphertext.clone(),
        }
    }
}

impl LocalCredentialStore {
    /// Record the keyring's keys as accepted (all but retired ones), and its active key as
    /// the database's when the database has none yet (its first use). Servers and
    /// commands do this when they open the deployment.
    pub async fn register_keys(&self) -> Result<(), StoreError> {
        let keyring = self.keyring.current();
        let ids = keyring.key_ids();
        let active = keyring.active_key_id().to_owned();
        let now = db_time(Utc::now());
        transaction!(self.db, |conn| {
            let retired: Vec<String> = retired_master_keys::table
                .select(retired_master_keys::id)
                .load(conn)
                .await?;
            for id in ids.iter().filter(|id| !retired.contains(id)) {
                diesel::insert_into(master_keys::table)
                    .values((
                        master_keys::id.eq(id),
                        master_keys::active.eq(false),
                        master_keys::created_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            let has_active: Option<String> = master_keys::table
                .filter(master_keys::active.eq(true))
                .select(master_keys::id)
                .first(conn)
                .await
                .optional()?;
            if has_active.is_none() && !retired.contains(&active) {
                diesel::update(master_keys::table.find(&active))
                    .set(master_keys::active.eq(true))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .or_else(|e| match e {
            // Another process made its key active first: theirs stands.
            RepoError::Conflict(_) => Ok(()),
            other => Err(store_error(other)),
        })?;
        self.sealing.forget();
        Ok(())
    }

    /// The database's active key, if it has one.
    pub async fn active_key_id(&self) -> Result<Option<String>, StoreError> {
        with_conn!(self.db, |conn| {
            Ok(master_keys::table
                .filter(master_keys::active.eq(true))
                .select(master_keys::id)
                .first(conn)
                .await
                .optional()?)
        })
        .map_err(store_error)
    }

    /// The key a new value is sealed under: [`Self::read_sealing_key`]'s answer, read again
    /// once it is [`SEALING_KEY_REREAD`] old, and at once after this process changed the
    /// keys or an insert under it failed.
    pub(crate) async fn sealing_key(&self) -> Result<(Arc<Keyring>, String), StoreError> {
        if let Some(chosen) = self.sealing.fresh() {
            return Ok(chosen);
        }
        let (keyring, id) = self.read_sealing_key().await?;
        self.sealing.remember(&keyring, &id);
        Ok((keyring, id))
    }

    /// The key a new value is sealed under: the database's active key, read again from
    /// the keyring file when this process lacks it (a rotation by another process); else,
    /// while this process has not learnt of the rotation, the keyring's own active key if
    /// the database still accepts it. `Unavailable` when neither can be used, naming the
    /// key to give this server.
    async fn read_sealing_key(&self) -> Result<(Arc<Keyring>, String), StoreError> {
        let accepted: Vec<(String, bool)> = with_conn!(self.db, |conn| {
            Ok(master_keys::table
                .select((master_keys::id, master_keys::active))
                .load(conn)
                .await?)
        })
        .map_err(store_error)?;
        let Some((active, _)) = accepted.iter().find(|(_, active)| *active) else {
            // The database's first value: this keyring's keys become the accepted ones.
            self.register_keys().await?;
            let keyring = self.keyring.current();
            let id = keyring.active_key_id().to_owned();
            return Ok((keyring, id));
        };
        let mut keyring = self.keyring.current();
        if !keyring.has_key(active) {
            keyring = self.keyring.reload().map_err(crypto_error)?;
        }
        if keyring.has_key(active) {
            return Ok((keyring.clone(), active.clone()));
        }
        let own = keyring.active_key_id();
        if accepted.iter().any(|(id, _)| id == own) {
            return Ok((keyring.clone(), own.to_owned()));
        }
        Err(StoreError::Unavailable {
            message: format!(
                "the database's active master key {active} is not in this server's keyring, nor any other key the \
                 database accepts: give this server the current keyring file (or configure that master key)"
            ),
            retry_after: None,
        })
    }

    /// The key this process seals a new value under now (see `put`): `Unavailable` when it
    /// has none the database accepts.
    pub async fn sealing_key_id(&self) -> Result<String, StoreError> {
        Ok(self.sealing_key().await?.1)
    }

    /// Make `key_id`, which the keyring holds, the database's active key: new values are
    /// sealed under it by every process from now on. A retired key is refused.
    pub async fn activate(&self, key_id: &str) -> Result<(), StoreError> {
        if !self.keyring.current().has_key(key_id) {
            return Err(StoreError::Rejected(format!("the keyring has no key {key_id}")));
        }
        if self.retired_key_ids().await?.iter().any(|id| id == key_id) {
            return Err(StoreError::Rejected(format!(
                "key {key_id} was removed by `custodian keys remove` and is never used again"
            )));
        }
        let id = key_id.to_owned();
        let now = db_time(Utc::now());
        transaction!(self.db, |conn| {
            diesel::insert_into(master_keys::table)
                .values((
                    master_keys::id.eq(&id),
                    master_keys::active.eq(false),
                    master_keys::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            diesel::update(master_keys::table.filter(master_keys::active.eq(true)))
                .set(master_keys::active.eq(false))
                .execute(conn)
                .await?;
            diesel::update(master_keys::table.find(&id))
                .set(master_keys::active.eq(true))
                .execute(conn)
                .await?;
            Ok(())
        })
        .map_err(store_error)?;
        self.sealing.forget();
        Ok(())
    }

    /// Every key the database accepts, oldest first, with how many values are sealed under
    /// each.
    pub async fn key_usage(&self) -> Result<Vec<MasterKeyUsage>, StoreError> {
        let (keys, counts, pepper): UsageRows = with_conn!(self.db, |conn| {
            let keys = master_keys::table
                .order((master_keys::created_at.asc(), master_keys::id.asc()))
                .select((master_keys::id, master_keys::active))
                .load(conn)
                .await?;
            let counts = credential_blobs::table
                .group_by(credential_blobs::key_id)
                .select((credential_blobs::key_id, diesel::dsl::count_star()))
                .load(conn)
                .await?;
            let pepper = sealed_token_pepper::table
                .select(sealed_token_pepper::key_id)
                .first(conn)
                .await
                .optional()?;
            Ok((keys, counts, pepper))
        })
        .map_err(store_error)?;
        let keyring = self.keyring.current();
        Ok(keys
            .into_iter()
            .map(|(id, active)| {
                let blobs = counts.iter().find(|(k, _)| *k == id).map_or(0, |(_, n)| *n);
                let values = u64::try_from(blobs).unwrap_or(0) + u64::from(pepper.as_deref() == Some(id.as_str()));
                MasterKeyUsage {
                    in_keyring: keyring.has_key(&id),
                    id,
                    active,
                    values,
                }
            })
            .collect())
    }

    /// Stop accepting `key_id`: refused while it is active or any value is still sealed
    /// under it. From then on a write sealed under it is refused, and the key is recorded
    /// as retired so that no process brings it back.
    pub async fn remove_key(&self, key_id: &str) -> Result<(), KeyRemovalError> {
        if self.active_key_id().await?.as_deref() == Some(key_id) {
            return Err(KeyRemovalError::Active(key_id.to_owned()));
        }
        let id = key_id.to_owned();
        let now = db_time(Utc::now());
        let removed = transaction!(self.db, |conn| {
            let removed = diesel::delete(master_keys::table.find(&id).filter(master_keys::active.eq(false)))
                .execute(conn)
                .await?;
            if removed == 1 {
                diesel::insert_into(retired_master_keys::table)
                    .values((retired_master_keys::id.eq(&id), retired_master_keys::retired_at.eq(now)))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            Ok(removed)
        });
        self.sealing.forget();
        match removed {
            Ok(1) => Ok(()),
            Ok(_) => Err(KeyRemovalError::Unknown(key_id.to_owned())),
            // The foreign key of a value sealed under it.
            Err(RepoError::NotFound) => Err(KeyRemovalError::InUse(key_id.to_owned())),
            Err(other) => Err(store_error(other).into()),
        }
    }

    /// The keys `keys remove` retired.
    pub async fn retired_key_ids(&self) -> Result<Vec<String>, StoreError> {
        with_conn!(self.db, |conn| {
            Ok(retired_master_keys::table
                .order(retired_master_keys::id.asc())
                .select(retired_master_keys::id)
                .load(conn)
                .await?)
        })
        .map_err(store_error)
    }

    /// The token pepper sealed in the database, if one was.
    pub async fn sealed_pepper(&self) -> Result<Option<SecretString>, StoreError> {
        let row: Option<PepperRow> = with_conn!(self.db, |conn| {
            Ok(sealed_token_pepper::table
                .select(PepperRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let opened = match self.keyring.current().open(&pepper_aad(), &row.sealed()) {
            Err(custodian_crypto::CryptoError::UnknownKey(_)) => self
                .keyring
                .reload()
                .map_err(crypto_error)?
                .open(&pepper_aad(), &row.sealed()),
            other => other,
        };
        opened.map(Some).map_err(crypto_error)
    }

    /// The token pepper sealed in the database; `pepper` is sealed there first when none
    /// is. Two processes doing this together end up with the same one.
    pub async fn seal_pepper_once(&self, pepper: &SecretString) -> Result<SecretString, StoreError> {
        if let Some(sealed) = self.sealed_pepper().await? {
            return Ok(sealed);
        }
        let (keyring, key_id) = self.sealing_key().await?;
        let sealed = keyring
            .seal_under(&key_id, &pepper_aad(), pepper)
            .map_err(crypto_error)?;
        let row = PepperRow {
            id: 1,
            key_id: sealed.key_id,
            wrapped_key: sealed.wrapped_key,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            created_at: db_time(Utc::now()),
        };
        transaction!(self.db, |conn| {
            diesel::insert_into(sealed_token_pepper::table)
                .values(&row)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            Ok(())
        })
        .map_err(store_error)?;
        self.sealed_pepper()
            .await?
            .ok_or_else(|| StoreError::Internal("the sealed token pepper vanished".into()))
    }

    /// Re-wrap the sealed token pepper under `active` (if it is sealed under another key).
    pub(crate) async fn rewrap_pepper(&self, keyring: &Keyring, active: &str) -> Result<u64, StoreError> {
        let row: Option<PepperRow> = with_conn!(self.db, |conn| {
            Ok(sealed_token_pepper::table
                .select(PepperRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
        .map_err(store_error)?;
        let Some(row) = row.filter(|row| row.key_id != active) else {
            return Ok(0);
        };
        let sealed = keyring
            .rewrap_under(active, &pepper_aad(), &row.sealed())
            .map_err(crypto_error)?;
        let previous = row.key_id.clone();
        let updated = transaction!(self.db, |conn| {
            Ok(diesel::update(
                sealed_token_pepper::table
                    .find(1)
                    .filter(sealed_token_pepper::key_id.eq(&previous)),
            )
            .set((
                sealed_token_pepper::key_id.eq(&sealed.key_id),
                sealed_token_pepper::wrapped_key.eq(&sealed.wrapped_key),
            ))
            .execute(conn)
            .await?)
        })
        .map_err(store_error)?;
        Ok(u64::try_from(updated).unwrap_or(0))
    }
}

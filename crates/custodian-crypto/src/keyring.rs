//! The master keyring: key-encryption keys by id, the active one, and the token pepper;
//! its JSON file and its derivation from `CUSTODIAN_MASTER_KEY`.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::envelope::{self, Aad, KEY_LEN, SealedValue};
use crate::{CryptoError, TokenHasher};

/// Version of the keyring file format.
const FILE_VERSION: u32 = 1;
/// HKDF info deriving the token pepper from a master key.
const PEPPER_INFO: &[u8] = b"custodian token pepper";
/// Prefix of the id of a key given as `CUSTODIAN_MASTER_KEY`.
const ENV_KEY_PREFIX: &str = "env-";
/// Prefix of the id of a generated key.
const GENERATED_KEY_PREFIX: &str = "key-";

/// Standard base64, padding optional (a key pasted without its `=` still decodes).
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// URL-safe base64, padding optional.
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Clone)]
struct MasterKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
    created_at: DateTime<Utc>,
}

/// The master keys (key-encryption keys) by id, which one is active, and the pepper of
/// token digests.
///
/// New values are sealed under the active key; values sealed under any key still in the
/// keyring open. `Debug` shows the key ids only.
#[derive(Clone)]
pub struct Keyring {
    /// Oldest first; never empty; ids unique.
    keys: Vec<MasterKey>,
    active: String,
    pepper: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("key_ids", &self.key_ids())
            .finish_non_exhaustive()
    }
}

/// The keyring file as JSON. Key material is held in zeroizing strings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    active: String,
    keys: Vec<KeyFile>,
    token_pepper: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    id: String,
    key: Zeroizing<String>,
    created_at: DateTime<Utc>,
}

impl Keyring {
    /// A new keyring with one fresh random 256-bit key (active) and a fresh random pepper.
    pub fn generate() -> Keyring {
        let key = new_master_key(&[]);
        Keyring {
            active: key.id.clone(),
            keys: vec![key],
            pepper: envelope::random_key(),
        }
    }

    /// Load the keyring file at `path`, or generate a keyring and write it there when the
    /// file does not exist (creating its directory, mode 0700). Returns whether it was
    /// created.
    ///
    /// The file is written with mode 0600 under a temporary name and then linked into
    /// place, so a reader never sees a partial file and two processes starting together
    /// end up with the same keyring. A file that group or others may access is refused.
    pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), CryptoError> {
        match read_keyring_file(path) {
            Ok(keyring) => return Ok((keyring, false)),
            Err(CryptoError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let keyring = Keyring::generate();
        let created = keyring.write_file(path, WriteMode::CreateNew)?;
        if created {
            Ok((keyring, true))
        } else {
            // Another process created it first: use theirs.
            Ok((read_keyring_file(path)?, false))
        }
    }

    /// A keyring from a master key given in configuration (`CUSTODIAN_MASTER_KEY`):
    /// base64 (standard or URL-safe, padding optional, surrounding whitespace ignored) of
    /// exactly 32 bytes. Its key id is `env-` and the first 8 hex digits of the key's
    /// SHA-256, so the same key always has the same id; the token pepper is derived from it
    /// with HKDF-SHA256 (info `custodian token pepper`).
    pub fn from_master_key(encoded: &SecretString) -> Result<Keyring, CryptoError> {
        Keyring::from_master_keys(encoded, &[])
    }

    /// A keyring from the configured master key (active) and the master keys configured
    /// before it (`previous`, oldest first), while values sealed under those are re-wrapped
    /// (`custodian keys rotate`). Each key as in [`Keyring::from_master_key`]; the token
    /// pepper is derived from the active key until [`Keyring::derive_pepper_from`] or
    /// [`Keyring::set_pepper`] says otherwise. A key given twice is refused.
    pub fn from_master_keys(active: &SecretString, previous: &[SecretString]) -> Result<Keyring, CryptoError> {
        let mut keys: Vec<MasterKey> = Vec::with_capacity(previous.len() + 1);
        for (position, encoded) in previous.iter().enumerate() {
            let key = configured_key(encoded, &format!("previous master key #{}", position + 1))?;
            push_unique(&mut keys, key)?;
        }
        let key = configured_key(active, "master key (CUSTODIAN_MASTER_KEY)")?;
        let active = key.id.clone();
        push_unique(&mut keys, key)?;
        let mut keyring = Keyring {
            keys,
            active: active.clone(),
            pepper: Zeroizing::new([0u8; KEY_LEN]),
        };
        keyring.derive_pepper_from(&active)?;
        Ok(keyring)
    }

    /// Derive the token pepper from the key `key_id` (HKDF-SHA256, info
    /// `custodian token pepper`), as a keyring of that master key alone has it.
    pub fn derive_pepper_from(&mut self, key_id: &str) -> Result<(), CryptoError> {
        let key = self.key(key_id)?;
        let mut pepper = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(None, &key.key[..])
            .expand(PEPPER_INFO, &mut pepper[..])
            .map_err(|_| CryptoError::Keyring("cannot derive the token pepper".to_owned()))?;
        self.pepper = pepper;
        Ok(())
    }

    /// The token pepper as base64, to be sealed where it outlives the key it was derived
    /// from.
    pub fn pepper(&self) -> SecretString {
        SecretString::from(STANDARD.encode(&self.pepper[..]))
    }

    /// Use `pepper` (as [`Keyring::pepper`] gives it) as the token pepper.
    pub fn set_pepper(&mut self, pepper: &SecretString) -> Result<(), CryptoError> {
        self.pepper = decode_key(pepper.expose_secret()).map_err(|problem| {
            CryptoError::Keyring(format!(
                "the token pepper must be base64 of {KEY_LEN} bytes, but {problem}"
            ))
        })?;
        Ok(())
    }

    /// Whether the keyring holds the key `key_id`.
    pub fn has_key(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// Make the key `key_id` the one new values are sealed under. `UnknownKey` when there
    /// is no such key.
    pub fn set_active(&mut self, key_id: &str) -> Result<(), CryptoError> {
        self.key(key_id)?;
        self.active = key_id.to_owned();
        Ok(())
    }

    /// Write the keyring to `path` (mode 0600, creating its directory), replacing any file
    /// there atomically: a reader sees the old file or the new one, never a mix.
    pub fn save(&self, path: &Path) -> Result<(), CryptoError> {
        self.write_file(path, WriteMode::Replace).map(|_| ())
    }

    /// The id of the key new values are sealed under.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// Every key id, oldest first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// Add a fresh random key and make it active; returns its id. Older keys stay, so
    /// values sealed under them still open until they are re-wrapped.
    pub fn rotate(&mut self) -> String {
        let taken: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        let key = new_master_key(&taken);
        let id = key.id.clone();
        self.keys.push(key);
        self.active = id.clone();
        id
    }

    /// Remove the key `key_id`; values sealed under it no longer open.
    /// `UnknownKey` when there is no such key; `Keyring` when it is the active key.
    pub fn remove_key(&mut self, key_id: &str) -> Result<(), CryptoError> {
        if key_id == self.active {
            return Err(CryptoError::Keyring(format!(
                "key {key_id} is the active key and cannot be removed; rotate first"
            )));
        }
        let before = self.keys.len();
        self.keys.retain(|k| k.id != key_id);
        if self.keys.len() == before {
            return Err(CryptoError::UnknownKey(key_id.to_owned()));
        }
        Ok(())
    }

    /// Encrypt `plaintext` for the record `aad` under a fresh data key wrapped by the
    /// active key.
    pub fn seal(&self, aad: &Aad<'_>, plaintext: &SecretString) -> Result<SealedValue, CryptoError> {
        self.seal_under(&self.active, aad, plaintext)
    }

    /// As [`Keyring::seal`], the data key wrapped by the key `key_id` rather than the
    /// active one. `UnknownKey` when there is no such key.
    pub fn seal_under(
        &self,
        key_id: &str,
        aad: &Aad<'_>,
        plaintext: &SecretString,
    ) -> Result<SealedValue, CryptoError> {
        let kek = self.key(key_id)?;
        envelope::seal(&kek.key, &kek.id, aad, plaintext)
    }

    /// Decrypt `sealed` for the record `aad`.
    /// `UnknownKey` when its key id is not in the keyring; `Integrity` on any other failure
    /// (another record, team, tenant, kind or version; a flipped bit; a wrong key).
    pub fn open(&self, aad: &Aad<'_>, sealed: &SealedValue) -> Result<SecretString, CryptoError> {
        let kek = self.key(&sealed.key_id)?;
        let dek = envelope::unwrap_dek(&kek.key, aad, sealed)?;
        envelope::open_data(&dek, aad, sealed)
    }

    /// Re-wrap the data key of `sealed` under the active key. The data ciphertext and its
    /// nonce are unchanged; the wrap gets a fresh nonce even when `sealed` already uses the
    /// active key. Errors as [`Keyring::open`].
    pub fn rewrap(&self, aad: &Aad<'_>, sealed: &SealedValue) -> Result<SealedValue, CryptoError> {
        self.rewrap_under(&self.active, aad, sealed)
    }

    /// As [`Keyring::rewrap`], under the key `key_id` rather than the active one.
    pub fn rewrap_under(&self, key_id: &str, aad: &Aad<'_>, sealed: &SealedValue) -> Result<SealedValue, CryptoError> {
        let old = self.key(&sealed.key_id)?;
        let dek = envelope::unwrap_dek(&old.key, aad, sealed)?;
        let target = self.key(key_id)?;
        let wrapped_key = envelope::wrap_dek(&target.key, &target.id, aad, &dek)?;
        Ok(SealedValue {
            key_id: target.id.clone(),
            wrapped_key,
            nonce: sealed.nonce.clone(),
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    /// The hasher of bearer tokens, keyed with this keyring's pepper.
    pub fn token_hasher(&self) -> TokenHasher {
        TokenHasher::new(*self.pepper)
    }

    /// Take `other`'s token pepper (a reloaded file keeps the pepper in use).
    pub(crate) fn keep_pepper_of(&mut self, other: &Keyring) {
        self.pepper = other.pepper.clone();
    }

    fn key(&self, key_id: &str) -> Result<&MasterKey, CryptoError> {
        self.keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))
    }

    fn to_file(&self) -> KeyringFile {
        KeyringFile {
            version: FILE_VERSION,
            active: self.active.clone(),
            keys: self
                .keys
                .iter()
                .map(|k| KeyFile {
                    id: k.id.clone(),
                    key: Zeroizing::new(STANDARD.encode(&k.key[..])),
                    created_at: k.created_at,
                })
                .collect(),
            token_pepper: Zeroizing::new(STANDARD.encode(&self.pepper[..])),
        }
    }

    fn from_file(file: KeyringFile, path: &Path) -> Result<Keyring, CryptoError> {
        let invalid = |rule: String| CryptoError::Keyring(format!("keyring file {}: {rule}", path.display()));
        if file.version != FILE_VERSION {
            return Err(invalid(format!(
                "unsupported version {} (this build reads version {FILE_VERSION})",
                file.version
            )));
        }
        if file.keys.is_empty() {
            return Err(invalid("holds no key".to_owned()));
        }
        let mut keys: Vec<MasterKey> = Vec::with_capacity(file.keys.len());
        for entry in file.keys {
            if entry.id.trim().is_empty() || entry.id.len() > 128 {
                return Err(invalid("a key id is empty or longer than 128 characters".to_owned()));
            }
            if keys.iter().any(|k| k.id == entry.id) {
                return Err(invalid(format!("key id {} appears twice", entry.id)));
            }
            let key = decode_key(&entry.key).map_err(|problem| {
                invalid(format!(
                    "key {} must be base64 of {KEY_LEN} bytes, but {problem}",
                    entry.id
                ))
            })?;
            keys.push(MasterKey {
                id: entry.id,
                key,
                created_at: entry.created_at,
            });
        }
        if !keys.iter().any(|k| k.id == file.active) {
            return Err(invalid(format!("the active key {} is not among its keys", file.active)));
        }
        let pepper = decode_key(&file.token_pepper)
            .map_err(|problem| invalid(format!("token_pepper must be base64 of {KEY_LEN} bytes, but {problem}")))?;
        Ok(Keyring {
            keys,
            active: file.active,
            pepper,
        })
    }

    /// Write the file under a temporary name (mode 0600) and move it into place. With
    /// `CreateNew`, returns `false` (and writes nothing) when a file already exists there.
    fn write_file(&self, path: &Path, mode: WriteMode) -> Result<bool, CryptoError> {
        let dir = parent_dir(path);
        create_private_dir(&dir)?;
        let file = self.to_file();
        // Sized generously up front so the buffer holding key material does not reallocate
        // and leave unzeroed copies behind.
        let mut json = Zeroizing::new(Vec::with_capacity(512 + 256 * file.keys.len()));
        serde_json::to_writer_pretty(&mut *json, &file)
            .map_err(|_| CryptoError::Keyring("cannot encode the keyring".to_owned()))?;
        json.push(b'\n');

        let temp = temp_path(path);
        let written = write_private(&temp, &json).and_then(|()| match mode {
            WriteMode::Replace => fs::rename(&temp, path).map(|()| true),
            WriteMode::CreateNew => {
                // A hard link fails if the target exists, unlike a rename.
                let linked = match fs::hard_link(&temp, path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    // A file system without hard links (`link(2)` answers EPERM there):
                    // fall back to a rename guarded by an existence check (a narrower race,
                    // still never a partial file).
                    Err(e) if matches!(e.kind(), io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied) => {
                        if path.try_exists()? {
                            Ok(false)
                        } else {
                            fs::rename(&temp, path).map(|()| true)
                        }
                    }
                    Err(e) => Err(e),
                };
                let _ = fs::remove_file(&temp);
                linked
            }
        });
        let done = match written {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(CryptoError::Io(e));
            }
        };
        sync_dir(&dir)?;
        Ok(done)
    }
}

#[derive(Clone, Copy)]
enum WriteMode {
    Replace,
    CreateNew,
}

fn new_master_key(taken: &[&str]) -> MasterKey {
    loop {
        let mut suffix = [0u8; 8];
        rand::fill(&mut suffix[..]);
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let id = format!("{GENERATED_KEY_PREFIX}{hex}");
        if !taken.contains(&id.as_str()) {
            return MasterKey {
                id,
                key: envelope::random_key(),
                created_at: Utc::now(),
            };
        }
    }
}

/// Decode base64 of exactly 32 bytes. The problem it returns never echoes the input.
/// A key given in configuration, its id derived from it; `what` names the setting in the
/// error, which never holds the key.
fn configured_key(encoded: &SecretString, what: &str) -> Result<MasterKey, CryptoError> {
    let key = decode_key(encoded.expose_secret().trim()).map_err(|problem| {
        CryptoError::Keyring(format!(
            "the {what} must be the base64 encoding of exactly {KEY_LEN} random bytes, for example the output of \
             `openssl rand -base64 32`, but {problem}"
        ))
    })?;
    let digest = Sha256::digest(&key[..]);
    let id: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    Ok(MasterKey {
        id: format!("{ENV_KEY_PREFIX}{id}"),
        key,
        created_at: Utc::now(),
    })
}

/// Add `key` unless a key with its id is there already (the same key given twice).
fn push_unique(keys: &mut Vec<MasterKey>, key: MasterKey) -> Result<(), CryptoError> {
    if keys.iter().any(|k| k.id == key.id) {
        return Err(CryptoError::Keyring(format!(
            "the master key {} is configured twice (as the master key and among the previous ones, or twice \
             among the previous ones)",
            key.id
        )));
    }
    keys.push(key);
    Ok(())
}

fn decode_key(encoded: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    // Room for any input, so decoding never reallocates the buffer holding the key.
    let mut bytes = Zeroizing::new(Vec::with_capacity(encoded.len()));
    let decoded = LENIENT_STANDARD.decode_vec(encoded, &mut bytes).or_else(|_| {
        bytes.clear();
        LENIENT_URL_SAFE.decode_vec(encoded, &mut bytes)
    });
    if decoded.is_err() {
        return Err("it is not valid base64".to_owned());
    }
    if bytes.len() != KEY_LEN {
        return Err(format!("it decodes to {} bytes", bytes.len()));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

pub(crate) fn read_keyring_file(path: &Path) -> Result<Keyring, CryptoError> {
    let file = fs::File::open(path)?;
    check_private(&file, path)?;
    let mut text = Zeroizing::new(String::new());
    io::Read::read_to_string(&mut &file, &mut text)?;
    // serde_json's messages may quote the offending input, which could be key material:
    // report only where the problem is.
    let parsed: KeyringFile = serde_json::from_str(&text).map_err(|e| {
        CryptoError::Keyring(format!(
            "keyring file {} is not a valid keyring (JSON problem at line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    Keyring::from_file(parsed, path)
}

#[cfg(unix)]
fn check_private(file: &fs::File, path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(CryptoError::Keyring(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::Keyring(format!(
            "keyring file {} has mode {mode:04o}, so group or others may access it; restrict it with `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(file: &fs::File, path: &Path) -> Result<(), CryptoError> {
    if !file.metadata()?.is_file() {
        return Err(CryptoError::Keyring(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), CryptoError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut suffix = [0u8; 6];
    rand::fill(&mut suffix[..]);
    let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keyring.json".to_owned());
    parent_dir(path).join(format!(".{name}.{hex}.tmp"))
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), CryptoError> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), CryptoError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_key_accepts_padded_unpadded_and_url_safe() {
        let key = [0xfbu8; 32];
        for engine in [STANDARD, base64::engine::general_purpose::URL_SAFE_NO_PAD] {
            let decoded = decode_key(&engine.encode(key)).unwrap();
            assert_eq!(*decoded, key);
        }
    }

    #[test]
    fn decode_key_problems_do_not_echo_the_input() {
        let problem = decode_key("c2VjcmV0LXZhbHVl!!").unwrap_err();
        assert!(!problem.contains("c2VjcmV0"));
        assert_eq!(problem, "it is not valid base64");
        assert_eq!(
            decode_key(&STANDARD.encode([1u8; 16])).unwrap_err(),
            "it decodes to 16 bytes"
        );
    }

    #[test]
    fn rotate_never_reuses_an_id_and_keeps_order() {
        let mut keyring = Keyring::generate();
        let first = keyring.active_key_id().to_owned();
        let second = keyring.rotate();
        assert_ne!(first, second);
        assert_eq!(keyring.key_ids(), vec![first, second.clone()]);
        assert_eq!(keyring.active_key_id(), second);
    }

    #[test]
    fn temp_file_is_in_the_same_directory() {
        let temp = temp_path(Path::new("/data/keyring.json"));
        assert_eq!(temp.parent(), Some(Path::new("/data")));
        assert!(
            temp.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".keyring.json.")
        );
        assert_eq!(parent_dir(Path::new("keyring.json")), PathBuf::from("."));
    }
}

//! A keyring that running servers share with `custodian keys rotate`: the keyring file can
//! change under a running server, which reads it again when it meets a key it lacks.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::keyring::read_keyring_file;
use crate::{CryptoError, Keyring};

/// The keyring in use, and the file it came from (none for a configured master key).
///
/// Cloning shares it: a reload seen by one clone is seen by all. [`SharedKeyring::reload`]
/// replaces it with the file's current content, so keys added by `custodian keys rotate`
/// reach a running server without a restart.
#[derive(Clone)]
pub struct SharedKeyring {
    current: Arc<RwLock<Arc<Keyring>>>,
    file: Option<Arc<PathBuf>>,
}

impl fmt::Debug for SharedKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeyring")
            .field("keyring", &self.current())
            .field("file", &self.file)
            .finish()
    }
}

impl SharedKeyring {
    /// A keyring read from the file at `path`, which [`SharedKeyring::reload`] reads again.
    pub fn from_file(keyring: Keyring, path: &Path) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(keyring))),
            file: Some(Arc::new(path.to_owned())),
        }
    }

    /// A keyring with no file behind it (a configured master key, a test): reloading keeps
    /// it as it is.
    pub fn fixed(keyring: Keyring) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(keyring))),
            file: None,
        }
    }

    /// The keyring as last read.
    pub fn current(&self) -> Arc<Keyring> {
        // A poisoned lock still holds a whole keyring: writers only swap the `Arc`.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The file it is read from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref().map(PathBuf::as_path)
    }

    /// Read the keyring file again and use what it holds from now on; the current keyring
    /// when there is no file. The token pepper is kept as it is: a file's pepper never
    /// changes, and a pepper set from elsewhere is not the file's to replace.
    pub fn reload(&self) -> Result<Arc<Keyring>, CryptoError> {
        let Some(path) = &self.file else {
            return Ok(self.current());
        };
        let mut fresh = read_keyring_file(path)?;
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        fresh.keep_pepper_of(&current);
        let fresh = Arc::new(fresh);
        *current = fresh.clone();
        Ok(fresh)
    }

    /// Replace the keyring in use (by one the caller has changed).
    pub fn replace(&self, keyring: Keyring) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keyring);
    }
}

impl From<Keyring> for SharedKeyring {
    fn from(keyring: Keyring) -> Self {
        SharedKeyring::fixed(keyring)
    }
}

impl From<Arc<Keyring>> for SharedKeyring {
    fn from(keyring: Arc<Keyring>) -> Self {
        Self {
            current: Arc::new(RwLock::new(keyring)),
            file: None,
        }
    }
}

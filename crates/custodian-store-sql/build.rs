//! Fingerprints the PostgreSQL migrations at compile time, for the test-support template
//! name: a template database is reused only while the migrations are the same.
//!
//! Computed here rather than by reading the folder at run time, because the compiled crate
//! is shared through a target directory by checkouts at other paths (CI clones anew each
//! run), where a path baked in at compile time may no longer exist.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-changed=migrations/postgres");
    // embed_migrations! reads both folders at compile time: a new SQLite migration must
    // rebuild the crate too.
    println!("cargo::rerun-if-changed=migrations/sqlite");
    let root = Path::new("migrations").join("postgres");
    let mut files = Vec::new();
    collect_files(&root, &mut files);
    files.sort();
    // FNV-1a over every file's path below the folder and its contents.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file).to_string_lossy().into_owned();
        let contents = std::fs::read(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for byte in relative.bytes().chain([0]).chain(contents).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    println!("cargo::rustc-env=CUSTODIAN_POSTGRES_MIGRATIONS_HASH={hash:016x}");
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot read an entry of {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

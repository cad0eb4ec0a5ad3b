//! Authenticated subjects, remembered by token digest.
//!
//! Authentication runs on every request; with this cache warm, it reads nothing from the
//! database. What keeps a remembered subject true:
//! - an entry is served at most [`ttl`](SubjectCacheSettings::ttl), and never past its
//!   token's expiry or revocation instant, its virtual account's expiry or its user's
//!   disabling (a grace period ends on time);
//! - a change made through this process (a token revoked or regenerated, a user changed or
//!   removed, a virtual account or a team removed) forgets every entry before it returns;
//! - a change made through another process moves the repository's
//!   [identity epoch](custodian_ports::TokenRepository::identity_epoch); the first
//!   authentication at least [`epoch_check_interval`](SubjectCacheSettings::epoch_check_interval)
//!   after the last look reads it, and every entry is forgotten when it moved;
//! - an entry loaded while a change was being forgotten is not kept.
//!
//! Refusals are never remembered: each one is looked up and recorded.
//!
//! Each team's tier (which decides its limits) is remembered the same way, for the same
//! time, and forgotten with the subjects: a change of tier or a removed team moves the
//! identity epoch too, and this process forgets at once what it changed itself.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use custodian_domain::{Subject, TeamId, Tier, TokenDigest};
use custodian_ports::TokenRepository;

/// How authenticated subjects (and teams' tiers) are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectCacheSettings {
    /// How long a subject is served without reading its token again, and a team's tier
    /// without reading the team (zero: never remembered).
    pub ttl: Duration,
    /// How long a change made through another process may go unseen: the identity epoch is
    /// read again by the first authentication this long after the last read.
    pub epoch_check_interval: Duration,
    /// A token's use (`last_used_at`) is recorded at most once per this interval.
    pub touch_interval: Duration,
    /// The most tokens remembered at once (and the most teams' tiers).
    pub capacity: u64,
}

impl Default for SubjectCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            epoch_check_interval: Duration::from_millis(250),
            touch_interval: Duration::from_secs(60),
            capacity: 100_000,
        }
    }
}

/// A remembered subject and the instant it stops being served.
#[derive(Clone)]
struct Entry {
    subject: Subject,
    until: DateTime<Utc>,
}

/// The cache. Keys are token digests (never the tokens).
pub(crate) struct SubjectCache {
    settings: SubjectCacheSettings,
    entries: moka::sync::Cache<[u8; 32], Entry>,
    /// Each team's tier, served at most `ttl`.
    tiers: moka::sync::Cache<TeamId, Tier>,
    /// Moves forward on every [`forget_all`](Self::forget_all); an entry loaded across a
    /// move is not kept.
    generation: AtomicU64,
    /// The identity epoch last read (`u64::MAX`: none yet).
    epoch: AtomicU64,
    /// When the epoch is next read, in milliseconds since `started`.
    next_check_ms: AtomicU64,
    started: Instant,
}

impl fmt::Debug for SubjectCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectCache")
            .field("settings", &self.settings)
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

/// What a lookup found.
pub(crate) enum Lookup<T = Subject> {
    Hit(T),
    /// Not remembered: load it, then [`SubjectCache::keep`] (or
    /// [`keep_tier`](SubjectCache::keep_tier)) it with this generation.
    Miss {
        generation: u64,
    },
}

impl SubjectCache {
    pub(crate) fn new(settings: SubjectCacheSettings) -> Self {
        Self {
            settings,
            entries: moka::sync::Cache::builder().max_capacity(settings.capacity).build(),
            tiers: moka::sync::Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(settings.ttl.max(Duration::from_nanos(1)))
                .build(),
            generation: AtomicU64::new(0),
            epoch: AtomicU64::new(u64::MAX),
            next_check_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    pub(crate) fn settings(&self) -> &SubjectCacheSettings {
        &self.settings
    }

    /// The subject remembered for `digest`, if it may still be served at `now`. Reads the
    /// identity epoch first when it is due.
    pub(crate) async fn lookup(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
        tokens: &dyn TokenRepository,
    ) -> Lookup {
        if self.settings.ttl.is_zero() {
            return Lookup::Miss { generation: 0 };
        }
        self.check_epoch(tokens).await;
        let generation = self.generation.load(Ordering::Acquire);
        match self.entries.get(&digest.0) {
            Some(entry) if entry.until > now => Lookup::Hit(entry.subject),
            Some(_) => {
                self.entries.invalidate(&digest.0);
                Lookup::Miss { generation }
            }
            None => Lookup::Miss { generation },
        }
    }

    /// Remember `subject` for `digest` until the earliest of `now + ttl` and `ends` (the
    /// instants its token, account or user stops being accepted), unless every entry was
    /// forgotten since the lookup that returned `generation`.
    pub(crate) fn keep(
        &self,
        digest: &TokenDigest,
        subject: &Subject,
        now: DateTime<Utc>,
        ends: impl IntoIterator<Item = DateTime<Utc>>,
        generation: u64,
    ) {
        let Ok(ttl) = chrono::Duration::from_std(self.settings.ttl) else {
            return;
        };
        if ttl.is_zero() {
            return;
        }
        let until = ends.into_iter().filter(|end| *end > now).fold(now + ttl, DateTime::min);
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        self.entries.insert(
            digest.0,
            Entry {
                subject: subject.clone(),
                until,
            },
        );
        // A forget that ran between the check and the insert must win.
        if self.generation.load(Ordering::Acquire) != generation {
            self.entries.invalidate(&digest.0);
        }
    }

    /// The tier remembered for `team`. Reads the identity epoch first when it is due.
    pub(crate) async fn tier(&self, team: TeamId, tokens: &dyn TokenRepository) -> Lookup<Tier> {
        if self.settings.ttl.is_zero() {
            return Lookup::Miss { generation: 0 };
        }
        self.check_epoch(tokens).await;
        let generation = self.generation.load(Ordering::Acquire);
        match self.tiers.get(&team) {
            Some(tier) => Lookup::Hit(tier),
            None => Lookup::Miss { generation },
        }
    }

    /// Remember `team`'s `tier` for `ttl`, unless everything was forgotten since the
    /// lookup that returned `generation`.
    pub(crate) fn keep_tier(&self, team: TeamId, tier: Tier, generation: u64) {
        if self.settings.ttl.is_zero() || self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        self.tiers.insert(team, tier);
        // A forget that ran between the check and the insert must win.
        if self.generation.load(Ordering::Acquire) != generation {
            self.tiers.invalidate(&team);
        }
    }

    /// Forget every subject and tier (a change to identities or tiers was made).
    pub(crate) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
        self.tiers.invalidate_all();
    }

    /// Read the identity epoch when the interval since the last read has passed, and
    /// forget everything when it moved (or cannot be read). One caller reads; the others
    /// go on meanwhile.
    async fn check_epoch(&self, tokens: &dyn TokenRepository) {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_check_ms.load(Ordering::Acquire);
        if now_ms < due {
            return;
        }
        let interval = u64::try_from(self.settings.epoch_check_interval.as_millis()).unwrap_or(u64::MAX);
        if self
            .next_check_ms
            .compare_exchange(
                due,
                now_ms.saturating_add(interval),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return;
        }
        match tokens.identity_epoch().await {
            Ok(epoch) => {
                if self.epoch.swap(epoch, Ordering::AcqRel) != epoch {
                    self.forget_all();
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the identity epoch; authenticated subjects are forgotten");
                self.epoch.store(u64::MAX, Ordering::Release);
                self.forget_all();
            }
        }
    }
}

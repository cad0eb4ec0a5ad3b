//! Tier limits per team. Configurable; `None` means unlimited.

use crate::enums::Tier;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    StorageSecrets,
    VaultConnections,
    Members,
}

impl LimitKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::StorageSecrets => "storage_secrets",
            LimitKind::VaultConnections => "vault_connections",
            LimitKind::Members => "members",
        }
    }
}

/// The limits of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierLimits {
    pub storage_secrets: Option<u32>,
    pub vault_connections: Option<u32>,
    pub members: Option<u32>,
}

impl TierLimits {
    pub const fn get(&self, kind: LimitKind) -> Option<u32> {
        match kind {
            LimitKind::StorageSecrets => self.storage_secrets,
            LimitKind::VaultConnections => self.vault_connections,
            LimitKind::Members => self.members,
        }
    }
}

/// Limits for every tier; the defaults follow the published API reference and the vendor's tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierTable {
    pub free: TierLimits,
    pub pro: TierLimits,
    pub enterprise: TierLimits,
}

impl Default for TierTable {
    fn default() -> Self {
        Self {
            free: TierLimits {
                storage_secrets: Some(5),
                vault_connections: Some(1),
                members: Some(1),
            },
            pro: TierLimits {
                storage_secrets: Some(100),
                vault_connections: Some(10),
                members: Some(20),
            },
            enterprise: TierLimits {
                storage_secrets: None,
                vault_connections: None,
                members: None,
            },
        }
    }
}

impl TierTable {
    pub const fn limits(&self, tier: Tier) -> &TierLimits {
        match tier {
            Tier::Free => &self.free,
            Tier::Pro => &self.pro,
            Tier::Enterprise => &self.enterprise,
        }
    }

    pub const fn limit(&self, tier: Tier, kind: LimitKind) -> Option<u32> {
        self.limits(tier).get(kind)
    }
}

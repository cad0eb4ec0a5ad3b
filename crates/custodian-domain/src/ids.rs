//! Typed identifiers: a `TeamId` cannot be passed where a `SecretId` is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

id_type!(/// A user of the deployment.
    UserId);
id_type!(/// A team: the unit of ownership and tier limits.
    TeamId);
id_type!(/// A machine identity inside one team.
    VirtualAccountId);
id_type!(/// A bearer token (personal access token or virtual-account token).
    TokenId);
id_type!(/// A storage secret (typed cloud-storage credentials).
    SecretId);
id_type!(/// A location (bucket or container) using a storage secret.
    LocationId);
id_type!(/// A connection to a team's external vault.
    VaultConnectionId);
id_type!(/// A group of key/value application secrets.
    SecretGroupId);
id_type!(/// One key of a secret group.
    GroupSecretId);
id_type!(/// One version of a key of a secret group.
    GroupSecretVersionId);
id_type!(/// An audit event.
    AuditEventId);
id_type!(/// Whoever acted: a user or a virtual account (their ids never collide: both are v7 uuids).
    SubjectId);

impl From<UserId> for SubjectId {
    fn from(id: UserId) -> Self {
        Self(id.as_uuid())
    }
}

impl From<VirtualAccountId> for SubjectId {
    fn from(id: VirtualAccountId) -> Self {
        Self(id.as_uuid())
    }
}

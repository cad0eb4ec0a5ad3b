//! The closed vocabularies of the API: secret types, auth methods, vault types, roles, tiers.
//!
//! Each enum has `ALL`, `as_str` (the wire spelling) and `FromStr`; parsing failures carry
//! the accepted values so the 422 can name them.

use std::fmt;
use std::str::FromStr;

/// A value that is not one of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: {}", .expected.join(", "))]
pub struct UnknownVariant {
    pub expected: Vec<&'static str>,
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { expected: vec![$($text),+] }),
                }
            }
        }
    };
}

wire_enum!(
    /// Cloud storage provider of a storage secret (and of a location).
    SecretType {
        S3 => "s3",
        AzureBlob => "azure_blob",
        Gcs => "gcs",
        R2 => "r2",
        B2 => "b2",
        Wasabi => "wasabi",
        Railway => "railway",
        OracleObjectStorageS3 => "oracle_object_storage_s3",
        S3Compatible => "s3_compatible",
        Tigris => "tigris",
        DigitaloceanSpaces => "digitalocean_spaces",
        Hetzner => "hetzner",
        Rabata => "rabata",
    }
);

wire_enum!(
    /// How a storage secret authenticates; each belongs to exactly one [`SecretType`].
    AuthMethod {
        S3AccessKey => "s3_access_key",
        R2AccessKey => "r2_access_key",
        WasabiAccessKey => "wasabi_access_key",
        RailwayAccessKey => "railway_access_key",
        OracleObjectStorageS3AccessKey => "oracle_object_storage_s3_access_key",
        S3CompatibleAccessKey => "s3_compatible_access_key",
        TigrisAccessKey => "tigris_access_key",
        DigitaloceanSpacesAccessKey => "digitalocean_spaces_access_key",
        HetznerAccessKey => "hetzner_access_key",
        RabataAccessKey => "rabata_access_key",
        AzureAccountKey => "azure_account_key",
        AzureSasUrl => "azure_sas_url",
        GcsServiceAccount => "gcs_service_account",
        B2ApplicationKey => "b2_application_key",
    }
);

wire_enum!(
    /// One named field of a credential set.
    CredentialField {
        AccessKeyId => "access_key_id",
        SecretAccessKey => "secret_access_key",
        AccountName => "account_name",
        AccountKey => "account_key",
        SasUrl => "sas_url",
        ServiceAccountJson => "service_account_json",
        ApplicationKeyId => "application_key_id",
        ApplicationKey => "application_key",
    }
);

wire_enum!(
    /// The external vault behind a vault connection.
    VaultType {
        OnePassword => "onepassword",
        Doppler => "doppler",
        Infisical => "infisical",
    }
);

wire_enum!(
    /// A member's role in a team, lowest to highest (the derived `Ord` follows this order).
    Role {
        Viewer => "viewer",
        Operator => "operator",
        Admin => "admin",
        Owner => "owner",
    }
);

wire_enum!(
    /// A team's tier, which sets its limits.
    Tier {
        Free => "free",
        Pro => "pro",
        Enterprise => "enterprise",
    }
);

wire_enum!(
    /// Where a storage secret's credentials live.
    StorageMode {
        Managed => "managed",
        External => "external",
    }
);

impl AuthMethod {
    /// The one secret type this auth method authenticates against.
    pub const fn secret_type(self) -> SecretType {
        match self {
            AuthMethod::S3AccessKey => SecretType::S3,
            AuthMethod::R2AccessKey => SecretType::R2,
            AuthMethod::WasabiAccessKey => SecretType::Wasabi,
            AuthMethod::RailwayAccessKey => SecretType::Railway,
            AuthMethod::OracleObjectStorageS3AccessKey => SecretType::OracleObjectStorageS3,
            AuthMethod::S3CompatibleAccessKey => SecretType::S3Compatible,
            AuthMethod::TigrisAccessKey => SecretType::Tigris,
            AuthMethod::DigitaloceanSpacesAccessKey => SecretType::DigitaloceanSpaces,
            AuthMethod::HetznerAccessKey => SecretType::Hetzner,
            AuthMethod::RabataAccessKey => SecretType::Rabata,
            AuthMethod::AzureAccountKey | AuthMethod::AzureSasUrl => SecretType::AzureBlob,
            AuthMethod::GcsServiceAccount => SecretType::Gcs,
            AuthMethod::B2ApplicationKey => SecretType::B2,
        }
    }

    /// The credential fields this method needs, all required, in wire order.
    pub const fn credential_fields(self) -> &'static [CredentialField] {
        use CredentialField as F;
        match self {
            AuthMethod::AzureAccountKey => &[F::AccountName, F::AccountKey],
            AuthMethod::AzureSasUrl => &[F::SasUrl],
            AuthMethod::GcsServiceAccount => &[F::ServiceAccountJson],
            AuthMethod::B2ApplicationKey => &[F::ApplicationKeyId, F::ApplicationKey],
            AuthMethod::S3AccessKey
            | AuthMethod::R2AccessKey
            | AuthMethod::WasabiAccessKey
            | AuthMethod::RailwayAccessKey
            | AuthMethod::OracleObjectStorageS3AccessKey
            | AuthMethod::S3CompatibleAccessKey
            | AuthMethod::TigrisAccessKey
            | AuthMethod::DigitaloceanSpacesAccessKey
            | AuthMethod::HetznerAccessKey
            | AuthMethod::RabataAccessKey => &[F::AccessKeyId, F::SecretAccessKey],
        }
    }
}

impl SecretType {
    /// The auth methods valid for this secret type (the matrix of the storage-secret API).
    pub fn auth_methods(self) -> Vec<AuthMethod> {
        AuthMethod::ALL
            .iter()
            .copied()
            .filter(|m| m.secret_type() == self)
            .collect()
    }

    /// Whether `(self, method)` is a pair the matrix accepts.
    pub fn accepts(self, method: AuthMethod) -> bool {
        method.secret_type() == self
    }
}

impl Role {
    /// Whether this role is at least `minimum`.
    pub fn at_least(self, minimum: Role) -> bool {
        self >= minimum
    }
}

wire_enum!(
    /// The kind of resource an audit event is about.
    ResourceType {
        User => "user",
        Team => "team",
        Member => "member",
        VirtualAccount => "virtual_account",
        Token => "token",
        StorageSecret => "storage_secret",
        Location => "location",
        VaultConnection => "vault_connection",
        SecretGroup => "secret_group",
        GroupSecret => "group_secret",
        Session => "session",
    }
);

wire_enum!(
    /// What happened, in an audit event.
    AuditAction {
        Create => "create",
        Update => "update",
        Delete => "delete",
        Rotate => "rotate",
        Verify => "verify",
        Resolve => "resolve",
        ReadValue => "read_value",
        Authenticate => "authenticate",
        RegenerateToken => "regenerate_token",
        Revoke => "revoke",
    }
);

wire_enum!(
    /// How it ended.
    Outcome {
        Success => "success",
        Failure => "failure",
        Denied => "denied",
    }
);

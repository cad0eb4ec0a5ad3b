//! Locations: buckets and containers that use a storage secret.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::enums::SecretType;
use crate::error::{FieldError, ValidationErrors, kind};
use crate::ids::{LocationId, SecretId, SubjectId, TeamId};
use crate::secret::parse_enum;
use crate::text::{BucketName, Description, Name, Region};

/// An S3-compatible endpoint: an absolute `https` URL (plain `http` only for loopback)
/// without credentials, path, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub fn parse_at(loc: &str, value: &str) -> Result<Self, FieldError> {
        let invalid = |msg: &str| FieldError::new(&[loc], kind::INVALID_FORMAT, msg.to_owned());
        if value.chars().count() > 2048 {
            return Err(FieldError::new(
                &[loc],
                kind::TOO_LONG,
                "must be at most 2048 characters",
            ));
        }
        // The URL parser silently drops tabs, line breaks and padding; the value is kept as
        // given, so such characters are refused rather than stored.
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain whitespace or control characters"));
        }
        let url =
            url::Url::parse(value).map_err(|_| invalid("must be an absolute URL such as https://s3.example.com"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(invalid("must use https (http is allowed only for loopback addresses)")),
            _ => return Err(invalid("must be an https URL")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a query or fragment"));
        }
        if url.path() != "/" && !url.path().is_empty() {
            return Err(invalid("must not have a path"));
        }
        Ok(Self(value.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A location's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub id: LocationId,
    pub team_id: TeamId,
    pub name: Name,
    pub description: Option<Description>,
    pub location_type: SecretType,
    pub bucket_name: BucketName,
    pub region: Option<Region>,
    pub endpoint_url: Option<EndpointUrl>,
    pub secret_id: SecretId,
    pub created_at: DateTime<Utc>,
    pub created_by: SubjectId,
    pub updated_at: DateTime<Utc>,
    pub updated_by: SubjectId,
}

/// A location create request as it arrives.
#[derive(Debug, Default, Clone)]
pub struct LocationInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub location_type: Option<String>,
    pub bucket_name: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub secret_id: Option<String>,
}

/// The storage secret a location request names, when it exists in the same team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownSecret {
    pub id: SecretId,
    pub secret_type: SecretType,
}

/// A checked location create request.
#[derive(Debug, Clone)]
pub struct NewLocation {
    pub name: Name,
    pub description: Option<Description>,
    pub location_type: SecretType,
    pub bucket_name: BucketName,
    pub region: Option<Region>,
    pub endpoint_url: Option<EndpointUrl>,
    pub secret_id: SecretId,
}

fn check_type_and_endpoint(
    errors: &mut ValidationErrors,
    location_type: Option<SecretType>,
    secret: Option<KnownSecret>,
    endpoint: Option<&EndpointUrl>,
    endpoint_given: bool,
) {
    if let (Some(t), Some(s)) = (location_type, secret)
        && t != s.secret_type
    {
        errors.push(FieldError::new(
            &["location_type"],
            kind::INVALID_PAIR,
            format!("must equal the secret's secret_type ({})", s.secret_type),
        ));
    }
    if let Some(t) = location_type.filter(|t| needs_endpoint(*t))
        && endpoint.is_none()
        && !endpoint_given
    {
        errors.push(FieldError::new(
            &["endpoint_url"],
            kind::MISSING,
            format!("is required for location_type {t}"),
        ));
    }
}

/// Location types whose endpoint cannot be derived: `s3_compatible` and `wasabi`
/// (the create reference: "Wasabi (requires endpoint_url in location config)").
fn needs_endpoint(location_type: SecretType) -> bool {
    matches!(location_type, SecretType::S3Compatible | SecretType::Wasabi)
}

impl NewLocation {
    /// Check a create request. `secret` is the storage secret named by `secret_id`, looked
    /// up in the same team by the caller (`None` when absent, malformed or in no such team).
    pub fn parse(input: LocationInput, secret: Option<KnownSecret>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = match input.name {
            Some(n) => errors.check(Name::parse_at("name", n)),
            None => {
                errors.push(FieldError::new(&["name"], kind::MISSING, "is required"));
                None
            }
        };
        let description = input
            .description
            .and_then(|d| errors.check(Description::parse_at("description", d)));
        let location_type: Option<SecretType> =
            parse_enum(&mut errors, "location_type", input.location_type.as_deref(), true);
        let bucket_name = match input.bucket_name {
            Some(b) => errors.check(BucketName::parse_at("bucket_name", b)),
            None => {
                errors.push(FieldError::new(&["bucket_name"], kind::MISSING, "is required"));
                None
            }
        };
        let region = input.region.and_then(|r| errors.check(Region::parse_at("region", r)));
        let endpoint_given = input.endpoint_url.is_some();
        let endpoint_url = input
            .endpoint_url
            .and_then(|u| errors.check(EndpointUrl::parse_at("endpoint_url", &u)));
        let secret = match (&input.secret_id, secret) {
            (None, _) => {
                errors.push(FieldError::new(&["secret_id"], kind::MISSING, "is required"));
                None
            }
            (Some(_), None) => {
                errors.push(FieldError::new(
                    &["secret_id"],
                    kind::NOT_FOUND,
                    "must be the id of a storage secret of this team",
                ));
                None
            }
            (Some(_), Some(s)) => Some(s),
        };
        check_type_and_endpoint(
            &mut errors,
            location_type,
            secret,
            endpoint_url.as_ref(),
            endpoint_given,
        );
        match (name, location_type, bucket_name, secret) {
            (Some(name), Some(location_type), Some(bucket_name), Some(secret)) if errors.is_empty() => Ok(Self {
                name,
                description,
                location_type,
                bucket_name,
                region,
                endpoint_url,
                secret_id: secret.id,
            }),
            _ => Err(errors),
        }
    }
}

/// A location update request as it arrives. `Some(None)` clears an optional field.
#[derive(Debug, Default, Clone)]
pub struct LocationPatchInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub location_type: Option<String>,
    pub bucket_name: Option<String>,
    pub region: Option<Option<String>>,
    pub endpoint_url: Option<Option<String>>,
    pub secret_id: Option<String>,
}

/// A checked location update; only changing fields are `Some`.
#[derive(Debug, Clone, Default)]
pub struct LocationPatch {
    pub name: Option<Name>,
    pub description: Option<Option<Description>>,
    pub location_type: Option<SecretType>,
    pub bucket_name: Option<BucketName>,
    pub region: Option<Option<Region>>,
    pub endpoint_url: Option<Option<EndpointUrl>>,
    pub secret_id: Option<SecretId>,
}

impl LocationPatch {
    /// Check an update against the location as it is now. `secret` is the secret the
    /// location will use afterwards (the new `secret_id` when given, else the current one),
    /// looked up in the same team; the resulting type must equal its `secret_type`, and an
    /// `s3_compatible` or `wasabi` location keeps an endpoint.
    pub fn parse(
        input: LocationPatchInput,
        current: &Location,
        secret: Option<KnownSecret>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = input.name.and_then(|n| errors.check(Name::parse_at("name", n)));
        let description = Description::parse_patch(&mut errors, input.description);
        let location_type: Option<SecretType> =
            parse_enum(&mut errors, "location_type", input.location_type.as_deref(), false);
        let bucket_name = input
            .bucket_name
            .and_then(|b| errors.check(BucketName::parse_at("bucket_name", b)));
        let region = match input.region {
            None => None,
            Some(None) => Some(None),
            Some(Some(r)) => errors.check(Region::parse_at("region", r)).map(Some),
        };
        let endpoint_url = match input.endpoint_url {
            None => None,
            Some(None) => Some(None),
            Some(Some(u)) => errors.check(EndpointUrl::parse_at("endpoint_url", &u)).map(Some),
        };
        if input.secret_id.is_some() && secret.is_none() {
            errors.push(FieldError::new(
                &["secret_id"],
                kind::NOT_FOUND,
                "must be the id of a storage secret of this team",
            ));
        }
        let resulting_type = location_type.unwrap_or(current.location_type);
        let resulting_endpoint = match &endpoint_url {
            Some(e) => e.clone(),
            None => current.endpoint_url.clone(),
        };
        let endpoint_failed = errors.has(&["endpoint_url"]);
        if let Some(s) = secret
            && resulting_type != s.secret_type
        {
            let loc = if location_type.is_some() {
                "location_type"
            } else {
                "secret_id"
            };
            errors.push(FieldError::new(
                &[loc],
                kind::INVALID_PAIR,
                format!(
                    "location_type {resulting_type} must equal the secret's secret_type ({})",
                    s.secret_type
                ),
            ));
        }
        if needs_endpoint(resulting_type) && resulting_endpoint.is_none() && !endpoint_failed {
            errors.push(FieldError::new(
                &["endpoint_url"],
                kind::MISSING,
                format!("is required for location_type {resulting_type}"),
            ));
        }
        errors.finish(|| Self {
            name,
            description,
            location_type,
            bucket_name,
            region,
            endpoint_url,
            secret_id: secret.map(|s| s.id).filter(|id| *id != current.secret_id),
        })
    }
}

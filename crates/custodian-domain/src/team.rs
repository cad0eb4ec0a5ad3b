//! Requests that change a team: as they arrive (`*Input`, plain strings) and once checked.

use crate::enums::Tier;
use crate::error::ValidationErrors;
use crate::secret::parse_enum;
use crate::text::{Description, Name};

/// A team update as it arrives: only the fields that are present change, and
/// `description: Some(None)` clears the description.
#[derive(Debug, Clone, Default)]
pub struct TeamPatchInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    /// Only a tenant admin may change it.
    pub tier: Option<String>,
}

/// A checked team update; only changing fields are `Some`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamPatch {
    pub name: Option<Name>,
    pub description: Option<Option<Description>>,
    pub tier: Option<Tier>,
}

impl TeamPatch {
    /// Check an update: name 1–255 characters, description at most 2000, tier one of
    /// `free`, `pro`, `enterprise`. Every failing field is reported.
    pub fn parse(input: TeamPatchInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = input.name.and_then(|n| errors.check(Name::parse_at("name", n)));
        let description = match input.description {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => errors.check(Description::parse_at("description", d)).map(Some),
        };
        let tier = parse_enum(&mut errors, "tier", input.tier.as_deref(), false);
        errors.finish(|| Self {
            name,
            description,
            tier,
        })
    }
}

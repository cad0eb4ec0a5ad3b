//! Locations: buckets and containers that use a storage secret of the same team and type.

use std::collections::HashMap;

use custodian_domain::{
    AuditAction, AuditEvent, KnownSecret, Location, LocationId, LocationInput, LocationPatch, LocationPatchInput,
    NewLocation, Outcome, RequestContext, ResourceType, SecretId, StorageSecret, Subject, TeamId,
};
use custodian_ports::{LocationFilter, Page, Paged, RepoError};

use crate::authz::Action;
use crate::resolution::Verification;
use crate::{CoreError, Custodian};

/// A location with the name of the secret it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationView {
    pub location: Location,
    pub secret_name: String,
}

impl Custodian {
    fn location_event(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        action: AuditAction,
        location: &Location,
    ) -> AuditEvent {
        self.audit_event(
            subject,
            ctx,
            Some(location.team_id),
            action,
            (
                ResourceType::Location,
                Some(location.id.as_uuid()),
                Some(location.name.as_str()),
            ),
            Outcome::Success,
        )
    }

    /// The secret `id` (as sent) of `team`, or `None` when it is malformed or not there.
    async fn find_secret(&self, team: TeamId, id: Option<&str>) -> Result<Option<StorageSecret>, CoreError> {
        let Some(Ok(id)) = id.map(str::parse::<SecretId>) else {
            return Ok(None);
        };
        match self.ports.repos.secrets.get(team, id).await {
            Ok(secret) => Ok(Some(secret)),
            Err(RepoError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Create a location (admin). Its secret must be of the same team (else 422 on
    /// `secret_id`) and its type must equal the secret's type.
    pub async fn create_location(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        input: LocationInput,
    ) -> Result<LocationView, CoreError> {
        self.authorize(subject, team, Action::WriteLocations).await?;
        let secret = self.find_secret(team, input.secret_id.as_deref()).await?;
        let known = secret.as_ref().map(|s| KnownSecret {
            id: s.id,
            secret_type: s.secret_type,
        });
        let new = NewLocation::parse(input, known)?;
        let secret_name = secret.map(|s| s.name.into_inner()).unwrap_or_default();
        let now = self.now();
        let location = Location {
            id: LocationId::from_uuid(self.ports.ids.new_id()),
            team_id: team,
            name: new.name,
            description: new.description,
            location_type: new.location_type,
            bucket_name: new.bucket_name,
            region: new.region,
            endpoint_url: new.endpoint_url,
            secret_id: new.secret_id,
            created_at: now,
            created_by: subject.id(),
            updated_at: now,
            updated_by: subject.id(),
        };
        let audit = self.location_event(subject, ctx, AuditAction::Create, &location);
        self.ports.repos.locations.create(&location, &audit).await?;
        Ok(LocationView { location, secret_name })
    }

    /// A location (viewer).
    pub async fn get_location(
        &self,
        subject: &Subject,
        team: TeamId,
        id: LocationId,
    ) -> Result<LocationView, CoreError> {
        self.authorize_without_team_read(subject, team, Action::ReadLocations)
            .await?;
        let location = self.ports.repos.locations.get(team, id).await?;
        let secret_name = self
            .ports
            .repos
            .secrets
            .get(team, location.secret_id)
            .await?
            .name
            .into_inner();
        Ok(LocationView { location, secret_name })
    }

    /// The team's locations matching `filter` (viewer).
    pub async fn list_locations(
        &self,
        subject: &Subject,
        team: TeamId,
        filter: &LocationFilter,
        page: Page,
    ) -> Result<Paged<LocationView>, CoreError> {
        self.authorize(subject, team, Action::ReadLocations).await?;
        let found = self.ports.repos.locations.list(team, filter, page).await?;
        let mut names: HashMap<SecretId, String> = HashMap::new();
        let mut items = Vec::with_capacity(found.items.len());
        for location in found.items {
            let secret_name = match names.get(&location.secret_id) {
                Some(name) => name.clone(),
                None => {
                    let name = self
                        .ports
                        .repos
                        .secrets
                        .get(team, location.secret_id)
                        .await?
                        .name
                        .into_inner();
                    names.insert(location.secret_id, name.clone());
                    name
                }
            };
            items.push(LocationView { location, secret_name });
        }
        Ok(Paged {
            items,
            total: found.total,
        })
    }

    /// Update a location (admin); the resulting type must equal its secret's type.
    pub async fn update_location(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: LocationId,
        input: LocationPatchInput,
    ) -> Result<LocationView, CoreError> {
        self.authorize_without_team_read(subject, team, Action::WriteLocations)
            .await?;
        let current = self.ports.repos.locations.get(team, id).await?;
        let secret = match input.secret_id.as_deref() {
            Some(sent) => self.find_secret(team, Some(sent)).await?,
            None => Some(self.ports.repos.secrets.get(team, current.secret_id).await?),
        };
        let known = secret.as_ref().map(|s| KnownSecret {
            id: s.id,
            secret_type: s.secret_type,
        });
        let patch = LocationPatch::parse(input, &current, known)?;
        let mut next = current;
        if let Some(name) = patch.name {
            next.name = name;
        }
        if let Some(description) = patch.description {
            next.description = description;
        }
        if let Some(location_type) = patch.location_type {
            next.location_type = location_type;
        }
        if let Some(bucket_name) = patch.bucket_name {
            next.bucket_name = bucket_name;
        }
        if let Some(region) = patch.region {
            next.region = region;
        }
        if let Some(endpoint_url) = patch.endpoint_url {
            next.endpoint_url = endpoint_url;
        }
        if let Some(secret_id) = patch.secret_id {
            next.secret_id = secret_id;
        }
        next.updated_at = self.now();
        next.updated_by = subject.id();
        let audit = self.location_event(subject, ctx, AuditAction::Update, &next);
        self.ports.repos.locations.update(&next, &audit).await?;
        let secret_name = secret.map(|s| s.name.into_inner()).unwrap_or_default();
        Ok(LocationView {
            location: next,
            secret_name,
        })
    }

    /// Delete a location (admin).
    pub async fn delete_location(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: LocationId,
    ) -> Result<(), CoreError> {
        self.authorize_without_team_read(subject, team, Action::WriteLocations)
            .await?;
        let current = self.ports.repos.locations.get(team, id).await?;
        let audit = self.location_event(subject, ctx, AuditAction::Delete, &current);
        self.ports.repos.locations.delete(team, id, &audit).await?;
        Ok(())
    }

    /// Verify a location (operator): its secret's credentials are resolved and checked,
    /// as [`verify_secret`](Self::verify_secret) does; the event names the location.
    pub async fn verify_location(
        &self,
        subject: &Subject,
        ctx: &RequestContext,
        team: TeamId,
        id: LocationId,
    ) -> Result<Verification, CoreError> {
        self.authorize_without_team_read(subject, team, Action::VerifyLocation)
            .await?;
        let location = self.ports.repos.locations.get(team, id).await?;
        let secret = self.ports.repos.secrets.get(team, location.secret_id).await?;
        let resource = (
            ResourceType::Location,
            Some(location.id.as_uuid()),
            Some(location.name.as_str()),
        );
        self.verify_and_record(subject, ctx, &secret, resource).await
    }
}

#[cfg(test)]
mod tests;

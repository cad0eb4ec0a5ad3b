//! [`LocationRepository`] on SQL: the `locations` table. A location's secret must be of
//! its team (checked here, and by the composite foreign key `(team_id, secret_id)`).

use async_trait::async_trait;
use chrono::NaiveDateTime;
use custodian_domain::{
    AuditEvent, BucketName, Description, EndpointUrl, LinkedLocation, Location, LocationId, Name, Region, SecretId,
    SecretType, SubjectId, TeamId,
};
use custodian_ports::{LocationFilter, LocationRepository, Page, Paged, RepoError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::convert::{checked, count, db_time, id_text, page_bounds, parse_id, parse_text, utc};
use crate::db::{Conn, Database, transaction, with_conn};
use crate::error::DbError;
use crate::schema::{locations, storage_secrets};

const T: &str = "locations";

/// A row of `locations`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = locations, treat_none_as_default_value = false)]
struct LocationRow {
    id: String,
    team_id: String,
    name: String,
    description: Option<String>,
    location_type: String,
    bucket_name: String,
    region: Option<String>,
    endpoint_url: Option<String>,
    secret_id: String,
    created_at: NaiveDateTime,
    created_by: String,
    updated_at: NaiveDateTime,
    updated_by: String,
}

/// The columns an update replaces.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = locations, treat_none_as_null = true)]
struct LocationChanges {
    name: String,
    description: Option<String>,
    location_type: String,
    bucket_name: String,
    region: Option<String>,
    endpoint_url: Option<String>,
    secret_id: String,
    updated_at: NaiveDateTime,
    updated_by: String,
}

impl LocationRow {
    fn new(l: &Location) -> Self {
        Self {
            id: id_text(l.id.as_uuid()),
            team_id: id_text(l.team_id.as_uuid()),
            name: l.name.as_str().to_owned(),
            description: l.description.as_ref().map(|d| d.as_str().to_owned()),
            location_type: l.location_type.as_str().to_owned(),
            bucket_name: l.bucket_name.as_str().to_owned(),
            region: l.region.as_ref().map(|r| r.as_str().to_owned()),
            endpoint_url: l.endpoint_url.as_ref().map(|e| e.as_str().to_owned()),
            secret_id: id_text(l.secret_id.as_uuid()),
            created_at: db_time(l.created_at),
            created_by: id_text(l.created_by.as_uuid()),
            updated_at: db_time(l.updated_at),
            updated_by: id_text(l.updated_by.as_uuid()),
        }
    }

    fn into_location(self) -> Result<Location, DbError> {
        Ok(Location {
            id: parse_id::<LocationId>(&self.id, T, "id")?,
            team_id: parse_id::<TeamId>(&self.team_id, T, "team_id")?,
            name: checked(Name::parse_at("name", self.name), T, "name")?,
            description: self
                .description
                .map(|d| checked(Description::parse_at("description", d), T, "description"))
                .transpose()?,
            location_type: parse_text::<SecretType>(&self.location_type, T, "location_type")?,
            bucket_name: checked(BucketName::parse_at("bucket_name", self.bucket_name), T, "bucket_name")?,
            region: self
                .region
                .map(|r| checked(Region::parse_at("region", r), T, "region"))
                .transpose()?,
            endpoint_url: self
                .endpoint_url
                .map(|e| checked(EndpointUrl::parse_at("endpoint_url", &e), T, "endpoint_url"))
                .transpose()?,
            secret_id: parse_id::<SecretId>(&self.secret_id, T, "secret_id")?,
            created_at: utc(self.created_at),
            created_by: parse_id::<SubjectId>(&self.created_by, T, "created_by")?,
            updated_at: utc(self.updated_at),
            updated_by: parse_id::<SubjectId>(&self.updated_by, T, "updated_by")?,
        })
    }
}

/// [`LocationRepository`] over a [`Database`].
#[derive(Debug, Clone)]
pub struct SqlLocationRepository {
    db: Database,
}

impl SqlLocationRepository {
    /// The locations of `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl LocationRepository for SqlLocationRepository {
    async fn create(&self, location: &Location, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = LocationRow::new(location);
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            let secrets: i64 = storage_secrets::table
                .filter(storage_secrets::team_id.eq(&row.team_id))
                .filter(storage_secrets::id.eq(&row.secret_id))
                .count()
                .get_result(conn)
                .await?;
            if secrets == 0 {
                return Err(RepoError::NotFound.into());
            }
            diesel::insert_into(locations::table).values(&row).execute(conn).await?;
            conn.insert_audit(&audit).await?;
            Ok(())
        })
    }

    async fn get(&self, team: TeamId, id: LocationId) -> Result<Location, RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        with_conn!(self.db, |conn| {
            let row: LocationRow = locations::table
                .select(LocationRow::as_select())
                .filter(locations::team_id.eq(&team))
                .filter(locations::id.eq(&id))
                .get_result(conn)
                .await?;
            row.into_location()
        })
    }

    async fn list(&self, team: TeamId, filter: &LocationFilter, page: Page) -> Result<Paged<Location>, RepoError> {
        let team = id_text(team.as_uuid());
        let secret = filter.secret_id.map(|s| id_text(s.as_uuid()));
        let location_type = filter.location_type.map(|t| t.as_str().to_owned());
        let (limit, offset) = page_bounds(page);
        with_conn!(self.db, |conn| {
            macro_rules! matching {
                () => {{
                    let mut query = locations::table.filter(locations::team_id.eq(&team)).into_boxed();
                    if let Some(s) = &secret {
                        query = query.filter(locations::secret_id.eq(s));
                    }
                    if let Some(t) = &location_type {
                        query = query.filter(locations::location_type.eq(t));
                    }
                    query
                }};
            }
            let total: i64 = matching!().count().get_result(conn).await?;
            let rows: Vec<LocationRow> = matching!()
                .select(LocationRow::as_select())
                .order((locations::name.asc(), locations::id.asc()))
                .limit(limit)
                .offset(offset)
                .load(conn)
                .await?;
            Ok(Paged {
                items: rows
                    .into_iter()
                    .map(LocationRow::into_location)
                    .collect::<Result<_, _>>()?,
                total: count(total),
            })
        })
    }

    async fn linked_to_secret(&self, team: TeamId, secret: SecretId) -> Result<Vec<LinkedLocation>, RepoError> {
        let team = id_text(team.as_uuid());
        let secret = id_text(secret.as_uuid());
        with_conn!(self.db, |conn| {
            let rows: Vec<LinkedRow> = locations::table
                .select((locations::id, locations::name, locations::location_type))
                .filter(locations::team_id.eq(&team))
                .filter(locations::secret_id.eq(&secret))
                .order((locations::name.asc(), locations::id.asc()))
                .load(conn)
                .await?;
            rows.into_iter().map(linked_location).collect()
        })
    }

    async fn update(&self, location: &Location, audit: &AuditEvent) -> Result<(), RepoError> {
        let row = LocationRow::new(location);
        let changes = LocationChanges {
            name: row.name.clone(),
            description: row.description.clone(),
            location_type: row.location_type.clone(),
            bucket_name: row.bucket_name.clone(),
            region: row.region.clone(),
            endpoint_url: row.endpoint_url.clone(),
            secret_id: row.secret_id.clone(),
            updated_at: row.updated_at,
            updated_by: row.updated_by.clone(),
        };
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            let secrets: i64 = storage_secrets::table
                .filter(storage_secrets::team_id.eq(&row.team_id))
                .filter(storage_secrets::id.eq(&row.secret_id))
                .count()
                .get_result(conn)
                .await?;
            if secrets == 0 {
                return Err(RepoError::NotFound.into());
            }
            let updated = diesel::update(locations::table)
                .filter(locations::team_id.eq(&row.team_id))
                .filter(locations::id.eq(&row.id))
                .set(&changes)
                .execute(conn)
                .await?;
            if updated == 0 {
                return Err(RepoError::NotFound.into());
            }
            conn.insert_audit(&audit).await?;
            Ok(())
        })
    }

    async fn delete(&self, team: TeamId, id: LocationId, audit: &AuditEvent) -> Result<(), RepoError> {
        let team = id_text(team.as_uuid());
        let id = id_text(id.as_uuid());
        let audit = audit.clone();
        transaction!(self.db, |conn| {
            let deleted = diesel::delete(
                locations::table
                    .filter(locations::team_id.eq(&team))
                    .filter(locations::id.eq(&id)),
            )
            .execute(conn)
            .await?;
            if deleted == 0 {
                return Err(RepoError::NotFound.into());
            }
            conn.insert_audit(&audit).await?;
            Ok(())
        })
    }
}

/// A location's id, name and type as read (`locations.id`, `name`, `location_type`).
pub(crate) type LinkedRow = (String, String, String);

/// The [`LinkedLocation`] of a [`LinkedRow`].
pub(crate) fn linked_location((id, name, location_type): LinkedRow) -> Result<LinkedLocation, DbError> {
    Ok(LinkedLocation {
        id: parse_id::<LocationId>(&id, T, "id")?,
        name,
        location_type: parse_text::<SecretType>(&location_type, T, "location_type")?,
    })
}

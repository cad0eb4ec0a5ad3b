//! `/api/svc/v1/secret-groups`, `/api/svc/v1/secrets` and `/api/svc/v1/integrations`:
//! secret groups, their keys and versions, in the camelCase shapes TrueFoundry's SDK reads.
//!
//! A value appears only in the answers of a value read (`GET /secrets/{id}`, and
//! `POST /secrets` with `withValue`); every other answer leaves `value` out.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use custodian_core::{
    CoreError, GroupListInput, GroupManifestInput, GroupView, Integration, KeyListInput, KeyView, SubjectSummary,
};
use custodian_domain::{
    CreateGroupInput, FieldError, GroupSecretId, GroupSecretInput, SecretGroupId, SubjectKind, TeamId,
    UpdateGroupInput, ValidationErrors,
};
use custodian_ports::{Page, Paged};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::ApiState;
use crate::auth::Authenticated;
use crate::fields::secret_string;
use crate::pagination;
use crate::svc_envelope::{
    self, Data, Empty, ListData, Pagination, SvcCaller, SvcError, SvcErrorBody, SvcJson, SvcQuery,
};

#[derive(OpenApi)]
#[openapi(paths(
    list_integrations,
    create_group,
    list_groups,
    apply_manifest,
    get_group,
    update_group,
    delete_group,
    get_secret,
    list_secrets,
    delete_secret,
))]
pub(crate) struct Doc;

const GROUPS: &str = "/api/svc/v1/secret-groups";
const GROUP: &str = "/api/svc/v1/secret-groups/{id}";
const SECRETS: &str = "/api/svc/v1/secrets";
const SECRET: &str = "/api/svc/v1/secrets/{id}";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/svc/v1/integrations", web::get().to(list_integrations))
        .route(GROUPS, web::post().to(create_group))
        .route(GROUPS, web::get().to(list_groups))
        .route(GROUPS, web::put().to(apply_manifest))
        .route(GROUP, web::get().to(get_group))
        .route(GROUP, web::put().to(update_group))
        .route(GROUP, web::delete().to(delete_group))
        .route(SECRETS, web::post().to(list_secrets))
        .route(SECRET, web::get().to(get_secret))
        .route(SECRET, web::delete().to(delete_secret));
}

/// The largest page of `POST /api/svc/v1/secrets`.
const MAX_SECRETS_LIMIT: u32 = 1000;
/// The page of `POST /api/svc/v1/secrets` when the body names none.
const DEFAULT_SECRETS_LIMIT: u32 = 100;

/// This API's field names for the core's: camelCase, except inside a manifest, whose
/// fields are snake_case on the wire (`integration_fqn`) but for `ownedBy`.
fn wire_name(segment: &str) -> String {
    match segment {
        "integration_id" => "integrationId".into(),
        "team_id" => "teamId".into(),
        "owned_by" => "ownedBy".into(),
        "secret_fqns" => "secretFqns".into(),
        "secret_group_id" => "secretGroupId".into(),
        "with_value" => "withValue".into(),
        other => other.into(),
    }
}

/// A use case's error on a request body: its fields under `body`, in this API's names.
fn in_body(error: CoreError) -> SvcError {
    svc_envelope::in_body(rename(error))
}

/// A use case's error on the query: its fields under `query`.
fn in_query(error: CoreError) -> SvcError {
    SvcError::from(crate::fields::in_query(rename(error)))
}

fn rename(error: CoreError) -> CoreError {
    match error {
        CoreError::Validation(errors) => {
            let mut renamed = ValidationErrors::new();
            for mut e in errors.into_errors() {
                e.loc = e.loc.iter().map(|s| wire_name(s)).collect();
                renamed.push(e);
            }
            CoreError::Validation(renamed)
        }
        other => other,
    }
}

/// Who created a record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubjectBody {
    subject_id: String,
    /// `user` or `virtualaccount`.
    #[schema(example = "user")]
    subject_type: &'static str,
    /// A user's email or a virtual account's name; absent when the subject was deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_slug: Option<String>,
    /// A user's display name or a virtual account's name; absent when the subject was deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_display_name: Option<String>,
}

impl SubjectBody {
    pub(crate) fn of(subject: &SubjectSummary) -> Self {
        SubjectBody {
            subject_id: subject.id.to_string(),
            subject_type: match subject.kind {
                Some(SubjectKind::VirtualAccount) => "virtualaccount",
                // A deleted subject's kind is not kept; its id still names it in the audit trail.
                Some(SubjectKind::User) | None => "user",
            },
            subject_slug: subject.slug.clone(),
            subject_display_name: subject.display_name.clone(),
        }
    }
}

/// One version of a key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretVersionBody {
    id: String,
    /// `custodian://<tenant>:<group>:<key>:<version>`.
    fqn: String,
    /// The value, only in the answers of a value read.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    version: i64,
    secret_id: String,
    created_at: DateTime<Utc>,
    /// Versions never change: the time it was created.
    updated_at: DateTime<Utc>,
}

/// One key of a group.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretBody {
    id: String,
    /// `custodian://<tenant>:<group>:<key>`.
    fqn: String,
    /// The key.
    name: String,
    secret_group_id: String,
    /// The value of the version read, only in the answers of a value read.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    created_by_subject: SubjectBody,
    /// The id of the subject that created the key.
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Every version, oldest first (or the one asked for).
    secret_versions: Vec<SecretVersionBody>,
    /// Distinct virtual accounts that read a value of this key in the last 24 hours.
    active_deployments_count: u64,
}

fn expose(value: Option<&SecretString>) -> Option<String> {
    value.map(|v| v.expose_secret().to_owned())
}

impl SecretBody {
    fn of(key: &KeyView, tenant: &str) -> Self {
        let fqn = key.fqn(tenant);
        let secret = &key.details.secret;
        SecretBody {
            id: secret.id.to_string(),
            name: secret.key.as_str().to_owned(),
            secret_group_id: secret.group_id.to_string(),
            value: expose(key.value.as_ref()),
            created_by_subject: SubjectBody::of(&key.created_by),
            created_by: key.created_by.id.to_string(),
            created_at: secret.created_at,
            updated_at: secret.updated_at,
            secret_versions: key
                .versions
                .iter()
                .map(|v| SecretVersionBody {
                    id: v.version.id.to_string(),
                    fqn: format!("{fqn}:{}", v.version.version),
                    value: expose(v.value.as_ref()),
                    version: v.version.version,
                    secret_id: secret.id.to_string(),
                    created_at: v.version.created_at,
                    updated_at: v.version.created_at,
                })
                .collect(),
            active_deployments_count: key.active_deployments,
            fqn,
        }
    }
}

/// A secret group; never a value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretGroupBody {
    id: String,
    /// `custodian://<tenant>:<group>`.
    fqn: String,
    name: String,
    tenant_name: String,
    created_by_subject: SubjectBody,
    /// The id of the subject that created the group.
    created_by: String,
    /// Every key, ordered by key, with its versions; no values.
    associated_secrets: Vec<SecretBody>,
    /// The integration holding the values.
    integration_id: String,
    /// The team that owns the group.
    account_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SecretGroupBody {
    fn of(view: &GroupView, tenant: &str) -> Self {
        let group = &view.group;
        SecretGroupBody {
            id: group.id.to_string(),
            fqn: view.fqn(tenant),
            name: group.name.as_str().to_owned(),
            tenant_name: tenant.to_owned(),
            created_by_subject: SubjectBody::of(&view.created_by),
            created_by: view.created_by.id.to_string(),
            associated_secrets: view.keys.iter().map(|k| SecretBody::of(k, tenant)).collect(),
            integration_id: group.integration_id.clone(),
            account_id: group.team_id.to_string(),
            created_at: group.created_at,
            updated_at: group.updated_at,
        }
    }
}

/// An integration a group's values can live in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IntegrationBody {
    /// What `integrationId` names.
    id: String,
    /// `custodian://<tenant>/integration/<id>`; a manifest's `integration_fqn` names it.
    fqn: String,
    /// `local` or `aws-ssm`.
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
}

impl From<Integration> for IntegrationBody {
    fn from(i: Integration) -> Self {
        IntegrationBody {
            id: i.id,
            fqn: i.fqn,
            kind: i.kind,
            name: i.name,
        }
    }
}

fn list_of<T, R>(paged: Paged<R>, page: Page, item: impl FnMut(R) -> T) -> ListData<T> {
    ListData {
        data: paged.items.into_iter().map(item).collect(),
        pagination: Pagination {
            total: paged.total,
            offset: page.offset,
            limit: page.limit,
        },
    }
}

/// `{key, value}` of a create, `{key, value?}` of an update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretInputBody {
    /// `^[A-Za-z_][A-Za-z0-9_]*$`, 1–255 characters, unique in the group.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 255, pattern = "^[A-Za-z_][A-Za-z0-9_]*$")]
    key: Option<String>,
    /// 1 byte to 32 KiB (8 KiB in the `aws-ssm` integration). In an update, leaving it out
    /// keeps the key's current value.
    #[serde(default, deserialize_with = "secret_string")]
    #[schema(value_type = Option<String>)]
    value: Option<SecretString>,
}

fn secret_inputs(raw: Option<Vec<SecretInputBody>>) -> Option<Vec<GroupSecretInput>> {
    raw.map(|entries| {
        entries
            .into_iter()
            .map(|e| GroupSecretInput {
                key: e.key,
                value: e.value,
            })
            .collect()
    })
}

/// A new secret group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct NewGroupBody {
    /// 3–64 characters of `[a-z0-9-]`, starting with a letter; unique in the tenant.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 3, max_length = 64, pattern = "^[a-z][a-z0-9-]*$")]
    name: Option<String>,
    /// The id of an integration of `GET /api/svc/v1/integrations`.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    integration_id: Option<String>,
    /// The keys, each at version 1.
    #[serde(default)]
    #[schema(value_type = Vec<SecretInputBody>, required = true)]
    secrets: Option<Vec<SecretInputBody>>,
    /// The owning team; needed only when the caller belongs to several teams.
    #[serde(default)]
    team_id: Option<String>,
}

/// A team id of a body, or a 422 at `loc`.
fn team_id(raw: Option<&str>, loc: &[&str]) -> Result<Option<TeamId>, SvcError> {
    raw.map(|id| {
        id.parse::<TeamId>().map_err(|_| {
            SvcError::from(CoreError::Validation(ValidationErrors::single(FieldError::new(
                loc,
                "invalid_format",
                "must be a team id (a UUID)",
            ))))
        })
    })
    .transpose()
}

/// Create a secret group. Every key starts at version 1; the answer holds no value.
#[utoipa::path(
    post,
    path = "/api/svc/v1/secret-groups",
    tag = "secret-groups",
    security(("bearer" = [])),
    request_body = NewGroupBody,
    responses(
        (status = 200, description = "The group, without values", body = Data<SecretGroupBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "Needs the admin role in the team", body = SvcErrorBody),
        (status = 404, description = "No such team of the caller", body = SvcErrorBody),
        (status = 409, description = "A group of that name exists in the tenant", body = SvcErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = SvcErrorBody),
        (status = 415, description = "The body is not JSON", body = SvcErrorBody),
        (status = 422, description = "A field breaks a rule (or the caller is in several teams and names none)", body = SvcErrorBody),
        (status = 503, description = "The integration or the database is unavailable", body = SvcErrorBody),
    )
)]
async fn create_group(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    body: SvcJson<NewGroupBody>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(Authenticated { subject, context }) = caller;
    let body = body.0;
    let team = team_id(body.team_id.as_deref(), &["body", "teamId"])?;
    let input = CreateGroupInput {
        name: body.name,
        integration_id: body.integration_id,
        secrets: secret_inputs(body.secrets),
    };
    let view = state
        .custodian
        .create_group(&subject, &context, team, input)
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(Data::new(SecretGroupBody::of(&view, tenant(&state)))))
}

fn tenant(state: &ApiState) -> &str {
    &state.custodian.settings().tenant_name
}

/// A page of groups.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct GroupListQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
    /// Only the group of this FQN (`custodian://<tenant>:<group>`).
    fqn: Option<String>,
    /// Groups whose name, or one of whose keys, contains this (ignoring case).
    search: Option<String>,
    /// Accepted for compatibility; every field is always returned.
    #[serde(rename = "attributes")]
    #[param(rename = "attributes")]
    _attributes: Option<String>,
}

/// The groups of the caller's teams, ordered by name, each with its keys; no values.
#[utoipa::path(
    get,
    path = "/api/svc/v1/secret-groups",
    tag = "secret-groups",
    security(("bearer" = [])),
    params(GroupListQuery),
    responses(
        (status = 200, description = "A page of groups", body = ListData<SecretGroupBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 422, description = "A bad query parameter", body = SvcErrorBody),
    )
)]
async fn list_groups(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    query: SvcQuery<GroupListQuery>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(caller) = caller;
    let query = query.0;
    let page = pagination::page(query.limit, query.offset)?;
    let filter = GroupListInput {
        search: query.search,
        fqn: query.fqn,
    };
    let groups = state
        .custodian
        .list_groups(&caller.subject, filter, page)
        .await
        .map_err(in_query)?;
    let tenant = tenant(&state);
    Ok(HttpResponse::Ok().json(list_of(groups, page, |g| SecretGroupBody::of(&g, tenant))))
}

/// The team that owns a manifest's group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnedByBody {
    /// The owning team's name.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    account: Option<String>,
}

/// A secret group's manifest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestBody {
    /// `secret-group`.
    #[serde(default, rename = "type")]
    #[schema(value_type = Option<String>, example = "secret-group")]
    kind: Option<String>,
    /// The group's name: created when no group has it, else the group to update.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 3, max_length = 64, pattern = "^[a-z][a-z0-9-]*$")]
    name: Option<String>,
    /// The FQN (or id) of an integration of `GET /api/svc/v1/integrations`.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    integration_fqn: Option<String>,
    /// Must be empty: access follows the roles of the group's team.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    collaborators: Option<Vec<serde_json::Value>>,
    /// The owning team; needed only when the caller belongs to several teams.
    #[serde(default, rename = "ownedBy")]
    owned_by: Option<OwnedByBody>,
}

/// Create or update a group by name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ManifestRequest {
    #[serde(default)]
    #[schema(value_type = ManifestBody, required = true)]
    manifest: Option<ManifestBody>,
    /// Check everything and write nothing; the answer is the group as it would be.
    #[serde(default)]
    dry_run: Option<bool>,
}

/// Create the group a manifest names, or find it by name (its integration and team must
/// match). Keys are not part of a manifest: `PUT /api/svc/v1/secret-groups/{id}` sets them.
#[utoipa::path(
    put,
    path = "/api/svc/v1/secret-groups",
    tag = "secret-groups",
    security(("bearer" = [])),
    request_body = ManifestRequest,
    responses(
        (status = 200, description = "The group created, found, or (dry run) as it would be", body = Data<SecretGroupBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "Needs the admin role in the team", body = SvcErrorBody),
        (status = 409, description = "The name is taken by a group the caller cannot see", body = SvcErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = SvcErrorBody),
        (status = 415, description = "The body is not JSON", body = SvcErrorBody),
        (status = 422, description = "A field breaks a rule", body = SvcErrorBody),
    )
)]
async fn apply_manifest(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    body: SvcJson<ManifestRequest>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(Authenticated { subject, context }) = caller;
    let body = body.0;
    let manifest = crate::fields::required(body.manifest, "manifest")?;
    let input = GroupManifestInput {
        kind: manifest.kind,
        name: manifest.name,
        integration_fqn: manifest.integration_fqn,
        owned_by: manifest.owned_by.and_then(|o| o.account),
        collaborators: manifest.collaborators.map_or(0, |c| c.len()),
    };
    let view = state
        .custodian
        .apply_group_manifest(&subject, &context, input, body.dry_run.unwrap_or(false))
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(Data::new(SecretGroupBody::of(&view, tenant(&state)))))
}

/// One group with its keys; no values.
#[utoipa::path(
    get,
    path = "/api/svc/v1/secret-groups/{id}",
    tag = "secret-groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = Data<SecretGroupBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 404, description = "No such group in the caller's teams", body = SvcErrorBody),
    )
)]
async fn get_group(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(caller) = caller;
    let id: SecretGroupId = svc_envelope::parse_id(&id)?;
    let view = state.custodian.get_group(&caller.subject, id).await?;
    Ok(HttpResponse::Ok().json(Data::new(SecretGroupBody::of(&view, tenant(&state)))))
}

/// The group's new key set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateGroupBody {
    /// Every key the group keeps: a changed value makes a new version, a key without
    /// `value` keeps its value, a new key starts at version 1; keys left out are deleted.
    #[serde(default)]
    #[schema(value_type = Vec<SecretInputBody>, required = true)]
    secrets: Option<Vec<SecretInputBody>>,
}

/// Replace the group's key set.
#[utoipa::path(
    put,
    path = "/api/svc/v1/secret-groups/{id}",
    tag = "secret-groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    request_body = UpdateGroupBody,
    responses(
        (status = 200, description = "The group as updated, without values", body = Data<SecretGroupBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "Needs the admin role in the team", body = SvcErrorBody),
        (status = 404, description = "No such group in the caller's teams", body = SvcErrorBody),
        (status = 409, description = "Other changes kept winning the race", body = SvcErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = SvcErrorBody),
        (status = 415, description = "The body is not JSON", body = SvcErrorBody),
        (status = 422, description = "A field breaks a rule", body = SvcErrorBody),
        (status = 503, description = "The integration or the database is unavailable", body = SvcErrorBody),
    )
)]
async fn update_group(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    id: web::Path<String>,
    body: SvcJson<UpdateGroupBody>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(Authenticated { subject, context }) = caller;
    let id: SecretGroupId = svc_envelope::parse_id(&id)?;
    let input = UpdateGroupInput {
        secrets: secret_inputs(body.0.secrets),
    };
    let view = state
        .custodian
        .update_group(&subject, &context, id, input)
        .await
        .map_err(in_body)?;
    Ok(HttpResponse::Ok().json(Data::new(SecretGroupBody::of(&view, tenant(&state)))))
}

/// `forceDelete`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Delete even when the integration cannot be reached; what it still holds is removed
    /// later by `custodian gc`.
    #[serde(rename = "forceDelete")]
    force_delete: Option<bool>,
}

/// Delete the group, its keys and every version of their values.
#[utoipa::path(
    delete,
    path = "/api/svc/v1/secret-groups/{id}",
    tag = "secret-groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id"), DeleteQuery),
    responses(
        (status = 200, description = "Deleted: `{}`", body = Empty),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "Needs the admin role in the team", body = SvcErrorBody),
        (status = 404, description = "No such group in the caller's teams", body = SvcErrorBody),
        (status = 422, description = "A bad query parameter", body = SvcErrorBody),
        (status = 503, description = "The integration is unavailable (`forceDelete=true` deletes anyway)", body = SvcErrorBody),
    )
)]
async fn delete_group(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    id: web::Path<String>,
    query: SvcQuery<DeleteQuery>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(Authenticated { subject, context }) = caller;
    let id: SecretGroupId = svc_envelope::parse_id(&id)?;
    state
        .custodian
        .delete_group(&subject, &context, id, query.0.force_delete.unwrap_or(false))
        .await?;
    Ok(HttpResponse::Ok().json(Empty {}))
}

/// `version`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionQuery {
    /// Only this version (1, 2, …); every version when absent.
    #[param(minimum = 1)]
    version: Option<i64>,
}

/// One key with its value and versions (operator). The read is audited.
#[utoipa::path(
    get,
    path = "/api/svc/v1/secrets/{id}",
    tag = "secrets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id"), VersionQuery),
    responses(
        (status = 200, description = "The key with its value and versions", body = Data<SecretBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "`value_view_forbidden`: needs the operator role, or value reads are turned off", body = SvcErrorBody),
        (status = 404, description = "No such key in the caller's teams", body = SvcErrorBody),
        (status = 422, description = "No such version", body = SvcErrorBody),
        (status = 503, description = "The integration is unavailable", body = SvcErrorBody),
    )
)]
async fn get_secret(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    id: web::Path<String>,
    query: SvcQuery<VersionQuery>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(Authenticated { subject, context }) = caller;
    let id: GroupSecretId = svc_envelope::parse_id(&id)?;
    let key = state
        .custodian
        .read_group_key(&subject, &context, id, query.0.version)
        .await
        .map_err(in_query)?;
    Ok(HttpResponse::Ok().json(Data::new(SecretBody::of(&key, tenant(&state)))))
}

/// A page of keys.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SecretListBody {
    /// 1–1000, default 100.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Records to skip: 0–9007199254740991 (2^53 − 1), default 0.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
    /// Only the keys of these FQNs (`custodian://<tenant>:<group>:<key>`).
    #[serde(default)]
    secret_fqns: Option<Vec<String>>,
    /// Only the keys of this group.
    #[serde(default)]
    secret_group_id: Option<String>,
    /// With each key's current value (operator of every team listed; each read audited).
    #[serde(default)]
    with_value: Option<bool>,
}

/// The keys of the caller's teams, ordered by group and key; values only with `withValue`.
#[utoipa::path(
    post,
    path = "/api/svc/v1/secrets",
    tag = "secrets",
    security(("bearer" = [])),
    request_body = SecretListBody,
    responses(
        (status = 200, description = "A page of keys", body = ListData<SecretBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "`value_view_forbidden`: `withValue` needs the operator role, or value reads are turned off", body = SvcErrorBody),
        (status = 404, description = "No such group in the caller's teams", body = SvcErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = SvcErrorBody),
        (status = 415, description = "The body is not JSON", body = SvcErrorBody),
        (status = 422, description = "A field breaks a rule", body = SvcErrorBody),
        (status = 503, description = "The integration is unavailable", body = SvcErrorBody),
    )
)]
async fn list_secrets(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    body: SvcJson<SecretListBody>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(Authenticated { subject, context }) = caller;
    let body = body.0;
    let page = pagination::page_in(
        "body",
        body.limit,
        body.offset,
        DEFAULT_SECRETS_LIMIT,
        MAX_SECRETS_LIMIT,
    )?;
    let group = match body.secret_group_id.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<SecretGroupId>().map_err(|_| {
            SvcError::from(CoreError::Validation(ValidationErrors::single(FieldError::new(
                &["body", "secretGroupId"],
                "invalid_format",
                "must be a group id (a UUID)",
            ))))
        })?),
    };
    let filter = KeyListInput {
        secret_fqns: body.secret_fqns,
        secret_group_id: group,
        with_value: body.with_value.unwrap_or(false),
    };
    let keys = state
        .custodian
        .list_group_keys(&subject, &context, filter, page)
        .await
        .map_err(in_body)?;
    let tenant = tenant(&state);
    Ok(HttpResponse::Ok().json(list_of(keys, page, |k| SecretBody::of(&k, tenant))))
}

/// Delete one key with every version of its value.
#[utoipa::path(
    delete,
    path = "/api/svc/v1/secrets/{id}",
    tag = "secrets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id"), DeleteQuery),
    responses(
        (status = 200, description = "How many keys were deleted: `1`", body = u64),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
        (status = 403, description = "Needs the admin role in the team", body = SvcErrorBody),
        (status = 404, description = "No such key in the caller's teams", body = SvcErrorBody),
        (status = 422, description = "A bad query parameter", body = SvcErrorBody),
    )
)]
async fn delete_secret(
    state: web::Data<ApiState>,
    caller: SvcCaller,
    id: web::Path<String>,
    // Read so that `forceDelete` is accepted; the values go after the commit either way,
    // so it changes nothing for one key.
    _query: SvcQuery<DeleteQuery>,
) -> Result<HttpResponse, SvcError> {
    let SvcCaller(Authenticated { subject, context }) = caller;
    let id: GroupSecretId = svc_envelope::parse_id(&id)?;
    let deleted = state.custodian.delete_group_key(&subject, &context, id).await?;
    Ok(HttpResponse::Ok().json(deleted))
}

/// The integrations a group's values can live in: the deployment's credential store.
#[utoipa::path(
    get,
    path = "/api/svc/v1/integrations",
    tag = "secret-groups",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The integrations", body = ListData<IntegrationBody>),
        (status = 401, description = "No valid bearer token", body = SvcErrorBody),
    )
)]
async fn list_integrations(state: web::Data<ApiState>, _caller: SvcCaller) -> Result<HttpResponse, SvcError> {
    let integrations: Vec<IntegrationBody> = state.custodian.integrations().into_iter().map(Into::into).collect();
    let total = integrations.len() as u64;
    Ok(HttpResponse::Ok().json(ListData {
        pagination: Pagination {
            total,
            offset: 0,
            limit: u32::try_from(total).unwrap_or(u32::MAX),
        },
        data: integrations,
    }))
}

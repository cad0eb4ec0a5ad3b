"""Custodian's /api/svc/v1 secret groups, secrets and personal access tokens, driven with
TrueFoundry's own Python SDK (truefoundry-sdk, unmodified) as its users would.

Reads a JSON config from stdin:
  base_url          the server's root (the SDK adds /api/svc/v1 itself)
  admin_token       a user who is an admin of exactly one team
  admin_user_id     that user's id
  operator_token    an operator of the same team
  viewer_token      a viewer of the same team
  other_team_token  a member of another team only
  integration_id    the id and fqn of the integration groups are stored with
  integration_fqn
  canary            a prefix that every secret value starts with, and nothing else

Prints one line per step; on the first failure prints the step, what was wrong and the
server's answer, and exits 1.
"""

import json
import os
import sys

# This file's name is the SDK's: its own directory must not shadow the package (run with
# `python -I`, that directory is not on the path in the first place).
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

from truefoundry_sdk import (  # noqa: E402
    ForbiddenError,
    NotFoundError,
    SecretInput,
    TrueFoundry,
    UpdateSecretInput,
    VirtualAccount,
)
from truefoundry_sdk.core.api_error import ApiError  # noqa: E402
from truefoundry_sdk.core.parse_error import ParsingError  # noqa: E402


class Failed(Exception):
    """A step's check did not hold."""


class Steps:
    """Numbers and prints the steps; the current one is named when something fails."""

    def __init__(self):
        self.number = 0
        self.name = "reading the config"

    def __call__(self, name):
        self.number += 1
        self.name = f"{self.number}. {name}"
        print(f"step {self.name}", flush=True)


STEP = Steps()


def check(condition, message, answer=None):
    if not condition:
        if answer is not None:
            message = f"{message}\n  the server's answer: {shown(answer)}"
        raise Failed(message)


def shown(value):
    """A parsed answer as JSON, by its wire names."""
    if hasattr(value, "dict"):
        value = value.dict(by_alias=True)
    if isinstance(value, list):
        value = [v.dict(by_alias=True) if hasattr(v, "dict") else v for v in value]
    return json.dumps(value, default=str, sort_keys=True)


def expect_error(call, error_class, status, code=None):
    """Runs `call`, which must raise `error_class` with `status` (and `code` in its body)."""
    try:
        answer = call()
    except error_class as e:
        check(e.status_code == status, f"expected status {status}, got {e.status_code}", e.body)
        if code is not None:
            body_code = getattr(e.body, "code", None)
            if body_code is None and isinstance(e.body, dict):
                body_code = e.body.get("code")
            check(body_code == code, f"expected the code {code!r}, got {body_code!r}", e.body)
        return e
    raise Failed(f"expected {error_class.__name__} ({status}), but the call answered {shown(answer)}")


def values_in(value, path="$"):
    """Every (path, value) of a key named `value` that holds something, anywhere."""
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "value" and inner is not None:
                found.append(f"{path}.{key}")
            found.extend(values_in(inner, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found.extend(values_in(inner, f"{path}[{i}]"))
    return found


def no_values(answer, what):
    """`answer` (a parsed model or raw JSON) holds no secret value and no canary."""
    raw = answer.dict(by_alias=True) if hasattr(answer, "dict") else answer
    found = values_in(raw)
    check(not found, f"{what} holds values at {found}", raw)
    check(CANARY not in json.dumps(raw, default=str), f"{what} holds a canary value", raw)


def by_name(secrets):
    return {s.name: s for s in secrets}


def run(config):
    global CANARY
    CANARY = config["canary"]
    base_url = config["base_url"]
    admin = TrueFoundry(base_url=base_url, api_key=config["admin_token"])
    operator = TrueFoundry(base_url=base_url, api_key=config["operator_token"])
    viewer = TrueFoundry(base_url=base_url, api_key=config["viewer_token"])
    other = TrueFoundry(base_url=base_url, api_key=config["other_team_token"])
    integration_id = config["integration_id"]
    integration_fqn = config["integration_fqn"]

    def value(label):
        return f"{CANARY}-{label}"

    first_values = {
        "DB_PASSWORD": value("db-password-1"),
        "API_TOKEN": value("api-token-1"),
        "OLD_FLAG": value("old-flag-1"),
    }

    STEP("secret_groups.create as the admin, three keys: the group, without values")
    raw = admin.secret_groups.with_raw_response.create(
        name="sdk-flow-a",
        integration_id=integration_id,
        secrets=[SecretInput(key=k, value=v) for k, v in first_values.items()],
    )
    check(200 <= raw.status_code < 300, f"status {raw.status_code}", raw.response.text)
    no_values(raw.response.json(), "the create answer")
    group = raw.data.data
    check(bool(group.id), "no id", group)
    tenant = group.tenant_name
    check(bool(tenant), "no tenantName", group)
    group_fqn = f"custodian://{tenant}:sdk-flow-a"
    check(group.fqn == group_fqn, f"fqn {group.fqn!r}, expected {group_fqn!r}", group)
    subject = group.created_by_subject
    check(subject.subject_type == "user", f"createdBySubject.subjectType {subject.subject_type!r}", group)
    check(
        subject.subject_id == config["admin_user_id"],
        f"createdBySubject.subjectId {subject.subject_id!r}, expected the admin's id",
        group,
    )
    check(bool(group.account_id), "no accountId", group)
    check(group.created_at is not None and group.updated_at is not None, "no createdAt/updatedAt", group)
    secrets = by_name(group.associated_secrets)
    check(set(secrets) == set(first_values), f"associatedSecrets {sorted(secrets)}", group)
    for key, secret in secrets.items():
        check(secret.secret_group_id == group.id, f"{key}: secretGroupId {secret.secret_group_id!r}", group)
        check(secret.fqn == f"{group_fqn}:{key}", f"{key}: fqn {secret.fqn!r}", group)
        versions = secret.secret_versions or []
        check(len(versions) == 1, f"{key}: {len(versions)} secretVersions, expected 1", group)
        check(versions[0].version == 1, f"{key}: version {versions[0].version!r}, expected 1", group)
    first_ids = {key: secret.id for key, secret in secrets.items()}

    STEP("two more groups")
    group_b = admin.secret_groups.create(
        name="sdk-flow-b", integration_id=integration_id, secrets=[SecretInput(key="B_KEY", value=value("b"))]
    ).data
    group_c = admin.secret_groups.create(
        name="sdk-flow-c", integration_id=integration_id, secrets=[SecretInput(key="C_KEY", value=value("c"))]
    ).data
    all_ids = {group.id, group_b.id, group_c.id}
    check(len(all_ids) == 3, "the three groups do not have three ids", [group, group_b, group_c])

    STEP("secret_groups.list(limit=2), paged to the end, sees the three groups once each")
    pager = admin.secret_groups.list(limit=2)
    pages = list(pager.iter_pages())
    listed = [g for page in pages for g in (page.items or [])]
    check(
        sorted(g.id for g in listed) == sorted(all_ids),
        f"listed {[g.id for g in listed]}, expected {sorted(all_ids)}",
        listed,
    )
    check(len(pages) == 2, f"{len(pages)} non-empty pages of 2, expected 2", listed)
    check(pager.response.pagination.total == 3, "pagination.total is not 3", pager.response)
    for g in listed:
        no_values(g, f"the listed group {g.id}")

    STEP("secret_groups.list(search=<a key name>) finds the group by its key")
    found = list(admin.secret_groups.list(search="DB_PASSWORD"))
    check([g.id for g in found] == [group.id], f"found {[g.id for g in found]}, expected [{group.id}]", found)

    STEP("secret_groups.list(fqn=...) finds exactly that group")
    found = list(admin.secret_groups.list(fqn=group_fqn))
    check([g.id for g in found] == [group.id], f"found {[g.id for g in found]}, expected [{group.id}]", found)

    STEP("secret_groups.get")
    got = admin.secret_groups.get(group.id).data
    check(got.id == group.id and got.fqn == group_fqn, "another group", got)
    check(set(by_name(got.associated_secrets)) == set(first_values), "other keys", got)
    no_values(got, "the get answer")

    STEP("secrets.list(with_value=True) as an operator: the values")
    listed = list(operator.secrets.list(secret_group_id=group.id, with_value=True))
    values = {s.name: s.value for s in listed}
    check(values == first_values, f"values {values}, expected {first_values}", listed)

    STEP("secrets.list(with_value=True) as a viewer: ForbiddenError 403 value_view_forbidden")
    expect_error(
        lambda: viewer.secrets.list(secret_group_id=group.id, with_value=True),
        ForbiddenError,
        403,
        "value_view_forbidden",
    )

    STEP("secrets.list as a viewer: the keys, no values")
    listed = list(viewer.secrets.list(secret_group_id=group.id))
    check({s.name for s in listed} == set(first_values), f"keys {sorted(s.name for s in listed)}", listed)
    for s in listed:
        no_values(s, f"the viewer's {s.name}")

    STEP("secrets.get as an operator: the value and its versions with values")
    secret = operator.secrets.get(first_ids["DB_PASSWORD"]).data
    check(secret.value == first_values["DB_PASSWORD"], "not the stored value", secret)
    versions = secret.secret_versions or []
    check(
        [(v.version, v.value) for v in versions] == [(1, first_values["DB_PASSWORD"])],
        "not one version 1 with the stored value",
        secret,
    )

    STEP("secret_groups.update as the admin: change one, keep one without its value, drop one, add one")
    new_password = value("db-password-2")
    new_secret = value("new-secret-1")
    updated = admin.secret_groups.update(
        group.id,
        secrets=[
            UpdateSecretInput(key="DB_PASSWORD", value=new_password),
            UpdateSecretInput(key="API_TOKEN"),
            UpdateSecretInput(key="NEW_SECRET", value=new_secret),
        ],
    ).data
    no_values(updated, "the update answer")
    after = by_name(updated.associated_secrets)
    check(set(after) == {"DB_PASSWORD", "API_TOKEN", "NEW_SECRET"}, f"keys after the update {sorted(after)}", updated)
    check(after["DB_PASSWORD"].id == first_ids["DB_PASSWORD"], "the changed key has a new id", updated)
    check(after["API_TOKEN"].id == first_ids["API_TOKEN"], "the kept key has a new id", updated)

    STEP("secrets.get of the changed key: version 1 the old value, version 2 the new")
    secret = operator.secrets.get(first_ids["DB_PASSWORD"]).data
    check(secret.value == new_password, "the value is not the new one", secret)
    versions = sorted(secret.secret_versions or [], key=lambda v: v.version or 0)
    check(
        [(v.version, v.value) for v in versions] == [(1, first_values["DB_PASSWORD"]), (2, new_password)],
        "not version 1 with the old value and version 2 with the new",
        secret,
    )

    STEP("secrets.get of the key sent without a value: unchanged, one version")
    secret = operator.secrets.get(first_ids["API_TOKEN"]).data
    check(secret.value == first_values["API_TOKEN"], "the kept value changed", secret)
    check(len(secret.secret_versions or []) == 1, "the kept key got a new version", secret)

    STEP("secrets.get of the key left out: NotFoundError 404")
    expect_error(lambda: operator.secrets.get(first_ids["OLD_FLAG"]), NotFoundError, 404)

    STEP("secrets.delete: 1, and the secret is gone")
    deleted = admin.secrets.delete(after["NEW_SECRET"].id)
    check(deleted == 1, f"secrets.delete answered {deleted!r}, expected 1", None)
    expect_error(lambda: operator.secrets.get(after["NEW_SECRET"].id), NotFoundError, 404)

    manifest = {"type": "secret-group", "name": "sdk-manifest", "integration_fqn": integration_fqn}
    manifest_fqn = f"custodian://{tenant}:sdk-manifest"

    STEP("secret_groups.create_or_update(dry_run=True): the would-be group, nothing written")
    would_be = admin.secret_groups.create_or_update(manifest=manifest, dry_run=True).data
    check(would_be.fqn == manifest_fqn, f"fqn {would_be.fqn!r}, expected {manifest_fqn!r}", would_be)
    found = list(admin.secret_groups.list(fqn=manifest_fqn))
    check(found == [], "the dry run wrote a group", found)

    STEP("secret_groups.create_or_update: created")
    created = admin.secret_groups.create_or_update(manifest=manifest).data
    check(bool(created.id) and created.fqn == manifest_fqn, "not the manifest's group", created)
    found = list(admin.secret_groups.list(fqn=manifest_fqn))
    check([g.id for g in found] == [created.id], "the created group is not listed by its fqn", found)

    STEP("secret_groups.create_or_update again with the same name: the same group")
    again = admin.secret_groups.create_or_update(manifest=manifest).data
    check(again.id == created.id, f"id {again.id!r}, expected {created.id!r}", again)

    STEP("a member of another team cannot see the group: NotFoundError 404")
    expect_error(lambda: other.secret_groups.get(group.id), NotFoundError, 404)
    seen = [g.id for g in other.secret_groups.list()]
    check(not (set(seen) & (all_ids | {created.id})), f"the other team lists {seen}", None)

    STEP("secret_groups.delete, then get: NotFoundError 404")
    admin.secret_groups.delete(group.id)
    expect_error(lambda: admin.secret_groups.get(group.id), NotFoundError, 404)

    STEP("personal_access_tokens.create as the admin: a cus_ token")
    token = admin.personal_access_tokens.create(name="sdk-flow-token").token
    check(token.startswith("cus_"), "the token does not start with cus_", None)

    STEP("personal_access_tokens.list: VirtualAccount items, the new token among them")
    items = list(admin.personal_access_tokens.list())
    for item in items:
        check(isinstance(item, VirtualAccount), f"an item is a {type(item).__name__}", items)

    def name_of(item):
        if item.manifest is not None:
            return item.manifest.name
        return getattr(item, "name", None)

    mine = [item for item in items if name_of(item) == "sdk-flow-token"]
    check(len(mine) == 1, f"{len(mine)} tokens named sdk-flow-token", items)
    check(token not in shown(items), "the list holds the token itself", None)
    token_id = mine[0].id

    STEP("the new token works")
    with_token = TrueFoundry(base_url=base_url, api_key=token)
    seen = {g.id for g in with_token.secret_groups.list()}
    check(created.id in seen, "the new token does not see the admin's groups", None)

    STEP("personal_access_tokens.delete: the token stops working (401)")
    admin.personal_access_tokens.delete(token_id)
    expect_error(lambda: with_token.secret_groups.list(), ApiError, 401)

    print("all steps passed", flush=True)


def main():
    try:
        config = json.load(sys.stdin)
        run(config)
    except Failed as e:
        print(f"FAILED at step {STEP.name}: {e}", flush=True)
        return 1
    except (ApiError, ParsingError) as e:
        cause = f"\n  cause: {e.cause}" if getattr(e, "cause", None) else ""
        print(
            f"FAILED at step {STEP.name}: {type(e).__name__}, status {e.status_code}\n"
            f"  the server's answer: {shown(e.body)}{cause}",
            flush=True,
        )
        return 1
    except Exception as e:  # anything else the SDK raises (a connection error, a bug here)
        print(f"FAILED at step {STEP.name}: {type(e).__name__}: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

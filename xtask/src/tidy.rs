//! `cargo xtask tidy`: repository checks. The same checks run as tests of this crate (below),
//! so `cargo xtask test` fails when one does.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cargo;

/// The crates that must stay free of infrastructure.
const PURE_CRATES: [&str; 3] = ["custodian-domain", "custodian-ports", "custodian-core"];

/// Package-name prefixes those crates must not depend on, even transitively.
const FORBIDDEN_PREFIXES: [&str; 8] = [
    "diesel",
    "actix",
    "reqwest",
    "aws-",
    "aws_",
    "tokio-postgres",
    "hyper",
    "libsqlite3",
];

const RULE: &str = "domain, ports and core know nothing of SQL, HTTP or AWS (docs/ARCHITECTURE.md)";

/// The adapter crates: each implements ports for one kind of infrastructure.
const ADAPTERS: [&str; 3] = ["custodian-store-sql", "custodian-store-ssm", "custodian-vaults"];
/// The workspace crates an adapter may depend on (outside its tests).
const ADAPTER_MAY_USE: [&str; 4] = [
    "custodian-domain",
    "custodian-ports",
    "custodian-crypto",
    "custodian-test-db",
];
/// The crates that compose the adapters into a deployment: the only ones that may depend
/// on an adapter (outside tests).
const COMPOSITION: [&str; 2] = ["custodian-deployment", "custodian-server"];

const LAYER_RULE: &str = "adapters depend on domain and ports, never on the core or on each other, and only the \
                          composition (custodian-deployment, the binary) depends on adapters (docs/ARCHITECTURE.md)";

pub(crate) fn run(root: &Path) -> Result<ExitCode> {
    let failures: Vec<String> = check_dependency_direction(root)
        .into_iter()
        .chain(check_crate_layers(root))
        .chain(check_formatting(root))
        .collect();
    if failures.is_empty() {
        eprintln!(
            "tidy: ok (dependency direction of {}, crate layers, formatting)",
            PURE_CRATES.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    for failure in &failures {
        eprintln!("tidy: {failure}\n");
    }
    eprintln!("tidy: {} check(s) failed", failures.len());
    Ok(ExitCode::FAILURE)
}

/// One message per violation: a pure crate depending on a forbidden package, or a pure
/// crate whose dependencies cannot be listed (e.g. it is not in the workspace).
pub(crate) fn check_dependency_direction(root: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    for krate in PURE_CRATES {
        match cargo_tree(root, krate) {
            Ok(tree) => failures.extend(forbidden_dependencies(krate, &tree)),
            Err(e) => failures.push(format!(
                "{krate}: cannot list its dependencies, so the rule \"{RULE}\" is unchecked; \
                 the crate must exist in the workspace (crates/{krate}).\n{e}"
            )),
        }
    }
    failures
}

/// One message per dependency (normal or build, between workspace crates) that breaks the
/// layers: an adapter using another workspace crate than domain, ports, crypto and the test
/// database, or a crate outside the composition using an adapter.
pub(crate) fn check_crate_layers(root: &Path) -> Vec<String> {
    let args = ["metadata", "--no-deps", "--format-version", "1"];
    let output = match cargo().args(args).current_dir(root).output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            return vec![format!(
                "crate layers: `cargo {}` failed ({}):\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )];
        }
        Err(e) => return vec![format!("crate layers: cannot run `cargo {}`: {e}", args.join(" "))],
    };
    match serde_json::from_slice::<serde_json::Value>(&output.stdout) {
        Ok(metadata) => layer_violations(&metadata),
        Err(e) => vec![format!("crate layers: `cargo metadata` printed no JSON: {e}")],
    }
}

/// The layer violations in `cargo metadata --no-deps` output.
pub(crate) fn layer_violations(metadata: &serde_json::Value) -> Vec<String> {
    let packages = metadata["packages"].as_array().map(Vec::as_slice).unwrap_or_default();
    if packages.is_empty() {
        return vec!["crate layers: `cargo metadata` listed no package".to_owned()];
    }
    let workspace: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut failures = Vec::new();
    for package in packages {
        let Some(name) = package["name"].as_str() else { continue };
        let dependencies = package["dependencies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for dependency in dependencies {
            // Tests may compose anything; `kind` is null for normal dependencies.
            if dependency["kind"].as_str() == Some("dev") {
                continue;
            }
            let Some(used) = dependency["name"].as_str() else {
                continue;
            };
            if !workspace.contains(&used) {
                continue;
            }
            if ADAPTERS.contains(&name) && !ADAPTER_MAY_USE.contains(&used) {
                failures.push(format!("the adapter {name} must not depend on {used}: {LAYER_RULE}."));
            } else if ADAPTERS.contains(&used) && !COMPOSITION.contains(&name) {
                failures.push(format!("{name} must not depend on the adapter {used}: {LAYER_RULE}."));
            }
        }
    }
    failures
}

/// `cargo tree` of `krate`'s normal and build dependencies (every feature, this host's
/// platform), one package per line.
fn cargo_tree(root: &Path, krate: &str) -> Result<String, String> {
    let args = [
        "tree",
        "-p",
        krate,
        "-e",
        "normal,build",
        "--all-features",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ];
    let output = cargo()
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run `cargo {}`: {e}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("`cargo tree` printed invalid UTF-8: {e}"))
}

/// Checks `cargo tree -p <krate> --prefix none --format {p}` output (lines like
/// `diesel v2.3.0`, `serde v1.0.0 (*)`): one message per forbidden package found.
pub(crate) fn forbidden_dependencies(krate: &str, tree: &str) -> Vec<String> {
    let mut packages = tree.lines().filter_map(|line| line.split_whitespace().next());
    if packages.next() != Some(krate) {
        return vec![format!(
            "{krate}: unexpected `cargo tree` output (its first package should be {krate}):\n{tree}"
        )];
    }
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for package in packages {
        if seen.contains(&package) {
            continue;
        }
        seen.push(package);
        if let Some(prefix) = FORBIDDEN_PREFIXES.iter().find(|prefix| package.starts_with(**prefix)) {
            let matched = if package == *prefix {
                String::new()
            } else {
                format!(" (forbidden prefix `{prefix}`)")
            };
            failures.push(format!(
                "{krate} must not depend on {package}{matched}: {RULE}. \
                 See why with `cargo tree -p {krate} -e normal,build -i {package}`."
            ));
        }
    }
    failures
}

/// `cargo fmt --all --check`, with the command that fixes it.
pub(crate) fn check_formatting(root: &Path) -> Option<String> {
    let output = match cargo().args(["fmt", "--all", "--check"]).current_dir(root).output() {
        Ok(output) => output,
        Err(e) => return Some(format!("formatting: cannot run `cargo fmt --all --check`: {e}")),
    };
    if output.status.success() {
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut files: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("Diff in "))
        .filter_map(|rest| rest.rsplitn(3, ':').last())
        .collect();
    files.dedup();
    let details = if files.is_empty() {
        format!("{}\n{}", stdout.trim(), stderr.trim())
    } else {
        files
            .iter()
            .map(|file| format!("  {file}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Some(format!(
        "formatting: `cargo fmt --all --check` failed ({}); fix with `cargo fmt --all`.\n{}",
        output.status,
        details.trim_end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace_root;

    const CLEAN_TREE: &str = "\
custodian-core v0.0.0 (/work/main/crates/custodian-core)
async-trait v0.1.89 (proc-macro)
proc-macro2 v1.0.101
custodian-ports v0.0.0 (/work/main/crates/custodian-ports)
custodian-domain v0.0.0 (/work/main/crates/custodian-domain)
serde v1.0.228
tokio v1.47.1
hyphenation v0.8.4
postgres-types v0.2.9
serde v1.0.228 (*)
";

    #[test]
    fn a_clean_tree_passes() {
        assert_eq!(
            forbidden_dependencies("custodian-core", CLEAN_TREE),
            Vec::<String>::new()
        );
    }

    #[test]
    fn diesel_in_the_tree_fails_naming_crate_dependency_and_rule() {
        let tree = format!("{CLEAN_TREE}diesel v2.3.0\ndiesel_derives v2.3.0 (proc-macro)\ndiesel v2.3.0 (*)\n");
        let failures = forbidden_dependencies("custodian-core", &tree);
        assert_eq!(failures.len(), 2, "{failures:#?}");
        assert!(
            failures[0].starts_with(
                "custodian-core must not depend on diesel: domain, ports and core know nothing of SQL, HTTP or AWS \
                 (docs/ARCHITECTURE.md)"
            ),
            "{}",
            failures[0]
        );
        assert!(
            failures[1].contains("diesel_derives (forbidden prefix `diesel`)"),
            "{}",
            failures[1]
        );
    }

    #[test]
    fn every_forbidden_family_is_caught() {
        for package in [
            "actix-web",
            "reqwest",
            "aws-sdk-ssm",
            "aws_lambda_events",
            "tokio-postgres",
            "hyper",
            "hyper-util",
            "libsqlite3-sys",
        ] {
            let tree = format!("custodian-domain v0.0.0 (/x)\nuuid v1.0.0\n{package} v1.0.0\n");
            let failures = forbidden_dependencies("custodian-domain", &tree);
            assert_eq!(failures.len(), 1, "{package}: {failures:?}");
            assert!(failures[0].contains(&format!("custodian-domain must not depend on {package}")));
        }
    }

    #[test]
    fn output_for_another_crate_is_not_taken_as_clean() {
        let failures = forbidden_dependencies("custodian-ports", CLEAN_TREE);
        assert_eq!(failures.len(), 1);
        assert!(failures[0].contains("unexpected `cargo tree` output"));
        assert_eq!(forbidden_dependencies("custodian-ports", "").len(), 1);
    }

    #[test]
    fn a_missing_crate_fails_clearly() {
        let error = cargo_tree(&workspace_root(), "custodian-no-such-crate").unwrap_err();
        assert!(error.contains("custodian-no-such-crate"), "{error}");
    }

    /// The architecture invariant itself, on the real workspace.
    #[test]
    fn domain_ports_and_core_depend_on_no_sql_http_or_aws_crate() {
        let failures = check_dependency_direction(&workspace_root());
        assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    }

    /// A package's name and its dependencies, each with its kind (`None`: normal).
    type Package<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

    fn metadata(packages: &[Package<'_>]) -> serde_json::Value {
        let packages: Vec<serde_json::Value> = packages
            .iter()
            .map(|(name, deps)| {
                let deps: Vec<serde_json::Value> = deps
                    .iter()
                    .map(|(dep, kind)| serde_json::json!({ "name": dep, "kind": kind }))
                    .collect();
                serde_json::json!({ "name": name, "dependencies": deps })
            })
            .collect();
        serde_json::json!({ "packages": packages })
    }

    #[test]
    fn an_adapter_using_the_core_or_another_adapter_fails() {
        let sql: &[(&str, Option<&str>)] = &[
            ("custodian-ports", None),
            ("custodian-core", None),
            ("custodian-store-ssm", None),
            ("custodian-testkit", Some("dev")),
            ("serde", None),
        ];
        let tree = metadata(&[
            ("custodian-store-sql", sql),
            ("custodian-store-ssm", &[("custodian-domain", None)]),
            ("custodian-core", &[("custodian-ports", None)]),
            ("custodian-ports", &[]),
            ("custodian-testkit", &[]),
        ]);
        let failures = layer_violations(&tree);
        assert_eq!(failures.len(), 2, "{failures:#?}");
        assert!(failures[0].starts_with("the adapter custodian-store-sql must not depend on custodian-core"));
        assert!(failures[1].starts_with("the adapter custodian-store-sql must not depend on custodian-store-ssm"));
    }

    #[test]
    fn only_the_composition_may_use_an_adapter() {
        let tree = metadata(&[
            ("custodian-store-sql", &[("custodian-ports", None)]),
            ("custodian-http", &[("custodian-store-sql", None)]),
            ("custodian-server", &[("custodian-store-sql", None)]),
            ("custodian-deployment", &[("custodian-store-sql", Some("build"))]),
            ("custodian-ports", &[]),
        ]);
        let failures = layer_violations(&tree);
        assert_eq!(failures.len(), 1, "{failures:#?}");
        assert!(failures[0].starts_with("custodian-http must not depend on the adapter custodian-store-sql"));
        assert!(!layer_violations(&serde_json::json!({ "packages": [] })).is_empty());
    }

    /// The layers themselves, on the real workspace.
    #[test]
    fn adapters_use_only_domain_and_ports_and_only_the_composition_uses_adapters() {
        let failures = check_crate_layers(&workspace_root());
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    /// `cargo fmt --all --check` on the real workspace.
    #[test]
    fn the_workspace_is_formatted() {
        if let Some(failure) = check_formatting(&workspace_root()) {
            panic!("\n{failure}");
        }
    }
}

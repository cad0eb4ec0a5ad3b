//! `cargo xtask bench`: Custodian's release build measured beside its baselines, in one
//! run on one machine, so that every figure is also a ratio that holds from one noisy run
//! to the next.
//!
//! What runs, on loopback only, every process started here stopped at the end (or on an
//! error, when its handle drops):
//! - Custodian on the embedded default (SQLite and the local store) and on PostgreSQL,
//!   seeded over its own API (a team, 200 managed S3 secrets) and, for the list pages,
//!   with 1,000 and 1,000,000 rows copied in SQL from one secret made over the API;
//! - the baselines: `GET /healthz` of the same binary; pgbench (select by primary key,
//!   and one transaction inserting a row and an audit row) on the same PostgreSQL; a plain
//!   diesel-async select behind actix (`examples/pg_ceiling.rs`); RustyVault 0.2.1 with
//!   file storage (installed under the target directory when missing);
//! - `wrk` (installed from Debian's packages when missing) drives every HTTP figure: a
//!   warm-up, then repeated runs, the median reported;
//! - the core's cached resolution, a criterion benchmark (`custodian-core/benches`).
//!
//! It prints every figure, raw and as a ratio to its baseline, and writes them, with the
//! machine's facts, between the markers of `docs/BENCHMARKS.md`. `--quick` makes one short
//! run per figure (for trying a change, not for the record).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::postgres::AdminUrl;
use crate::venv::target_dir;
use crate::{cargo, workspace_root};

/// RustyVault, the nearest Rust peer, at the version the targets were set against.
const RUSTY_VAULT_VERSION: &str = "0.2.1";
/// The markers between which the figures are written in `docs/BENCHMARKS.md`.
const BEGIN: &str = "<!-- bench:begin (written by `cargo xtask bench`) -->";
const END: &str = "<!-- bench:end -->";
/// Managed secrets each server is seeded with for the GET and rotate figures.
const SEEDED: usize = 200;
/// Connections of the load figures (the single-connection latency is apart).
const CONNECTIONS: u32 = 32;

/// How long each figure runs.
#[derive(Debug, Clone, Copy)]
struct Timing {
    warm_up: u32,
    run: u32,
    repeats: usize,
}

/// One `wrk` run (or the median of several).
#[derive(Debug, Clone, Copy, Default)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// One line of the report.
struct Figure {
    what: String,
    raw: String,
    baseline: String,
    ratio: Option<f64>,
    target: Option<(&'static str, f64)>,
}

impl Figure {
    fn met(&self) -> &'static str {
        match (self.ratio, self.target) {
            (Some(r), Some((">=", t))) if r >= t => "met",
            (Some(r), Some(("<=", t))) if r <= t => "met",
            (Some(_), Some(_)) => "not met",
            _ => "",
        }
    }
}

/// A process started here: killed when dropped.
struct Running {
    name: &'static str,
    child: Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The peak resident set (`VmHWM`), in MiB.
    fn peak_rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmHWM for {}", self.name))?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => bail!("usage: cargo xtask bench [--quick]"),
    };
    let timing = if quick {
        Timing {
            warm_up: 2,
            run: 5,
            repeats: 1,
        }
    } else {
        Timing {
            warm_up: 5,
            run: 10,
            repeats: 3,
        }
    };
    let started = Instant::now();
    let root = workspace_root();
    let target = target_dir(&root, std::env::var_os("CARGO_TARGET_DIR"));
    let work = target.join("bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    let wrk = ensure_debian_tool("wrk", "wrk")?;
    let sqlite3 = ensure_debian_tool("sqlite3", "sqlite3")?;
    let pgbench = which("pgbench").ok_or_else(|| anyhow!("pgbench is not on PATH (Debian: postgresql-client)"))?;
    let rvault = ensure_rusty_vault(&target)?;
    let admin = AdminUrl::from_env();
    if !crate::postgres::find_or_start(&admin.url).reachable {
        bail!("PostgreSQL is not reachable at {}", crate::postgres::redact(&admin.url));
    }
    eprintln!("xtask bench: building the release binaries");
    let built = cargo()
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "custodian-server",
            "--bin",
            "custodian",
            "--example",
            "pg_ceiling",
        ])
        .status()?;
    if !built.success() {
        bail!("the release build failed");
    }
    let custodian = target.join("release/custodian");
    let ceiling = target.join("release/examples/pg_ceiling");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let bench = Bench {
        wrk,
        timing,
        work: work.clone(),
        // A fresh connection per call: a server closes idle ones between the loads.
        http: reqwest::Client::builder().pool_max_idle_per_host(0).build()?,
    };
    let report = runtime.block_on(bench.all(&custodian, &ceiling, &rvault, &pgbench, &sqlite3, &admin.url))?;
    let resolve = resolve_benchmark(&root)?;

    let mut text = report.render(&resolve, quick);
    let _ = writeln!(text, "\nThe whole run took {:.0} s.", started.elapsed().as_secs_f64());
    #[allow(clippy::print_stdout, reason = "the report is the command's output")]
    {
        println!("{text}");
    }
    if quick {
        eprintln!("xtask bench: --quick: docs/BENCHMARKS.md is left as it is");
    } else {
        write_between_markers(&root.join("docs/BENCHMARKS.md"), &text)?;
        eprintln!("xtask bench: written to docs/BENCHMARKS.md");
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything measured over HTTP and with pgbench.
#[derive(Default)]
struct Report {
    facts: Vec<(String, String)>,
    figures: Vec<Figure>,
    notes: Vec<String>,
}

/// What the criterion benchmark of the core's resolution found.
struct Resolve {
    per_second: f64,
    p99_us: f64,
}

impl Report {
    fn fact(&mut self, name: &str, value: impl Into<String>) {
        self.facts.push((name.to_owned(), value.into()));
    }

    fn ratio(
        &mut self,
        what: &str,
        raw: (f64, String),
        baseline: Option<(&str, f64, String)>,
        target: Option<(&'static str, f64)>,
    ) {
        let (ratio, baseline) = match baseline {
            Some((name, value, shown)) if value > 0.0 => (Some(raw.0 / value), format!("{name}: {shown}")),
            Some((name, _, shown)) => (None, format!("{name}: {shown}")),
            None => (None, String::new()),
        };
        self.figures.push(Figure {
            what: what.to_owned(),
            raw: raw.1,
            baseline,
            ratio,
            target,
        });
    }

    fn render(&self, resolve: &Resolve, quick: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### Latest figures\n");
        let _ = writeln!(
            out,
            "Produced by `cargo xtask bench`{}; wrk, {CONNECTIONS} connections unless a line says otherwise.\n",
            if quick {
                " --quick (one short run each)"
            } else {
                " (a warm-up, then the median of 3 runs of 10 s each)"
            }
        );
        let _ = writeln!(out, "| machine | |\n|---|---|");
        for (name, value) in &self.facts {
            let _ = writeln!(out, "| {name} | {value} |");
        }
        let _ = writeln!(
            out,
            "\n| figure | Custodian | baseline | ratio | target | |\n|---|---|---|---|---|---|"
        );
        for f in &self.figures {
            let ratio = f.ratio.map_or_else(String::new, |r| format!("{r:.2}"));
            let target = f.target.map_or_else(String::new, |(op, t)| format!("{op} {t}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {ratio} | {target} | {} |",
                f.what,
                f.raw,
                f.baseline,
                f.met()
            );
        }
        let met = resolve.per_second >= 1_000_000.0 && resolve.p99_us <= 10.0;
        let _ = writeln!(
            out,
            "| resolve through the core crate, cached (criterion, one core) | {:.0}/s, p99 {:.2} µs | 1,000,000/s, p99 10 µs | {:.2} | >= 1 | {} |",
            resolve.per_second,
            resolve.p99_us,
            resolve.per_second / 1_000_000.0,
            if met { "met" } else { "not met" }
        );
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nWhat the servers' own metrics said:\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

struct Bench {
    wrk: PathBuf,
    timing: Timing,
    work: PathBuf,
    http: reqwest::Client,
}

/// A Custodian server started for the bench, with its tenant admin's token.
struct Server {
    process: Running,
    base: String,
    token: String,
    data_dir: PathBuf,
}

impl Bench {
    async fn all(
        &self,
        custodian: &Path,
        ceiling: &Path,
        rvault: &Path,
        pgbench: &Path,
        sqlite3: &Path,
        admin_url: &str,
    ) -> Result<Report> {
        let mut report = Report::default();
        machine_facts(&mut report, admin_url).await?;
        let bench_db = fresh_database(admin_url, "custodian_bench").await?;
        let pgbench_db = fresh_database(admin_url, "custodian_bench_pgbench").await?;

        // The embedded default.
        let sqlite = self.start_custodian(custodian, "sqlite", None).await?;
        let team = self.create_team(&sqlite, "bench").await?;
        let ids = self.seed_secrets(&sqlite, &team, SEEDED).await?;
        let healthz = self
            .load("healthz", &format!("{}/healthz", sqlite.base), CONNECTIONS, None)
            .await?;
        let get_script = self.script("get", &bearer(&sqlite.token), &get_lua(&team, &ids))?;
        let get = self
            .load("GET (SQLite)", &sqlite.base, CONNECTIONS, Some(&get_script))
            .await?;
        let sqlite_rss = sqlite.process.peak_rss_mib()?;
        let get_one = self
            .load("GET, 1 connection (SQLite)", &sqlite.base, 1, Some(&get_script))
            .await?;
        self.explain(&sqlite, &mut report, "SQLite, after the GET load").await;
        let post_script = self.script("post", &bearer(&sqlite.token), &post_lua(&team, "sqlite"))?;
        let post = self
            .load("POST (SQLite)", &sqlite.base, CONNECTIONS, Some(&post_script))
            .await?;
        let patch_script = self.script("patch", &bearer(&sqlite.token), &patch_lua(&team, &ids))?;
        let patch = self
            .load("PATCH rotate (SQLite)", &sqlite.base, CONNECTIONS, Some(&patch_script))
            .await?;
        let (list_1k, list_1m) = self.list_pages(&sqlite, sqlite3).await?;

        // PostgreSQL.
        let pg = self.start_custodian(custodian, "postgres", Some(&bench_db)).await?;
        let pg_team = self.create_team(&pg, "bench").await?;
        let pg_ids = self.seed_secrets(&pg, &pg_team, SEEDED).await?;
        let pg_get_script = self.script("pg-get", &bearer(&pg.token), &get_lua(&pg_team, &pg_ids))?;
        let pg_get = self
            .load("GET (PostgreSQL)", &pg.base, CONNECTIONS, Some(&pg_get_script))
            .await?;
        let pg_post_script = self.script("pg-post", &bearer(&pg.token), &post_lua(&pg_team, "postgres"))?;
        let pg_post = self
            .load("POST (PostgreSQL)", &pg.base, CONNECTIONS, Some(&pg_post_script))
            .await?;
        self.explain(&pg, &mut report, "PostgreSQL, after the POST load").await;
        drop(pg);
        drop(sqlite);

        // The baselines on the same PostgreSQL.
        let ceiling_get = self.ceiling(ceiling, &pgbench_db).await?;
        let (select_tps, insert_tps) = self.pgbench(pgbench, &pgbench_db)?;

        // RustyVault.
        let (rv_read, rv_read_one, rv_write, rv_rss) = self.rusty_vault(rvault).await?;

        let shown = |l: &Load| format!("{:.0} req/s (p50 {:.2} ms, p99 {:.2} ms)", l.rps, l.p50_ms, l.p99_ms);
        report.ratio(
            "authenticated GET of a secret, SQLite",
            (get.rps, shown(&get)),
            Some(("RustyVault KV read", rv_read.rps, shown(&rv_read))),
            Some((">=", 1.5)),
        );
        report.ratio(
            "the same, 1 connection",
            (get_one.rps, shown(&get_one)),
            Some(("RustyVault KV read, 1 connection", rv_read_one.rps, shown(&rv_read_one))),
            None,
        );
        report.ratio(
            "POST create with managed credentials, SQLite",
            (post.rps, shown(&post)),
            Some(("RustyVault KV write", rv_write.rps, shown(&rv_write))),
            Some((">=", 1.0)),
        );
        report.ratio(
            "PATCH rotate (new credentials), SQLite",
            (patch.rps, shown(&patch)),
            Some(("RustyVault KV write", rv_write.rps, shown(&rv_write))),
            None,
        );
        report.ratio(
            "authenticated GET, SQLite, against the HTTP stack",
            (get.rps, shown(&get)),
            Some(("`GET /healthz` of the same binary", healthz.rps, shown(&healthz))),
            None,
        );
        report.ratio(
            "list page (limit=50), 1,000,000 secrets in the team: latency, 1 connection",
            (
                list_1m.p50_ms,
                format!("p50 {:.2} ms, p99 {:.2} ms", list_1m.p50_ms, list_1m.p99_ms),
            ),
            Some((
                "1,000 secrets",
                list_1k.p50_ms,
                format!("p50 {:.2} ms, p99 {:.2} ms", list_1k.p50_ms, list_1k.p99_ms),
            )),
            Some(("<=", 1.5)),
        );
        report.ratio(
            "authenticated GET, PostgreSQL",
            (pg_get.rps, shown(&pg_get)),
            Some(("diesel-async select behind actix", ceiling_get.rps, shown(&ceiling_get))),
            Some((">=", 0.8)),
        );
        report.ratio(
            "authenticated GET, PostgreSQL, against the database",
            (pg_get.rps, shown(&pg_get)),
            Some(("pgbench select by key", select_tps, format!("{select_tps:.0} tps"))),
            Some((">=", 0.2)),
        );
        report.ratio(
            "POST create, PostgreSQL (credentials, row and audit in one transaction)",
            (pg_post.rps, shown(&pg_post)),
            Some((
                "pgbench insert + audit transaction",
                insert_tps,
                format!("{insert_tps:.0} tps"),
            )),
            Some((">=", 0.6)),
        );
        report.ratio(
            "peak RSS under the GET load",
            (sqlite_rss, format!("{sqlite_rss:.1} MiB")),
            Some(("RustyVault under its read load", rv_rss, format!("{rv_rss:.1} MiB"))),
            Some(("<=", 1.0)),
        );
        Ok(report)
    }

    /// Start `custodian serve` on a free port; SQLite in a fresh data directory, or the
    /// PostgreSQL `database_url`. Rate limits off: one address sends everything here.
    async fn start_custodian(&self, binary: &Path, name: &str, database_url: Option<&str>) -> Result<Server> {
        let data_dir = self.work.join(format!("custodian-{name}"));
        std::fs::create_dir_all(&data_dir)?;
        let port = free_port()?;
        let token_file = data_dir.join("first-token");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("CUSTODIAN_DATA_DIR", &data_dir)
            .env("CUSTODIAN_LISTEN", format!("127.0.0.1:{port}"))
            .env("CUSTODIAN_FIRST_TOKEN_FILE", &token_file)
            .env("CUSTODIAN_RATE_LIMIT__PER_ADDRESS_PER_MINUTE", "0")
            .env("CUSTODIAN_RATE_LIMIT__PER_TOKEN_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data_dir.join("server.log"))?);
        if let Some(url) = database_url {
            // As many connections as pgbench's clients and the ceiling's pool.
            command
                .env("CUSTODIAN_DATABASE_URL", url)
                .env("CUSTODIAN_DATABASE_POOL_SIZE", CONNECTIONS.to_string());
        }
        let process = Running {
            name: "custodian",
            child: command.spawn().context("cannot start custodian")?,
        };
        let base = format!("http://127.0.0.1:{port}");
        self.wait_for(&format!("{base}/healthz")).await?;
        let token = std::fs::read_to_string(&token_file)
            .context("the first start wrote no token")?
            .trim()
            .to_owned();
        Ok(Server {
            process,
            base,
            token,
            data_dir,
        })
    }

    async fn wait_for(&self, url: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{url} did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, server: &Server, method: reqwest::Method, path: &str, body: &Value) -> Result<Value> {
        let reply = self
            .http
            .request(method, format!("{}{path}", server.base))
            .bearer_auth(&server.token)
            .json(body)
            .send()
            .await?;
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {body}");
        }
        Ok(body)
    }

    async fn create_team(&self, server: &Server, name: &str) -> Result<String> {
        let team = self
            .call(server, reqwest::Method::POST, "/v1/teams", &json!({ "name": name }))
            .await?;
        Ok(team["id"].as_str().ok_or_else(|| anyhow!("no team id"))?.to_owned())
    }

    async fn seed_secrets(&self, server: &Server, team: &str, count: usize) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let secret = self
                .call(
                    server,
                    reqwest::Method::POST,
                    &format!("/v1/teams/{team}/secrets"),
                    &s3_body(&format!("seeded-{n}"), n),
                )
                .await?;
            ids.push(secret["id"].as_str().ok_or_else(|| anyhow!("no secret id"))?.to_owned());
        }
        Ok(ids)
    }

    /// A wrk script in the work directory: `headers` (Lua lines, [`bearer`]), then `body`.
    fn script(&self, name: &str, headers: &str, body: &str) -> Result<PathBuf> {
        let path = self.work.join(format!("{name}.lua"));
        std::fs::write(&path, format!("{headers}{body}"))?;
        Ok(path)
    }

    /// A warm-up, then the median (by requests per second) of the repeated runs.
    async fn load(&self, what: &str, url: &str, connections: u32, script: Option<&Path>) -> Result<Load> {
        eprintln!("xtask bench: {what}");
        wrk(&self.wrk, url, connections, self.timing.warm_up, script)?;
        let mut runs = (0..self.timing.repeats)
            .map(|_| wrk(&self.wrk, url, connections, self.timing.run, script))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("measuring {what}"))?;
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let median = runs[runs.len() / 2];
        eprintln!(
            "xtask bench:   {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            median.rps, median.p50_ms, median.p99_ms
        );
        Ok(median)
    }

    /// List pages of a team with 1,000 secrets and of one with 1,000,000, the rows copied
    /// in SQL from one secret made over the API; the latency at 1 connection.
    async fn list_pages(&self, server: &Server, sqlite3: &Path) -> Result<(Load, Load)> {
        let mut pages = Vec::new();
        for (name, rows) in [("list-1k", 1_000_u64), ("list-1m", 1_000_000)] {
            let team = self.create_team(server, name).await?;
            let template = self.seed_secrets(server, &team, 1).await?.remove(0);
            eprintln!("xtask bench: copying {rows} secrets into team {name}");
            // Ids of their own: no UUID made by a server starts with `b`+ the row count.
            let prefix = format!("{:08x}", 0xb000_0000_u64 + rows);
            let sql = format!(
                "PRAGMA busy_timeout = 60000;\n\
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})\n\
                 INSERT INTO storage_secrets (id, team_id, name, description, secret_type, auth_method, storage_mode,\n\
                   vault_connection_id, field_mappings, credentials_version, credentials_updated_at, created_at,\n\
                   created_by, updated_at, updated_by)\n\
                 SELECT printf('{prefix}-0000-7000-8000-%012x', i), s.team_id, printf('bulk-%07d', i),\n\
                   s.description, s.secret_type, s.auth_method, s.storage_mode, s.vault_connection_id,\n\
                   s.field_mappings, s.credentials_version, s.credentials_updated_at, s.created_at, s.created_by,\n\
                   s.updated_at, s.updated_by\n\
                 FROM storage_secrets AS s, n WHERE s.id = '{template}';\n"
            );
            let db = server.data_dir.join("custodian.db");
            let mut child = Command::new(sqlite3)
                .arg(&db)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()?;
            std::io::Write::write_all(
                &mut child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?,
                sql.as_bytes(),
            )?;
            if !child.wait()?.success() {
                bail!("sqlite3 could not copy the rows");
            }
            let script = self.script(
                name,
                &bearer(&server.token),
                &format!("wrk.path = \"/v1/teams/{team}/secrets?limit=50\"\n"),
            )?;
            pages.push(
                self.load(&format!("list, {rows} secrets"), &server.base, 1, Some(&script))
                    .await?,
            );
        }
        Ok((pages[0], pages[1]))
    }

    /// The ceiling: a plain diesel-async select behind actix, on 200 rows.
    async fn ceiling(&self, binary: &Path, database_url: &str) -> Result<Load> {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE TABLE ceiling_rows (id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL);\n\
                 INSERT INTO ceiling_rows SELECT gen_random_uuid()::text, 'team', 'row-' || i, repeat('x', 300)\n\
                   FROM generate_series(1, 200) AS i;",
            )
            .await?;
        let ids: Vec<String> = client
            .query("SELECT id FROM ceiling_rows", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let port = free_port()?;
        let _process = Running {
            name: "pg_ceiling",
            child: Command::new(binary)
                .args([database_url, &format!("127.0.0.1:{port}"), &CONNECTIONS.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start pg_ceiling")?,
        };
        let base = format!("http://127.0.0.1:{port}");
        self.wait_for(&format!("{base}/rows/{}", ids[0])).await?;
        let script = self.script("ceiling", "", &rotating_get_lua("/rows/", &ids))?;
        self.load("diesel-async select behind actix", &base, CONNECTIONS, Some(&script))
            .await
    }

    /// pgbench's select by primary key and an insert + audit transaction: transactions
    /// per second, each the median of the repeated runs.
    fn pgbench(&self, pgbench: &Path, database_url: &str) -> Result<(f64, f64)> {
        eprintln!("xtask bench: pgbench");
        let run = |args: &[&str]| -> Result<String> {
            let output = Command::new(pgbench).args(args).arg(database_url).output()?;
            if !output.status.success() {
                bail!("pgbench {args:?}: {}", String::from_utf8_lossy(&output.stderr));
            }
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        };
        run(&["-i", "-s", "10", "-q"])?;
        let (client_sql, script) = (
            "CREATE TABLE bench_rows (id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, created_at TIMESTAMP NOT NULL);\n\
             CREATE TABLE bench_audit (id TEXT PRIMARY KEY, action TEXT NOT NULL, resource_id TEXT NOT NULL, detail TEXT, occurred_at TIMESTAMP NOT NULL);",
            "BEGIN;\n\
             INSERT INTO bench_rows VALUES (gen_random_uuid()::text, 'team', 'row-' || random(), repeat('x', 300), now());\n\
             INSERT INTO bench_audit VALUES (gen_random_uuid()::text, 'create', 'row', 'created by the bench', now());\n\
             END;\n",
        );
        let psql = Command::new("psql")
            .args([database_url, "-q", "-c", client_sql])
            .status()?;
        if !psql.success() {
            bail!("cannot create the pgbench tables");
        }
        let script_path = self.work.join("insert-audit.sql");
        std::fs::write(&script_path, script)?;
        let connections = CONNECTIONS.to_string();
        let secs = self.timing.run.to_string();
        let median = |extra: &[&str]| -> Result<f64> {
            let mut all = Vec::new();
            for _ in 0..self.timing.repeats {
                let mut args = vec!["-n", "-M", "prepared", "-c", &connections, "-j", "1", "-T", &secs];
                args.extend_from_slice(extra);
                let out = run(&args)?;
                let tps = out
                    .lines()
                    .find_map(|l| l.strip_prefix("tps = "))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| anyhow!("no tps in pgbench's output: {out}"))?;
                all.push(tps);
            }
            all.sort_by(f64::total_cmp);
            Ok(all[all.len() / 2])
        };
        let select = median(&["-S"])?;
        let insert = median(&["-f", script_path.to_str().ok_or_else(|| anyhow!("path"))?])?;
        Ok((select, insert))
    }

    /// RustyVault with file storage and KV v1 at `secret/`: read (32 connections and 1),
    /// write, and its peak RSS under the read load.
    async fn rusty_vault(&self, binary: &Path) -> Result<(Load, Load, Load, f64)> {
        let dir = self.work.join("rusty-vault");
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        // Its HCL parser wants each attribute of a block on its own line.
        let config = format!(
            "storage \"file\" {{\n  path = \"{}\"\n}}\n\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\napi_addr = \"http://127.0.0.1:{port}\"\nlog_level = \"warn\"\npid_file = \"{}\"\n",
            dir.join("data").display(),
            dir.join("rvault.pid").display()
        );
        std::fs::write(dir.join("config.hcl"), config)?;
        let process = Running {
            name: "rvault",
            child: Command::new(binary)
                .args(["server", "--config"])
                .arg(dir.join("config.hcl"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("rvault.log"))?)
                .spawn()
                .context("cannot start rvault")?,
        };
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let init: Value = loop {
            match self
                .http
                .put(format!("{base}/v1/sys/init"))
                .json(&json!({ "secret_shares": 1, "secret_threshold": 1 }))
                .send()
                .await
            {
                Ok(r) => break r.json().await?,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(e).context("RustyVault did not answer"),
            }
        };
        let key = init["keys"][0]
            .as_str()
            .ok_or_else(|| anyhow!("no unseal key: {init}"))?;
        let token = init["root_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no root token: {init}"))?
            .to_owned();
        self.http
            .put(format!("{base}/v1/sys/unseal"))
            .json(&json!({ "key": key }))
            .send()
            .await?
            .error_for_status()?;
        let mut paths = Vec::new();
        for n in 0..SEEDED {
            let path = format!("/v1/secret/seeded-{n}");
            self.http
                .post(format!("{base}{path}"))
                .header("X-RustyVault-Token", &token)
                .json(&s3_body(&format!("seeded-{n}"), n)["credentials"])
                .send()
                .await?
                .error_for_status()?;
            paths.push(path);
        }
        let header = format!("wrk.headers[\"X-RustyVault-Token\"] = \"{token}\"\n");
        let read_script = self.script("rv-read", &header, &rotating_get_lua("", &paths))?;
        let read = self
            .load("RustyVault KV read", &base, CONNECTIONS, Some(&read_script))
            .await?;
        let rss = process.peak_rss_mib()?;
        let read_one = self
            .load("RustyVault KV read, 1 connection", &base, 1, Some(&read_script))
            .await?;
        let write_script = self.script(
            "rv-write",
            &header,
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, \"/v1/secret/written-\" .. n, nil, '{\"access_key_id\":\"AKIABENCH' .. n .. '\",\"secret_access_key\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYBENCH' .. n .. '\"}')\nend\n",
        )?;
        let write = self
            .load("RustyVault KV write", &base, CONNECTIONS, Some(&write_script))
            .await?;
        Ok((read, read_one, write, rss))
    }

    /// Read the server's `/metrics` and note what explains its figures.
    async fn explain(&self, server: &Server, report: &mut Report, when: &str) {
        let Ok(reply) = self.http.get(format!("{}/metrics", server.base)).send().await else {
            return;
        };
        let Ok(text) = reply.text().await else { return };
        let sum = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let hits = sum("custodian_subject_cache_total{outcome=\"hit\"}");
        let misses = sum("custodian_subject_cache_total{outcome=\"miss\"}");
        let wait_sum = sum("custodian_db_pool_wait_seconds_sum");
        let wait_count = sum("custodian_db_pool_wait_seconds_count");
        let requests = sum("custodian_http_requests_total") + 0.0;
        let errors: f64 = text
            .lines()
            .filter(|l| l.starts_with("custodian_http_requests_total") && l.contains("status=\"5"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
            + 0.0;
        let mean_wait_us = if wait_count > 0.0 {
            wait_sum / wait_count * 1e6
        } else {
            0.0
        };
        report.notes.push(format!(
            "{when}: {requests:.0} requests since it started, {errors:.0} answered 5xx; subject cache {hits:.0} hits, {misses:.0} misses \
             ({:.2}% hits); {wait_count:.0} database checkouts, {mean_wait_us:.0} µs mean wait for a connection",
            if hits + misses > 0.0 { hits / (hits + misses) * 100.0 } else { 0.0 }
        ));
    }
}

/// One wrk run; fails when any answer was not 2xx or a socket failed.
fn wrk(wrk: &Path, url: &str, connections: u32, secs: u32, script: Option<&Path>) -> Result<Load> {
    let mut command = Command::new(wrk);
    command.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{secs}s"),
        "--timeout",
        "10s",
        "--latency",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {text} {}", String::from_utf8_lossy(&output.stderr));
    }
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx or 3xx responses")) {
        bail!("{url}: {}", line.trim());
    }
    if let Some(line) = text.lines().find(|l| l.contains("Socket errors")) {
        bail!("{url}: {}", line.trim());
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no Requests/sec in wrk's output: {text}"))?;
    let percentile = |p: &str| -> Result<f64> {
        let value = text
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .map(str::trim)
            .ok_or_else(|| anyhow!("no {p} latency in wrk's output"))?;
        duration_ms(value)
    };
    Ok(Load {
        rps,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
    })
}

/// wrk's `1.23ms`, `456.00us`, `1.02s`, `2.00m` in milliseconds.
fn duration_ms(value: &str) -> Result<f64> {
    for (unit, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] {
        if let Some(number) = value.strip_suffix(unit)
            && let Ok(n) = number.parse::<f64>()
        {
            return Ok(n * factor);
        }
    }
    bail!("cannot read the duration {value}")
}

/// The Lua line that sends `token` as a bearer with every request.
fn bearer(token: &str) -> String {
    format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n")
}

fn s3_body(name: &str, n: usize) -> Value {
    json!({
        "name": name,
        "secret_type": "s3",
        "auth_method": "s3_access_key",
        "credentials": {
            "access_key_id": format!("AKIABENCH{n:08}"),
            "secret_access_key": format!("wJalrXUtnFEMI/K7MDENG/bPxRfiCYBENCH{n:08}"),
        },
    })
}

fn lua_list(items: &[String]) -> String {
    items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(",")
}

/// Requests `prefix .. item`, going round `items`.
fn rotating_get_lua(prefix: &str, items: &[String]) -> String {
    format!(
        "local items = {{{}}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", \"{prefix}\" .. items[(i % #items) + 1])\nend\n",
        lua_list(items)
    )
}

fn get_lua(team: &str, ids: &[String]) -> String {
    rotating_get_lua(&format!("/v1/teams/{team}/secrets/"), ids)
}

/// Creates with names unique to this run and backend.
fn post_lua(team: &str, run: &str) -> String {
    format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n-- Unique to this wrk process: the time and the address of a table (randomised).\nlocal prefix = os.time() .. \"-\" .. (tostring({{}}):gsub(\"^table: 0x\", \"\"))\nlocal n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, \"/v1/teams/{team}/secrets\", nil, '{{\"name\":\"created-{run}-' .. prefix .. '-' .. n .. '\",\"secret_type\":\"s3\",\"auth_method\":\"s3_access_key\",\"credentials\":{{\"access_key_id\":\"AKIABENCH' .. n .. '\",\"secret_access_key\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYBENCH' .. n .. '\"}}}}')\nend\n"
    )
}

/// Rotates the seeded secrets' credentials in turn.
fn patch_lua(team: &str, ids: &[String]) -> String {
    format!(
        "wrk.method = \"PATCH\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal ids = {{{}}}\nlocal n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, \"/v1/teams/{team}/secrets/\" .. ids[(n % #ids) + 1], nil, '{{\"credentials\":{{\"access_key_id\":\"AKIAROTATE' .. n .. '\",\"secret_access_key\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYROTATE' .. n .. '\"}}}}')\nend\n",
        lua_list(ids)
    )
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// `program` from PATH, installed from Debian's `package` when missing.
fn ensure_debian_tool(program: &str, package: &str) -> Result<PathBuf> {
    if let Some(found) = which(program) {
        return Ok(found);
    }
    eprintln!("xtask bench: installing {package} (apt-get install -y {package})");
    let status = Command::new("apt-get").args(["install", "-y", package]).status();
    if !status.is_ok_and(|s| s.success()) {
        let _ = Command::new("apt-get").arg("update").status();
        let status = Command::new("apt-get").args(["install", "-y", package]).status()?;
        if !status.success() {
            bail!("cannot install {package} from Debian's packages");
        }
    }
    which(program).ok_or_else(|| anyhow!("{program} is not on PATH after installing {package}"))
}

/// `rvault` 0.2.1 under the target directory, installed from crates.io when missing.
fn ensure_rusty_vault(target: &Path) -> Result<PathBuf> {
    let root = target.join("bench-tools");
    let binary = root.join("bin/rvault");
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!("xtask bench: installing RustyVault {RUSTY_VAULT_VERSION} (cargo install, a few minutes)");
    let status = cargo()
        .args(["install", "--locked", "--root"])
        .arg(&root)
        .args(["rusty_vault", "--version", RUSTY_VAULT_VERSION])
        .status()?;
    if !status.success() || !binary.is_file() {
        bail!("cannot install RustyVault {RUSTY_VAULT_VERSION}");
    }
    Ok(binary)
}

/// A fresh database `name` on the server of `admin_url`; its URL.
async fn fresh_database(admin_url: &str, name: &str) -> Result<String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let mut url = url_without_database(admin_url);
    url.push('/');
    url.push_str(name);
    Ok(url)
}

/// `postgres://user@host:port/db?x` without `/db?x`.
fn url_without_database(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(slash) => url[..scheme_end + slash].to_owned(),
        None => url.split('?').next().unwrap_or(url).to_owned(),
    }
}

async fn machine_facts(report: &mut Report, admin_url: &str) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    report.fact("nproc", cpus.to_string());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    report.fact("CPU", model);
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    for setting in ["server_version", "synchronous_commit", "fsync", "shared_buffers"] {
        let row = client.query_one(&format!("SHOW {setting}"), &[]).await?;
        report.fact(&format!("PostgreSQL {setting}"), row.get::<_, String>(0));
    }
    report.fact(
        "SQLite (embedded default)",
        "journal_mode=WAL, synchronous=NORMAL (see \"Durability\" above)",
    );
    Ok(())
}

/// Run the core's criterion benchmark of cached resolution; its rate and p99.
fn resolve_benchmark(root: &Path) -> Result<Resolve> {
    eprintln!("xtask bench: the core's cached resolution (criterion)");
    let output = cargo()
        .current_dir(root)
        .args(["bench", "-p", "custodian-core", "--bench", "resolve", "--", "--noplot"])
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("the resolve benchmark failed");
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut per_second = None;
    let mut p99_us = None;
    for line in text.lines() {
        eprintln!("{line}");
        if let Some(v) = line.strip_prefix("resolve_cached per_second=") {
            per_second = v.trim().parse().ok();
        }
        if let Some(v) = line.strip_prefix("resolve_cached p99_us=") {
            p99_us = v.trim().parse().ok();
        }
    }
    Ok(Resolve {
        per_second: per_second.ok_or_else(|| anyhow!("the resolve benchmark printed no rate"))?,
        p99_us: p99_us.ok_or_else(|| anyhow!("the resolve benchmark printed no p99"))?,
    })
}

/// Replace what lies between the markers of `path` with `text` (the markers are added at
/// the end when missing).
fn write_between_markers(path: &Path, text: &str) -> Result<()> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{text}\n{END}");
    let next = match (current.find(BEGIN), current.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &current[..b], &current[e + END.len()..]),
        _ => format!("{current}\n{block}\n"),
    };
    std::fs::write(path, next)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_durations_are_read_in_milliseconds() {
        assert!((duration_ms("456.00us").unwrap() - 0.456).abs() < 1e-9);
        assert!((duration_ms("1.25ms").unwrap() - 1.25).abs() < 1e-9);
        assert!((duration_ms("1.50s").unwrap() - 1500.0).abs() < 1e-9);
        assert!(duration_ms("fast").is_err());
    }

    #[test]
    fn a_database_is_named_on_the_admin_servers_url() {
        assert_eq!(
            url_without_database("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432"
        );
        assert_eq!(url_without_database("postgres://h"), "postgres://h");
    }

    #[test]
    fn the_figures_replace_what_lies_between_the_markers() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("BENCHMARKS.md");
        std::fs::write(&path, format!("# Head\n{BEGIN}\nold\n{END}\n## Tail\n")).unwrap();
        write_between_markers(&path, "new").unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, format!("# Head\n{BEGIN}\nnew\n{END}\n## Tail\n"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! The API reference at `/docs/` in a real browser: headless Chromium loads the page from
//! the built server with every other host out of reach, and the page renders an operation
//! of the document it fetched. Chromium's network log shows that the page asked for
//! nothing but this server's own URLs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use tempfile::TempDir;

use crate::process::{RunningServer, free_port};

/// The Chromium binary the browser tests run (`cargo xtask test` sets it).
const CHROMIUM_ENV: &str = "CUSTODIAN_TEST_CHROMIUM";
/// The name the browser reaches the server by. Not a loopback name: Swagger UI leaves out
/// some of its requests to other hosts (the online validator's badge) for pages served
/// from `localhost` or `127.0.0.1`, and the test must see those too.
const HOST: &str = "custodian.test";
/// How long Chromium may take in all, wall-clock.
const BROWSER_WAIT: Duration = Duration::from_secs(120);

/// The Chromium binary, or `None` after a loud skip line; under CI an unset variable fails
/// the test.
fn chromium(test: &str) -> Option<String> {
    crate::support::program_from_env(
        CHROMIUM_ENV,
        "chromium",
        test,
        "the browser test",
        "`apt-get install -y chromium`",
    )
}

/// Headless Chromium's DOM of `url` once its scripts ran, with its profile, network log
/// (`net-log.json`) and output under `dir`. `HOST` is this machine; every other host goes
/// through a proxy that is not there, so it cannot be reached.
fn dump_dom(chromium: &str, url: &str, dir: &Path) -> Result<String, String> {
    let nowhere = free_port();
    // Files, not pipes: a DOM larger than a pipe's buffer would stall a browser nobody reads.
    let (dom_file, log_file) = (dir.join("dom.html"), dir.join("chromium.log"));
    let create = |path: &Path| std::fs::File::create(path).expect("a file for Chromium's output");
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--log-net-log={}", dir.join("net-log.json").display()))
        .arg(format!("--host-resolver-rules=MAP {HOST} 127.0.0.1"))
        .arg(format!("--proxy-server=http://127.0.0.1:{nowhere}"))
        .arg(format!("--proxy-bypass-list={HOST}"))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(create(&dom_file))
        .stderr(create(&log_file))
        .spawn()
        .map_err(|e| format!("cannot start {chromium}: {e}"))?;
    let deadline = Instant::now() + BROWSER_WAIT;
    let (succeeded, status) = loop {
        if let Some(status) = child.try_wait().expect("poll Chromium") {
            break (status.success(), status.to_string());
        }
        if Instant::now() > deadline {
            child.kill().expect("kill Chromium");
            child.wait().expect("Chromium exits");
            break (false, format!("killed after {BROWSER_WAIT:?}"));
        }
        thread::sleep(Duration::from_millis(100));
    };
    let read = |path: &Path| String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let dom = read(&dom_file);
    if succeeded && !dom.is_empty() {
        Ok(dom)
    } else {
        Err(format!("Chromium failed ({status}) on {url}:\n{}", read(&log_file)))
    }
}

/// Every URL Chromium's network log shows a request for, with the origin that asked for it
/// (`not an origin` for a navigation or the browser's own requests).
fn requested_urls(net_log: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(net_log).expect("Chromium wrote its network log");
    let log: Value = serde_json::from_str(&text).expect("the network log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    assert!(start_job.is_number(), "no URL_REQUEST_START_JOB in the log's constants");
    log["events"]
        .as_array()
        .expect("the log's events")
        .iter()
        .filter(|event| event["type"] == start_job)
        .filter_map(|event| {
            let params = &event["params"];
            let url = params["url"].as_str()?.to_owned();
            Some((url, params["initiator"].as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// `text` as it stands in an HTML document's text.
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[tokio::test]
async fn the_api_reference_renders_offline_from_this_server_alone() {
    let Some(chromium) = chromium("the_api_reference_renders_offline_from_this_server_alone") else {
        return;
    };
    let data = TempDir::new().expect("a temporary directory");
    let port = free_port();
    let server = RunningServer::start(crate::process::custodian(data.path(), "info"), port, "Try it:");

    // The operation to look for, from the document the server serves.
    let doc = server.api.call(Method::GET, "/openapi.json", None, None).await;
    doc.expect_status(200, "GET /openapi.json");
    let me = &doc.json["paths"]["/v1/me"]["get"];
    let summary = me["summary"].as_str().expect("GET /v1/me has a summary");
    let element_id = format!(
        "operations-{}-{}",
        me["tags"][0].as_str().expect("GET /v1/me has a tag"),
        me["operationId"].as_str().expect("GET /v1/me has an operationId")
    );

    let browser = TempDir::new().expect("a temporary directory");
    let origin = format!("http://{HOST}:{port}");
    let dom = dump_dom(&chromium, &format!("{origin}/docs/"), browser.path());
    // Stopped before anything is checked, so that a failing check leaves no server behind.
    server.terminate();
    let dom = dom.unwrap_or_else(|e| panic!("{e}"));

    assert!(!dom.contains("Failed to load API definition"), "{dom}");
    assert!(
        dom.contains(&format!("id=\"{element_id}\"")),
        "the page rendered no {element_id}:\n{dom}"
    );
    assert!(
        dom.contains(&html_text(summary)),
        "the page does not show {summary:?}:\n{dom}"
    );

    // What the page asked for: its own files and the document, from this server only.
    let asked: Vec<String> = requested_urls(&browser.path().join("net-log.json"))
        .into_iter()
        .filter(|(url, initiator)| *initiator == origin || url.starts_with(&origin))
        .map(|(url, _)| url)
        .collect();
    for needed in [
        "/docs/",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/openapi.json",
    ] {
        assert!(
            asked.contains(&format!("{origin}{needed}")),
            "the log shows no request for {needed}: {asked:#?}"
        );
    }
    let elsewhere: Vec<&String> = asked
        .iter()
        .filter(|url| !url.starts_with(&format!("{origin}/")))
        .collect();
    assert!(elsewhere.is_empty(), "the page asked other hosts for {elsewhere:#?}");
}

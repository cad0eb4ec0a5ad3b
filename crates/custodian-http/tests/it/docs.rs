//! `GET /docs/`: the interactive API reference, every file of it served here.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::from_fn;
use actix_web::test::{TestRequest, call_service, init_service, read_body, read_body_json};
use actix_web::{App, web};
use custodian_http::{RateLimitSettings, RateLimits};

use crate::support::world;

/// `GET uri` from a client address (which the rate limits count).
fn request(uri: &str) -> Request {
    TestRequest::get()
        .uri(uri)
        .peer_addr("192.0.2.7:40000".parse().expect("a socket address"))
        .to_request()
}

/// The status, the `Content-Type` and the body of `GET uri`.
async fn get<S, B>(app: &S, uri: &str) -> (StatusCode, String, String)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = call_service(app, request(uri)).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("a text header").to_owned())
        .unwrap_or_default();
    let body = read_body(response).await;
    (status, content_type, String::from_utf8_lossy(&body).into_owned())
}

/// A file the page loads: the tag that names it (`script` or `link`), its `rel` (links
/// only) and the URL as written.
#[derive(Debug)]
struct Asset {
    tag: String,
    rel: String,
    url: String,
}

/// Every `<script src>` and `<link href>` of `html`.
fn assets(html: &str) -> Vec<Asset> {
    html.split('<')
        .filter_map(|tag| {
            let tag = tag.split('>').next()?;
            let name = tag.split_whitespace().next()?.to_ascii_lowercase();
            let url_attribute = match name.as_str() {
                "script" => "src",
                "link" => "href",
                _ => return None,
            };
            Some(Asset {
                rel: attribute(tag, "rel").unwrap_or_default(),
                url: attribute(tag, url_attribute)?,
                tag: name,
            })
        })
        .collect()
}

/// The value of `name="…"` in the text of a tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let rest = &tag[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Whether `url` points to another host (`https://…`, `//host/…`, any scheme).
fn names_a_host(url: &str) -> bool {
    url.starts_with("//")
        || url
            .split(['/', '?', '#'])
            .next()
            .is_some_and(|first| first.contains(':'))
}

/// `url` resolved against the page's path `/docs/`.
fn resolve(url: &str) -> String {
    if url.starts_with('/') {
        url.to_owned()
    } else {
        format!("/docs/{}", url.trim_start_matches("./"))
    }
}

/// The content types a file of this kind may have.
fn expected_types(asset: &Asset) -> &'static [&'static str] {
    match (asset.tag.as_str(), asset.rel.as_str()) {
        ("script", _) => &["text/javascript", "application/javascript"],
        ("link", "stylesheet") => &["text/css"],
        ("link", "icon") => &["image/png", "image/x-icon", "image/svg+xml"],
        _ => &[],
    }
}

/// Every `url(…)` a stylesheet loads.
fn css_urls(css: &str) -> Vec<String> {
    css.split("url(")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|url| url.trim().trim_matches(['"', '\'']).to_owned())
        .collect()
}

/// The page, behind the rate limits as the server runs it: every script and stylesheet it
/// names is served here with its content type, none from another host, and the page reads
/// the document from `/openapi.json`.
#[actix_web::test]
async fn the_page_and_every_file_it_loads_are_served_here() {
    let w = world().await;
    let limits = RateLimits::new(RateLimitSettings {
        per_address_per_minute: std::num::NonZeroU32::new(120),
        per_token_per_minute: None,
        trusted_proxies: Vec::new(),
    });
    let app = init_service(
        App::new()
            .app_data(web::Data::new(w.state))
            .app_data(web::Data::new(limits))
            .configure(custodian_http::configure)
            .wrap(from_fn(custodian_http::rate_limit)),
    )
    .await;

    let redirect = call_service(&app, request("/docs")).await;
    assert!(redirect.status().is_redirection(), "{}", redirect.status());
    assert_eq!(redirect.headers().get(header::LOCATION).unwrap(), "/docs/");
    assert!(redirect.headers().contains_key("x-ratelimit-limit"), "the limits apply");

    let (status, content_type, html) = get(&app, "/docs/").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(!html.contains("://"), "the page names no host: {html}");

    let assets = assets(&html);
    assert!(assets.iter().filter(|a| a.tag == "script").count() >= 2, "{assets:?}");
    assert!(assets.iter().any(|a| a.rel == "stylesheet"), "{assets:?}");
    let mut initializer = None;
    for asset in &assets {
        assert!(!names_a_host(&asset.url), "{asset:?} is loaded from another host");
        let uri = resolve(&asset.url);
        let (status, content_type, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{asset:?} at {uri}");
        let expected = expected_types(asset);
        assert!(
            expected.iter().any(|t| content_type.starts_with(t)),
            "{asset:?} at {uri} is served as {content_type:?}, not one of {expected:?}"
        );
        if asset.rel == "stylesheet" {
            assert!(!body.contains("@import"), "{uri} imports another stylesheet");
            for url in css_urls(&body) {
                assert!(
                    url.starts_with("data:") || !names_a_host(&url),
                    "{uri} loads {url} from another host"
                );
            }
        }
        if asset.url.contains("initializer") {
            initializer = Some(body);
        }
    }

    // The configuration the page starts with: this server's document, no online validator.
    let initializer = initializer.expect("the page's initializer script");
    assert!(initializer.contains("\"url\": \"/openapi.json\""), "{initializer}");
    assert!(initializer.contains("\"validatorUrl\": \"none\""), "{initializer}");
    assert!(!initializer.contains("://"), "{initializer}");
    let (status, content_type, _) = get(&app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"), "{content_type}");
}

/// The page is no operation of the document; other methods and unknown files under it get
/// the API's JSON answers.
#[actix_web::test]
async fn the_page_is_not_an_operation_and_its_misses_answer_json() {
    let w = world().await;
    let app = crate::service!(w.state);

    let doc = serde_json::to_value(custodian_http::openapi()).expect("the document serializes");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.keys().any(|p| p.starts_with("/docs")), "{:?}", paths.keys());

    let (status, _, body) = get(&app, "/docs/no-such-file.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(body["code"], "not_found", "{body}");

    for uri in ["/docs", "/docs/", "/docs/swagger-ui.css"] {
        let request = TestRequest::default().method(Method::POST).uri(uri).to_request();
        let response = call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "POST {uri}");
        assert_eq!(response.headers().get(header::ALLOW).unwrap(), "GET", "POST {uri}");
        let body: serde_json::Value = read_body_json(response).await;
        assert_eq!(body["code"], "method_not_allowed", "POST {uri}: {body}");
    }
}

#[test]
fn the_page_parser_finds_scripts_and_links_and_tells_hosts_apart() {
    let html = r#"<html><head><link rel="stylesheet" type="text/css" href="./a.css" />
        <link rel="icon" href="https://cdn.example/i.png"></head>
        <body><script src="b.js" charset="UTF-8"> </script><script>inline()</script></body></html>"#;
    let found = assets(html);
    let urls: Vec<&str> = found.iter().map(|a| a.url.as_str()).collect();
    assert_eq!(urls, ["./a.css", "https://cdn.example/i.png", "b.js"]);
    assert_eq!(found[0].rel, "stylesheet");
    assert!(names_a_host("https://cdn.example/x.js"));
    assert!(names_a_host("//cdn.example/x.js"));
    assert!(!names_a_host("./x.js"));
    assert!(!names_a_host("/docs/x.js?v=1:2"));
    assert_eq!(resolve("./a.css"), "/docs/a.css");
    assert_eq!(resolve("index.css"), "/docs/index.css");
    assert_eq!(resolve("/openapi.json"), "/openapi.json");
    assert_eq!(
        css_urls("a{b:url(\"data:x\")} c{d:url( ./e.png )}"),
        ["data:x", "./e.png"]
    );
}

//! A tiny SSM endpoint on a loopback port that answers by a script: throttle N times then
//! succeed, always throttle, always fail with 500, quote the request in a validation
//! error, or never answer. It records every request's `X-Amz-Target` (the operation).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the fake answers the n-th request (0-based).
#[derive(Debug, Clone)]
pub(crate) enum Script {
    /// `ThrottlingException` for the first `n` requests, then success.
    ThrottleThenOk(usize),
    /// `ThrottlingException` forever.
    AlwaysThrottle,
    /// HTTP 500 `InternalServerError` forever.
    AlwaysServerError,
    /// HTTP 400 `ValidationException` whose message quotes the whole request body.
    QuoteTheRequest,
    /// Accept connections, read the request, never answer.
    Silent,
}

/// The value every successful GetParameter returns.
pub(crate) const FAKE_VALUE: &str = "value-from-the-fake";

#[derive(Debug)]
pub(crate) struct FakeSsm {
    pub(crate) url: String,
    targets: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl FakeSsm {
    pub(crate) async fn start(script: Script) -> FakeSsm {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&targets);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, script.clone(), Arc::clone(&recorded)));
            }
        });
        FakeSsm { url, targets, task }
    }

    /// The operations requested so far (e.g. `AmazonSSM.GetParameter`), in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.targets.lock().expect("targets lock").clone()
    }
}

impl Drop for FakeSsm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers the requests of one connection until the client closes it.
async fn serve(mut stream: TcpStream, script: Script, targets: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let target = header(&head, "x-amz-target").unwrap_or_default();
        let index = {
            let mut targets = targets.lock().expect("targets lock");
            targets.push(target.clone());
            targets.len() - 1
        };
        let (status, reason, payload) = match &script {
            Script::ThrottleThenOk(n) if index >= *n => (200, "OK", success(&target)),
            Script::ThrottleThenOk(_) | Script::AlwaysThrottle => (
                400,
                "Bad Request",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
            ),
            Script::AlwaysServerError => (
                500,
                "Internal Server Error",
                r#"{"__type":"InternalServerError","message":"try again"}"#.to_owned(),
            ),
            Script::QuoteTheRequest => (
                400,
                "Bad Request",
                serde_json::json!({
                    "__type": "ValidationException",
                    "message": format!("1 validation error detected: request {body}"),
                })
                .to_string(),
            ),
            Script::Silent => {
                // Hold the connection open without answering until the client gives up.
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\n\
             x-amzn-requestid: fake-{index}\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The body of a successful answer to `target`.
fn success(target: &str) -> String {
    match target.rsplit('.').next() {
        Some("GetParameter") => serde_json::json!({
            "Parameter": {
                "Name": "/fake", "Type": "SecureString", "Value": FAKE_VALUE, "Version": 1, "DataType": "text"
            }
        })
        .to_string(),
        Some("PutParameter") => r#"{"Version":1,"Tier":"Standard"}"#.to_owned(),
        Some("GetParametersByPath") => r#"{"Parameters":[]}"#.to_owned(),
        Some("DeleteParameters") => r#"{"DeletedParameters":[],"InvalidParameters":[]}"#.to_owned(),
        _ => "{}".to_owned(),
    }
}

/// One request from `stream` (head, body as text); `None` when the client closed it.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, String)> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    buffer.drain(..head_end + length);
    Some((head, body))
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
}

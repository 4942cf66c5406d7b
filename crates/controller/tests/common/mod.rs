//! A fake API server for controller tests: records every request and answers from a
//! routing function, so tests assert on the requests a reconcile made.

#![allow(dead_code)] // each test file uses a different subset

use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the controller made.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
}

/// Requests made so far.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Recorded>>>);

impl Log {
    pub fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }

    /// Requests other than event recording, as `METHOD path`.
    pub fn calls(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|r| !r.path.contains("/events"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    pub fn events(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|r| r.path.contains("/events") && r.method == "POST")
            .map(|r| r.body)
            .collect()
    }

    pub fn find(&self, method: &str, path_part: &str) -> Vec<Recorded> {
        self.all()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(path_part))
            .collect()
    }
}

/// An answer: status code and JSON body.
pub type Answer = (u16, Value);

/// A Kubernetes `Status` error body.
pub fn status_error(code: u16, reason: &str, message: &str) -> Answer {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

/// The status code of an answer that never comes: the request hangs, as through a network
/// partition.
pub const NO_ANSWER: u16 = 0;

/// Starts the fake server; `route(method, path, body)` answers each request.
pub fn fake_api(route: impl Fn(&str, &str, &Value) -> Answer + Send + Sync + 'static) -> (Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log = Log::default();
    let recorded = log.clone();
    tokio::spawn(async move {
        let mut unanswered = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            let method = parts.method.to_string();
            let path = parts.uri.path().to_string();
            let query = parts.uri.query().unwrap_or_default().to_string();
            let (code, answer) = route(&method, &path, &body);
            recorded.0.lock().unwrap().push(Recorded {
                method,
                path,
                query,
                body,
            });
            if code == NO_ANSWER {
                unanswered.push(send);
                continue;
            }
            let response = Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            send.send_response(response);
        }
    });
    (Client::new(service, "default"), log)
}

/// Answers event recording as the API server does.
pub fn events_route(method: &str, path: &str, body: &Value) -> Option<Answer> {
    (path.contains("/events") && method == "POST").then(|| (201, body.clone()))
}

/// The status a status write sets: its body is a JSON patch that replaces `/status` whole.
pub fn status_set(write: &Recorded) -> Value {
    let operations = write.body.as_array().expect("a JSON patch");
    let set = operations
        .iter()
        .find(|op| op["path"] == "/status")
        .expect("an operation on /status");
    assert_eq!(set["op"], "add", "the status is replaced, not merged");
    set["value"].clone()
}

//! A stand-in EventBridge for the publisher's tests: answers `PutEvents`
//! (the AWS JSON 1.1 protocol the SDK speaks) on a local port, keeps every
//! entry it accepted, and fails the entries a test asks it to — as
//! EventBridge does, one entry at a time inside a 200 answer. It also
//! answers SQS `SendMessage` (AWS JSON 1.0), as the dead-letter queue.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Which entries to refuse: given the entry and how many times an entry of
/// this `detail` was sent before, whether to fail it this time.
pub type Refuse = Box<dyn Fn(&Value, usize) -> bool + Send + Sync>;

#[derive(Default)]
struct State {
    accepted: Vec<Value>,
    /// Every entry sent, accepted or not (for attempt counts).
    sent: Vec<Value>,
    calls: usize,
    /// Message bodies sent to the dead-letter queue.
    dead_letters: Vec<Value>,
}

pub struct EventBus {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for EventBus {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl EventBus {
    /// Serves on a free port; `refuse` decides which entries fail.
    pub async fn start(refuse: Refuse) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let state = Arc::new(Mutex::new(State::default()));
        let refuse = Arc::new(refuse);
        let shared = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, refuse) = (shared.clone(), refuse.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (state, refuse) = (state.clone(), refuse.clone());
                        async move {
                            let target = req.headers().get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or_default().to_owned();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let (answer, kind) = if target.starts_with("AmazonSQS.") {
                                (send_message(&state, &body), "application/x-amz-json-1.0")
                            } else {
                                (put_events(&state, &refuse, &body), "application/x-amz-json-1.1")
                            };
                            let mut resp = hyper::Response::new(Full::new(Bytes::from(answer.to_string())));
                            resp.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(kind));
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Self { url, state, server }
    }

    /// An SDK client for this bus.
    pub fn client(&self) -> aws_sdk_eventbridge::Client {
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_sdk_eventbridge::config::Region::new("local"))
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new("local", "local", None, None, "stand-in"))
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }

    /// An SQS client for its dead-letter queue.
    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_sdk_sqs::config::Region::new("local"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("local", "local", None, None, "stand-in"))
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// The messages its dead-letter queue received, parsed.
    pub fn dead_letters(&self) -> Vec<Value> {
        self.state.lock().map(|s| s.dead_letters.clone()).unwrap_or_default()
    }

    /// The entries accepted, in order (`Source`, `DetailType`, `Detail`, `EventBusName`).
    pub fn accepted(&self) -> Vec<Value> {
        self.state.lock().map(|s| s.accepted.clone()).unwrap_or_default()
    }

    /// `PutEvents` calls answered.
    pub fn calls(&self) -> usize {
        self.state.lock().map(|s| s.calls).unwrap_or_default()
    }
}

fn send_message(state: &Mutex<State>, body: &[u8]) -> Value {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = request["MessageBody"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    if let Ok(mut state) = state.lock() {
        state.dead_letters.push(message);
    }
    json!({"MessageId": uuid::Uuid::new_v4().to_string()})
}

fn put_events(state: &Mutex<State>, refuse: &Refuse, body: &[u8]) -> Value {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Ok(mut state) = state.lock() else { return json!({"FailedEntryCount": 0, "Entries": []}) };
    state.calls += 1;
    let mut failed = 0;
    let mut answers = Vec::new();
    for entry in request["Entries"].as_array().cloned().unwrap_or_default() {
        let before = state.sent.iter().filter(|e| e["Detail"] == entry["Detail"]).count();
        state.sent.push(entry.clone());
        if refuse(&entry, before) {
            failed += 1;
            answers.push(json!({"ErrorCode": "InternalFailure", "ErrorMessage": "refused by the test"}));
        } else {
            answers.push(json!({"EventId": uuid::Uuid::new_v4().to_string()}));
            state.accepted.push(entry);
        }
    }
    json!({"FailedEntryCount": failed, "Entries": answers})
}

//! A DynamoDB proxy for fault tests on the wire: it forwards every request to
//! DynamoDB (Local) and, when a rule says so, loses the answer after the
//! write was applied — the connection is reset, or the answer comes later than
//! the client's attempt timeout — or holds the request back so that it is
//! applied only after the client gave up on it. The SDK's own error paths
//! (dispatch failures, timeouts) are exercised, not simulated errors.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFault {
    /// Applied, then the connection is closed without an answer.
    Reset,
    /// Applied, then answered after this long (longer than the attempt timeout).
    SlowAnswer(Duration),
    /// Held this long, then applied (the client has timed out meanwhile), and answered.
    LateRequest(Duration),
    /// Not forwarded: answered as DynamoDB answers a throttled request (400
    /// `ThrottlingException`), for a process whose SDK client the tests do
    /// not hold (a function binary).
    Throttle,
}

#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    pass: usize,
    times: usize,
    fault: WireFault,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// A fault for every write with this probability (0..=1), and the faults to draw from.
    random: Option<(f64, Vec<WireFault>)>,
    calls: HashMap<String, usize>,
    injected: HashMap<&'static str, usize>,
    /// The exactly-once checker's scheduler: decisions come in a header, and
    /// every write's before and after are recorded for stale reads.
    sched: Option<std::sync::Arc<crate::explore::Scheduler>>,
}

/// The proxy's handle: rules are set and counts read while it runs.
#[derive(Clone, Default)]
pub struct Proxy {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Proxy")
    }
}

pub const WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

impl Proxy {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves the checker ([`crate::explore`]): applies the scheduler's
    /// decision on each scheduled call and tells it when DynamoDB answered.
    pub fn schedule(&self, sched: std::sync::Arc<crate::explore::Scheduler>) {
        self.lock().sched = Some(sched);
    }

    /// The next `times` calls of `operation` get `fault`.
    pub fn inject(&self, operation: &str, fault: WireFault, times: usize) -> &Self {
        self.lock().rules.push(Rule {
            operation: operation.to_owned(),
            pass: 0,
            times,
            fault,
        });
        self
    }

    /// After `pass` calls of `operation` go through, the next `times` get `fault`.
    pub fn inject_after(
        &self,
        operation: &str,
        pass: usize,
        fault: WireFault,
        times: usize,
    ) -> &Self {
        self.lock().rules.push(Rule {
            operation: operation.to_owned(),
            pass,
            times,
            fault,
        });
        self
    }

    /// Every write request gets one of `faults` with probability `p` (a chaos run).
    pub fn randomly(&self, p: f64, faults: Vec<WireFault>) {
        self.lock().random = Some((p, faults));
    }

    pub fn clear(&self) {
        let mut state = self.lock();
        state.rules.clear();
        state.random = None;
    }

    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// Faults injected so far, by kind ("reset", "slow answer", "late request").
    pub fn injected(&self) -> HashMap<&'static str, usize> {
        self.lock().injected.clone()
    }

    fn on_call(&self, operation: &str) -> Option<WireFault> {
        let mut state = self.lock();
        *state.calls.entry(operation.to_owned()).or_default() += 1;
        let fault = match state
            .rules
            .iter_mut()
            .find(|r| r.operation == operation && (r.pass > 0 || r.times > 0))
        {
            Some(rule) if rule.pass > 0 => {
                rule.pass -= 1;
                None
            }
            Some(rule) => {
                rule.times -= 1;
                Some(rule.fault)
            }
            None => match &state.random {
                Some((p, faults))
                    if WRITES.contains(&operation)
                        && !faults.is_empty()
                        && fastrand::f64() < *p =>
                {
                    Some(faults[fastrand::usize(..faults.len())])
                }
                _ => None,
            },
        };
        if let Some(f) = fault {
            let kind = match f {
                WireFault::Reset => "reset",
                WireFault::SlowAnswer(_) => "slow answer",
                WireFault::LateRequest(_) => "late request",
                WireFault::Throttle => "throttle",
            };
            *state.injected.entry(kind).or_default() += 1;
        }
        fault
    }

    /// Serves on `listener`, forwarding to `upstream` (`http://host:port`), until dropped.
    pub async fn serve(self, listener: TcpListener, upstream: String) -> std::io::Result<()> {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (proxy, client, upstream) = (self.clone(), client.clone(), upstream.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let (proxy, client, upstream) =
                        (proxy.clone(), client.clone(), upstream.clone());
                    async move { proxy.forward(req, &client, &upstream).await }
                });
                // A reset is an error from the service: hyper drops the connection.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }

    async fn forward(
        &self,
        req: hyper::Request<Incoming>,
        client: &Client<HttpConnector, Full<Bytes>>,
        upstream: &str,
    ) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let operation = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.split('.').nth(1))
            .unwrap_or("")
            .to_owned();
        let sched = self.lock().sched.clone();
        if let Some(sched) = sched {
            let decision = parts.headers.get(crate::explore::DECISION_HEADER).and_then(|v| v.to_str().ok()).and_then(crate::explore::Decision::parse);
            let answer = crate::explore::serve_scheduled(&sched, &parts, body, &operation, decision, client, upstream).await;
            if decision.is_some() {
                sched.answered();
            }
            return answer;
        }
        let fault = self.on_call(&operation);
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut out = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{upstream}{path}"));
        for (k, v) in &parts.headers {
            out = out.header(k, v);
        }
        let out = out.body(Full::new(body)).map_err(std::io::Error::other)?;
        let send = {
            let client = client.clone();
            async move {
                let resp = client.request(out).await.map_err(std::io::Error::other)?;
                let (parts, body) = resp.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map_err(std::io::Error::other)?
                    .to_bytes();
                Ok::<_, std::io::Error>(hyper::Response::from_parts(parts, Full::new(bytes)))
            }
        };
        match fault {
            None => send.await,
            Some(WireFault::Throttle) => {
                let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
                hyper::Response::builder()
                    .status(400)
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .map_err(std::io::Error::other)
            }
            Some(WireFault::Reset) => {
                send.await?;
                Err(std::io::Error::other("injected reset"))
            }
            Some(WireFault::SlowAnswer(d)) => {
                let resp = send.await?;
                tokio::time::sleep(d).await;
                Ok(resp)
            }
            Some(WireFault::LateRequest(d)) => {
                // Applied even if the client has gone: it is already on its way.
                let late = tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    send.await
                });
                late.await.map_err(std::io::Error::other)?
            }
        }
    }
}

/// Starts a proxy to `upstream` on a free local port: its handle and its endpoint.
pub async fn start(
    upstream: &str,
) -> std::io::Result<(Proxy, String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let proxy = Proxy::default();
    let task = tokio::spawn(
        proxy
            .clone()
            .serve(listener, upstream.trim_end_matches('/').to_owned()),
    );
    Ok((proxy, endpoint, task))
}

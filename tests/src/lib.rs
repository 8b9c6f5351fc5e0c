//! Test harness: one DynamoDB Local per test process (AWS's own jar), and per
//! test a fresh table (from template.yaml), a fault-injecting SDK client and a
//! local front on a free port, called over real HTTP.

use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use allotment::db::{Db, RetryPolicy};
use allotment::App;
use allotment_dev::dynamo_local::DynamoLocal;
use allotment_dev::faults::Faults;
use allotment_dev::front::{serve, Front};
use allotment_dev::{template, token};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

pub use allotment_dev::faults::Fault;

pub const SECRET: &[u8] = b"test-secret";

/// DynamoDB Local's endpoint: `DYNAMODB_ENDPOINT` if set, else one JVM
/// started for this test process on a free port, kept until it exits.
pub fn dynamo_endpoint() -> String {
    static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| {
            if let Ok(e) = std::env::var("DYNAMODB_ENDPOINT") {
                return Ok(e);
            }
            let (tx, rx) = mpsc::channel();
            // A thread that never ends owns the JVM: it dies with the process
            // (PR_SET_PDEATHSIG follows the starting thread).
            std::thread::spawn(move || match DynamoLocal::start(None) {
                Ok(local) => {
                    let _ = tx.send(Ok(local.endpoint.clone()));
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            });
            rx.recv().unwrap_or_else(|e| Err(e.to_string()))
        })
        .clone()
        .expect("DynamoDB Local")
}

/// Retries fast enough for tests: 6 attempts, 2 ms base, 40 ms cap.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(40),
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Bytes,
    pub body: Value,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.bytes)
        )
    }
}

pub struct TestApi {
    pub base: String,
    pub app: App,
    pub faults: Faults,
    /// Faults on the wire, when the API reaches DynamoDB through the proxy.
    pub proxy: Option<allotment_dev::proxy::Proxy>,
    pub table: String,
    http: Client<HttpConnector, Full<Bytes>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApi {
    /// A fresh table and front, with quick retries so fault tests stay fast.
    pub async fn start() -> Self {
        Self::with_retry(quick_retry()).await
    }

    pub async fn with_retry(retry: RetryPolicy) -> Self {
        Self::with_config(retry, allotment::idempotency::IdempotencyConfig::default()).await
    }

    pub async fn with_config(
        retry: RetryPolicy,
        idempotency: allotment::idempotency::IdempotencyConfig,
    ) -> Self {
        Self::with_app(retry, idempotency, |_| {}).await
    }

    /// A front whose handlers read Cognito's prefixed scopes (`SCOPE_PREFIX` in AWS).
    pub async fn with_scope_prefix(prefix: &str) -> Self {
        let prefix: std::sync::Arc<str> = prefix.into();
        Self::with_app(quick_retry(), Default::default(), move |app| {
            app.scope_prefix = prefix
        })
        .await
    }

    pub async fn with_app(
        retry: RetryPolicy,
        idempotency: allotment::idempotency::IdempotencyConfig,
        configure: impl FnOnce(&mut App),
    ) -> Self {
        Self::build(retry, idempotency, None, false, configure).await
    }

    /// The API reaching DynamoDB Local through the fault proxy
    /// ([`allotment_dev::proxy`]), with this attempt timeout on every call.
    pub async fn through_proxy(
        attempt_timeout: Duration,
        idempotency: allotment::idempotency::IdempotencyConfig,
    ) -> Self {
        Self::build(quick_retry(), idempotency, Some(attempt_timeout), false, |_| {}).await
    }

    /// A fresh table with its stream (as `make run` makes it), for the domain events' tests.
    pub async fn with_stream() -> Self {
        Self::build(quick_retry(), Default::default(), None, true, |_| {}).await
    }

    async fn build(
        retry: RetryPolicy,
        idempotency: allotment::idempotency::IdempotencyConfig,
        proxied: Option<Duration>,
        stream: bool,
        configure: impl FnOnce(&mut App),
    ) -> Self {
        let mut endpoint = dynamo_endpoint();
        let mut proxy = None;
        let mut config = allotment::local_config(&endpoint);
        if let Some(timeout) = proxied {
            let (handle, proxy_endpoint, _task) =
                allotment_dev::proxy::start(&endpoint).await.expect("proxy");
            endpoint = proxy_endpoint;
            proxy = Some(handle);
            config = allotment::local_config(&endpoint).timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            );
        }
        let table = format!("t{}", uuid::Uuid::new_v4().simple());
        let faults = Faults::default();
        let client =
            aws_sdk_dynamodb::Client::from_conf(config.interceptor(faults.clone()).build());
        template::ensure_table(&client, &table, stream)
            .await
            .expect("create table");
        let mut db = Db::new(client, table.as_str());
        db.retry = retry;
        let mut app = App::new(db);
        app.idempotency = idempotency;
        configure(&mut app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(serve(
            listener,
            Arc::new(Front {
                app: app.clone(),
                secret: SECRET.to_vec(),
            }),
        ));
        let http = Client::builder(TokioExecutor::new()).build_http();
        faults.reset_counts();
        Self {
            base,
            app,
            faults,
            proxy,
            table,
            http,
            server,
        }
    }

    pub fn token(&self, sub: &str, scope: &str) -> String {
        token::mint(SECRET, sub, scope, 3600, json!({}))
    }

    pub fn admin(&self) -> String {
        self.token("billing", "admin")
    }

    /// A JSON request with a bearer token.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(t) = token {
            headers.push(("authorization".to_owned(), format!("Bearer {t}")));
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, &headers, bytes).await
    }

    /// A JSON request with a bearer token and an Idempotency-Key.
    pub async fn call_with_key(
        &self,
        method: &str,
        path: &str,
        token: &str,
        key: &str,
        body: &[u8],
    ) -> Resp {
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), format!("Bearer {token}")),
            ("idempotency-key".to_owned(), key.to_owned()),
        ];
        self.raw(method, path, &headers, body.to_vec()).await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Resp {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        let resp = self.http.request(req).await.expect("HTTP call");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            bytes,
            body,
        }
    }

    /// Every item in the table (a Scan: tests only, never a request path).
    pub async fn all_items(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .app
                .db
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return out,
            }
        }
    }

    /// Items whose `pk` starts with `prefix`.
    pub async fn count_prefix(&self, prefix: &str) -> usize {
        self.all_items()
            .await
            .iter()
            .filter(|i| matches!(i.get("pk"), Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) if pk.starts_with(prefix)))
            .count()
    }
}

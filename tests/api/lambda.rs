//! The functions as Lambdas: every `events/` sample drives its handler
//! in-process, and the built binaries answer their samples under the Lambda
//! Runtime API emulator of `cargo lambda watch`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use allotment::routes::{dispatch, Route};
use allotment::routes::{NOT_FOUND, ROUTES};
use allotment_tests::TestApi;
use serde_json::{json, Value};

use crate::packs::namespace;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

fn all_routes() -> Vec<&'static Route> {
    ROUTES.iter().copied().chain(std::iter::once(&NOT_FOUND)).collect()
}

/// Every sample, in an order a deployment would see them, with the status it
/// gets once namespaces 123 and 124 exist. The payment samples name a payment
/// id no test creates (ids are server-made UUIDs): 404, and a per-item 404 in
/// the bulk update.
const SAMPLES: [(&str, u16); 26] = [
    ("put-namespace", 200),
    ("post-minutes", 201),
    ("get-minutes", 200),
    ("move-minutes", 202),
    ("put-work-period", 200),
    ("get-work-period", 200),
    ("post-payment", 201),
    ("post-payments-bulk", 200),
    ("patch-payment", 404),
    ("patch-payments-bulk", 200),
    ("get-payment", 404),
    ("list-payments", 200),
    // Gifts: a project and its wallet, a gift created, browsed, found, claimed, then deleted.
    ("put-project", 200),
    ("deposit-wallet", 200),
    ("get-project-wallets", 200),
    ("post-gift", 200),
    ("browse-gifts", 200),
    ("available-gifts", 200),
    ("claim-gift", 200),
    ("get-my-wallets", 200),
    ("delete-gift", 200),
    // Ferry: the seed's example migrated (product, customer, POST, GET).
    ("put-ferry-product", 200),
    ("put-ferry-customer", 200),
    ("post-ferry-subscriptions", 200),
    ("list-ferry-subscriptions", 200),
    ("not-found", 405),
];

fn expected_status(binary: &str) -> u16 {
    SAMPLES.iter().find(|(b, _)| *b == binary).map(|(_, s)| *s).unwrap_or_else(|| panic!("no expectation for {binary}"))
}

fn event(binary: &str) -> String {
    std::fs::read_to_string(repo_root().join("events").join(format!("{binary}.json"))).expect("events file")
}

async fn given_two_namespaces(api: &TestApi) {
    namespace(api, 123, None, 7).await;
    namespace(api, 124, None, 7).await;
}

/// The pipeline's `sam local invoke` job checks the answers against
/// dev/rie/samples.json: the same expectations as here.
#[test]
fn the_pipelines_sample_expectations_are_these() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(repo_root().join("dev/rie/samples.json")).unwrap()).unwrap();
    let theirs: Vec<(String, u64)> = file.as_array().unwrap().iter().map(|s| (s["binary"].as_str().unwrap().to_owned(), s["status"].as_u64().unwrap())).collect();
    let ours: Vec<(String, u64)> = SAMPLES.iter().map(|(b, s)| (b.to_string(), *s as u64)).collect();
    assert_eq!(theirs, ours);
}

#[test]
fn every_function_has_exactly_one_sample_event() {
    let mut events: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    events.sort();
    let mut binaries: Vec<String> = all_routes().iter().map(|r| r.binary.to_owned()).chain(["publish-events".to_owned()]).collect();
    binaries.sort();
    assert_eq!(events, binaries);
}

#[tokio::test]
async fn every_sample_event_drives_its_handler_in_process() {
    let api = TestApi::start().await;
    given_two_namespaces(&api).await;
    let functions = allotment_dev::template::routes().unwrap();
    let mut recorded = serde_json::Map::new();
    for (binary, _) in SAMPLES {
        let route = all_routes().into_iter().find(|r| r.binary == binary).unwrap();
        let request = lambda_http::request::from_str(&event(binary)).expect("a valid HTTP API v2 event");
        api.faults.take_keys_seen();
        api.faults.take_calls_seen();
        let response = dispatch(route, api.app.clone(), request).await;
        // Every DynamoDB call it made, for the offline IAM check (make test
        // evaluates target/iam/route-calls.json against its role).
        let mut calls = api.faults.take_calls_seen();
        calls.dedup();
        if let Some(f) = functions.iter().find(|f| f.binary == binary) {
            recorded.insert(f.function.clone(), json!({"route": binary, "calls": calls}));
        }
        assert_eq!(response.status().as_u16(), expected_status(binary), "{binary}: {:?}", response.body());
        // What it touched is inside what its IAM policy allows (dynamodb:LeadingKeys).
        let seen = api.faults.take_keys_seen();
        assert!(!seen.is_empty() || route.keys.is_empty(), "{binary} touched no key");
        for key in seen {
            assert!(route.keys.iter().any(|p| key.starts_with(p)), "{binary} touched {key}, outside {:?}", route.keys);
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    std::fs::create_dir_all(target.join("iam")).unwrap();
    let file = json!({"about": "Recorded by tests/api/lambda.rs (every_sample_event_drives_its_handler_in_process): each function's DynamoDB calls on its sample event, as IAM authorizes them", "functions": recorded});
    std::fs::write(target.join("iam/route-calls.json"), serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let moved = api.call("GET", "/namespaces/124/minutes?include_expired=true", Some(&api.admin()), None).await;
    assert_eq!(moved.body["packs"][0]["purchase_xid"], "46952fe69bebc1a4de10b2b4ff439d0c");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A function binary as the Lambda emulator on `port` runs it (the variables
/// Lambda sets); callers add the function's own and where its log goes.
fn function_process(binary: &str, port: u16) -> Command {
    let mut command = Command::new(binary_path(binary));
    command
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stderr(Stdio::null());
    command
}

fn binary_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(path.is_file(), "{} is not built: run `cargo build -p allotment-functions` (make test does)", path.display());
    path
}

async fn invoke(port: u16, payload: &str) -> Value {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let uri = format!("http://127.0.0.1:{port}/2015-03-31/functions/_/invocations");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let req = hyper::Request::post(&uri)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(payload.to_owned())))
            .unwrap();
        match client.request(req).await {
            Ok(resp) => {
                use http_body_util::BodyExt;
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                return serde_json::from_slice(&body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}));
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("emulator unreachable: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_function_binaries_answer_their_events_under_the_lambda_emulator() {
    let api = TestApi::start().await;
    given_two_namespaces(&api).await;
    let port = allotment_dev::dynamo_local::free_port().unwrap();
    let emulator = Command::new("cargo")
        .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo lambda (pip install cargo-lambda; make test does)");
    let _emulator = Killed(emulator);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "cargo lambda watch did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs_dir = std::env::temp_dir().join(format!("allotment-fn-logs-{port}"));
    std::fs::create_dir_all(&logs_dir).unwrap();
    for (binary, _) in SAMPLES {
        let log_file = std::fs::File::create(logs_dir.join(format!("{binary}.log"))).unwrap();
        let function = function_process(binary, port)
            .env("TABLE_NAME", &api.table)
            .env("DYNAMODB_ENDPOINT", allotment_tests::dynamo_endpoint())
            .stdout(Stdio::from(log_file))
            .spawn()
            .expect("start function");
        let _function = Killed(function);
        let answer = tokio::time::timeout(Duration::from_secs(60), invoke(port, &event(binary)))
            .await
            .unwrap_or_else(|_| panic!("{binary} did not answer its invocation within 60 s"));
        Emf::await_flushes(&logs_dir.join(format!("{binary}.log")), 1).await;
        assert_eq!(answer["statusCode"], expected_status(binary), "{binary}: {answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        match binary {
            "post-minutes" => assert_eq!(body[0]["purchase_xid"], "46952fe69bebc1a4de10b2b4ff439d0c"),
            "not-found" => assert_eq!(body["error"]["code"], 405),
            "put-namespace" => assert_eq!(body["name"], "acme"),
            // 250.00 × 2 / 5, two places on the wire.
            "post-payment" => assert!(answer["body"].as_str().unwrap_or_default().contains("\"amount\":100.00"), "{answer}"),
            "get-work-period" => assert_eq!(body["paymentStatus"], "pending"),
            "available-gifts" => assert_eq!(body["gifts"], json!([{"id": 1}])),
            "get-my-wallets" => assert_eq!(body["wallets"][0]["balance"], 100),
            "post-ferry-subscriptions" => assert_eq!((body["success"].as_array().map(Vec::len), body["failures"].as_array().map(Vec::len)), (Some(1), Some(0)), "{body}"),
            "list-ferry-subscriptions" => assert_eq!(body["items"][0]["technical_subscription"]["type"], "domain"),
            _ => {}
        }
    }
    assert_eq!(api.count_prefix("PACK#").await, 1, "the binaries wrote to DynamoDB Local");

    // Each function's metrics: CloudWatch EMF documents in its log, one
    // flush per invocation, naming the request (API Gateway's id).
    for (binary, status) in SAMPLES {
        let route = all_routes().into_iter().find(|r| r.binary == binary).unwrap();
        let emf = Emf::read(&logs_dir.join(format!("{binary}.log")));
        emf.check_documents(route.name);
        assert_eq!(emf.sum("ColdStart", &[]), 1.0, "{binary}: one cold start\n{}", emf.raw);
        assert_eq!(emf.sum("Requests", &[]), 1.0, "{binary}\n{}", emf.raw);
        assert_eq!(emf.values("Latency", &[]).len(), 1, "{binary}\n{}", emf.raw);
        assert_eq!(emf.unit("Latency"), Some("Milliseconds".into()), "{binary}");
        assert_eq!(emf.unit("Requests"), Some("Count".into()), "{binary}");
        assert_eq!(emf.sum("ClientErrors", &[]), if (400..500).contains(&status) { 1.0 } else { 0.0 }, "{binary}\n{}", emf.raw);
        assert_eq!(emf.sum("ServerErrors", &[]), 0.0, "{binary}");
        let (read, write) = (emf.sum("ConsumedReadCapacity", &[]), emf.sum("ConsumedWriteCapacity", &[]));
        // A write route consumed write units, reported as such.
        if binary.starts_with("post") || binary.starts_with("put") || binary.starts_with("deposit") || binary.starts_with("claim") || binary == "move-minutes" {
            assert!(write > 0.0, "{binary}: no write capacity\n{}", emf.raw);
        }
        // DynamoDB Local reports nothing for an item not found: the 404s,
        // and the bulk update whose one payment does not exist.
        assert!(read + write > 0.0 || status >= 400 || binary == "patch-payments-bulk", "{binary} consumed no capacity\n{}", emf.raw);
        let business: &[(&str, &[(&str, &str)], f64)] = match binary {
            "post-minutes" => &[("PacksProvisioned", &[], 1.0)],
            "move-minutes" => &[("PacksMoved", &[], 1.0)],
            "post-payment" => &[("PaymentsCreated", &[("Status", "scheduled")], 1.0)],
            "deposit-wallet" => &[("Deposits", &[], 1.0), ("DepositedUnits", &[], 1000.0)],
            "claim-gift" => &[("GiftClaims", &[("Outcome", "200")], 1.0)],
            "post-ferry-subscriptions" => &[("SubscriptionsMigrated", &[], 1.0)],
            _ => &[],
        };
        for (name, labels, value) in business {
            assert_eq!(emf.sum(name, labels), *value, "{binary}: {name}\n{}", emf.raw);
        }
    }

    // The publisher, on its stream sample (a pack provisioned, then moved),
    // publishing to the stand-in bus: both events accepted, no failed record.
    let bus = allotment_dev::eventbus::EventBus::start(Box::new(|_, _| false)).await;
    let function = function_process("publish-events", port)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &bus.url)
        .env("EVENT_BUS_NAME", "allotment-events")
        .stdout(Stdio::from(std::fs::File::create(logs_dir.join("publish-events.log")).unwrap()))
        .spawn()
        .expect("start the publisher");
    let _function = Killed(function);
    let answer = tokio::time::timeout(Duration::from_secs(60), invoke(port, &event("publish-events")))
        .await
        .unwrap_or_else(|_| panic!("publish-events did not answer its invocation within 60 s"));
    Emf::await_flushes(&logs_dir.join("publish-events.log"), 1).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let kinds: Vec<String> = bus.accepted().iter().map(|e| e["DetailType"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(kinds, ["PackProvisioned", "PackMoved"]);
    assert!(bus.accepted().iter().all(|e| e["EventBusName"] == "allotment-events" && e["Source"] == "allotment"));
    let emf = Emf::read(&logs_dir.join("publish-events.log"));
    emf.check_documents("PublishEvents");
    assert_eq!(emf.sum("EventsPublished", &[]), 2.0, "{}", emf.raw);
    assert_eq!(emf.sum("EventsDeadLettered", &[]), 0.0, "{}", emf.raw);

    drop(_function); // the publisher stops asking for invocations
    // A keyed request whose first DynamoDB write is throttled, then its
    // replay under another request id: the key's outcomes, the throttle and
    // its retry, each document naming its own request.
    let (proxy, proxy_url, _proxy_task) = allotment_dev::proxy::start(&allotment_tests::dynamo_endpoint()).await.unwrap();
    proxy.inject("PutItem", allotment_dev::proxy::WireFault::Throttle, 1);
    let mut keyed: Value = serde_json::from_str(&event("post-minutes")).unwrap();
    keyed["headers"]["idempotency-key"] = json!("emf-check-1");
    keyed["body"] = json!(keyed["body"].as_str().unwrap_or_default().replace("46952fe69bebc1a4de10b2b4ff439d0c", "emf-check-pack"));
    let mut replay = keyed.clone();
    replay["requestContext"]["requestId"] = json!("emf-check-replay");
    let keyed_log = logs_dir.join("post-minutes-keyed.log");
    // Traces on: OTLP/HTTP to a collector stand-in.
    let collector = Collector::start().await;
    let function = function_process("post-minutes", port)
        .env("METRICS_SERVICE", "allotment-test")
        .env("TABLE_NAME", &api.table)
        .env("DYNAMODB_ENDPOINT", &proxy_url)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)
        .stdout(Stdio::from(std::fs::File::create(&keyed_log).unwrap()))
        .spawn()
        .expect("start function");
    let function = Killed(function);
    for sent in [&keyed, &replay] {
        let answer = tokio::time::timeout(Duration::from_secs(60), invoke(port, &sent.to_string())).await.expect("an answer within 60 s");
        assert_eq!(answer["statusCode"], 201, "{answer}");
    }
    Emf::await_flushes(&keyed_log, 2).await;
    drop(function);
    let emf = Emf::read(&keyed_log);
    emf.check_documents("PostMinutes");
    assert!(emf.docs.iter().all(|d| d["Service"] == "allotment-test"), "{}", emf.raw);
    assert_eq!(emf.sum("Requests", &[]), 2.0, "{}", emf.raw);
    assert_eq!(emf.sum("ColdStart", &[]), 1.0, "{}", emf.raw);
    assert_eq!(emf.sum("IdempotencyKeys", &[("Outcome", "ran")]), 1.0, "{}", emf.raw);
    assert_eq!(emf.sum("IdempotencyKeys", &[("Outcome", "replayed")]), 1.0, "{}", emf.raw);
    assert_eq!(emf.sum("PacksProvisioned", &[]), 1.0, "the replay provisions nothing\n{}", emf.raw);
    assert_eq!(emf.sum("DynamoDBThrottles", &[]), 1.0, "{}", emf.raw);
    assert_eq!(emf.sum("DynamoDBRetries", &[]), 1.0, "{}", emf.raw);
    let replayed = emf.docs.iter().find(|d| d["IdempotencyKeys"] == 1 && d["Outcome"] == "replayed").cloned().unwrap_or_default();
    assert_eq!(replayed["RequestId"], "emf-check-replay", "{}", emf.raw);

    // Its traces reached the collector before the invocation ended: OTLP
    // protobuf, with the request's and the DynamoDB calls' spans, in the
    // trace of Lambda's X-Ray segment (the emulator's trace header).
    let posts = collector.received();
    assert!(!posts.is_empty(), "no traces exported");
    assert!(posts.iter().all(|(path, kind, _)| path == "/v1/traces" && kind == "application/x-protobuf"), "{:?}", posts.iter().map(|p| (&p.0, &p.1)).collect::<Vec<_>>());
    let sent: Vec<u8> = posts.iter().flat_map(|(_, _, body)| body.clone()).collect();
    let has = |needle: &[u8]| sent.windows(needle.len()).any(|w| w == needle);
    for name in ["POST /namespaces/{id}/minutes", "DynamoDB.PutItem", "idempotency.begin", "handler", "emf-check-replay"] {
        assert!(has(name.as_bytes()), "no {name} in the exported spans");
    }
    let log = std::fs::read_to_string(&keyed_log).unwrap();
    let xray = log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).flat_map(|v| v["spans"].as_array().cloned().unwrap_or_default()).find_map(|s| s["xrayTraceId"].as_str().map(str::to_owned)).expect("the invocation's X-Ray trace header in the log");
    let root = xray.split(';').find_map(|p| p.strip_prefix("Root=1-")).expect("a Root").replace('-', "");
    let trace_id: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&root[2 * i..2 * i + 2], 16).unwrap()).collect();
    assert!(has(&trace_id), "the spans are not in the X-Ray segment's trace {root}");

    // Each request left one structured JSON log line: route, status, latency, caller.
    let log = std::fs::read_to_string(logs_dir.join("post-minutes.log")).unwrap();
    let raw: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
    // Every line of the request carries its correlation id: the event's requestContext.requestId.
    // (A line inside a stage — the handler's, a DynamoDB call's — names it among its spans.)
    let of_request: Vec<&Value> = raw.iter().filter(|v| v["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "request"))).collect();
    assert!(of_request.len() >= 2, "{log}");
    assert!(of_request.iter().any(|v| v["span"]["name"] == "handler"), "a line from inside the handler: {log}");
    let request_id = |v: &Value| v["spans"].as_array().and_then(|s| s.iter().find_map(|s| s["request_id"].as_str().map(str::to_owned)));
    assert!(of_request.iter().all(|v| request_id(v).as_deref() == Some("c6af9ac6-7b61-11e6-9a41-93e8deadbeef")), "{log}");
    let outside: Vec<&Value> = raw.iter().filter(|v| v.get("_aws").is_none() && !of_request.contains(v) && v["span"]["name"] != "Lambda runtime invoke" && v.get("spans").is_some()).collect();
    assert!(outside.is_empty(), "lines of the invocation outside its request: {outside:?}");
    let lines: Vec<Value> = raw
        .iter()
        .map(|v| if v["fields"].is_object() { v["fields"].clone() } else { v.clone() })
        .filter(|f| f["message"] == "request")
        .collect();
    assert_eq!(lines.len(), 1, "one request line: {log}");
    assert_eq!(lines[0]["route"], "POST /namespaces/{id}/minutes");
    assert_eq!(lines[0]["status"], 201);
    assert_eq!(lines[0]["sub"], "billing-system");
    assert!(lines[0]["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{}", lines[0]);
    let _ = std::fs::remove_dir_all(&logs_dir);
}

/// The CloudWatch Embedded Metric Format documents of one function's log.
struct Emf {
    raw: String,
    docs: Vec<Value>,
}

impl Emf {
    fn read(path: &std::path::Path) -> Self {
        let raw = std::fs::read_to_string(path).unwrap_or_default();
        let docs = raw.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v.get("_aws").is_some()).collect();
        Emf { raw, docs }
    }

    /// Every document is EMF as CloudWatch reads it: a timestamp, the
    /// namespace, the dimensions Service and Function (this function) with
    /// their values, every metric named with a unit and a numeric value, and
    /// Lambda's request id; every one flushed at an invocation's end names
    /// its request (the cold-start one is written before the request is
    /// read; the publisher's invocations are stream batches, not requests).
    /// Waits until `invocations` invocations' metrics are in the log: the
    /// runtime flushes them after it has sent the answer, so the answer
    /// alone does not say they are written.
    async fn await_flushes(path: &std::path::Path, invocations: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let emf = Emf::read(path);
            // Every invocation flushes a Requests count (the publisher: its batch's tally).
            let flushed = emf.docs.iter().filter(|d| d.get("Requests").is_some() || d.get("EventsPublished").is_some()).count();
            if flushed >= invocations {
                return;
            }
            assert!(Instant::now() < deadline, "{invocations} invocations' metrics not flushed in 30 s: {}", emf.raw);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn check_documents(&self, function: &str) {
        assert!(!self.docs.is_empty(), "no metric documents: {}", self.raw);
        for doc in &self.docs {
            let aws = &doc["_aws"];
            assert!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{doc}");
            let directive = &aws["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "Allotment", "{doc}");
            let dims: Vec<&str> = directive["Dimensions"][0].as_array().map(|d| d.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            assert_eq!(&dims[..2], ["Service", "Function"], "{doc}");
            assert!(dims.iter().all(|d| doc[*d].is_string()), "every dimension has its value: {doc}");
            assert_eq!(doc["Function"], function, "{doc}");
            let metrics = directive["Metrics"].as_array().cloned().unwrap_or_default();
            assert!(!metrics.is_empty(), "{doc}");
            for m in metrics {
                let name = m["Name"].as_str().unwrap_or_default();
                assert!(m["Unit"].is_string(), "{name} has a unit: {doc}");
                let v = &doc[name];
                assert!(v.is_number() || v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_number)), "{name}: {doc}");
            }
            assert!(doc["LambdaRequestId"].as_str().is_some_and(|id| !id.is_empty()), "{doc}");
            if doc.get("ColdStart").is_none() && function != "PublishEvents" {
                assert!(doc["RequestId"].as_str().is_some_and(|id| !id.is_empty()), "{doc}");
            }
        }
    }

    /// Values of metric `name` in documents whose dimensions are Service,
    /// Function and exactly `labels` (with those values).
    fn values(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let mut out = Vec::new();
        for doc in &self.docs {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            if !directive["Metrics"].as_array().is_some_and(|m| m.iter().any(|m| m["Name"] == name)) {
                continue;
            }
            let dims = directive["Dimensions"][0].as_array().map(Vec::len).unwrap_or_default();
            if dims != 2 + labels.len() || labels.iter().any(|(k, v)| doc[*k] != *v) {
                continue;
            }
            match &doc[name] {
                Value::Array(values) => out.extend(values.iter().filter_map(Value::as_f64)),
                v => out.extend(v.as_f64()),
            }
        }
        out
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.values(name, labels).iter().sum()
    }

    fn unit(&self, name: &str) -> Option<String> {
        self.docs.iter().flat_map(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().cloned().unwrap_or_default()).find(|m| m["Name"] == name).and_then(|m| m["Unit"].as_str().map(str::to_owned))
    }
}

/// An OTLP/HTTP collector stand-in: records every request's path, content
/// type and body, and answers 200.
struct Collector {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>,
}

impl Collector {
    async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut stream = tokio::io::BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                        let (mut length, mut kind) = (0usize, String::new());
                        loop {
                            let mut header = String::new();
                            if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            let (name, value) = header.split_once(':').unwrap_or((header, ""));
                            match name.to_ascii_lowercase().as_str() {
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                "content-type" => kind = value.trim().to_owned(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; length];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        sink.lock().unwrap().push((path, kind, body));
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if stream.get_mut().write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Collector { url, received }
    }

    fn received(&self) -> Vec<(String, String, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }
}

/// `sam local invoke`, as AWS runs it: every binary under the Runtime
/// Interface Emulator SAM CLI ships (the one inside its invoke container),
/// natively, with the environment SAM CLI computes from template.yaml
/// (dev/rie/invoke.py), each on its sample event. Each emulator gets its own
/// ports (its runtime API's too), so concurrent runs never meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_function_binaries_answer_their_events_under_aws_runtime_interface_emulator() {
    let api = TestApi::start().await;
    given_two_namespaces(&api).await;
    let bus = allotment_dev::eventbus::EventBus::start(Box::new(|_, _| false)).await;
    let mut jobs: Vec<Value> = SAMPLES
        .iter()
        .map(|(binary, status)| json!({"binary": binary, "event": repo_root().join("events").join(format!("{binary}.json")), "expect": status}))
        .collect();
    jobs.push(json!({"binary": "publish-events", "event": repo_root().join("events/publish-events.json"), "expect": "batch", "env": {"EVENTS_ENDPOINT": bus.url}}));
    let batch = std::env::temp_dir().join(format!("allotment-rie-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&batch, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let python = repo_root().join(".venv/bin/python3");
    assert!(python.is_file(), "{} missing: make test creates .venv with aws-sam-cli", python.display());
    let debug = binary_path("put-namespace").parent().unwrap().to_path_buf();
    let run = tokio::process::Command::new(python)
        .arg(repo_root().join("dev/rie/invoke.py"))
        .args(["--batch", &batch.to_string_lossy(), "--bin-dir", &debug.to_string_lossy()])
        .env("TABLE_NAME", &api.table)
        .env("DYNAMODB_ENDPOINT", allotment_tests::dynamo_endpoint())
        .output()
        .await
        .expect("python3");
    let _ = std::fs::remove_file(&batch);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let answers: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(answers.len(), jobs.len(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    for answer in &answers {
        assert_eq!(answer["ok"], true, "{answer}");
    }
    assert!(run.status.success(), "{stdout}");
    // The same writes as under cargo lambda: the sample pack, then its events on the bus.
    assert_eq!(api.count_prefix("PACK#").await, 1);
    let post = answers.iter().find(|a| a["binary"] == "post-minutes").unwrap();
    assert!(post["answer"]["body"].as_str().is_some_and(|b| b.contains("46952fe69bebc1a4de10b2b4ff439d0c")), "{post}");
    let kinds: Vec<String> = bus.accepted().iter().map(|e| e["DetailType"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(kinds, ["PackProvisioned", "PackMoved"]);
}

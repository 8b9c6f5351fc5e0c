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
    for (binary, _) in SAMPLES {
        let route = all_routes().into_iter().find(|r| r.binary == binary).unwrap();
        let request = lambda_http::request::from_str(&event(binary)).expect("a valid HTTP API v2 event");
        api.faults.take_keys_seen();
        let response = dispatch(route, api.app.clone(), request).await;
        assert_eq!(response.status().as_u16(), expected_status(binary), "{binary}: {:?}", response.body());
        // What it touched is inside what its IAM policy allows (dynamodb:LeadingKeys).
        let seen = api.faults.take_keys_seen();
        assert!(!seen.is_empty() || route.keys.is_empty(), "{binary} touched no key");
        for key in seen {
            assert!(route.keys.iter().any(|p| key.starts_with(p)), "{binary} touched {key}, outside {:?}", route.keys);
        }
    }
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
        let function = Command::new(binary_path(binary))
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("TABLE_NAME", &api.table)
            .env("DYNAMODB_ENDPOINT", allotment_tests::dynamo_endpoint())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::null())
            .spawn()
            .expect("start function");
        let _function = Killed(function);
        let answer = tokio::time::timeout(Duration::from_secs(60), invoke(port, &event(binary)))
            .await
            .unwrap_or_else(|_| panic!("{binary} did not answer its invocation within 60 s"));
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

    // The publisher, on its stream sample (a pack provisioned, then moved),
    // publishing to the stand-in bus: both events accepted, no failed record.
    let bus = allotment_dev::eventbus::EventBus::start(Box::new(|_, _| false)).await;
    let function = Command::new(binary_path("publish-events"))
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &bus.url)
        .env("EVENT_BUS_NAME", "allotment-events")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the publisher");
    let _function = Killed(function);
    let answer = tokio::time::timeout(Duration::from_secs(60), invoke(port, &event("publish-events")))
        .await
        .unwrap_or_else(|_| panic!("publish-events did not answer its invocation within 60 s"));
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let kinds: Vec<String> = bus.accepted().iter().map(|e| e["DetailType"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(kinds, ["PackProvisioned", "PackMoved"]);
    assert!(bus.accepted().iter().all(|e| e["EventBusName"] == "allotment-events" && e["Source"] == "allotment"));

    // Each request left one structured JSON log line: route, status, latency, caller.
    let log = std::fs::read_to_string(logs_dir.join("post-minutes.log")).unwrap();
    let raw: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
    // Every line of the request carries its correlation id: the event's requestContext.requestId.
    let of_request: Vec<&Value> = raw.iter().filter(|v| v["span"]["name"] == "request").collect();
    assert!(!of_request.is_empty(), "{log}");
    assert!(of_request.iter().all(|v| v["span"]["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"), "{log}");
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

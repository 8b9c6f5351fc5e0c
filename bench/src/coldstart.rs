//! Scenario 7: cold starts. A stub Lambda Runtime API hands each freshly
//! exec'd binary one event (its `events/` sample) and notes when the answer
//! comes back: exec → first response, the whole of what a cold invocation
//! costs. The functions load their config the way they do in AWS (environment
//! credentials, `aws_config` defaults), pointed at DynamoDB Local through
//! `AWS_ENDPOINT_URL_DYNAMODB`.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allotment::routes::{NOT_FOUND, ROUTES};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::Env;

pub struct ColdStart {
    pub binary: String,
    pub median_ms: f64,
    /// Median of exec → the runtime's first poll for an event: start-up alone.
    pub init_ms: f64,
    /// Median of the same event answered again by the same process.
    pub warm_ms: f64,
    /// The status the sample got (the API answer inside the Lambda response).
    pub status: u16,
    pub stripped_bytes: u64,
}

pub struct ColdStarts {
    pub functions: Vec<ColdStart>,
    pub hello_ms: f64,
    pub hello_init_ms: f64,
    pub hello_warm_ms: f64,
    pub hello_bytes: u64,
    /// The baseline users compare against: `aws_config::load_defaults`, the
    /// SDK's default HTTPS client, one GetItem per event (`baseline-lambda`).
    pub baseline: Medians,
    pub baseline_bytes: u64,
    pub peak_rss_kib: u64,
    /// Every function's peak resident set answering a body just under the
    /// 6 MB limit (the worst of two hostile shapes: an array of 2.9 million
    /// zeros, and one 5.8 MB string), KiB, with the status it answered.
    pub hostile_peaks: Vec<(String, u64, u16)>,
    /// DynamoDB Local's own share of a first request: a raw GetItem on a
    /// fresh connection and on a pooled one (medians, ms).
    pub ddb_fresh_connection_ms: f64,
    pub ddb_pooled_connection_ms: f64,
}

/// Medians over several cold starts of one binary, ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Medians {
    /// exec → first response.
    pub cold_ms: f64,
    /// exec → first poll for an event (start-up alone).
    pub init_ms: f64,
    /// The same event answered again, warm.
    pub warm_ms: f64,
}

/// Starts `binary` `starts` times with `event`; the medians.
async fn medians(env: &Env, binary: &Path, event: &[u8], starts: usize) -> Result<Medians, String> {
    let (mut times, mut inits, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..starts {
        let s = start_once(env, binary, event.to_vec()).await?;
        if s.answer["statusCode"] != 200 {
            return Err(format!("{} answered {}", binary.display(), s.answer));
        }
        times.push(s.ms);
        inits.push(s.init_ms);
        warm.push(s.warm_ms);
    }
    Ok(Medians { cold_ms: median(times), init_ms: median(inits), warm_ms: median(warm) })
}

/// Serves the same event twice — a cold invocation, then a warm one — and
/// reports each answer with the moment it arrived.
struct Stub {
    events: Mutex<Vec<Vec<u8>>>,
    /// When the runtime first asked for an event: its start-up is over.
    first_poll: std::sync::OnceLock<Instant>,
    answers: tokio::sync::mpsc::UnboundedSender<(Instant, Vec<u8>)>,
}

fn response(status: u16, body: Vec<u8>) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r
}

async fn handle(stub: Arc<Stub>, req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.method() == hyper::Method::GET && path.ends_with("/runtime/invocation/next") {
        let _ = stub.first_poll.set(Instant::now());
        let event = stub.events.lock().ok().and_then(|mut e| e.pop());
        let Some(event) = event else {
            // Two invocations per process: later polls wait until it is killed.
            std::future::pending::<()>().await;
            return Ok(response(500, Vec::new()));
        };
        let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(30);
        let mut r = response(200, event);
        let h = r.headers_mut();
        h.insert("lambda-runtime-aws-request-id", hyper::header::HeaderValue::from_static("bench-request-1"));
        h.insert("lambda-runtime-deadline-ms", hyper::header::HeaderValue::from(deadline.as_millis() as u64));
        h.insert(
            "lambda-runtime-invoked-function-arn",
            hyper::header::HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:bench"),
        );
        h.insert("lambda-runtime-trace-id", hyper::header::HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
        return Ok(r);
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let body = if path.ends_with("/response") { body } else { format!("{{\"error\": {}}}", String::from_utf8_lossy(&body)).into_bytes() };
    let _ = stub.answers.send((Instant::now(), body));
    Ok(response(202, b"{}".to_vec()))
}

struct Started {
    /// exec → first answer.
    ms: f64,
    /// exec → first poll for an event.
    init_ms: f64,
    /// first answer → second answer: the same event, warm.
    warm_ms: f64,
    answer: Value,
    peak_rss_kib: u64,
}

/// Execs `binary`, gives it `event`, and times exec → its response.
async fn start_once(env: &Env, binary: &Path, event: Vec<u8>) -> Result<Started, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stub = Arc::new(Stub { events: Mutex::new(vec![event.clone(), event]), first_poll: Default::default(), answers: tx });
    let polled = stub.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let stub = stub.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(stub.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    let home = std::env::temp_dir().join("allotment-bench-home");
    let _ = std::fs::create_dir_all(&home);
    let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("HOME", &home)
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_SESSION_TOKEN", "local")
        .env("AWS_ENDPOINT_URL_DYNAMODB", &env.endpoint)
        .env("TABLE_NAME", &env.table)
        .stdin(Stdio::null())
        .stdout(if std::env::var_os("BENCH_FUNCTION_LOGS").is_some() { Stdio::inherit() } else { Stdio::null() })
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let first = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    let peak_rss_kib = child.id().map(peak_rss).unwrap_or(0);
    let second = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    let _ = child.kill().await;
    server.abort();
    let (t1, answer) = first.map_err(|_| format!("{name} did not answer within 30 s"))?.ok_or(format!("{name} exited before answering"))?;
    let (t2, _) = second.map_err(|_| format!("{name} did not answer twice"))?.ok_or(format!("{name} exited"))?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    let init_ms = polled.first_poll.get().map(|t| (*t - started).as_secs_f64() * 1000.0).unwrap_or(f64::NAN);
    Ok(Started { ms: (t1 - started).as_secs_f64() * 1000.0, init_ms, warm_ms: (t2 - t1).as_secs_f64() * 1000.0, answer, peak_rss_kib })
}

/// Each function's peak memory for the largest bodies a caller may send: its
/// own sample event with the body replaced by 5.8 MB (an array of zeros, then
/// one long string), each to a fresh process. Lambda gives these functions
/// 128 MB; the target is half.
async fn hostile_peaks(env: &Env, bin_dir: &Path) -> Result<Vec<(String, u64, u16)>, String> {
    let zeros = format!("[{}0]", "0,".repeat(2_900_000));
    let string = format!("{{\"x\": \"{}\"}}", "a".repeat(5_800_000));
    let mut out = Vec::new();
    for route in ROUTES.iter().copied().chain(std::iter::once(&NOT_FOUND)) {
        let mut event: Value = serde_json::from_slice(&std::fs::read(events_dir().join(format!("{}.json", route.binary))).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        if let Some(headers) = event["headers"].as_object_mut() {
            headers.insert("content-type".into(), Value::String("application/json".into()));
        }
        let (mut worst, mut status) = (0, 0);
        for body in [&zeros, &string] {
            event["body"] = Value::String(body.clone());
            let s = start_once(env, &bin_dir.join(route.binary), serde_json::to_vec(&event).map_err(|e| e.to_string())?).await?;
            let answered = s.answer["statusCode"].as_u64().unwrap_or(0) as u16;
            if answered == 0 || answered >= 500 {
                return Err(format!("{} answered a large body with {}", route.binary, s.answer["statusCode"]));
            }
            if s.peak_rss_kib >= worst {
                (worst, status) = (s.peak_rss_kib, answered);
            }
        }
        out.push((route.binary.to_owned(), worst, status));
    }
    Ok(out)
}

/// VmHWM: the process's peak resident set, in KiB.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Size of the binary once stripped of symbols, as it would be shipped.
///
/// `strip -o` reads the binary in place and writes only the stripped image,
/// next to the binary (the build's own disk), so a 200 MB debug binary is
/// never copied; the output is removed once measured.
fn stripped_size(binary: &Path) -> Result<u64, String> {
    let mut out = binary.as_os_str().to_owned();
    out.push(format!(".stripped-{}", uuid::Uuid::new_v4().simple()));
    let out = PathBuf::from(out);
    let result = std::process::Command::new("strip").arg("-o").arg(&out).arg(binary).output();
    let size = std::fs::metadata(&out).map(|m| m.len());
    let _ = std::fs::remove_file(&out);
    let result = result.map_err(|e| format!("strip: {e}"))?;
    if !result.status.success() {
        return Err(format!("strip {} failed: {}", binary.display(), String::from_utf8_lossy(&result.stderr).trim()));
    }
    size.map_err(|e| format!("{}: {e}", out.display()))
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

pub async fn measure(env: &Env, bin_dir: &Path, starts: usize) -> Result<ColdStarts, String> {
    // The samples' data: namespaces 123 and 124 (one owner) and their work period.
    for ns in [123, 124] {
        env.expect("PUT", &format!("/namespaces/{ns}"), json!({"name": "acme", "owner_id": 7}).to_string().into_bytes(), 200).await?;
    }
    let wp = json!({"resourceBookingId": "rb-7", "userHandle": "alice", "startDate": "2026-11-16", "endDate": "2026-11-22",
        "daysWorked": 10, "memberRate": 250.00, "customerRate": 310.50, "billingAccountId": 80000071});
    env.expect("PUT", "/work-periods/wp-2026-47", wp.to_string().into_bytes(), 200).await?;

    let mut functions = Vec::new();
    for route in ROUTES.iter().copied().chain(std::iter::once(&NOT_FOUND)) {
        let binary = bin_dir.join(route.binary);
        let event = std::fs::read(events_dir().join(format!("{}.json", route.binary))).map_err(|e| format!("{}: {e}", route.binary))?;
        let (mut times, mut inits, mut warm) = (Vec::new(), Vec::new(), Vec::new());
        let mut status = 0;
        for _ in 0..starts {
            let s = start_once(env, &binary, event.clone()).await?;
            status = s.answer["statusCode"].as_u64().unwrap_or(0) as u16;
            if status == 0 || status >= 500 {
                return Err(format!("{} answered {}", route.binary, s.answer));
            }
            times.push(s.ms);
            inits.push(s.init_ms);
            warm.push(s.warm_ms);
        }
        functions.push(ColdStart {
            binary: route.binary.to_owned(),
            median_ms: median(times),
            init_ms: median(inits),
            warm_ms: median(warm),
            status,
            stripped_bytes: stripped_size(&binary)?,
        });
    }
    let hello = bin_dir.join("hello-lambda");
    let event = std::fs::read(events_dir().join("get-minutes.json")).map_err(|e| e.to_string())?;
    let hello_m = medians(env, &hello, &event, starts).await?;
    let baseline_bin = bin_dir.join("baseline-lambda");
    let baseline = medians(env, &baseline_bin, &event, starts).await?;

    // Peak memory of a function serving a 1000-pack request.
    let mut big: Value = serde_json::from_slice(&std::fs::read(events_dir().join("post-minutes.json")).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let packs: Vec<Value> =
        (0..1000).map(|i| json!({"number_of_minutes": 10000, "expires_at": "2031-01-01", "purchase_xid": format!("{}-{i}", &run[..8])})).collect();
    big["body"] = Value::String(json!({"packs": packs}).to_string());
    let s = start_once(env, &bin_dir.join("post-minutes"), serde_json::to_vec(&big).map_err(|e| e.to_string())?).await?;
    if s.answer["statusCode"] != 201 {
        return Err(format!("1000-pack request answered {}", s.answer["statusCode"]));
    }
    let hostile_peaks = hostile_peaks(env, bin_dir).await?;
    let (fresh, pooled) = connection_cost(env, 200).await?;
    Ok(ColdStarts {
        functions,
        hello_ms: hello_m.cold_ms,
        hello_init_ms: hello_m.init_ms,
        hello_warm_ms: hello_m.warm_ms,
        hello_bytes: stripped_size(&hello)?,
        baseline,
        baseline_bytes: stripped_size(&baseline_bin)?,
        peak_rss_kib: s.peak_rss_kib,
        hostile_peaks,
        ddb_fresh_connection_ms: fresh,
        ddb_pooled_connection_ms: pooled,
    })
}

/// The same raw GetItem (plain HTTP, no SDK) sent `n` times on a fresh
/// connection each and `n` times on one pooled connection: medians, ms.
async fn connection_cost(env: &Env, n: usize) -> Result<(f64, f64), String> {
    type Raw = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;
    let client = || -> Raw { hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http() };
    let body = json!({"TableName": env.table, "Key": {"pk": {"S": "bench#absent"}, "sk": {"S": "x"}}}).to_string();
    let send = |c: &Raw| {
        let req = hyper::Request::post(&env.endpoint)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=local/20261124/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
            .body(Full::new(Bytes::from(body.clone())));
        let c = c.clone();
        async move {
            let t = Instant::now();
            let resp = c.request(req.map_err(|e| e.to_string())?).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            resp.into_body().collect().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("raw GetItem: {status}"));
            }
            Ok::<f64, String>(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let pooled_client = client();
    send(&pooled_client).await?;
    let (mut fresh, mut pooled) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        fresh.push(send(&client()).await?);
        pooled.push(send(&pooled_client).await?);
    }
    Ok((median(fresh), median(pooled)))
}

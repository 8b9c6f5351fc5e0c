//! `allotment-load`: a load test of the whole API, written with Goose. One
//! scenario per domain, each mixing first writes, keyed replays, re-syncs and
//! reads; afterwards it checks through the API that every write landed
//! exactly once, and prices one million of each operation.
//!
//! - Without `--host`: starts DynamoDB Local and the local front in this
//!   process, runs each user for `--iterations` (bounded, no clock involved:
//!   `make test`), and measures every operation's capacity units one at a
//!   time (written to `target/load/capacity.json` for runs against a stage).
//! - With `--host` and `--token` (`make load`, the pipeline): against a
//!   deployed stage, for `--duration` seconds at `--rps`, failing on the SLO
//!   thresholds (`--max-p90-ms`, `--max-error-percent`).
//!
//! Exit status: 0 all held; 1 a 5xx, an unexpected answer, a write not
//! exactly once, or an SLO missed; 2 the run could not start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use allotment::App;
use allotment_dev::capacity::Capacity;
use allotment_dev::dynamo_local::DynamoLocal;
use allotment_dev::front::{serve, Front};
use allotment_dev::{template, token};
use clap::Parser;
use goose::prelude::*;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(about = "Load-test Allotment: one scenario per domain, exactly-once checked afterwards, the cost of each operation")]
struct Args {
    /// The stage's base URL (e.g. https://abc.execute-api.eu-west-1.amazonaws.com). Without it, a local stack is started here.
    #[arg(long, env = "API_URL")]
    host: Option<String>,
    /// A token with scopes admin, payments and payments:process (with --host).
    #[arg(long, env = "TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Concurrent users, spread over the four scenarios.
    #[arg(long, default_value_t = 4)]
    users: usize,
    /// Requests per second, all users together (0: as fast as answers come).
    #[arg(long, env = "RPS", default_value_t = 0)]
    rps: usize,
    /// Seconds to run (0: each user runs --iterations iterations).
    #[arg(long, env = "DURATION", default_value_t = 0)]
    duration: usize,
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// SLO: the p90 latency any operation may reach, in ms (0: not checked).
    #[arg(long, env = "MAX_P90_MS", default_value_t = 0)]
    max_p90_ms: u64,
    /// SLO: the share of requests that may fail (5xx, unexpected answers, no answer), in percent.
    #[arg(long, env = "MAX_ERROR_PERCENT", default_value_t = 0.0)]
    max_error_percent: f64,
    /// Lambda memory the cost table prices, in MB (template.yaml: 128).
    #[arg(long, default_value_t = 128)]
    memory_mb: u64,
    /// Where the report (report.md) and the measured capacity (capacity.json) go.
    #[arg(long, default_value = "target/load")]
    out: PathBuf,
}

/// What every user shares: where to send, as whom, this run's prefix.
struct Config {
    token: String,
    /// The token's subject: the PI of the gift scenario's projects.
    sub: String,
    run: String,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static LEDGER: OnceLock<Mutex<Ledger>> = OnceLock::new();

fn config() -> &'static Config {
    CONFIG.get().expect("config is set before the attack")
}

fn ledger() -> std::sync::MutexGuard<'static, Ledger> {
    LEDGER.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// What the users wrote and saw, for the checks after the attack.
#[derive(Default)]
struct Ledger {
    requests: usize,
    server_errors: usize,
    unexpected: Vec<String>,
    /// Namespace → purchase ids provisioned there.
    packs: BTreeMap<u64, Vec<String>>,
    /// Work period → days paid.
    work_periods: BTreeMap<String, u32>,
    /// Project → (deposited, claimed).
    projects: BTreeMap<String, (u64, u64)>,
    /// Ferry customer → reference subscription ids.
    subscriptions: BTreeMap<String, Vec<String>>,
}

const DEPOSIT: u64 = 100;
const GIFT: u64 = 10;

/// One request: named for the report, checked against the status it must
/// get, its JSON answer returned.
async fn send(user: &mut GooseUser, method: GooseMethod, path: &str, name: &str, body: Option<&Value>, key: Option<&str>, expect: u16) -> Result<Value, Box<TransactionError>> {
    send_counted(user, method, path, name, body, key, expect).await.map(|(answer, _)| answer)
}

/// [`send`], with the answer's `Allotment-Created` (how many packs were new).
async fn send_counted(user: &mut GooseUser, method: GooseMethod, path: &str, name: &str, body: Option<&Value>, key: Option<&str>, expect: u16) -> Result<(Value, Option<u64>), Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, path)?.bearer_auth(&config().token);
    if let Some(k) = key {
        builder = builder.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        builder = builder.json(b);
    }
    let request = GooseRequest::builder().method(method).path(path).name(name).expect_status_code(expect).set_request_builder(builder).build();
    let goose = user.request(request).await?;
    ledger().requests += 1;
    let response = match goose.response {
        Ok(r) => r,
        Err(e) => {
            ledger().unexpected.push(format!("{name}: no answer: {e}"));
            return Err(Box::new(e.into()));
        }
    };
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let created = response.headers().get("allotment-created").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let mut l = ledger();
    if status >= 500 {
        l.server_errors += 1;
    }
    if status != expect {
        l.unexpected.push(format!("{name} {path}: {status} (wanted {expect}) {answer}"));
    } else if name.ends_with("(replay)") && !replayed {
        l.unexpected.push(format!("{name} {path}: not answered as a replay"));
    }
    Ok((answer, created))
}

/// Per user: its number and iteration.
#[derive(Clone)]
struct Session {
    user: usize,
    iteration: usize,
}

fn session(user: &mut GooseUser) -> (usize, usize) {
    let index = user.weighted_users_index;
    let s = user.get_session_data_mut::<Session>();
    match s {
        Some(s) => {
            s.iteration += 1;
            (s.user, s.iteration)
        }
        None => {
            user.set_session_data(Session { user: index, iteration: 0 });
            (index, 0)
        }
    }
}

fn namespace_of(user: usize) -> u64 {
    // A run's namespaces: far from the walkthrough's and from other runs'.
    let run: u64 = config().run.bytes().fold(0u64, |a, b| (a * 31 + b as u64) % 1_000_000);
    1_000_000_000 + run * 1000 + user as u64
}

// ---------------------------------------------------------------- packs

async fn packs_setup(user: &mut GooseUser) -> TransactionResult {
    let (u, _) = session(user);
    let ns = namespace_of(u);
    send(user, GooseMethod::Put, &format!("/namespaces/{ns}"), "PUT /namespaces/{id}", Some(&json!({"name": format!("load-{ns}"), "parent_id": null, "owner_id": 7})), None, 200).await?;
    Ok(())
}

async fn packs(user: &mut GooseUser) -> TransactionResult {
    let (u, i) = session(user);
    let ns = namespace_of(u);
    let path = format!("/namespaces/{ns}/minutes");
    let xid = format!("{}-{u}-{i}", config().run);
    let body = json!({"packs": [{"number_of_minutes": 1000, "expires_at": "2031-01-01", "purchase_xid": xid}]});
    let key = format!("{xid}-k");
    // The first request creates the pack; the re-sync must find it (a lost
    // first write healed by the re-sync would show here, not in the count).
    let (_, created) = send_counted(user, GooseMethod::Post, &path, "POST /namespaces/{id}/minutes (new)", Some(&body), Some(&key), 201).await?;
    ledger().packs.entry(ns).or_default().push(xid.clone());
    send(user, GooseMethod::Post, &path, "POST /namespaces/{id}/minutes (replay)", Some(&body), Some(&key), 201).await?;
    let (_, resynced) = send_counted(user, GooseMethod::Post, &path, "POST /namespaces/{id}/minutes (re-sync)", Some(&body), None, 201).await?;
    if (created, resynced) != (Some(1), Some(0)) {
        ledger().unexpected.push(format!("pack {xid}: Allotment-Created {created:?} then {resynced:?}, wanted 1 then 0"));
    }
    send(user, GooseMethod::Get, &path, "GET /namespaces/{id}/minutes", None, None, 200).await?;
    Ok(())
}

// ---------------------------------------------------------------- payments

async fn payments(user: &mut GooseUser) -> TransactionResult {
    let (u, i) = session(user);
    let wp = format!("{}-wp-{u}-{i}", config().run);
    let period = json!({"resourceBookingId": "rb-load", "userHandle": "load", "startDate": "2026-11-16", "endDate": "2026-11-22",
        "daysWorked": 5, "memberRate": 250.00, "customerRate": 310.50, "billingAccountId": 80000071});
    send(user, GooseMethod::Put, &format!("/work-periods/{wp}"), "PUT /work-periods/{id}", Some(&period), None, 200).await?;
    let key = format!("{wp}-k");
    let pay = json!({"workPeriodId": wp, "days": 2});
    let created = send(user, GooseMethod::Post, "/work-period-payments", "POST /work-period-payments (new)", Some(&pay), Some(&key), 201).await?;
    send(user, GooseMethod::Post, "/work-period-payments", "POST /work-period-payments (replay)", Some(&pay), Some(&key), 201).await?;
    let bulk = json!([{"workPeriodId": wp, "days": 1}, {"workPeriodId": wp, "days": 1}]);
    send(user, GooseMethod::Post, "/work-period-payments/bulk", "POST /work-period-payments/bulk (2)", Some(&bulk), Some(&format!("{wp}-b")), 200).await?;
    ledger().work_periods.insert(wp.clone(), 4);
    if let Some(id) = created["id"].as_str() {
        send(user, GooseMethod::Get, &format!("/work-period-payments/{id}"), "GET /work-period-payments/{id}", None, None, 200).await?;
    }
    send(user, GooseMethod::Get, &format!("/work-period-payments?workPeriodId={wp}&perPage=20"), "GET /work-period-payments", None, None, 200).await?;
    Ok(())
}

// ---------------------------------------------------------------- gifts

fn project_of(user: usize) -> String {
    format!("{}-p{user}", config().run)
}

async fn gifts_setup(user: &mut GooseUser) -> TransactionResult {
    let (u, _) = session(user);
    let project = project_of(u);
    let body = json!({"title": "Load", "members": [{"username": config().sub, "role": "PI"}]});
    send(user, GooseMethod::Put, &format!("/projects/{project}"), "PUT /projects/{id}", Some(&body), None, 200).await?;
    ledger().projects.insert(project, (0, 0));
    Ok(())
}

async fn gifts(user: &mut GooseUser) -> TransactionResult {
    let (u, i) = session(user);
    let project = project_of(u);
    let run = &config().run;
    let deposit = json!({"category": "cpu", "provider": "ucloud", "amount": DEPOSIT});
    let key = format!("{run}-d-{u}-{i}");
    let path = format!("/projects/{project}/wallets/deposit");
    send(user, GooseMethod::Post, &path, "POST /projects/{id}/wallets/deposit (new)", Some(&deposit), Some(&key), 200).await?;
    ledger().projects.entry(project.clone()).or_default().0 += DEPOSIT;
    send(user, GooseMethod::Post, &path, "POST /projects/{id}/wallets/deposit (replay)", Some(&deposit), Some(&key), 200).await?;
    let gift = json!({"resourcesOwnedBy": project, "title": "Load gift", "description": "load test",
        "resources": [{"category": "cpu", "provider": "ucloud", "balanceRequested": GIFT}], "renewEvery": 0, "criteria": [{"type": "anyone"}]});
    let made = send(user, GooseMethod::Post, "/gifts", "POST /gifts", Some(&gift), Some(&format!("{run}-g-{u}-{i}")), 200).await?;
    let Some(id) = made["id"].as_u64() else { return Ok(()) };
    let claim = json!({"giftId": id});
    let key = format!("{run}-c-{u}-{i}");
    send(user, GooseMethod::Post, "/gifts/claim", "POST /gifts/claim (new)", Some(&claim), Some(&key), 200).await?;
    ledger().projects.entry(project.clone()).or_default().1 += GIFT;
    send(user, GooseMethod::Post, "/gifts/claim", "POST /gifts/claim (replay)", Some(&claim), Some(&key), 200).await?;
    send(user, GooseMethod::Post, "/gifts/claim", "POST /gifts/claim (again: 409)", Some(&claim), None, 409).await?;
    send(user, GooseMethod::Get, &format!("/projects/{project}/wallets"), "GET /projects/{id}/wallets", None, None, 200).await?;
    send(user, GooseMethod::Get, &format!("/gifts?project={project}&itemsPerPage=10"), "GET /gifts", None, None, 200).await?;
    Ok(())
}

// ---------------------------------------------------------------- Ferry

fn customer_of(user: usize) -> String {
    format!("{}-c{user}", config().run)
}

async fn ferry_setup(user: &mut GooseUser) -> TransactionResult {
    let (u, _) = session(user);
    let product = json!({"group": "hosting", "name": "Hosting basic", "prices": [{"contract_period": 12, "billing_period": 1, "price": 9.95}]});
    send(user, GooseMethod::Put, "/ferry/products/load-hosting", "PUT /ferry/products/{slug}", Some(&product), None, 200).await?;
    let customer = customer_of(u);
    send(user, GooseMethod::Put, &format!("/ferry/customers/{customer}"), "PUT /ferry/customers/{customer}", Some(&json!({"reference_customer_id": format!("ref-{customer}")})), None, 200).await?;
    Ok(())
}

async fn ferry(user: &mut GooseUser) -> TransactionResult {
    let (u, i) = session(user);
    let customer = customer_of(u);
    let path = format!("/ferry/customers/{customer}/subscriptions");
    let refs: Vec<String> = (0..2).map(|n| format!("{customer}-s{i}-{n}")).collect();
    let subs: Vec<Value> = refs
        .iter()
        .map(|r| json!({"slug": "load-hosting", "contract_period": 12, "billing_period": 1, "start_date": "2023-01-01",
            "next_contract_date": "2024-01-01", "next_billing_date": "2023-02-01", "reference_subscription_id": r, "reference_product_id": "load-h"}))
        .collect();
    let body = json!({"reference_customer_id": format!("ref-{customer}"), "subscriptions": {"hosting": subs}});
    let key = format!("{customer}-{i}-k");
    let first = send(user, GooseMethod::Post, &path, "POST /ferry/customers/{customer}/subscriptions (new)", Some(&body), Some(&key), 200).await?;
    if first["success"].as_array().map(Vec::len) != Some(2) {
        ledger().unexpected.push(format!("Ferry: not both created: {first}"));
    }
    ledger().subscriptions.entry(customer.clone()).or_default().extend(refs);
    send(user, GooseMethod::Post, &path, "POST /ferry/customers/{customer}/subscriptions (replay)", Some(&body), Some(&key), 200).await?;
    let again = send(user, GooseMethod::Post, &path, "POST /ferry/customers/{customer}/subscriptions (re-sync)", Some(&body), None, 200).await?;
    if again["failures"].as_array().map(Vec::len) != Some(2) {
        ledger().unexpected.push(format!("Ferry: a re-sync created something: {again}"));
    }
    send(user, GooseMethod::Get, &path, "GET /ferry/customers/{customer}/subscriptions", None, None, 200).await?;
    Ok(())
}

// ---------------------------------------------------------------- the checks after

/// The caller's personal cpu balance (where its claims land).
async fn personal_balance(client: &reqwest::Client, host: &str) -> Option<u64> {
    let answer = client.get(format!("{host}/me/wallets")).bearer_auth(&config().token).send().await.ok()?;
    let wallets: Value = answer.json().await.ok()?;
    Some(wallets["wallets"].as_array().into_iter().flatten().filter(|w| w["category"] == "cpu" && w["provider"] == "ucloud").filter_map(|w| w["balance"].as_u64()).sum())
}

/// Through the API: every write of the ledger is there exactly once.
async fn exactly_once(client: &reqwest::Client, host: &str, personal_before: Option<u64>) -> Vec<String> {
    let get = |path: String| {
        let request = client.get(format!("{host}{path}")).bearer_auth(&config().token);
        async move {
            match request.send().await {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(e) => json!({"error": e.to_string()}),
            }
        }
    };
    let (packs, periods, projects, subscriptions) = {
        let l = ledger();
        (l.packs.clone(), l.work_periods.clone(), l.projects.clone(), l.subscriptions.clone())
    };
    let mut wrong = Vec::new();
    for (ns, xids) in packs {
        let listed = get(format!("/namespaces/{ns}/minutes?include_expired=true")).await;
        let mut found: Vec<String> = listed["packs"].as_array().into_iter().flatten().filter_map(|p| p["purchase_xid"].as_str().map(str::to_owned)).collect();
        let mut want = xids.clone();
        found.sort();
        want.sort();
        if found != want {
            wrong.push(format!("namespace {ns}: packs {found:?}, wanted {want:?}"));
        }
    }
    for (wp, days) in periods {
        let period = get(format!("/work-periods/{wp}")).await;
        if period["daysPaid"] != json!(days) {
            wrong.push(format!("work period {wp}: daysPaid {}, wanted {days}", period["daysPaid"]));
        }
        let listed = get(format!("/work-period-payments?workPeriodId={wp}&perPage=20")).await;
        let n = listed["items"].as_array().or_else(|| listed.as_array()).map(Vec::len).unwrap_or(0);
        if n != 3 {
            wrong.push(format!("work period {wp}: {n} payments, wanted 3: {listed}"));
        }
    }
    for (project, (deposited, claimed)) in projects {
        let wallets = get(format!("/projects/{project}/wallets")).await;
        let balance: u64 = wallets["wallets"].as_array().into_iter().flatten().filter(|w| w["category"] == "cpu").filter_map(|w| w["balance"].as_u64()).sum();
        if balance != deposited - claimed {
            wrong.push(format!("project {project}: balance {balance}, wanted {} ({deposited} deposited, {claimed} claimed)", deposited - claimed));
        }
    }
    let claimed: u64 = ledger().projects.values().map(|(_, c)| c).sum();
    match (personal_before, personal_balance(client, host).await) {
        (Some(before), Some(after)) if after == before + claimed => {}
        (before, after) => wrong.push(format!("the claimant's wallet: {after:?}, wanted {before:?} + {claimed} claimed")),
    }
    for (customer, refs) in subscriptions {
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let path = match &next {
                Some(n) => format!("/ferry/customers/{customer}/subscriptions?next={n}"),
                None => format!("/ferry/customers/{customer}/subscriptions"),
            };
            let page = get(path).await;
            found.extend(page["items"].as_array().into_iter().flatten().filter_map(|s| s["reference_subscription_id"].as_str().map(str::to_owned)));
            match page["next"].as_str() {
                Some(n) if !n.is_empty() => next = Some(n.to_owned()),
                _ => break,
            }
        }
        let mut want = refs.clone();
        found.sort();
        want.sort();
        if found != want {
            wrong.push(format!("customer {customer}: subscriptions {found:?}, wanted {want:?}"));
        }
    }
    wrong
}

// ---------------------------------------------------------------- cost

/// AWS's public prices (us-east-1, December 2026), per unit.
mod price {
    /// Lambda on arm64: per GB-second, and per request.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// API Gateway HTTP APIs, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// DynamoDB on-demand: per write request unit and per read request unit.
    pub const WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const READ_UNIT: f64 = 0.125 / 1e6;
}

/// One operation's capacity units, measured alone.
#[derive(Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Units {
    read: f64,
    write: f64,
}

/// The cost table: per million of each operation, from its measured p50
/// duration at `memory_mb`, its capacity units, and the prices above.
fn cost_table(durations: &BTreeMap<String, (usize, f64, f64, f64)>, capacity: &BTreeMap<String, Units>, memory_mb: u64) -> String {
    let mut t = String::from("| operation | p50 ms | Lambda compute | Lambda requests | HTTP API | DynamoDB writes | DynamoDB reads | total per million | biggest share |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (name, (_, p50, _, _)) in durations {
        let Some(units) = capacity.get(name) else { continue };
        let billed_ms = p50.ceil().max(1.0);
        let compute = billed_ms / 1000.0 * memory_mb as f64 / 1024.0 * price::LAMBDA_GB_SECOND * 1e6;
        let requests = price::LAMBDA_REQUEST * 1e6;
        let api = price::HTTP_API_REQUEST * 1e6;
        let writes = units.write * price::WRITE_UNIT * 1e6;
        let reads = units.read * price::READ_UNIT * 1e6;
        let total = compute + requests + api + writes + reads;
        let parts = [("Lambda compute", compute), ("Lambda requests", requests), ("HTTP API", api), ("DynamoDB writes", writes), ("DynamoDB reads", reads)];
        let (biggest, share) = parts.iter().fold(("", 0.0), |b, p| if p.1 > b.1 { (p.0, p.1) } else { b });
        t.push_str(&format!(
            "| {name} | {p50:.1} | ${compute:.2} | ${requests:.2} | ${api:.2} | ${writes:.2} ({:.1} WRU) | ${reads:.2} ({:.1} RRU) | **${total:.2}** | {biggest} {:.0} % |\n",
            units.write,
            units.read,
            100.0 * share / total
        ));
    }
    t
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("allotment-load: {e}");
            std::process::exit(2);
        }
    }
}

/// A local stack: DynamoDB Local, a fresh table, the front; the capacity
/// interceptor on its client.
struct Local {
    _dynamo: Option<DynamoLocal>,
    capacity: Capacity,
    base: String,
    token: String,
}

const SECRET: &[u8] = b"load-secret";

async fn local() -> Result<Local, String> {
    let (dynamo, endpoint) = allotment_dev::dynamo_local::from_env_or_start().await?;
    let capacity = Capacity::default();
    let client = aws_sdk_dynamodb::Client::from_conf(allotment::local_config(&endpoint).interceptor(capacity.clone()).build());
    let table = format!("load{}", uuid::Uuid::new_v4().simple());
    template::ensure_table(&client, &table, false).await?;
    let app = App::new(allotment::db::Db::new(client, table.as_str()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(serve(listener, Arc::new(Front { app, secret: SECRET.to_vec() })));
    let token = token::mint(SECRET, "load-user", "admin payments payments:process", 3600, json!({"email": "load@example.org", "email_verified": "true"}));
    Ok(Local { _dynamo: dynamo, capacity, base, token })
}

/// The subject of a JWT (its payload read, not verified: the API verifies).
fn subject(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["sub"].as_str().map(str::to_owned)
}

async fn run(args: Args) -> Result<bool, String> {
    let local = match &args.host {
        Some(_) => None,
        None => Some(local().await?),
    };
    let (host, token) = match (&args.host, &local) {
        (Some(h), _) => (h.trim_end_matches('/').to_owned(), args.token.clone().ok_or("--token (or TOKEN) is required with --host")?),
        (None, Some(l)) => (l.base.clone(), l.token.clone()),
        (None, None) => unreachable!("a local stack is started without --host"),
    };
    let sub = subject(&token).ok_or("the token has no readable sub claim")?;
    let run = format!("load{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let _ = CONFIG.set(Config { token, sub, run: run.clone() });

    let scenarios = [
        scenario!("packs").register_transaction(transaction!(packs_setup).set_on_start()).register_transaction(transaction!(packs)),
        scenario!("payments").register_transaction(transaction!(payments)),
        scenario!("gifts").register_transaction(transaction!(gifts_setup).set_on_start()).register_transaction(transaction!(gifts)),
        scenario!("ferry").register_transaction(transaction!(ferry_setup).set_on_start()).register_transaction(transaction!(ferry)),
    ];
    let mut attack = GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default()).map_err(|e| e.to_string())?;
    for s in scenarios {
        attack = attack.register_scenario(s);
    }
    let users = args.users.max(4);
    let e = |e: GooseError| e.to_string();
    attack = *attack.set_default(GooseDefault::Host, host.as_str()).map_err(e)?;
    attack = *attack.set_default(GooseDefault::Users, users).map_err(e)?;
    attack = *attack.set_default(GooseDefault::IncreaseRate, users.to_string().as_str()).map_err(e)?;
    attack = *attack.set_default(GooseDefault::NoTelnet, true).map_err(e)?;
    attack = *attack.set_default(GooseDefault::NoPrintMetrics, true).map_err(e)?;
    attack = *attack.set_default(GooseDefault::Quiet, 1).map_err(e)?;
    attack = if args.duration > 0 {
        *attack.set_default(GooseDefault::RunTime, args.duration).map_err(e)?
    } else {
        *attack.set_default(GooseDefault::Iterations, args.iterations).map_err(e)?
    };
    if args.rps > 0 {
        attack = *attack.set_default(GooseDefault::ThrottleRequests, args.rps).map_err(e)?;
    }
    eprintln!("allotment-load: {users} users against {host} ({})", if args.duration > 0 { format!("{} s", args.duration) } else { format!("{} iterations each", args.iterations) });
    let client = reqwest::Client::new();
    let personal_before = personal_balance(&client, &host).await;
    let started = std::time::Instant::now();
    let metrics = attack.execute().await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();

    // Per operation: count, p50, p90, p99 (ms).
    let mut durations: BTreeMap<String, (usize, f64, f64, f64)> = BTreeMap::new();
    let mut failed = 0usize;
    for aggregate in metrics.requests.values() {
        let name = aggregate.path.clone();
        let times = &aggregate.raw_data;
        let ms = |p: f32| times.percentile_us(p) as f64 / 1000.0;
        durations.insert(name, (times.counter, ms(0.5), ms(0.9), ms(0.99)));
        failed += aggregate.fail_count;
    }
    let wrong = exactly_once(&client, &host, personal_before).await;
    let (requests, server_errors, unexpected) = {
        let l = ledger();
        (l.requests, l.server_errors, l.unexpected.clone())
    };

    // Capacity per operation: measured one at a time on the local stack,
    // or read from the last local run's file.
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let capacity_file = args.out.join("capacity.json");
    let capacity: BTreeMap<String, Units> = match &local {
        Some(l) => {
            let measured = price_each(l, &durations).await;
            let _ = std::fs::write(&capacity_file, serde_json::to_string_pretty(&measured).unwrap_or_default());
            measured
        }
        None => std::fs::read(&capacity_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default(),
    };

    let mut report = format!(
        "# Load test {run}\n\n{users} users against {host}, {requests} requests in {elapsed:.1} s ({:.0} requests/s); {server_errors} answered 5xx, {} unexpected answers, {failed} failed by Goose.\n\n| operation | requests | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|\n",
        requests as f64 / elapsed.max(0.001),
        unexpected.len()
    );
    for (name, (n, p50, p90, p99)) in &durations {
        report.push_str(&format!("| {name} | {n} | {p50:.1} | {p90:.1} | {p99:.1} |\n"));
    }
    let mut ok = true;
    let mut verdicts = Vec::new();
    if server_errors > 0 {
        verdicts.push(format!("FAILED: {server_errors} answers were 5xx"));
        ok &= args.host.is_some() && 100.0 * (server_errors as f64) / (requests.max(1) as f64) <= args.max_error_percent;
    }
    if !unexpected.is_empty() {
        let errors_percent = 100.0 * unexpected.len() as f64 / requests.max(1) as f64;
        let within = args.host.is_some() && errors_percent <= args.max_error_percent;
        verdicts.push(format!("{}: {} unexpected answers ({errors_percent:.2} %), first: {}", if within { "within the SLO" } else { "FAILED" }, unexpected.len(), unexpected[0]));
        ok &= within;
    }
    if wrong.is_empty() {
        verdicts.push("exactly once: every write found once, none missing, none doubled".into());
    } else {
        verdicts.push(format!("FAILED exactly once: {}", wrong.join("; ")));
        ok = false;
    }
    if args.max_p90_ms > 0 {
        let slow: Vec<String> = durations.iter().filter(|(_, d)| d.2 > args.max_p90_ms as f64).map(|(n, d)| format!("{n} p90 {:.0} ms", d.2)).collect();
        if slow.is_empty() {
            verdicts.push(format!("SLO: every operation's p90 within {} ms", args.max_p90_ms));
        } else {
            verdicts.push(format!("FAILED SLO p90 ≤ {} ms: {}", args.max_p90_ms, slow.join(", ")));
            ok = false;
        }
    }
    report.push_str("\n");
    for v in &verdicts {
        report.push_str(&format!("- {v}\n"));
    }
    if capacity.is_empty() {
        report.push_str("\nNo capacity figures (run `make test` or `allotment-load` without --host once to measure them): no cost table.\n");
    } else {
        report.push_str(&format!(
            "\n## What one million of each operation costs\n\nAt {} MB on arm64, each operation billed at its p50 duration above (as measured here: a Lambda of {} MB has a fraction of a vCPU, so its durations are longer), with the capacity units it consumed measured alone, at AWS's public prices (Lambda $0.0000133334 per GB-s and $0.20 per million requests, HTTP API $1.00 per million, DynamoDB on-demand $0.625 per million write and $0.125 per million read request units):\n\n",
            args.memory_mb, args.memory_mb
        ));
        report.push_str(&cost_table(&durations, &capacity, args.memory_mb));
    }
    println!("{report}");
    std::fs::write(args.out.join("report.md"), &report).map_err(|e| e.to_string())?;
    Ok(ok)
}

/// Each operation once more, alone, with the capacity it consumed counted:
/// the same requests the scenarios send, on fresh keys and ids.
async fn price_each(local: &Local, durations: &BTreeMap<String, (usize, f64, f64, f64)>) -> BTreeMap<String, Units> {
    let client = reqwest::Client::new();
    let base = &local.base;
    let token = &config().token;
    let run = format!("{}-price", config().run);
    let send = |method: reqwest::Method, path: String, body: Option<Value>, key: Option<String>| {
        let mut r = client.request(method, format!("{base}{path}")).bearer_auth(token);
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            match r.send().await {
                Ok(resp) => resp.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        }
    };
    use reqwest::Method;
    let mut out = BTreeMap::new();
    let mut measure = |name: &str, units: allotment_dev::capacity::Units| {
        if durations.contains_key(name) {
            out.insert(name.to_owned(), Units { read: units.read, write: units.write });
        }
    };
    macro_rules! priced {
        ($name:expr, $call:expr) => {{
            local.capacity.reset();
            let answer = $call.await;
            measure($name, local.capacity.tally().used);
            answer
        }};
    }
    let ns = 2_000_000_000u64 + (run.len() as u64);
    priced!("PUT /namespaces/{id}", send(Method::PUT, format!("/namespaces/{ns}"), Some(json!({"name": "price", "parent_id": null, "owner_id": 7})), None));
    let pack = json!({"packs": [{"number_of_minutes": 1000, "expires_at": "2031-01-01", "purchase_xid": format!("{run}-x")}]});
    let path = format!("/namespaces/{ns}/minutes");
    priced!("POST /namespaces/{id}/minutes (new)", send(Method::POST, path.clone(), Some(pack.clone()), Some(format!("{run}-k"))));
    priced!("POST /namespaces/{id}/minutes (replay)", send(Method::POST, path.clone(), Some(pack.clone()), Some(format!("{run}-k"))));
    priced!("POST /namespaces/{id}/minutes (re-sync)", send(Method::POST, path.clone(), Some(pack), None));
    priced!("GET /namespaces/{id}/minutes", send(Method::GET, path, None, None));
    let wp = format!("{run}-wp");
    let period = json!({"resourceBookingId": "rb-load", "userHandle": "load", "startDate": "2026-11-16", "endDate": "2026-11-22",
        "daysWorked": 5, "memberRate": 250.00, "customerRate": 310.50, "billingAccountId": 80000071});
    priced!("PUT /work-periods/{id}", send(Method::PUT, format!("/work-periods/{wp}"), Some(period), None));
    let pay = json!({"workPeriodId": wp, "days": 2});
    let created = priced!("POST /work-period-payments (new)", send(Method::POST, "/work-period-payments".into(), Some(pay.clone()), Some(format!("{wp}-k"))));
    priced!("POST /work-period-payments (replay)", send(Method::POST, "/work-period-payments".into(), Some(pay), Some(format!("{wp}-k"))));
    let bulk = json!([{"workPeriodId": wp, "days": 1}, {"workPeriodId": wp, "days": 1}]);
    priced!("POST /work-period-payments/bulk (2)", send(Method::POST, "/work-period-payments/bulk".into(), Some(bulk), Some(format!("{wp}-b"))));
    if let Some(id) = created["id"].as_str() {
        priced!("GET /work-period-payments/{id}", send(Method::GET, format!("/work-period-payments/{id}"), None, None));
    }
    priced!("GET /work-period-payments", send(Method::GET, format!("/work-period-payments?workPeriodId={wp}&perPage=20"), None, None));
    let project = format!("{run}-p");
    priced!("PUT /projects/{id}", send(Method::PUT, format!("/projects/{project}"), Some(json!({"title": "Load", "members": [{"username": config().sub, "role": "PI"}]})), None));
    let deposit = json!({"category": "cpu", "provider": "ucloud", "amount": DEPOSIT});
    let path = format!("/projects/{project}/wallets/deposit");
    priced!("POST /projects/{id}/wallets/deposit (new)", send(Method::POST, path.clone(), Some(deposit.clone()), Some(format!("{run}-d"))));
    priced!("POST /projects/{id}/wallets/deposit (replay)", send(Method::POST, path, Some(deposit), Some(format!("{run}-d"))));
    let gift = json!({"resourcesOwnedBy": project, "title": "Load gift", "description": "load test",
        "resources": [{"category": "cpu", "provider": "ucloud", "balanceRequested": GIFT}], "renewEvery": 0, "criteria": [{"type": "anyone"}]});
    let made = priced!("POST /gifts", send(Method::POST, "/gifts".into(), Some(gift), Some(format!("{run}-g"))));
    let claim = json!({"giftId": made["id"]});
    priced!("POST /gifts/claim (new)", send(Method::POST, "/gifts/claim".into(), Some(claim.clone()), Some(format!("{run}-c"))));
    priced!("POST /gifts/claim (replay)", send(Method::POST, "/gifts/claim".into(), Some(claim.clone()), Some(format!("{run}-c"))));
    priced!("POST /gifts/claim (again: 409)", send(Method::POST, "/gifts/claim".into(), Some(claim), None));
    priced!("GET /projects/{id}/wallets", send(Method::GET, format!("/projects/{project}/wallets"), None, None));
    priced!("GET /gifts", send(Method::GET, format!("/gifts?project={project}&itemsPerPage=10"), None, None));
    let product = json!({"group": "hosting", "name": "Hosting basic", "prices": [{"contract_period": 12, "billing_period": 1, "price": 9.95}]});
    priced!("PUT /ferry/products/{slug}", send(Method::PUT, "/ferry/products/load-hosting".into(), Some(product), None));
    let customer = format!("{run}-c");
    priced!("PUT /ferry/customers/{customer}", send(Method::PUT, format!("/ferry/customers/{customer}"), Some(json!({"reference_customer_id": format!("ref-{customer}")})), None));
    let subs: Vec<Value> = (0..2)
        .map(|n| json!({"slug": "load-hosting", "contract_period": 12, "billing_period": 1, "start_date": "2023-01-01",
            "next_contract_date": "2024-01-01", "next_billing_date": "2023-02-01", "reference_subscription_id": format!("{customer}-s{n}"), "reference_product_id": "load-h"}))
        .collect();
    let body = json!({"reference_customer_id": format!("ref-{customer}"), "subscriptions": {"hosting": subs}});
    let path = format!("/ferry/customers/{customer}/subscriptions");
    priced!("POST /ferry/customers/{customer}/subscriptions (new)", send(Method::POST, path.clone(), Some(body.clone()), Some(format!("{run}-f"))));
    priced!("POST /ferry/customers/{customer}/subscriptions (replay)", send(Method::POST, path.clone(), Some(body.clone()), Some(format!("{run}-f"))));
    priced!("POST /ferry/customers/{customer}/subscriptions (re-sync)", send(Method::POST, path.clone(), Some(body), None));
    priced!("GET /ferry/customers/{customer}/subscriptions", send(Method::GET, path, None, None));
    out
}

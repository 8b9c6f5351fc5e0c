//! The randomized fault-and-race harness. Concurrent clients run a mixed
//! workload over the four domains — packs with and without xid, moves,
//! payments (single and bulk) and patches, deposits, claims, Ferry posts —
//! while the proxy between the API and DynamoDB Local loses answers of
//! applied writes at random (reset connections, answers after the attempt
//! timeout). Clients retry as the README tells them: the same
//! Idempotency-Key on every 5xx until a definitive answer. At the end
//! `allotment verify`'s checks find no violation, every acknowledged record
//! exists once, nothing unacknowledged is left, and every replay is the
//! first answer byte for byte.
//!
//! `make test` runs fixed seeds for a fixed number of operations;
//! `make chaos SEED=… SECONDS=…` runs one seed for that long. A failure
//! prints its seed (the workload is reproducible from it; where the proxy's
//! faults land depends on timing).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allotment::idempotency::IdempotencyConfig;
use allotment_dev::proxy::WireFault;
use allotment_tests::{Resp, TestApi};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use crate::ferry::{customer, product};
use crate::gifts::{create_gift, deposit, gift_body, project, user};
use crate::packs::{namespace, pack};

const CLIENTS: usize = 4;
const WORK_PERIODS: usize = 4;

#[derive(Default)]
struct Ledger {
    /// Acknowledged creations: payments by id, xid-less packs by request, deposits, claims, Ferry pairs.
    payments: HashSet<String>,
    plain_packs: usize,
    xids: HashSet<String>,
    deposited: u64,
    claims: usize,
    /// Claims of the second gift, which a client deletes while others claim it.
    claims_of_deleted: usize,
    ferry: HashSet<String>,
    replays: usize,
    operations: usize,
    gave_up: usize,
}

/// Sends until a definitive answer: the same key on every 5xx.
async fn send(api: &TestApi, method: &str, path: &str, token: &str, key: &str, body: &Value) -> Option<Resp> {
    let bytes = body.to_string().into_bytes();
    for attempt in 0..30 {
        let r = api.call_with_key(method, path, token, key, &bytes).await;
        if r.status < 500 && r.status != 409 || r.status == 409 && !r.bytes.starts_with(b"{\"error\":{\"code\":409,\"message\":\"A request with this Idempotency-Key") {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(5 * (attempt + 1))).await;
    }
    None
}

async fn client(api: Arc<TestApi>, seed: u64, n: usize, gifts: (u64, u64), until: Option<Instant>, ops: usize, ledger: Arc<Mutex<Ledger>>) {
    let (gift, doomed) = gifts;
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(31).wrapping_add(n as u64));
    let admin = api.admin();
    let clerk = api.token("clerk", "payments");
    let mut i = 0;
    loop {
        i += 1;
        if until.map_or(i > ops, |t| Instant::now() >= t) {
            break;
        }
        let key = format!("c{n}-{i}");
        let op = rng.usize(..10);
        let known: Option<String> = if op == 8 {
            let l = ledger.lock().unwrap();
            (!l.payments.is_empty()).then(|| l.payments.iter().nth(rng.usize(..l.payments.len())).cloned()).flatten()
        } else {
            None
        };
        let (method, path, token, body) = match op {
            0 => {
                let xid = format!("x{}", rng.usize(..40));
                ("POST", "/namespaces/1/minutes".to_owned(), admin.clone(), json!({"packs": [pack(1, "2099-01-01", Some(&xid)), pack(1, "2099-01-01", None)]}))
            }
            1 => ("PATCH", "/namespaces/1/minutes/move/2".to_owned(), admin.clone(), json!({})),
            2 => ("PATCH", "/namespaces/2/minutes/move/1".to_owned(), admin.clone(), json!({})),
            3 => {
                let wp = format!("w{}", rng.usize(..WORK_PERIODS));
                let body = if rng.bool() { json!({"workPeriodId": wp, "days": 0, "amount": 10}) } else { json!({"workPeriodId": wp, "days": 1}) };
                ("POST", "/work-period-payments".to_owned(), clerk.clone(), body)
            }
            4 => {
                let items: Vec<Value> = (0..3).map(|_| json!({"workPeriodId": format!("w{}", rng.usize(..WORK_PERIODS)), "days": 0, "amount": 5})).collect();
                ("POST", "/work-period-payments/bulk".to_owned(), clerk.clone(), Value::Array(items))
            }
            5 => ("POST", "/projects/p/wallets/deposit".to_owned(), admin.clone(), json!({"category": "cpu", "provider": "ucloud", "amount": 7})),
            6 => {
                let which = if rng.bool() { gift } else { doomed };
                ("POST", "/gifts/claim".to_owned(), user(&format!("u{n}-{}", rng.usize(..50)), None, None), json!({"giftId": which}))
            }
            9 if n == 0 && rng.usize(..10) == 0 => ("DELETE", format!("/gifts/{doomed}"), user("pi", None, None), json!({})),
            9 => continue,
            8 => match known {
                Some(id) => {
                    let body = if rng.bool() { json!({"status": "cancelled"}) } else { json!({"customerRate": 200 + rng.u32(..100)}) };
                    ("PATCH", format!("/work-period-payments/{id}"), clerk.clone(), body)
                }
                None => continue,
            },
            _ => {
                let reference = format!("s{}", rng.usize(..60));
                let sub = json!({"slug": "hosting-basic", "contract_period": 12, "billing_period": 1, "start_date": "2023-01-01",
                    "next_contract_date": "2024-01-01", "next_billing_date": "2023-02-01", "reference_subscription_id": reference, "reference_product_id": "ref-h"});
                ("POST", "/ferry/customers/c1/subscriptions".to_owned(), admin.clone(), json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [sub]}}))
            }
        };
        let Some(r) = send(&api, method, &path, &token, &key, &body).await else {
            ledger.lock().unwrap().gave_up += 1;
            continue;
        };
        // A replay is the first answer, byte for byte, but for the request id
        // an error names (each request its own).
        // (A DELETE carries no Idempotency-Key: sending it again is just another delete.)
        let replayed = if method != "DELETE" && rng.usize(..3) == 0 { send(&api, method, &path, &token, &key, &body).await } else { None };
        let mut l = ledger.lock().unwrap();
        l.operations += 1;
        if let Some(again) = replayed {
            assert_eq!((again.status, without_request_id(&again.bytes)), (r.status, without_request_id(&r.bytes)), "seed {seed}: replay of {key} {path} differs");
            assert_eq!(again.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"), "seed {seed}");
            l.replays += 1;
        }
        match (op, r.status) {
            (0, 201) => {
                for p in r.body.as_array().into_iter().flatten() {
                    match p["purchase_xid"].as_str() {
                        Some(x) => {
                            l.xids.insert(x.to_owned());
                        }
                        None => l.plain_packs += 1,
                    }
                }
            }
            (3, 201) => {
                l.payments.insert(r.body["id"].as_str().unwrap_or_default().to_owned());
            }
            (4, 200) => {
                for e in r.body.as_array().into_iter().flatten().filter(|e| e.get("error").is_none()) {
                    l.payments.insert(e["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            (5, 200) => l.deposited += 7,
            (6, 200) if body["giftId"] == gift => l.claims += 1,
            (6, 200) => l.claims_of_deleted += 1,
            (7, 200) => {
                for s in r.body["success"].as_array().into_iter().flatten() {
                    l.ferry.insert(s["parameters"].to_string());
                }
            }
            (_, status) if status >= 500 => panic!("seed {seed}: {key} {path} ended {r:?}"),
            _ => {}
        }
    }
}

async fn run(seed: u64, until: Option<Instant>, ops: usize) {
    println!("chaos seed {seed}");
    let api = Arc::new(TestApi::through_proxy(Duration::from_millis(1500), IdempotencyConfig { lock: Duration::from_secs(5), ..Default::default() }).await);
    let proxy = api.proxy.clone().expect("proxy");
    // Without ClientRequestTokens (as once their 10 minutes are over): each
    // write's own recognition is what keeps a retry one effect.
    api.faults.without_client_tokens();
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    for w in 0..WORK_PERIODS {
        let body = json!({"resourceBookingId": "rb", "userHandle": "u", "startDate": "2026-01-05", "endDate": "2026-01-11",
            "daysWorked": 10, "memberRate": 250, "customerRate": 300, "billingAccountId": 1});
        assert_eq!(api.call("PUT", &format!("/work-periods/w{w}"), Some(&api.admin()), Some(body)).await.status, 200);
    }
    project(&api, "p", &[("pi", "PI")]).await;
    assert_eq!(deposit(&api, "p", "cpu", 1_000_000).await.status, 200);
    let gift = create_gift(&api, &user("pi", None, None), gift_body("p", &[("cpu", 1)], json!([{"type": "anyone"}]), 0)).await;
    let doomed = create_gift(&api, &user("pi", None, None), gift_body("p", &[("cpu", 1)], json!([{"type": "anyone"}]), 0)).await;
    product(&api, "hosting-basic", "hosting", &[(12, 1)]).await;
    customer(&api, "c1", "r1").await;

    proxy.randomly(0.06, vec![WireFault::Reset, WireFault::SlowAnswer(Duration::from_millis(2000))]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let clients: Vec<_> = (0..CLIENTS).map(|n| tokio::spawn(client(api.clone(), seed, n, (gift, doomed), until, ops, ledger.clone()))).collect();
    for c in clients {
        c.await.expect("client");
    }
    proxy.clear();
    let injected = proxy.injected();

    // The table's own invariants.
    let report = allotment::verify::verify(&api.app.db, 4, |_| {}).await.expect("verify");
    assert!(report.violations.is_empty(), "seed {seed}: {:#?}", report.violations);
    // Against the answers.
    let l = ledger.lock().unwrap();
    let items = api.all_items().await;
    let s = |i: &std::collections::HashMap<String, AttributeValue>, k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let payments: HashSet<String> = items.iter().filter(|i| s(i, "sk") == "PAY").map(|i| s(i, "id")).collect();
    assert!(l.gave_up > 0 || payments == l.payments, "seed {seed}: payments stored {} vs acknowledged {}", payments.len(), l.payments.len());
    let plain = items.iter().filter(|i| s(i, "pk").starts_with("PACK#U#")).count();
    assert!(l.gave_up > 0 || plain == l.plain_packs, "seed {seed}: packs without xid stored {plain} vs acknowledged {}", l.plain_packs);
    let xids: HashSet<String> = items.iter().filter(|i| s(i, "pk").starts_with("PACK#X#")).map(|i| s(i, "purchase_xid")).collect();
    assert!(l.xids.is_subset(&xids), "seed {seed}: an acknowledged xid pack is missing");
    let claims = items.iter().filter(|i| s(i, "pk") == format!("GIFT#{gift}") && s(i, "sk").starts_with("CLAIM#")).count();
    assert!(l.gave_up > 0 || claims == l.claims, "seed {seed}: claims stored {claims} vs acknowledged {}", l.claims);
    let wallet = api.call("GET", "/projects/p/wallets", Some(&api.admin()), None).await;
    let balance = wallet.body["wallets"][0]["balance"].as_u64().unwrap_or_default();
    // Claims of the deleted gift keep their credit: none lost, none twice.
    assert!(l.gave_up > 0 || balance == 1_000_000 + l.deposited - (claims + l.claims_of_deleted) as u64, "seed {seed}: balance {balance}");
    let subs = items.iter().filter(|i| s(i, "pk").starts_with("FERRY#SUB#")).count();
    assert!(subs >= l.ferry.len(), "seed {seed}: Ferry");
    println!(
        "chaos seed {seed}: {} operations ({} gave up), {} replays compared, faults injected {:?}, {} payments, {} packs without xid, {} xids, {} claims (+{} of a gift deleted meanwhile), {} Ferry subscriptions",
        l.operations, l.gave_up, l.replays, injected, payments.len(), plain, xids.len(), claims, l.claims_of_deleted, subs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_the_invariants_hold_under_lost_answers_and_races() {
    match (std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()), std::env::var("CHAOS_SECONDS").ok().and_then(|s| s.parse().ok())) {
        (seed, Some(secs)) => run(seed.unwrap_or_else(|| fastrand::u64(..)), Some(Instant::now() + Duration::from_secs(secs)), 0).await,
        (Some(seed), None) => run(seed, None, 60).await,
        (None, None) => {
            for seed in [1, 2] {
                run(seed, None, 60).await;
            }
        }
    }
}

/// An answer's bytes with an error's `"request_id":"…"` member taken out.
fn without_request_id(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    match text.find(",\"request_id\":\"") {
        Some(at) => {
            let end = text[at + 15..].find('"').map(|e| at + 15 + e + 1).unwrap_or(text.len());
            format!("{}{}", &text[..at], &text[end..]).into_bytes()
        }
        None => bytes.to_vec(),
    }
}

//! The exactly-once checker ([`allotment_dev::explore`]) on the write
//! protocols: the real handlers against DynamoDB Local, every schedule of a
//! scenario's requests within its bounds, each DynamoDB call able to be
//! applied with its answer lost, throttled until the retries run out, cut off
//! by a crash, or (a read that may be eventually consistent) answered from
//! a version some writes behind. Each scenario's properties are checked at
//! the end of every schedule; a violation fails the test with its trace.
//!
//! `CHECKER_SCHEDULES` raises the bound of the sampled scenarios (`make chaos`).

use std::sync::Arc;

use allotment::db::{Db, RetryPolicy};
use allotment::idempotency::IdempotencyConfig;
use allotment::routes::dispatch;
use allotment::App;
use allotment_dev::explore::{self, Answer, Bounds, Explored, FaultKind, Gate, Request, Run, Scheduler};
use allotment_dev::template;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

/// Three attempts per call: a throttled call is throttled three times.
const ATTEMPTS: u32 = 3;

pub struct Checker {
    pub rt: tokio::runtime::Runtime,
    pub sched: Arc<Scheduler>,
    endpoint: String,
    pub table: String,
    /// Unscheduled: setup and the checks' reads.
    pub plain: App,
    pub idempotency: IdempotencyConfig,
}

impl Checker {
    pub fn new(idempotency: IdempotencyConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let sched = Scheduler::new(ATTEMPTS);
        let local = allotment_tests::dynamo_endpoint();
        let (endpoint, table, plain) = rt.block_on(async {
            let (proxy, endpoint, _task) = allotment_dev::proxy::start(&local).await.expect("proxy");
            proxy.schedule(sched.clone());
            let table = format!("t{}", uuid::Uuid::new_v4().simple());
            let client = aws_sdk_dynamodb::Client::from_conf(allotment::local_config(&endpoint).build());
            template::ensure_table(&client, &table, false).await.expect("table");
            let mut app = App::new(Db::new(client, table.as_str()));
            app.idempotency = idempotency;
            (endpoint, table, app)
        });
        Self { rt, sched, endpoint, table, plain, idempotency }
    }

    /// The App a scheduled request runs with: its own client, stopped at every call.
    pub fn app(&self) -> App {
        let config = allotment::local_config(&self.endpoint)
            .timeout_config(aws_sdk_dynamodb::config::timeout::TimeoutConfig::disabled())
            .http_client(explore::http_client())
            .interceptor(Gate(self.sched.clone()))
            .build();
        let mut db = Db::new(aws_sdk_dynamodb::Client::from_conf(config), self.table.as_str());
        db.retry = RetryPolicy { max_attempts: ATTEMPTS, base_delay: std::time::Duration::from_millis(1), max_delay: std::time::Duration::from_millis(2) };
        let mut app = App::new(db);
        app.idempotency = self.idempotency;
        app.clock = self.plain.clock.clone();
        app
    }

    /// Runs `r` unscheduled, as setup or a later look.
    pub fn call(&self, r: &Request) -> (u16, Value) {
        let (route, req) = explore::lambda_request(r).expect("request");
        let resp = self.rt.block_on(dispatch(route, self.plain.clone(), req));
        (resp.status().as_u16(), serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null))
    }

    pub fn must(&self, r: Request) -> Value {
        let (status, body) = self.call(&r);
        assert!(status < 300, "setup {} {}: {status} {body}", r.method, r.path);
        body
    }

    pub fn explore(
        &self,
        bounds: &Bounds,
        seed: Option<u64>,
        setup: impl FnMut(usize) -> Vec<Request>,
        check: impl FnMut(usize, &[Request], &Run) -> Result<(), String>,
    ) -> Explored {
        let make = || self.app();
        explore::explore(&self.sched, &make, bounds, seed, setup, check)
    }

    /// The item under `pk` (sk `sk`), read strongly consistent.
    pub fn item(&self, pk: &str, sk: &str) -> Option<std::collections::HashMap<String, AttributeValue>> {
        self.rt.block_on(self.plain.db.get(allotment::db::key(pk, sk))).expect("read")
    }
}

/// Fails the test with the violation's trace, and says what was explored.
pub fn report(name: &str, out: &Explored) {
    eprintln!(
        "checker {name}: {} schedule(s){} in {:.1?}, faults {:?}",
        out.schedules,
        if out.exhaustive { " (every one within the bounds)" } else { "" },
        out.elapsed,
        out.faults
    );
    if let Some(v) = &out.violation {
        panic!("checker {name}:\n{v}");
    }
}

fn packs_body(packs: &[Value]) -> Value {
    json!({"packs": packs})
}

fn xid(n: usize, tag: char) -> String {
    format!("{n:015x}{tag}{}", "0".repeat(16))
}

/// What each answer said exists must exist at the end, as it said.
fn acknowledged_packs_exist(c: &Checker, ns: u64, answers: &[Answer]) -> Result<(), String> {
    for (i, a) in answers.iter().enumerate() {
        if a.status() != Some(201) {
            continue;
        }
        for p in a.body().as_array().into_iter().flatten() {
            if let Some(x) = p["purchase_xid"].as_str() {
                let item = c.item(&format!("PACK#X#{x}"), "PACK");
                let stored_ns = item.as_ref().and_then(|i| i.get("namespace_id")).and_then(|v| v.as_n().ok()).cloned();
                if stored_ns.as_deref() != Some(ns.to_string().as_str()) {
                    return Err(format!("request {} was answered 201 with pack {x}, which is {:?} at the end", char::from(b'A' + i as u8), stored_ns.map(|n| format!("in namespace {n}")).unwrap_or("gone".into())));
                }
            }
        }
    }
    Ok(())
}

/// A re-sync that reports a pack while the request that put it may still
/// undo it (issue 29, finding 1): A fails after writing x (a throttled
/// second pack), B, its retry, writes x again and fails the same way; C
/// re-syncs x at any point, its reads possibly stale.
#[test]
fn checker_a_pack_reported_by_a_resync_is_never_undone() {
    let c = Checker::new(IdempotencyConfig::default());
    let bounds = Bounds { faults: 3, preemptions: 1, kinds: &[FaultKind::Throttle, FaultKind::Stale], max_schedules: 200 };
    let out = c.explore(
        &bounds,
        None,
        |n| {
            let ns = 1000 + n as u64 * 10;
            c.must(Request::new("PUT", format!("/namespaces/{ns}"), json!({"name": "a", "parent_id": null, "owner_id": 1})));
            let (x, y) = (xid(n, 'a'), xid(n, 'b'));
            let two = packs_body(&[json!({"number_of_minutes": 10, "expires_at": "2030-01-01", "purchase_xid": x}), json!({"number_of_minutes": 20, "expires_at": "2030-01-01", "purchase_xid": y})]);
            vec![
                Request::new("POST", format!("/namespaces/{ns}/minutes"), two.clone()),
                Request::new("POST", format!("/namespaces/{ns}/minutes"), two).after(0),
                Request::new("POST", format!("/namespaces/{ns}/minutes"), packs_body(&[json!({"number_of_minutes": 10, "expires_at": "2030-01-01", "purchase_xid": x})])).after(0),
            ]
        },
        |n, _, run| acknowledged_packs_exist(&c, 1000 + n as u64 * 10, &run.answers),
    );
    report("resync vs undo", &out);
}

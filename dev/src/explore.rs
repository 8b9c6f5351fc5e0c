//! The exactly-once checker: runs the real handlers (`routes::dispatch`, the
//! very code a function runs) against DynamoDB Local, and takes every
//! scheduling decision itself. Each request of a scenario runs on a thread of
//! its own; an SDK interceptor stops it before each DynamoDB call and waits
//! for the scheduler, which lets exactly one call go at a time, waits until
//! DynamoDB has answered it (the fault proxy, [`crate::proxy`], tells it) and
//! until every request is stopped again or finished, then chooses the next:
//! which request's call goes, and what happens to it —
//!
//! - `pass`: sent and answered;
//! - `lose`: applied, then the answer replaced by a 500 (the caller cannot tell);
//! - `throttle`: this call and every retry of it throttled until the retry
//!   policy gives up (`DbError::Exhausted`);
//! - `crash`: the request dies before the call, as a function cut off at its
//!   time limit (its Idempotency-Key stays "in progress");
//! - `stale(k)`: an eventually consistent read (BatchGetItem/GetItem without
//!   ConsistentRead, any index Query) answers each item as it was `k` writes
//!   ago — absent included — as a replica or an index that has not caught up.
//!
//! [`explore`] enumerates every schedule within a scenario's bounds (faults
//! and preemptions, as CHESS bounds them) depth-first by re-running from
//! scratch, or samples them by seed; each run's end state is checked by the
//! scenario's properties, and a violation is printed as the trace of
//! requests, calls, faults and answers that led to it.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use allotment::routes::{dispatch, match_route, Match, ROUTES};
use allotment::App;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{json, Map, Value};

thread_local! {
    static ACTOR: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The scheduled request this thread runs for, if any (setup and checks are not scheduled).
pub fn current_actor() -> Option<usize> {
    ACTOR.with(Cell::get)
}

fn set_actor(a: Option<usize>) {
    ACTOR.with(|c| c.set(a));
}

/// The header that carries the scheduler's decision to the proxy.
pub const DECISION_HEADER: &str = "x-allotment-explore";

/// What happens to one DynamoDB call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pass,
    Lose,
    Throttle,
    Crash,
    Stale(u8),
}

impl Decision {
    pub fn header(self) -> String {
        match self {
            Decision::Pass => "pass".into(),
            Decision::Lose => "lose".into(),
            Decision::Throttle => "throttle".into(),
            Decision::Crash => "crash".into(),
            Decision::Stale(k) => format!("stale:{k}"),
        }
    }

    pub fn parse(h: &str) -> Option<Self> {
        Some(match h {
            "pass" => Decision::Pass,
            "lose" => Decision::Lose,
            "throttle" => Decision::Throttle,
            "crash" => Decision::Crash,
            other => Decision::Stale(other.strip_prefix("stale:")?.parse().ok()?),
        })
    }
}

/// The fault kinds a scenario lets the scheduler choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Lose,
    Throttle,
    Crash,
    Stale,
}

/// One DynamoDB call a request is stopped at.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: String,
    /// The keys (or index partition) it names, for the trace.
    pub what: String,
    pub write: bool,
    pub eventual: bool,
}

const WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

impl Call {
    fn of(op: &str, body: &Value) -> Self {
        let write = WRITES.contains(&op);
        let eventual = match op {
            "BatchGetItem" => body["RequestItems"]
                .as_object()
                .is_some_and(|t| t.values().all(|k| k["ConsistentRead"] != json!(true))),
            "GetItem" => body["ConsistentRead"] != json!(true),
            "Query" => body.get("IndexName").is_some() || body["ConsistentRead"] != json!(true),
            _ => false,
        };
        let mut keys = Vec::new();
        for_each_key(op, body, &mut |k| keys.push(short(&k)));
        if op == "Query" {
            keys.push(format!(
                "{}={}",
                body["ExpressionAttributeNames"]["#pk"]
                    .as_str()
                    .unwrap_or("?"),
                body["ExpressionAttributeValues"][":pk"]["S"]
                    .as_str()
                    .unwrap_or("?")
            ));
        }
        if op == "BatchGetItem" {
            if let Some(t) = body["RequestItems"].as_object() {
                for v in t.values() {
                    for k in v["Keys"].as_array().into_iter().flatten() {
                        keys.push(short(&item_key(k)));
                    }
                }
            }
        }
        Self {
            op: op.to_owned(),
            what: keys.join(" "),
            write,
            eventual,
        }
    }
}

fn short(k: &str) -> String {
    let pk = k.split('|').next().unwrap_or(k);
    if pk.len() > 40 {
        format!("{}…", &pk[..40])
    } else {
        pk.to_owned()
    }
}

/// `pk|sk` of an item or key in DynamoDB JSON.
pub fn item_key(item: &Value) -> String {
    format!(
        "{}|{}",
        item["pk"]["S"].as_str().unwrap_or(""),
        item["sk"]["S"].as_str().unwrap_or("")
    )
}

/// Every item key a write request names.
pub fn for_each_key(op: &str, body: &Value, f: &mut dyn FnMut(String)) {
    match op {
        "PutItem" => f(item_key(&body["Item"])),
        "UpdateItem" | "DeleteItem" | "GetItem" => f(item_key(&body["Key"])),
        "BatchWriteItem" => {
            for reqs in body["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|t| t.values())
            {
                for r in reqs.as_array().into_iter().flatten() {
                    let item = r
                        .get("PutRequest")
                        .map(|p| &p["Item"])
                        .or_else(|| r.get("DeleteRequest").map(|d| &d["Key"]));
                    if let Some(i) = item {
                        f(item_key(i));
                    }
                }
            }
        }
        "TransactWriteItems" => {
            for t in body["TransactItems"].as_array().into_iter().flatten() {
                if let Some(p) = t.get("Put") {
                    f(item_key(&p["Item"]));
                }
                for kind in ["Update", "Delete"] {
                    if let Some(u) = t.get(kind) {
                        f(item_key(&u["Key"]));
                    }
                }
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Phase {
    NotStarted,
    Running,
    Blocked(Call),
    Done,
    Crashed,
}

#[derive(Default)]
struct State {
    phases: Vec<Phase>,
    grants: Vec<Option<Decision>>,
    /// A request whose call was throttled: its next `n` calls of that operation are too.
    throttling: Vec<Option<(String, u32)>>,
    /// Calls let through whose answer has not come back from DynamoDB yet.
    in_flight: usize,
    /// Every version of every item written since the run began (`None`: absent).
    history: HashMap<String, Vec<Option<Value>>>,
    trace: Vec<String>,
}

/// The scheduler the gate interceptor and the proxy share.
pub struct Scheduler {
    state: Mutex<State>,
    cv: Condvar,
    /// Attempts of one call (the checker's retry policy): a throttled call is throttled this often.
    pub max_attempts: u32,
}

impl Scheduler {
    pub fn new(max_attempts: u32) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            max_attempts,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new schedule: its requests, and no history but what its setup wrote.
    fn reset(&self, actors: usize) {
        let mut s = self.lock();
        let history = std::mem::take(&mut s.history);
        *s = State::default();
        s.history = history;
        s.phases = vec![Phase::NotStarted; actors];
        s.grants = vec![None; actors];
        s.throttling = vec![None; actors];
    }

    /// Called by a request's thread before a DynamoDB call: waits for the decision.
    fn gate(&self, actor: usize, call: Call) -> Decision {
        let mut s = self.lock();
        if actor >= s.phases.len() {
            return Decision::Pass;
        }
        if let Some((op, left)) = s.throttling[actor].clone() {
            if op == call.op && left > 0 {
                s.throttling[actor] = Some((op, left - 1));
                s.in_flight += 1;
                s.trace.push(format!(
                    "    {} {} {}: throttled again",
                    name(actor),
                    call.op,
                    call.what
                ));
                return Decision::Throttle;
            }
            s.throttling[actor] = None;
        }
        s.phases[actor] = Phase::Blocked(call);
        self.cv.notify_all();
        loop {
            if let Some(d) = s.grants[actor].take() {
                s.phases[actor] = Phase::Running;
                return d;
            }
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The proxy: a scheduled call's answer came back from DynamoDB.
    pub fn answered(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        self.cv.notify_all();
    }

    /// The proxy: `key` is now `version` (`None`: absent).
    pub fn record(&self, key: String, version: Option<Value>) {
        let mut s = self.lock();
        let versions = s.history.entry(key).or_default();
        if versions.last() != Some(&version) {
            versions.push(version);
        }
    }

    pub fn knows(&self, key: &str) -> bool {
        self.lock().history.contains_key(key)
    }

    /// What `key` was `k` writes ago, if its history goes back that far.
    pub fn version_ago(&self, key: &str, k: u8) -> Option<Option<Value>> {
        let s = self.lock();
        let v = s.history.get(key)?;
        if v.len() < 2 {
            return None;
        }
        Some(v[v.len().saturating_sub(1 + k as usize)].clone())
    }

    /// Every key with history: (key, current version, version `k` writes ago).
    pub fn all_versions(&self, k: u8) -> Vec<(String, Option<Value>, Option<Value>)> {
        let s = self.lock();
        s.history
            .iter()
            .filter(|(_, v)| v.len() >= 2)
            .map(|(key, v)| {
                (
                    key.clone(),
                    v[v.len() - 1].clone(),
                    v[v.len().saturating_sub(1 + k as usize)].clone(),
                )
            })
            .collect()
    }

    pub fn note(&self, line: String) {
        self.lock().trace.push(line);
    }

    /// Waits until every started request is stopped at a call or finished and
    /// nothing is in flight. A request that does not stop within `limit` is a
    /// defect of the checker (a call it cannot see): it panics with the trace.
    fn quiescent(&self, limit: Duration) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + limit;
        let mut s = self.lock();
        loop {
            let busy = s.in_flight > 0 || s.phases.iter().any(|p| matches!(p, Phase::Running));
            if !busy {
                return s;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "the checker lost track of a request (no call, no end within {limit:?}):\n{}",
                    s.trace.join("\n")
                );
            }
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn name(actor: usize) -> String {
    char::from(b'A' + actor as u8).to_string()
}

/// The SDK interceptor that stops scheduled requests at each call.
#[derive(Clone)]
pub struct Gate(pub Arc<Scheduler>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Intercept for Gate {
    fn name(&self) -> &'static str {
        "allotment-explore-gate"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(actor) = current_actor() else {
            return Ok(());
        };
        let request = ctx.request_mut();
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split('.').nth(1))
            .unwrap_or("")
            .to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let decision = self.0.gate(actor, Call::of(&op, &body));
        if decision == Decision::Crash {
            std::panic::panic_any(crate::faults::CRASH);
        }
        request
            .headers_mut()
            .insert(DECISION_HEADER, decision.header());
        Ok(())
    }
}

/// One request of a scenario.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
    pub key: Option<String>,
    /// The caller: `sub` and space-separated scopes.
    pub sub: &'static str,
    pub scope: &'static str,
    /// Starts once this request has finished (a retry), else at once.
    pub after: Option<usize>,
    /// The faults this request's calls may suffer, and on which operations
    /// (empty: any); `None`: the scenario's.
    pub may: Option<(&'static [FaultKind], &'static [&'static str])>,
}

impl Request {
    pub fn new(method: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self {
            method,
            path: path.into(),
            body,
            key: None,
            sub: "billing",
            scope: "admin payments payments:process",
            after: None,
            may: None,
        }
    }
    pub fn may(mut self, kinds: &'static [FaultKind], ops: &'static [&'static str]) -> Self {
        self.may = Some((kinds, ops));
        self
    }
    pub fn keyed(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn after(mut self, actor: usize) -> Self {
        self.after = Some(actor);
        self
    }
    pub fn by(mut self, sub: &'static str, scope: &'static str) -> Self {
        self.sub = sub;
        self.scope = scope;
        self
    }
}

/// How a scheduled request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Status(u16, Value),
    /// Cut off before one of its calls.
    Crashed,
}

impl Answer {
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Status(s, _) => Some(*s),
            Answer::Crashed => None,
        }
    }
    pub fn body(&self) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Answer::Status(_, b) => b,
            Answer::Crashed => &NULL,
        }
    }
}

/// The lambda_http request API Gateway would hand the route's function.
pub fn lambda_request(
    r: &Request,
) -> Result<(&'static allotment::routes::Route, lambda_http::Request), String> {
    let method: hyper::Method = r.method.parse().map_err(|e| format!("{e}"))?;
    let (path, _) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let (route, params) = match match_route(ROUTES, &method, path) {
        Match::Found(route, params) => (route, params),
        _ => return Err(format!("no route for {} {}", r.method, r.path)),
    };
    let body = if r.body.is_null() {
        Vec::new()
    } else {
        r.body.to_string().into_bytes()
    };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(&r.path)
        .header("content-type", "application/json");
    if let Some(k) = &r.key {
        builder = builder.header("idempotency-key", k);
    }
    let (parts, ()) = builder.body(()).map_err(|e| e.to_string())?.into_parts();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(r.sub));
    claims.insert("scope".into(), json!(r.scope));
    let event = crate::front::http_api_event(
        &parts,
        route.method.as_str(),
        route.path,
        &params,
        &claims,
        &body,
        ([127, 0, 0, 1], 1).into(),
    );
    let request = lambda_http::request::from_str(&event.to_string()).map_err(|e| e.to_string())?;
    Ok((route, request))
}

/// A scenario: its requests, the faults and bounds explored, and its properties.
pub struct Bounds {
    pub faults: usize,
    pub preemptions: usize,
    pub kinds: &'static [FaultKind],
    /// Stop after this many schedules (exhaustive: `usize::MAX`).
    pub max_schedules: usize,
}

/// One option at a choice point.
#[derive(Debug, Clone, Copy)]
struct Opt {
    actor: usize,
    decision: Decision,
    preempts: bool,
}

/// One schedule's run: the choices made (index, options) and the answers.
pub struct Run {
    choices: Vec<(usize, usize)>,
    /// At each choice point, the calls the requests were stopped at: a
    /// replayed prefix must meet the same ones, or the run diverged.
    points: Vec<String>,
    pub answers: Vec<Answer>,
    pub trace: String,
    /// Faults injected, by kind.
    pub faults: Vec<Decision>,
}

/// Makes the App every scheduled request of an exploration shares (its SDK
/// client must use [`http_client`] and [`Gate`]): one client, one pool of
/// connections, however many schedules.
pub type MakeApp<'a> = &'a (dyn Fn() -> App + Sync);

/// Runs `requests` once, choosing `prefix[i]` at the i-th choice point (0
/// beyond it, or a random option when `rng` is given).
pub fn run_once(
    sched: &Arc<Scheduler>,
    app: &App,
    requests: &[Request],
    bounds: &Bounds,
    prefix: &[usize],
    mut rng: Option<&mut fastrand::Rng>,
) -> Run {
    sched.reset(requests.len());
    let mut handles: Vec<Option<std::thread::JoinHandle<()>>> =
        (0..requests.len()).map(|_| None).collect();
    let answers: Arc<Mutex<Vec<Option<Answer>>>> = Arc::new(Mutex::new(vec![None; requests.len()]));
    let mut choices = Vec::new();
    let mut points = Vec::new();
    let mut faults = Vec::new();
    let (mut used_faults, mut used_preemptions, mut last): (usize, usize, Option<usize>) =
        (0, 0, None);
    let start = |i: usize, handles: &mut Vec<Option<std::thread::JoinHandle<()>>>| {
        let r = requests[i].clone();
        sched.lock().phases[i] = Phase::Running;
        sched.note(format!(
            "{} starts: {} {}{} {}",
            name(i),
            r.method,
            r.path,
            r.key
                .as_ref()
                .map(|k| format!(" (Idempotency-Key {k})"))
                .unwrap_or_default(),
            r.body
        ));
        let (sched2, answers, app) = (sched.clone(), answers.clone(), app.clone());
        handles[i] = Some(std::thread::spawn(move || {
            set_actor(Some(i));
            // The request's own runtime: its DynamoDB traffic runs on the
            // wire's (see [`http_client`]), so nothing else needs this thread.
            let answer = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        let (route, req) = lambda_request(&r)?;
                        let resp = rt.block_on(dispatch(route, app, req));
                        let status = resp.status().as_u16();
                        let body =
                            serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
                        Ok::<_, String>(Answer::Status(status, body))
                    }));
                    rt.shutdown_background();
                    match ran {
                        Ok(Ok(a)) => a,
                        Ok(Err(e)) => Answer::Status(0, json!(e)),
                        Err(_) => Answer::Crashed,
                    }
                }
                Err(e) => Answer::Status(0, json!(e.to_string())),
            };
            let line = match &answer {
                Answer::Status(s, b) => format!("{} answers {s} {}", name(i), b),
                Answer::Crashed => format!("{} crashed", name(i)),
            };
            answers.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(answer.clone());
            let mut s = sched2.lock();
            s.trace.push(line);
            s.phases[i] = if answer == Answer::Crashed {
                Phase::Crashed
            } else {
                Phase::Done
            };
            sched2.cv.notify_all();
        }));
    };
    for (i, r) in requests.iter().enumerate() {
        if r.after.is_none() {
            start(i, &mut handles);
        }
    }
    loop {
        let s = sched.quiescent(Duration::from_secs(60));
        let finished = |p: &Phase| matches!(p, Phase::Done | Phase::Crashed);
        let ready: Vec<usize> = (0..requests.len())
            .filter(|&i| {
                matches!(s.phases[i], Phase::NotStarted)
                    && requests[i].after.is_some_and(|a| finished(&s.phases[a]))
            })
            .collect();
        if !ready.is_empty() {
            drop(s);
            for i in ready {
                start(i, &mut handles);
            }
            continue;
        }
        let blocked: Vec<(usize, Call)> = s
            .phases
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                if let Phase::Blocked(c) = p {
                    Some((i, c.clone()))
                } else {
                    None
                }
            })
            .collect();
        if blocked.is_empty() {
            break;
        }
        let last_blocked = last.filter(|l| blocked.iter().any(|(i, _)| i == l));
        let mut order: Vec<&(usize, Call)> = blocked
            .iter()
            .filter(|(i, _)| Some(*i) == last_blocked)
            .collect();
        order.extend(blocked.iter().filter(|(i, _)| Some(*i) != last_blocked));
        let mut opts = Vec::new();
        for (i, _) in &order {
            let preempts = last_blocked.is_some_and(|l| l != *i);
            if !preempts || used_preemptions < bounds.preemptions {
                opts.push(Opt {
                    actor: *i,
                    decision: Decision::Pass,
                    preempts,
                });
            }
        }
        if used_faults < bounds.faults {
            for (i, call) in &order {
                let preempts = last_blocked.is_some_and(|l| l != *i);
                if preempts && used_preemptions >= bounds.preemptions {
                    continue;
                }
                let (kinds, ops) = requests[*i].may.unwrap_or((bounds.kinds, &[]));
                if !ops.is_empty() && !ops.contains(&call.op.as_str()) {
                    continue;
                }
                for kind in kinds {
                    match kind {
                        FaultKind::Lose if call.write => opts.push(Opt {
                            actor: *i,
                            decision: Decision::Lose,
                            preempts,
                        }),
                        FaultKind::Throttle => opts.push(Opt {
                            actor: *i,
                            decision: Decision::Throttle,
                            preempts,
                        }),
                        FaultKind::Crash => opts.push(Opt {
                            actor: *i,
                            decision: Decision::Crash,
                            preempts,
                        }),
                        FaultKind::Stale if call.eventual => {
                            for k in 1..=2 {
                                opts.push(Opt {
                                    actor: *i,
                                    decision: Decision::Stale(k),
                                    preempts,
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let pick = match rng.as_deref_mut() {
            Some(rng) if choices.len() >= prefix.len() => {
                // Mostly the plain next step, sometimes a switch or a fault.
                if rng.f64() < 0.7 {
                    0
                } else {
                    rng.usize(..opts.len())
                }
            }
            _ => prefix
                .get(choices.len())
                .copied()
                .unwrap_or(0)
                .min(opts.len() - 1),
        };
        choices.push((pick, opts.len()));
        points.push(
            order
                .iter()
                .map(|(i, c)| format!("{}:{}", name(*i), c.op))
                .collect::<Vec<_>>()
                .join(" "),
        );
        let o = opts[pick];
        used_preemptions += usize::from(o.preempts);
        let call = blocked
            .iter()
            .find(|(i, _)| *i == o.actor)
            .map(|(_, c)| c.clone());
        drop(s);
        let mut s = sched.lock();
        if o.decision != Decision::Pass {
            used_faults += 1;
            faults.push(o.decision);
        }
        if let Some(c) = &call {
            let label = match o.decision {
                Decision::Pass => String::new(),
                Decision::Lose => "  ← applied, answer LOST".into(),
                Decision::Throttle => "  ← THROTTLED until retries run out".into(),
                Decision::Crash => "  ← CRASH before it (time limit)".into(),
                Decision::Stale(k) => format!("  ← STALE read ({k} write(s) behind)"),
            };
            s.trace
                .push(format!("  {} {} {}{label}", name(o.actor), c.op, c.what));
            if o.decision == Decision::Throttle {
                s.throttling[o.actor] = Some((c.op.clone(), sched.max_attempts.saturating_sub(1)));
            }
        }
        if o.decision != Decision::Crash {
            s.in_flight += 1;
        }
        // Running from now, not from when its thread wakes: until then the
        // request would still look stopped at this call.
        s.phases[o.actor] = Phase::Running;
        s.grants[o.actor] = Some(o.decision);
        last = Some(o.actor);
        sched.cv.notify_all();
    }
    for h in handles.into_iter().flatten() {
        let _ = h.join();
    }
    let answers = answers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|a| a.clone().unwrap_or(Answer::Crashed))
        .collect();
    let trace = sched.lock().trace.join("\n");
    Run {
        choices,
        points,
        answers,
        trace,
        faults,
    }
}

/// An injected crash is the expected end of a request: no panic message.
fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&crate::faults::CRASH) {
                default(info);
            }
        }));
    });
}

/// What exploring a scenario came to.
#[derive(Debug, Default)]
pub struct Explored {
    pub schedules: usize,
    /// True when every schedule within the bounds was run.
    pub exhaustive: bool,
    pub faults: HashMap<String, usize>,
    /// The first violation: the property's message and the schedule's trace.
    pub violation: Option<String>,
    pub elapsed: Duration,
    /// Schedules whose replayed prefix met other calls than the run it was
    /// taken from (timing inside a request decided differently): those
    /// explored a neighbouring branch instead of the chosen one.
    pub diverged: usize,
}

/// Explores `requests` depth-first within `bounds` (or, with `seed`, that
/// many random schedules), calling `setup(n)` before schedule `n` and
/// `check(n, answers)` after it; stops at the first violation.
pub fn explore(
    sched: &Arc<Scheduler>,
    make_app: MakeApp<'_>,
    bounds: &Bounds,
    seed: Option<u64>,
    mut setup: impl FnMut(usize) -> Vec<Request>,
    mut check: impl FnMut(usize, &[Request], &Run) -> Result<(), String>,
) -> Explored {
    quiet_crashes();
    let started = Instant::now();
    let mut out = Explored::default();
    let mut prefix: Vec<usize> = Vec::new();
    let mut expected: Vec<String> = Vec::new();
    let mut rng = seed.map(fastrand::Rng::with_seed);
    let app = make_app();
    while out.schedules < bounds.max_schedules {
        let n = out.schedules;
        sched.lock().history.clear();
        let requests = setup(n);
        let run = run_once(sched, &app, &requests, bounds, &prefix, rng.as_mut());
        out.schedules += 1;
        if rng.is_none() && run.points.iter().zip(&expected).any(|(a, b)| a != b) {
            out.diverged += 1;
        }
        for f in &run.faults {
            let kind = match f {
                Decision::Stale(_) => "stale read".to_owned(),
                other => other.header(),
            };
            *out.faults.entry(kind).or_default() += 1;
        }
        if let Err(msg) = check(n, &requests, &run) {
            let mut text = String::new();
            let _ = writeln!(
                text,
                "VIOLATION after {} schedule(s): {msg}\n{}",
                out.schedules, run.trace
            );
            out.violation = Some(text);
            break;
        }
        if rng.is_some() {
            continue;
        }
        // Depth-first: the last choice point with an option left, taken next.
        let Some(i) = run.choices.iter().rposition(|(pick, n)| pick + 1 < *n) else {
            out.exhaustive = true;
            break;
        };
        prefix = run.choices[..i].iter().map(|(p, _)| *p).collect();
        prefix.push(run.choices[i].0 + 1);
        expected = run.points[..=i].to_vec();
    }
    out.elapsed = started.elapsed();
    out
}

// ---------------------------------------------------------------- the proxy's side

type ProxyClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;
type HttpResponse = hyper::Response<http_body_util::Full<bytes::Bytes>>;

async fn upstream_call(
    client: &ProxyClient,
    upstream: &str,
    parts: &hyper::http::request::Parts,
    target: &str,
    body: bytes::Bytes,
) -> Result<(u16, bytes::Bytes), std::io::Error> {
    use http_body_util::BodyExt;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        if k != "x-amz-target" && k != "content-length" && k != DECISION_HEADER {
            out = out.header(k, v);
        }
    }
    let out = out
        .header("x-amz-target", format!("DynamoDB_20120810.{target}"))
        .header("content-length", body.len().to_string())
        .body(http_body_util::Full::new(body))
        .map_err(std::io::Error::other)?;
    let resp = client.request(out).await.map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, bytes))
}

fn table_of(op: &str, body: &Value) -> String {
    let from_map = |v: &Value| v.as_object().and_then(|t| t.keys().next().cloned());
    match op {
        "BatchWriteItem" | "BatchGetItem" => from_map(&body["RequestItems"]),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|t| t.as_object())
            .and_then(|o| o.values().next())
            .and_then(|v| v["TableName"].as_str())
            .map(str::to_owned),
        _ => body["TableName"].as_str().map(str::to_owned),
    }
    .unwrap_or_default()
}

/// The item under `key` (`pk|sk`), read strongly consistent.
async fn read_key(
    client: &ProxyClient,
    upstream: &str,
    parts: &hyper::http::request::Parts,
    table: &str,
    key: &str,
) -> Result<Option<Value>, std::io::Error> {
    let (pk, sk) = key.split_once('|').unwrap_or((key, ""));
    let req = json!({"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}, "ConsistentRead": true});
    let (status, bytes) = upstream_call(
        client,
        upstream,
        parts,
        "GetItem",
        bytes::Bytes::from(req.to_string()),
    )
    .await?;
    if status != 200 {
        return Err(std::io::Error::other(format!(
            "history read: {status} {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    Ok(v.get("Item").cloned())
}

fn json_response(status: u16, body: String) -> Result<HttpResponse, std::io::Error> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(std::io::Error::other)
}

/// One call through the proxy while the checker runs: `decision` applied
/// (none: an unscheduled call, forwarded as is), every write's items recorded
/// before and after so that a stale read can answer an earlier version.
pub async fn serve_scheduled(
    sched: &Scheduler,
    parts: &hyper::http::request::Parts,
    body: bytes::Bytes,
    op: &str,
    decision: Option<Decision>,
    client: &ProxyClient,
    upstream: &str,
) -> Result<HttpResponse, std::io::Error> {
    if decision == Some(Decision::Throttle) {
        return json_response(400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#.into());
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let table = table_of(op, &request);
    let mut keys = Vec::new();
    if WRITES.contains(&op) {
        for_each_key(op, &request, &mut |k| keys.push(k));
        for k in &keys {
            if !sched.knows(k) {
                let before = read_key(client, upstream, parts, &table, k).await?;
                sched.record(k.clone(), before);
            }
        }
    }
    let (status, bytes) = upstream_call(client, upstream, parts, op, body).await?;
    for k in &keys {
        let after = read_key(client, upstream, parts, &table, k).await?;
        sched.record(k.clone(), after);
    }
    let mut answer = bytes;
    if let (Some(Decision::Stale(k)), 200) = (decision, status) {
        let mut resp: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        stale(sched, op, &request, &mut resp, &table, k);
        answer = bytes::Bytes::from(resp.to_string());
    }
    if decision == Some(Decision::Lose) {
        return json_response(500, r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#.into());
    }
    json_response(status, String::from_utf8_lossy(&answer).into_owned())
}

/// Rewrites a read's answer as a replica `k` writes behind would give it.
fn stale(sched: &Scheduler, op: &str, request: &Value, resp: &mut Value, table: &str, k: u8) {
    match op {
        "GetItem" => {
            if let Some(old) = sched.version_ago(&item_key(&request["Key"]), k) {
                *resp = match old {
                    Some(item) => json!({"Item": item}),
                    None => json!({}),
                };
            }
        }
        "BatchGetItem" => {
            let requested: Vec<String> = request["RequestItems"][table]["Keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(item_key)
                .collect();
            let Some(items) = resp["Responses"][table].as_array_mut() else {
                return;
            };
            for key in requested {
                if let Some(old) = sched.version_ago(&key, k) {
                    items.retain(|i| item_key(i) != key);
                    items.extend(old);
                }
            }
        }
        "Query" => {
            let attr = request["ExpressionAttributeNames"]["#pk"]
                .as_str()
                .unwrap_or("pk")
                .to_owned();
            let value = request["ExpressionAttributeValues"][":pk"]["S"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let inside = |v: &Option<Value>| {
                v.as_ref()
                    .is_some_and(|i| i[&attr]["S"].as_str() == Some(value.as_str()))
            };
            let Some(items) = resp["Items"].as_array_mut() else {
                return;
            };
            for (key, now, old) in sched.all_versions(k) {
                if inside(&now) || inside(&old) {
                    items.retain(|i| item_key(i) != key);
                    if inside(&old) {
                        items.extend(old);
                    }
                }
            }
            let count = items.len();
            resp["Count"] = json!(count);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- the wire, off the requests' threads

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

/// A runtime of its own for the SDK's HTTP traffic: a scheduled request's
/// thread is stopped at its next call while an earlier call of the same
/// request (`tokio::join!`, `for_each`) is still on the wire, so the wire
/// must not need that thread to make progress.
fn wire() -> &'static tokio::runtime::Runtime {
    static WIRE: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    WIRE.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("explore-wire")
            .enable_all()
            .build()
            .expect("the checker's wire runtime")
    })
}

/// The SDK's plain HTTP client, every call of it run on [`wire`].
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(Offload(aws_smithy_http_client::Builder::new().build_http()))
}

#[derive(Debug)]
struct Offload(SharedHttpClient);

impl HttpClient for Offload {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(OffloadConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

#[derive(Debug)]
struct OffloadConnector(SharedHttpConnector);

impl HttpConnector for OffloadConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        let call = wire().spawn(async move { inner.call(request).await });
        HttpConnectorFuture::new(async move {
            call.await.map_err(|e| {
                aws_smithy_runtime_api::client::result::ConnectorError::other(Box::new(e), None)
            })?
        })
    }
}

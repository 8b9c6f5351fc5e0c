//! An SDK interceptor that counts DynamoDB requests per operation and injects
//! the faults real DynamoDB produces: throttling, `UnprocessedItems` /
//! `UnprocessedKeys`, and transaction conflicts. A faulted request is turned
//! into a harmless `ListTables` before it is signed, so DynamoDB Local applies
//! nothing of it (a partially processed BatchWriteItem writes only its first
//! half), and the response is replaced by the one DynamoDB would have sent.
//!
//! Two faults let the request through: [`Fault::LostAnswer`] (DynamoDB applies
//! it, the caller gets a 500 `InternalServerError`, as when the answer of a
//! committed write is lost) and [`Fault::Crash`] (the calling task panics
//! before the request is sent, as a function cut off at its time limit stops
//! between two calls). Timeouts and reset connections after the write was
//! applied happen on the wire: see [`crate::proxy`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ThrottlingException` (HTTP 400); nothing applied.
    Throttle,
    /// BatchWriteItem: the second half of the items comes back unprocessed;
    /// BatchGetItem: every key comes back unprocessed.
    Unprocessed,
    /// TransactWriteItems cancelled with `TransactionConflict`; nothing applied.
    TransactionConflict,
    /// The request is applied, then its answer is replaced by a 500
    /// `InternalServerError`: the caller cannot tell whether it was.
    LostAnswer,
    /// The calling task panics before the request is sent: the request
    /// handler stops there, as a Lambda cut off at its time limit does.
    Crash,
    /// TransactWriteItems cancelled because the condition of its last
    /// action failed (as when a concurrent change got there first); nothing applied.
    ConditionFailed,
    /// A `ValidationException` (HTTP 400), not retryable; nothing applied.
    Invalid,
}

/// The message of a [`Fault::Crash`] panic.
pub const CRASH: &str = "injected crash";

#[derive(Debug, Clone)]
struct Rule {
    operation: &'static str,
    /// Calls to let through before faulting.
    pass: usize,
    /// Calls to fault after that (`usize::MAX`: all).
    times: usize,
    fault: Fault,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    calls: HashMap<String, usize>,
    faults_injected: usize,
    /// Send transactions without their ClientRequestToken (see [`Faults::without_client_tokens`]).
    strip_tokens: bool,
    /// Every partition key value requests named (see [`Faults::take_keys_seen`]).
    keys: Vec<String>,
    /// What the next eventually consistent BatchGetItem answers instead of reading.
    stale: Option<Vec<Value>>,
    /// Every call requests made, as IAM authorizes it (see [`Faults::take_calls_seen`]).
    calls_seen: Vec<Value>,
}

/// Shared handle: the test keeps one, the SDK client holds the interceptor.
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Faults")
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `times` calls of `operation` (e.g. "BatchWriteItem") fail with `fault`.
    pub fn inject(&self, operation: &'static str, fault: Fault, times: usize) -> &Self {
        self.lock().rules.push(Rule {
            operation,
            pass: 0,
            times,
            fault,
        });
        self
    }

    /// After `pass` more calls of `operation` succeed, every later one fails.
    pub fn fail_after(&self, operation: &'static str, pass: usize, fault: Fault) -> &Self {
        self.lock().rules.push(Rule {
            operation,
            pass,
            times: usize::MAX,
            fault,
        });
        self
    }

    /// Transactions go out without their `ClientRequestToken`, as if its
    /// 10-minute window had passed: a retry after a lost answer then meets
    /// its own applied write, and the caller's own-write recognition is what
    /// keeps it one effect (DynamoDB Local honours tokens otherwise).
    pub fn without_client_tokens(&self) -> &Self {
        self.lock().strip_tokens = true;
        self
    }

    /// The partition-key values of the table (or of the index a Query read)
    /// that requests named since the last call, for checking a route's IAM
    /// `dynamodb:LeadingKeys` against what it really touches.
    pub fn take_keys_seen(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().keys)
    }

    /// The calls requests made since the last call, as IAM authorizes them:
    /// `{"action": "dynamodb:<Op>", "on": "table", "keys": [pk…]}`, or for an
    /// index Query `{"action", "on": "<index>", "indexKey": pk}`; a
    /// transaction is one entry per item, by its item's own action. The
    /// offline IAM check evaluates what the routes really call
    /// (`target/iam/route-calls.json`, written by the Lambda tests).
    pub fn take_calls_seen(&self) -> Vec<Value> {
        std::mem::take(&mut self.lock().calls_seen)
    }

    fn record_call(&self, op: &str, body: &Value) {
        let pk = |v: &Value| v["pk"]["S"].as_str().map(str::to_owned);
        let table = |action: &str, keys: Vec<String>| json!({"action": format!("dynamodb:{action}"), "on": "table", "keys": keys});
        let mut calls = Vec::new();
        match op {
            "Query" => match body["IndexName"].as_str() {
                Some(index) => calls.push(json!({"action": "dynamodb:Query", "on": index, "indexKey": body["ExpressionAttributeValues"][":pk"]["S"]})),
                None => calls.push(table("Query", body["ExpressionAttributeValues"][":pk"]["S"].as_str().map(str::to_owned).into_iter().collect())),
            },
            "TransactWriteItems" => {
                for item in body["TransactItems"].as_array().into_iter().flatten() {
                    for (kind, action, at) in [("Put", "PutItem", "Item"), ("Update", "UpdateItem", "Key"), ("Delete", "DeleteItem", "Key"), ("ConditionCheck", "ConditionCheckItem", "Key")] {
                        if let Some(k) = item.get(kind).and_then(|i| pk(&i[at])) {
                            calls.push(table(action, vec![k]));
                        }
                    }
                }
            }
            "BatchGetItem" => {
                let keys = body["RequestItems"].as_object().into_iter().flat_map(|t| t.values()).flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default()).filter_map(|k| pk(&k)).collect();
                calls.push(table(op, keys));
            }
            "BatchWriteItem" => {
                let keys = body["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flat_map(|t| t.values())
                    .flat_map(|r| r.as_array().cloned().unwrap_or_default())
                    .filter_map(|r| pk(&r["PutRequest"]["Item"]).or_else(|| pk(&r["DeleteRequest"]["Key"])))
                    .collect();
                calls.push(table(op, keys));
            }
            "PutItem" => calls.push(table(op, pk(&body["Item"]).into_iter().collect())),
            "" | "ListTables" | "DescribeTable" | "CreateTable" => {}
            _ => calls.push(table(op, pk(&body["Key"]).into_iter().collect())),
        }
        self.lock().calls_seen.extend(calls);
    }

    fn record_keys(&self, body: &Value) {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        if k == "pk" || k == ":pk" {
                            if let Some(s) = v.get("S").and_then(Value::as_str) {
                                out.push(s.to_owned());
                            }
                        }
                        walk(v, out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(body, &mut found);
        self.lock().keys.extend(found);
    }

    /// The next eventually consistent BatchGetItem answers `items` (DynamoDB
    /// JSON, as `Responses` of the table it names) without reading: what a
    /// replica that has not seen the latest writes would say.
    pub fn stale_read(&self, items: Vec<Value>) -> &Self {
        self.lock().stale = Some(items);
        self
    }

    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Requests sent per operation since the start (faulted ones included).
    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// All write requests: PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems.
    pub fn write_calls(&self) -> usize {
        [
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ]
        .iter()
        .map(|op| self.calls(op))
        .sum()
    }

    pub fn faults_injected(&self) -> usize {
        self.lock().faults_injected
    }

    pub fn reset_counts(&self) {
        let mut state = self.lock();
        state.calls.clear();
        state.faults_injected = 0;
    }

    /// Counts the call and says which fault, if any, it gets.
    fn on_call(&self, operation: &str) -> Option<Fault> {
        let mut state = self.lock();
        *state.calls.entry(operation.to_owned()).or_default() += 1;
        let rule = state
            .rules
            .iter_mut()
            .find(|r| r.operation == operation && (r.pass > 0 || r.times > 0))?;
        if rule.pass > 0 {
            rule.pass -= 1;
            return None;
        }
        rule.times = rule.times.saturating_sub(1);
        let fault = rule.fault;
        state.faults_injected += 1;
        Some(fault)
    }
}

/// What `modify_before_signing` decided, for `modify_before_deserialization`.
#[derive(Debug, Clone)]
struct Injected {
    status: u16,
    body: Vec<u8>,
}

impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}

const TARGET_PREFIX: &str = "DynamoDB_20120810.";

fn error_body(kind: &str, message: &str, extra: Value) -> Vec<u8> {
    let mut v =
        json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message});
    if let (Some(o), Value::Object(more)) = (v.as_object_mut(), extra) {
        o.extend(more);
    }
    v.to_string().into_bytes()
}

/// A TransactWriteItems cancelled for `code` on its last action (`last`) or
/// its first, as DynamoDB answers it; nothing applied.
fn cancelled(request: &Value, code: &str, message: &str, last: bool) -> Injected {
    let n = request.get("TransactItems").and_then(Value::as_array).map_or(1, Vec::len);
    let culprit = if last { n.saturating_sub(1) } else { 0 };
    let reasons: Vec<Value> =
        (0..n).map(|i| if i == culprit { json!({"Code": code, "Message": message}) } else { json!({"Code": "None"}) }).collect();
    Injected {
        status: 400,
        body: error_body(
            "TransactionCanceledException",
            &format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{code}]"),
            json!({"CancellationReasons": reasons}),
        ),
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "allotment-faults"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request_mut();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .unwrap_or("")
            .to_owned();
        // The request, read once for every use below.
        let mut body: Value = request.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        self.record_keys(&body);
        self.record_call(&operation, &body);
        if operation == "BatchGetItem" {
            let tables = body.get("RequestItems").and_then(Value::as_object);
            let eventual = tables.is_some_and(|t| t.values().all(|k| k.get("ConsistentRead") != Some(&Value::Bool(true))));
            if eventual {
                if let Some(items) = self.lock().stale.take() {
                    let table = tables.and_then(|t| t.keys().next().cloned()).unwrap_or_default();
                    let answer = json!({"Responses": {table: items}, "UnprocessedKeys": {}});
                    let listing = "{\"Limit\":1}".to_owned();
                    request.headers_mut().insert("x-amz-target", format!("{TARGET_PREFIX}ListTables"));
                    request.headers_mut().insert("content-length", listing.len().to_string());
                    *request.body_mut() = SdkBody::from(listing);
                    cfg.interceptor_state().store_put(Injected { status: 200, body: answer.to_string().into_bytes() });
                    return Ok(());
                }
            }
        }
        if operation == "TransactWriteItems" && self.lock().strip_tokens {
            if let Some(o) = body.as_object_mut() {
                o.remove("ClientRequestToken");
                let stripped = body.to_string();
                request.headers_mut().insert("content-length", stripped.len().to_string());
                *request.body_mut() = SdkBody::from(stripped);
            }
        }
        let Some(fault) = self.on_call(&operation) else {
            return Ok(());
        };
        match fault {
            Fault::Crash => std::panic::panic_any(CRASH),
            Fault::LostAnswer => {
                let body = error_body("InternalServerError", "Internal server error", json!({}));
                cfg.interceptor_state()
                    .store_put(Injected { status: 500, body });
                return Ok(());
            }
            _ => {}
        }
        let mut forward: Option<Value> = None; // a reduced request to really send
        let injected = match (fault, operation.as_str()) {
            (Fault::Unprocessed, "BatchWriteItem") => {
                let mut kept = body.clone();
                let mut unprocessed = serde_json::Map::new();
                if let Some(tables) = kept.get_mut("RequestItems").and_then(Value::as_object_mut) {
                    for (table, items) in tables.iter_mut() {
                        if let Some(list) = items.as_array_mut() {
                            let rest = list.split_off(list.len() / 2);
                            unprocessed.insert(table.clone(), Value::Array(rest));
                        }
                    }
                    tables.retain(|_, items| items.as_array().is_some_and(|l| !l.is_empty()));
                }
                let has_kept = kept
                    .get("RequestItems")
                    .and_then(Value::as_object)
                    .is_some_and(|t| !t.is_empty());
                if has_kept {
                    forward = Some(kept);
                }
                Injected {
                    status: 200,
                    body: json!({"UnprocessedItems": unprocessed})
                        .to_string()
                        .into_bytes(),
                }
            }
            (Fault::Unprocessed, "BatchGetItem") => {
                let all = body
                    .get("RequestItems")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let empty: serde_json::Map<String, Value> = all
                    .as_object()
                    .map(|t| t.keys().map(|k| (k.clone(), json!([]))).collect())
                    .unwrap_or_default();
                Injected {
                    status: 200,
                    body: json!({"Responses": empty, "UnprocessedKeys": all})
                        .to_string()
                        .into_bytes(),
                }
            }
            (Fault::ConditionFailed, _) => cancelled(&body, "ConditionalCheckFailed", "The conditional request failed", true),
            (Fault::Invalid, _) => Injected {
                status: 400,
                body: error_body(
                    "ValidationException",
                    "Item size has exceeded the maximum allowed size",
                    json!({}),
                ),
            },
            (Fault::TransactionConflict, _) => cancelled(&body, "TransactionConflict", "Transaction is ongoing for the item", false),
            _ => Injected {
                status: 400,
                body: error_body(
                    "ThrottlingException",
                    "Rate of requests exceeds the allowed throughput.",
                    json!({}),
                ),
            },
        };
        let (target, new_body) = match forward {
            Some(reduced) => (format!("{TARGET_PREFIX}{operation}"), reduced.to_string()),
            None => (
                format!("{TARGET_PREFIX}ListTables"),
                "{\"Limit\":1}".to_owned(),
            ),
        };
        request.headers_mut().insert("x-amz-target", target);
        request
            .headers_mut()
            .insert("content-length", new_body.len().to_string());
        *request.body_mut() = SdkBody::from(new_body);
        cfg.interceptor_state().store_put(injected);
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(injected) = cfg.load::<Injected>().cloned() else {
            return Ok(());
        };
        cfg.interceptor_state().unset::<Injected>();
        let response = ctx.response_mut();
        *response.status_mut() = StatusCode::try_from(injected.status)?;
        response
            .headers_mut()
            .insert("content-length", injected.body.len().to_string());
        *response.body_mut() = SdkBody::from(injected.body);
        Ok(())
    }
}

//! An SDK interceptor that measures what every DynamoDB request costs in
//! capacity units, two ways:
//!
//! - **reported**: it asks for `ReturnConsumedCapacity: INDEXES` on every
//!   request and reads what DynamoDB (Local) answers;
//! - **rules**: it prices the same request from AWS's published sizing rules —
//!   writes in 1 KB units, reads in 4 KB units (half for eventually consistent
//!   reads and for every index read), transactional reads and writes at twice
//!   the cost, one more write per global secondary index an item is projected
//!   into (two when a write moves it within an index), a failed conditional
//!   write still charged for the item, a missing item still charged one read.
//!
//! The figure a call is counted at ([`Tally::used`]) is the reported one where
//! DynamoDB Local reports faithfully, and the rules' one where it does not:
//! failed writes (Local reports nothing; AWS charges them), transactions of
//! more than one action (Local reports one item's price whatever their number:
//! 50 puts come back as 2 units), a `ConditionCheck` (Local prices it at 0;
//! AWS bills it as a write), a Query that returns nothing (Local says 0; AWS
//! charges its minimum) and BatchGetItem keys that were not found (Local
//! prices them at 0). On every
//! other call both exist and are compared ([`Tally::compared`],
//! [`Tally::agreed`]). Item sizes the rules need for updates and deletes come
//! from the items this interceptor has seen written or read; an item never
//! seen is priced as one unit, outside any index.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::{Map, Value};

/// The table's global secondary indexes, by their key attributes (all
/// project ALL attributes, as template.yaml declares).
const INDEXES: [(&str, &str); 2] = [("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk")];

const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// Capacity units, read and write.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl Units {
    fn add(&mut self, other: Units) {
        self.read += other.read;
        self.write += other.write;
    }
}

impl std::ops::Sub for Units {
    type Output = Units;
    fn sub(self, o: Units) -> Units {
        Units { read: self.read - o.read, write: self.write - o.write }
    }
}

/// Everything measured since the last [`Capacity::reset`].
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests priced.
    pub calls: usize,
    /// The figure each call is counted at (see the module comment).
    pub used: Units,
    /// Calls counted at DynamoDB Local's reported figure, and at the rules'.
    pub from_reported: usize,
    pub from_rules: usize,
    /// Calls where both figures exist and were compared, and how many agreed.
    pub compared: usize,
    pub agreed: usize,
    /// The first few disagreements, described.
    pub disagreements: Vec<String>,
    /// The largest item written or read, in bytes by AWS's item-size rules.
    pub largest_item: usize,
    /// Items read (returned by GetItem, BatchGetItem, Query) and their bytes.
    pub read_items: usize,
    pub read_bytes: usize,
}

impl Tally {
    /// The average size of an item read, bytes (0 if none was read).
    pub fn average_read(&self) -> f64 {
        if self.read_items == 0 {
            0.0
        } else {
            self.read_bytes as f64 / self.read_items as f64
        }
    }
}

impl Tally {
    /// Where the figures came from, for a report column.
    pub fn source(&self) -> &'static str {
        match (self.from_reported, self.from_rules) {
            (0, 0) => "",
            (_, 0) => "Local",
            (0, _) => "rules",
            _ => "Local + rules",
        }
    }
}

#[derive(Default)]
struct State {
    tally: Tally,
    /// Size and index membership of every item seen, by key.
    items: HashMap<String, Seen>,
}

#[derive(Clone, Copy, Default)]
struct Seen {
    size: usize,
    /// Bit i: in index i.
    indexes: u8,
}

/// Shared handle: the bench keeps one, the SDK client holds the interceptor.
#[derive(Clone, Default)]
pub struct Capacity {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Capacity")
    }
}

impl Capacity {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn tally(&self) -> Tally {
        self.lock().tally.clone()
    }

    /// Starts a new tally (the item sizes seen are kept).
    pub fn reset(&self) {
        self.lock().tally = Tally::default();
    }
}

/// The request as sent, kept for pricing once the answer is in.
#[derive(Debug, Clone)]
struct Sent {
    operation: String,
    /// Shared, so loading it back from the config bag copies no JSON.
    body: Arc<Value>,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

const PRICED: [&str; 8] =
    ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "Query"];

impl Intercept for Capacity {
    fn name(&self) -> &'static str {
        "allotment-capacity"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request_mut();
        let operation = request.headers().get("x-amz-target").and_then(|t| t.strip_prefix(TARGET_PREFIX)).unwrap_or("").to_owned();
        if !PRICED.contains(&operation.as_str()) && operation != "Scan" {
            return Ok(());
        }
        let Some(mut body) = request.body().bytes().and_then(|b| serde_json::from_slice::<Value>(b).ok()) else { return Ok(()) };
        if let Some(o) = body.as_object_mut() {
            o.entry("ReturnConsumedCapacity").or_insert_with(|| Value::String("INDEXES".into()));
        }
        let text = body.to_string();
        request.headers_mut().insert("content-length", text.len().to_string());
        *request.body_mut() = SdkBody::from(text);
        cfg.interceptor_state().store_put(Sent { operation, body: Arc::new(body) });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(sent) = cfg.load::<Sent>().cloned() else { return Ok(()) };
        cfg.interceptor_state().unset::<Sent>();
        let response = ctx.response();
        let status = response.status().as_u16();
        let body: Value = response.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        if status != 200 && !is_condition_failure(&body) {
            return Ok(()); // throttled, faulted or refused: nothing applied, nothing charged
        }
        let mut state = self.lock();
        price(&mut state, &sent, status == 200, &body);
        Ok(())
    }
}

fn is_condition_failure(body: &Value) -> bool {
    let kind = body.get("__type").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("ConditionalCheckFailedException")
        || (kind.ends_with("TransactionCanceledException")
            && body.get("CancellationReasons").and_then(Value::as_array).is_some_and(|r| {
                r.iter().any(|x| x.get("Code").and_then(Value::as_str) == Some("ConditionalCheckFailed"))
            }))
}

// ---------------------------------------------------------------- AWS's rules

/// An item's size by AWS's rules: attribute names plus values (strings and
/// binaries their length, numbers 1 byte per two significant digits plus 1,
/// booleans and nulls 1, lists and maps 3 plus 1 per element).
pub fn item_size(item: &Map<String, Value>) -> usize {
    item.iter().map(|(name, v)| name.len() + value_size(v)).sum()
}

fn value_size(v: &Value) -> usize {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "SS" => inner.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(str::len).sum()),
        "NS" => inner.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(number_size).sum()),
        "BS" => inner.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(|b| b.len() * 3 / 4).sum()),
        "L" => 3 + inner.as_array().map_or(0, |a| a.iter().map(|e| 1 + value_size(e)).sum()),
        "M" => 3 + inner.as_object().map_or(0, |m| m.iter().map(|(k, e)| 1 + k.len() + value_size(e)).sum()),
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

/// Write units of one write of an item of `size` bytes (1 KB each, at least 1).
pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Read units of a strongly consistent read of `size` bytes (4 KB each, at least 1).
pub fn read_units(size: usize) -> f64 {
    size.div_ceil(4096).max(1) as f64
}

fn index_bits(item: &Map<String, Value>) -> u8 {
    INDEXES.iter().enumerate().filter(|(_, (pk, sk))| item.contains_key(*pk) && item.contains_key(*sk)).fold(0, |b, (i, _)| b | 1 << i)
}

/// An item's (or key's) table key, as a map key.
fn key_of(item: &Map<String, Value>) -> String {
    let get = |name: &str| item.get(name).map(Value::to_string).unwrap_or_default();
    format!("{}|{}", get("pk"), get("sk"))
}

/// `v` as a JSON object, borrowed (an empty one if it is not an object).
fn obj(v: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    v.as_object().unwrap_or(&EMPTY)
}

fn reported(body: &Value, read: bool) -> Option<Units> {
    let cc = body.get("ConsumedCapacity")?;
    let total: f64 = match cc {
        Value::Array(list) => list.iter().filter_map(|c| c.get("CapacityUnits").and_then(Value::as_f64)).sum(),
        c => c.get("CapacityUnits").and_then(Value::as_f64)?,
    };
    Some(if read { Units { read: total, write: 0.0 } } else { Units { read: 0.0, write: total } })
}

impl State {
    fn seen(&self, key: &Value) -> Seen {
        self.items.get(&key_of(obj(key))).copied().unwrap_or(Seen { size: 0, indexes: 0 })
    }

    fn note(&mut self, item: &Map<String, Value>) -> Seen {
        let seen = Seen { size: item_size(item), indexes: index_bits(item) };
        self.tally.largest_item = self.tally.largest_item.max(seen.size);
        self.items.insert(key_of(item), seen);
        seen
    }

    /// Notes an item a read returned, and counts it among the reads: its size.
    fn note_read(&mut self, item: &Map<String, Value>) -> usize {
        let size = self.note(item).size;
        self.tally.read_items += 1;
        self.tally.read_bytes += size;
        size
    }

    fn forget(&mut self, key: &Value) {
        self.items.remove(&key_of(obj(key)));
    }

    /// A successful write of `seen`'s item: the item, plus each index it is in.
    fn write_of(seen: Seen, moved_in_index: u8) -> f64 {
        let units = write_units(seen.size);
        let indexes = seen.indexes.count_ones() as f64 + moved_in_index.count_ones() as f64;
        units * (1.0 + indexes)
    }

    /// Prices an Update: its item as seen (or as answered with ALL_NEW), and
    /// the indexes whose key attributes the expression names (a move: delete + put).
    fn update(&mut self, u: &Value, answered: Option<&Value>) -> (Seen, u8) {
        let mut seen = self.seen(&u["Key"]);
        if let Some(new) = answered.and_then(Value::as_object) {
            let mut full = obj(&u["Key"]).clone();
            full.extend(new.clone());
            if full.len() > 2 {
                seen = self.note(&full);
            }
        }
        let mut named: Vec<String> = u.get("ExpressionAttributeNames").and_then(Value::as_object).map_or(Vec::new(), |m| {
            m.values().filter_map(Value::as_str).map(str::to_owned).collect()
        });
        named.push(u.get("UpdateExpression").and_then(Value::as_str).unwrap_or("").to_owned());
        let mut moved = 0u8;
        for (i, (pk, sk)) in INDEXES.iter().enumerate() {
            let touched = named.iter().any(|n| n.split(|c: char| !c.is_alphanumeric()).any(|w| w == *pk || w == *sk));
            if touched && seen.indexes & (1 << i) != 0 {
                moved |= 1 << i;
            }
        }
        (seen, moved)
    }
}

fn price(state: &mut State, sent: &Sent, ok: bool, resp: &Value) {
    let req = &sent.body;
    let mut rules = Units::default();
    // Whether DynamoDB Local's figure is to be trusted for this call, and
    // whether the rules could see everything they price (for the comparison).
    let mut local_faithful = ok;
    let mut comparable = true;
    let read = matches!(sent.operation.as_str(), "GetItem" | "BatchGetItem" | "Query" | "Scan");
    match sent.operation.as_str() {
        "PutItem" => {
            let seen = state.note(obj(&req["Item"]));
            rules.write = if ok { State::write_of(seen, 0) } else { write_units(seen.size) };
        }
        "UpdateItem" => {
            let (seen, moved) = state.update(req, resp.get("Attributes").filter(|_| req["ReturnValues"] == "ALL_NEW"));
            rules.write = if ok { State::write_of(seen, moved) } else { write_units(seen.size) };
        }
        "DeleteItem" => {
            let seen = state.seen(&req["Key"]);
            rules.write = if ok { State::write_of(seen, 0) } else { write_units(seen.size) };
            if ok {
                state.forget(&req["Key"]);
            }
        }
        "BatchWriteItem" => {
            let unprocessed: Vec<String> = resp
                .get("UnprocessedItems")
                .and_then(Value::as_object)
                .map(|t| t.values().filter_map(Value::as_array).flatten().map(write_request_key).collect())
                .unwrap_or_default();
            for list in req["RequestItems"].as_object().into_iter().flat_map(|t| t.values()).filter_map(Value::as_array) {
                for w in list {
                    if unprocessed.contains(&write_request_key(w)) {
                        continue;
                    }
                    if let Some(item) = w.pointer("/PutRequest/Item") {
                        let seen = state.note(obj(item));
                        rules.write += State::write_of(seen, 0);
                    } else if let Some(key) = w.pointer("/DeleteRequest/Key") {
                        rules.write += State::write_of(state.seen(key), 0);
                        state.forget(key);
                    }
                }
            }
        }
        "TransactWriteItems" => {
            if req["TransactItems"].as_array().map_or(0, Vec::len) > 1 {
                local_faithful = false;
            }
            for action in req["TransactItems"].as_array().into_iter().flatten() {
                let (seen, moved) = if let Some(put) = action.get("Put") {
                    (state.note(obj(&put["Item"])), 0)
                } else if let Some(u) = action.get("Update") {
                    state.update(u, None)
                } else if let Some(d) = action.get("Delete") {
                    let seen = state.seen(&d["Key"]);
                    if ok {
                        state.forget(&d["Key"]);
                    }
                    (seen, 0)
                } else if let Some(c) = action.get("ConditionCheck") {
                    // Billed as a write of the item checked; Local prices it at 0.
                    local_faithful = false;
                    (Seen { indexes: 0, ..state.seen(&c["Key"]) }, 0)
                } else {
                    (Seen::default(), 0)
                };
                // Committed: two underlying writes of each action (index writes
                // too). Cancelled: the prepare phase of each item, once.
                rules.write += if ok { 2.0 * State::write_of(seen, moved) } else { write_units(seen.size) };
            }
        }
        "GetItem" => {
            let factor = if req["ConsistentRead"] == true { 1.0 } else { 0.5 };
            let size = resp.get("Item").map_or(0, |i| state.note_read(obj(i)));
            rules.read = factor * read_units(size);
        }
        "BatchGetItem" => {
            for (table, ask) in req["RequestItems"].as_object().into_iter().flatten() {
                let factor = if ask["ConsistentRead"] == true { 1.0 } else { 0.5 };
                let found: &[Value] = resp.pointer(&format!("/Responses/{table}")).and_then(Value::as_array).map_or(&[], Vec::as_slice);
                let unprocessed = resp.pointer(&format!("/UnprocessedKeys/{table}/Keys")).and_then(Value::as_array).map_or(0, Vec::len);
                let asked = ask["Keys"].as_array().map_or(0, Vec::len);
                for item in found {
                    rules.read += factor * read_units(state.note_read(obj(item)));
                }
                let missing = asked.saturating_sub(found.len() + unprocessed);
                if missing > 0 {
                    // A key not found still costs a read; Local prices it at 0.
                    rules.read += factor * missing as f64;
                    local_faithful = false;
                }
            }
        }
        "Query" | "Scan" => {
            let consistent = req["ConsistentRead"] == true && req.get("IndexName").is_none();
            let factor = if consistent { 1.0 } else { 0.5 };
            let items: &[Value] = resp["Items"].as_array().map_or(&[], Vec::as_slice);
            let size: usize = items.iter().map(|i| state.note_read(obj(i))).sum();
            rules.read = factor * read_units(size);
            // A filter reads items it does not return: the rules cannot see them.
            comparable = resp["ScannedCount"] == resp["Count"];
            if items.is_empty() && comparable {
                local_faithful = false; // Local prices an empty Query at 0
            }
        }
        _ => return,
    }
    let reported = if ok { reported(resp, read) } else { None };
    let tally = &mut state.tally;
    tally.calls += 1;
    match reported {
        Some(r) if local_faithful || !comparable => {
            tally.used.add(r);
            tally.from_reported += 1;
        }
        _ => {
            tally.used.add(rules);
            tally.from_rules += 1;
        }
    }
    if let (Some(r), true, true) = (reported, local_faithful, comparable) {
        tally.compared += 1;
        if (r.read - rules.read).abs() < 1e-9 && (r.write - rules.write).abs() < 1e-9 {
            tally.agreed += 1;
        } else if tally.disagreements.len() < 5 {
            tally.disagreements.push(format!(
                "{}: Local {:.1} R {:.1} W, rules {:.1} R {:.1} W",
                sent.operation, r.read, r.write, rules.read, rules.write
            ));
        }
    }
}

fn write_request_key(w: &Value) -> String {
    if let Some(item) = w.pointer("/PutRequest/Item") {
        key_of(obj(item))
    } else {
        w.pointer("/DeleteRequest/Key").map(|k| key_of(obj(k))).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sized(v: Value) -> usize {
        item_size(v.as_object().expect("object"))
    }

    #[test]
    fn item_sizes_follow_aws_rules() {
        // Name + UTF-8 length.
        assert_eq!(sized(json!({"pk": {"S": "PACK#1"}})), 2 + 6);
        assert_eq!(sized(json!({"é": {"S": "€"}})), 2 + 3);
        // Numbers: 1 byte per two significant digits, plus 1.
        assert_eq!(sized(json!({"n": {"N": "10000"}})), 1 + 2);
        assert_eq!(sized(json!({"n": {"N": "123.45"}})), 1 + 4);
        assert_eq!(sized(json!({"b": {"BOOL": true}, "z": {"NULL": true}})), 2 + 2);
        // Maps and lists: 3 bytes plus 1 per element.
        assert_eq!(sized(json!({"m": {"M": {"a": {"S": "xy"}}}})), 1 + 3 + 1 + 1 + 2);
        assert_eq!(sized(json!({"l": {"L": [{"S": "xy"}, {"N": "7"}]}})), 1 + 3 + (1 + 2) + (1 + 2));
    }

    #[test]
    fn units_round_up_with_a_minimum_of_one() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096), 1.0);
        assert_eq!(read_units(4097), 2.0);
    }

    #[test]
    fn a_transactional_put_in_one_index_costs_four_units_and_a_condition_check_two() {
        let mut state = State::default();
        let item = json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "gsi1pk": {"S": "x"}, "gsi1sk": {"S": "y"}});
        let req = json!({"TransactItems": [{"Put": {"Item": item}}, {"ConditionCheck": {"Key": {"pk": {"S": "c"}, "sk": {"S": "d"}}}}]});
        let sent = Sent { operation: "TransactWriteItems".into(), body: Arc::new(req) };
        // Local's figure for this call leaves the check out: the rules are used.
        price(&mut state, &sent, true, &json!({"ConsumedCapacity": [{"CapacityUnits": 4.0}]}));
        assert_eq!(state.tally.used, Units { read: 0.0, write: 6.0 });
        assert_eq!((state.tally.from_rules, state.tally.compared), (1, 0));
    }

    #[test]
    fn multi_action_transactions_and_empty_queries_are_priced_by_the_rules() {
        let mut state = State::default();
        let item = |k: &str| json!({"pk": {"S": k}, "sk": {"S": "s"}});
        let req = json!({"TransactItems": [{"Put": {"Item": item("a")}}, {"Put": {"Item": item("b")}}, {"Put": {"Item": item("c")}}]});
        // Local answers 2 units for any number of puts; AWS charges 2 per put.
        price(&mut state, &Sent { operation: "TransactWriteItems".into(), body: Arc::new(req) }, true, &json!({"ConsumedCapacity": [{"CapacityUnits": 2.0}]}));
        assert_eq!(state.tally.used.write, 6.0);
        // An empty Query: Local says 0, AWS charges half a unit (eventually consistent).
        let query = json!({"IndexName": "gsi1"});
        price(&mut state, &Sent { operation: "Query".into(), body: Arc::new(query) }, true, &json!({"Items": [], "Count": 0, "ScannedCount": 0, "ConsumedCapacity": {"CapacityUnits": 0.0}}));
        assert_eq!(state.tally.used.read, 0.5);
        assert_eq!((state.tally.from_rules, state.tally.from_reported, state.tally.compared), (2, 0, 0));
    }

    #[test]
    fn a_failed_conditional_put_costs_its_item_but_no_index_write() {
        let mut state = State::default();
        let item = json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "gsi1pk": {"S": "x"}, "gsi1sk": {"S": "y"}, "pad": {"S": "z".repeat(1500)}});
        let failed = json!({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"});
        assert!(is_condition_failure(&failed));
        price(&mut state, &Sent { operation: "PutItem".into(), body: Arc::new(json!({"Item": item})) }, false, &failed);
        assert_eq!(state.tally.used.write, 2.0, "1.5 KB: two units, no index");
        assert_eq!(state.tally.from_rules, 1);
    }

    #[test]
    fn an_update_naming_an_index_key_moves_the_item_within_the_index() {
        let mut state = State::default();
        let item = json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "gsi1pk": {"S": "x"}, "gsi1sk": {"S": "y"}});
        price(&mut state, &Sent { operation: "PutItem".into(), body: Arc::new(json!({"Item": item})) }, true, &json!({}));
        let update = json!({"Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}, "UpdateExpression": "SET #g = :g",
            "ExpressionAttributeNames": {"#g": "gsi1pk"}});
        state.tally = Tally::default();
        price(&mut state, &Sent { operation: "UpdateItem".into(), body: Arc::new(update) }, true, &json!({"ConsumedCapacity": {"CapacityUnits": 3.0}}));
        assert_eq!(state.tally.used.write, 3.0);
        assert_eq!((state.tally.compared, state.tally.agreed), (1, 1));
    }
}

//! Input files: one record per JSON line (packs, ferry) or CSV row
//! (payments), checked locally with the API's own rules, then cut into the
//! chunks that are sent — deterministically, so a resumed run cuts the same
//! file into the same chunks and each chunk's Idempotency-Key means the same.

use std::collections::BTreeMap;

use allotment::ferry::{PlaceholderInput, GROUPS};
use allotment::packs::{MAX_MINUTES, MAX_XID_CHARS};
use allotment::payments::{PaymentInput, MAX_DAYS};
use allotment::validate::parse_date;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// CI-minute packs, JSON Lines: {"namespace_id", "number_of_minutes", "expires_at", "purchase_xid"?}
    Packs,
    /// Work-period payments, CSV with a header: workPeriodId,days,amount
    Payments,
    /// Ferry subscriptions, JSON Lines: {"customer", "reference_customer_id", "group", "subscription": {…}}
    Ferry,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Packs => "packs",
            Kind::Payments => "payments",
            Kind::Ferry => "ferry",
        }
    }
}

/// One record of the file: where it is, what it says, and where it goes.
#[derive(Debug, Clone)]
pub struct Record {
    /// 1-based line number (CSV: counting the header as line 1).
    pub line: usize,
    /// The record as written, as JSON (a CSV row as an object of its cells).
    pub raw: Value,
    /// The entry it becomes in the request body.
    pub entry: Value,
    /// The request it belongs in (namespace, customer); chunks never mix targets.
    pub target: String,
    /// For Ferry: the group, and the reference pair the answer names it by.
    pub group: Option<&'static str>,
    pub pair: Option<(String, String)>,
    /// For Ferry: the customer's reference id, sent once per request.
    pub reference_customer_id: Option<String>,
}

/// A record the file got wrong, found before anything is sent.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub line: usize,
    pub raw: Value,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackLine {
    namespace_id: u64,
    number_of_minutes: i64,
    expires_at: String,
    #[serde(default)]
    purchase_xid: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FerryLine {
    customer: String,
    reference_customer_id: String,
    group: String,
    subscription: Value,
}

fn pack(line: usize, raw: Value) -> Result<Record, String> {
    let p: PackLine = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    if p.namespace_id == 0 {
        return Err("namespace_id must be a positive integer".into());
    }
    if !(1..=MAX_MINUTES).contains(&p.number_of_minutes) {
        return Err(format!("number_of_minutes must be an integer from 1 to {MAX_MINUTES}"));
    }
    parse_date(&p.expires_at).map_err(|m| format!("expires_at {m}"))?;
    if let Some(x) = &p.purchase_xid {
        let n = x.chars().count();
        if n == 0 || n > MAX_XID_CHARS {
            return Err(format!("purchase_xid must be 1 to {MAX_XID_CHARS} characters"));
        }
    }
    let entry = json!({"number_of_minutes": p.number_of_minutes, "expires_at": p.expires_at, "purchase_xid": p.purchase_xid});
    Ok(Record { line, raw, entry, target: p.namespace_id.to_string(), group: None, pair: None, reference_customer_id: None })
}

fn payment(line: usize, row: Map<String, Value>) -> Result<Record, String> {
    let raw = Value::Object(row.clone());
    // Empty cells are absent fields. Numbers go through f64: amounts are at
    // most 10^9 with two places (12 significant digits), which f64's shortest
    // representation gives back exactly, and the API re-checks them.
    let mut entry = Map::new();
    for (k, v) in row {
        let Value::String(cell) = v else { continue };
        if cell.trim().is_empty() {
            continue;
        }
        let value = if k == "workPeriodId" {
            Value::String(cell)
        } else {
            serde_json::from_str::<Value>(cell.trim()).map_err(|_| format!("{k} must be a number, got {cell:?}"))?
        };
        entry.insert(k, value);
    }
    let entry = Value::Object(entry);
    let input: PaymentInput = allotment::http::parse_json(entry.to_string().as_bytes()).map_err(|e| describe(&e.into()))?;
    if input.days.is_some_and(|d| !(0..=MAX_DAYS).contains(&d)) {
        return Err(format!("days must be an integer from 0 to {MAX_DAYS}"));
    }
    allotment::payments::validate_new_payment(input).map_err(|e| describe(&e.into()))?;
    Ok(Record { line, raw, entry, target: String::new(), group: None, pair: None, reference_customer_id: None })
}

fn ferry(line: usize, raw: Value) -> Result<Record, String> {
    let f: FerryLine = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    let group = GROUPS.iter().copied().find(|g| *g == f.group).ok_or_else(|| format!("group must be one of {}", GROUPS.join(", ")))?;
    if !allotment::validate::NAME.accepts(&f.customer) {
        return Err("customer must be 1 to 64 letters, digits, '.', '-' or '_'".into());
    }
    let item: PlaceholderInput = allotment::http::parse_json(f.subscription.to_string().as_bytes()).map_err(|e| describe(&e))?;
    allotment::ferry::check_request(&f.reference_customer_id, &[(group, item.clone())]).map_err(|e| describe(&e.into()))?;
    // The API's own rule for each subscription (dates, billing, the public-suffix rule for domains).
    allotment::ferry::check_alone(group, &item)?;
    Ok(Record {
        line,
        raw,
        entry: f.subscription,
        target: format!("{}\u{0}{}", f.customer, f.reference_customer_id),
        group: Some(group),
        pair: Some((item.reference_subscription_id, item.reference_product_id)),
        reference_customer_id: Some(f.reference_customer_id),
    })
}

/// An API error as one line: its message and field details.
pub fn describe(e: &allotment::error::ApiError) -> String {
    let details: Vec<String> = e.details().iter().map(|d| format!("{} {}", d.field, d.message)).collect();
    if details.is_empty() {
        e.to_string()
    } else {
        details.join("; ")
    }
}

/// Every record of `content`, valid or not, in file order.
pub fn parse(kind: Kind, content: &str) -> (Vec<Record>, Vec<Invalid>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    match kind {
        Kind::Packs | Kind::Ferry => {
            for (i, text) in content.lines().enumerate() {
                let line = i + 1;
                if text.trim().is_empty() {
                    continue;
                }
                let raw = match serde_json::from_str::<Value>(text) {
                    Ok(v) => v,
                    Err(e) => {
                        bad.push(Invalid { line, raw: Value::String(text.to_owned()), message: format!("not JSON: {e}") });
                        continue;
                    }
                };
                let parsed = if kind == Kind::Packs { pack(line, raw.clone()) } else { ferry(line, raw.clone()) };
                match parsed {
                    Ok(r) => good.push(r),
                    Err(message) => bad.push(Invalid { line, raw, message }),
                }
            }
        }
        Kind::Payments => {
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(content.as_bytes());
            let headers = match reader.headers() {
                Ok(h) => h.clone(),
                Err(e) => {
                    bad.push(Invalid { line: 1, raw: Value::Null, message: format!("no CSV header: {e}") });
                    return (good, bad);
                }
            };
            for (i, row) in reader.records().enumerate() {
                let line = row.as_ref().ok().and_then(|r| r.position()).map_or(i + 2, |p| p.line() as usize);
                match row {
                    Err(e) => bad.push(Invalid { line, raw: Value::Null, message: format!("not a CSV row: {e}") }),
                    Ok(r) => {
                        let row: Map<String, Value> =
                            headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), Value::String(v.to_owned()))).collect();
                        match payment(line, row.clone()) {
                            Ok(rec) => good.push(rec),
                            Err(message) => bad.push(Invalid { line, raw: Value::Object(row), message }),
                        }
                    }
                }
            }
        }
    }
    (good, bad)
}

/// One request's worth of records.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub index: usize,
    pub target: String,
    pub records: Vec<Record>,
}

/// Records grouped by target (in order of first appearance), each group cut
/// into chunks of at most `size`.
pub fn chunks(records: Vec<Record>, size: usize) -> Vec<Chunk> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in records {
        if !groups.contains_key(&r.target) {
            order.push(r.target.clone());
        }
        groups.entry(r.target.clone()).or_default().push(r);
    }
    let mut out = Vec::new();
    for target in order {
        let records = groups.remove(&target).unwrap_or_default();
        for part in records.chunks(size.max(1)) {
            out.push(Chunk { index: out.len(), target: target.clone(), records: part.to_vec() });
        }
    }
    out
}

/// The request for a chunk: path and body.
pub fn request(kind: Kind, chunk: &Chunk) -> (String, Value) {
    match kind {
        Kind::Packs => {
            let packs: Vec<&Value> = chunk.records.iter().map(|r| &r.entry).collect();
            (format!("/namespaces/{}/minutes", chunk.target), json!({"packs": packs}))
        }
        Kind::Payments => {
            let items: Vec<&Value> = chunk.records.iter().map(|r| &r.entry).collect();
            ("/work-period-payments/bulk".to_owned(), json!(items))
        }
        Kind::Ferry => {
            let customer = chunk.target.split('\u{0}').next().unwrap_or_default();
            let reference = chunk.records.first().and_then(|r| r.reference_customer_id.clone()).unwrap_or_default();
            let mut groups: Map<String, Value> = Map::new();
            for r in &chunk.records {
                let g = r.group.unwrap_or("other");
                if let Value::Array(items) = groups.entry(g.to_owned()).or_insert_with(|| Value::Array(Vec::new())) {
                    items.push(r.entry.clone());
                }
            }
            (format!("/ferry/customers/{customer}/subscriptions"), json!({"reference_customer_id": reference, "subscriptions": groups}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local check is the API's: a subdomain where a registrable domain
    /// is due, or billing beyond the contract, is a bad line before sending.
    #[test]
    fn ferry_lines_meet_the_apis_per_subscription_rules() {
        let line = |domain: &str, billing: u32| {
            format!(
                r#"{{"customer": "c1", "reference_customer_id": "r1", "group": "domain_extensions", "subscription": {{"domain": "{domain}", "extension": "co.uk", "slug": "domain-nl", "contract_period": 12, "billing_period": {billing}, "start_date": "2023-01-01", "next_contract_date": "2024-01-01", "next_billing_date": "2023-02-01", "reference_subscription_id": "d-1", "reference_product_id": "p"}}}}"#
            )
        };
        let file = [line("customer-domain.co.uk", 12), line("www.customer-domain.co.uk", 12), line("customer-domain.co.uk", 24)].join("\n");
        let (good, bad) = parse(Kind::Ferry, &file);
        assert_eq!(good.len(), 1);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![2, 3], "{bad:?}");
    }

    #[test]
    fn bad_lines_are_found_with_their_line_numbers() {
        let file = [
            r#"{"namespace_id": 1, "number_of_minutes": 10, "expires_at": "2031-01-01", "purchase_xid": "a"}"#,
            r#"{"namespace_id": 1, "number_of_minutes": 10, "expires_at": "2031-02-30"}"#,
            "not json",
            "",
            r#"{"namespace_id": 2, "number_of_minutes": 0, "expires_at": "2031-01-01"}"#,
            r#"{"namespace_id": 2, "number_of_minutes": 5, "expires_at": "2031-01-01", "colour": "red"}"#,
            r#"{"namespace_id": 2, "number_of_minutes": 5, "expires_at": "2031-01-01"}"#,
        ]
        .join("\n");
        let (good, bad) = parse(Kind::Packs, &file);
        assert_eq!(good.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 7]);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![2, 3, 5, 6]);
        assert!(bad[0].message.contains("not a real date"), "{}", bad[0].message);
    }

    #[test]
    fn payments_csv_rows_use_the_apis_rules() {
        let file = "workPeriodId,days,amount\nwp-1,2,\nwp-2,0,40.50\nwp-3,,12\nwp-4,11,\nwp 5,1,\n";
        let (good, bad) = parse(Kind::Payments, file);
        assert_eq!(good.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![4, 5, 6]);
        assert_eq!(good[1].entry, json!({"workPeriodId": "wp-2", "days": 0, "amount": 40.5}));
    }

    #[test]
    fn chunks_keep_targets_apart_and_are_the_same_every_time() {
        let mk = |ns: u64, i: usize| format!(r#"{{"namespace_id": {ns}, "number_of_minutes": 1, "expires_at": "2031-01-01", "purchase_xid": "x{i}"}}"#);
        let file: Vec<String> = (0..25).map(|i| mk(if i % 2 == 0 { 7 } else { 3 }, i)).collect();
        let (good, _) = parse(Kind::Packs, &file.join("\n"));
        let cut = chunks(good.clone(), 5);
        assert_eq!(cut.iter().map(|c| (c.target.as_str(), c.records.len())).collect::<Vec<_>>(),
                   vec![("7", 5), ("7", 5), ("7", 3), ("3", 5), ("3", 5), ("3", 2)]);
        let again = chunks(good, 5);
        assert_eq!(again.iter().map(|c| c.records[0].line).collect::<Vec<_>>(), cut.iter().map(|c| c.records[0].line).collect::<Vec<_>>());
    }
}

//! `allotment verify`: reads the whole table — a parallel, strongly
//! consistent Scan, nothing written — and checks the invariants the API
//! keeps across items: packs under their own keys and in a top-level
//! namespace, each work period's aggregates equal to its payments, wallets
//! never below zero and adding up to what was deposited, claims of existing
//! gifts, each Ferry subscription under its reference pair and with an id of
//! its own, completed idempotency records with their answer.
//!
//! Items are folded into small per-kind facts page by page (the table is never
//! held in memory) and cross-checked once the Scan is done. An item of a
//! known kind that does not parse is itself a violation; items of kinds this
//! does not know, and attributes it does not read, are counted and left alone.
//! A table written to during the Scan can show violations that are only a
//! write in flight: verify a quiet table, or run it again to confirm.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::db::{from_item, Db, DbError, Item, GSI1_PK, GSI2_PK, PK, SK};
use crate::ferry;
use crate::gifts;
use crate::money::Money;
use crate::packs::{self, NamespaceId};
use crate::payments::{self, PaymentStatus, WorkPeriod};

/// What a [`Violation`] breaks.
pub mod kind {
    /// An item of a known kind whose attributes do not parse.
    pub const UNREADABLE: &str = "unreadable_item";
    /// An item whose key is not the one its own attributes give.
    pub const KEY_MISMATCH: &str = "key_mismatch";
    /// An xid pack not under `PACK#X#<purchase_xid>` (or a pack without one not under `PACK#U#`).
    pub const PACK_KEY: &str = "pack_key";
    /// A pack whose `gsi1pk` is not `NSPACKS#<namespace_id>`.
    pub const PACK_INDEX: &str = "pack_index";
    pub const PACK_NAMESPACE_MISSING: &str = "pack_namespace_missing";
    pub const PACK_NAMESPACE_NOT_TOP_LEVEL: &str = "pack_namespace_not_top_level";
    /// A pack still marked by the run that created it, past that run's undo
    /// window, with no commit marker: the run was cut off (a time-limit
    /// kill) after writing it and before answering, and nobody adopted it —
    /// a pack no caller may have been told exists.
    pub const PACK_ORPHAN: &str = "pack_orphan";
    /// `days_paid` ≠ the days of the period's active payments.
    pub const WP_DAYS_PAID: &str = "work_period_days_paid";
    /// `payment_total` ≠ the amounts of the period's active payments.
    pub const WP_PAYMENT_TOTAL: &str = "work_period_payment_total";
    /// `days_paid + days_unpaid ≠ days_worked`, or `days_paid > days_worked`.
    pub const WP_DAYS: &str = "work_period_days";
    /// A status counter (`n_scheduled`, …) ≠ the period's payments in that status.
    pub const WP_STATUS_COUNT: &str = "work_period_status_count";
    pub const PAYMENT_WORK_PERIOD_MISSING: &str = "payment_work_period_missing";
    /// A payment's `gsi1pk`/`gsi2pk` not its work period's and status's.
    pub const PAYMENT_INDEX: &str = "payment_index";
    pub const WALLET_NEGATIVE: &str = "wallet_negative";
    /// A (category, provider) whose wallets do not add up to its deposits.
    pub const WALLET_CONSERVATION: &str = "wallet_conservation";
    pub const CLAIM_GIFT_MISSING: &str = "claim_gift_missing";
    /// A claim whose `gsi2pk` is not `CLAIMS#<sub>`.
    pub const CLAIM_INDEX: &str = "claim_index";
    /// A subscription not under `subscription_pk` of its own reference pair.
    pub const FERRY_SUBSCRIPTION_KEY: &str = "ferry_subscription_key";
    pub const FERRY_DUPLICATE_ID: &str = "ferry_subscription_duplicate_id";
    pub const FERRY_CUSTOMER_MISSING: &str = "ferry_customer_missing";
    /// A COMPLETED idempotency record without its `status` or `body`.
    pub const IDEMPOTENCY_INCOMPLETE: &str = "idempotency_incomplete";
}

/// Keys listed at most in one violation about many items (its message says how many).
pub const MAX_KEYS: usize = 20;
/// DynamoDB's limit on `TotalSegments`.
pub const MAX_SEGMENTS: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Violation {
    pub kind: &'static str,
    /// `<pk> / <sk>` of each item involved, the one at fault first.
    pub keys: Vec<String>,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub items_scanned: u64,
    /// Items read, per kind (`other` for items of kinds not checked).
    pub checked: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Scans the whole table in `segments` parallel segments (strongly consistent,
/// following `LastEvaluatedKey`) and checks every invariant. `progress` gets
/// the number of items scanned so far after each page.
pub async fn verify(db: &Db, segments: u32, progress: impl Fn(u64) + Send + Sync + 'static) -> Result<Report, DbError> {
    let total = segments.clamp(1, MAX_SEGMENTS);
    let facts = Arc::new(Mutex::new(Facts::default()));
    let progress = Arc::new(progress);
    let scanned = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for segment in 0..total {
        let (db, facts, progress, scanned) = (db.clone(), facts.clone(), progress.clone(), scanned.clone());
        tasks.spawn(async move {
            let mut start: Option<Item> = None;
            loop {
                let out = db
                    .with_retries("Scan", || {
                        db.client
                            .scan()
                            .table_name(&*db.table)
                            .segment(segment as i32)
                            .total_segments(total as i32)
                            .consistent_read(true)
                            .set_exclusive_start_key(start.clone())
                            .send()
                    })
                    .await?;
                let page = out.items.unwrap_or_default();
                let count = page.len() as u64;
                {
                    let mut facts = facts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    page.into_iter().for_each(|item| facts.add(item));
                }
                progress(scanned.fetch_add(count, Ordering::Relaxed) + count);
                match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                    Some(key) => start = Some(key),
                    None => return Ok::<_, DbError>(()),
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| DbError::Other(format!("scan segment failed: {e}")))??;
    }
    let facts = std::mem::take(&mut *facts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    Ok(facts.finish())
}

// ---------------------------------------------------------------- per-item facts

/// Up to [`MAX_KEYS`] keys of a group of items, and how many there are.
#[derive(Default)]
struct Keys {
    listed: Vec<String>,
    count: u64,
}

impl Keys {
    fn push(&mut self, key: &str) {
        self.count += 1;
        if self.listed.len() < MAX_KEYS {
            self.listed.push(key.to_owned());
        }
    }
}

/// A work period's payments, as its aggregates should count them.
#[derive(Default)]
struct Paid {
    days: u64,
    total: Money,
    counts: HashMap<PaymentStatus, u32>,
    keys: Keys,
}

#[derive(Default)]
struct Units {
    sum: Decimal,
    keys: Keys,
}

#[derive(Default)]
struct Facts {
    items: u64,
    checked: BTreeMap<&'static str, u64>,
    violations: Vec<Violation>,
    /// Namespace id → top-level.
    namespaces: HashMap<u64, bool>,
    /// (pack key, namespace id).
    packs: Vec<(String, u64)>,
    /// Packs still marked by their creating run: (pack key, run id, created_at).
    marked_packs: Vec<(String, String, String)>,
    /// Runs that wrote their commit marker.
    committed_runs: HashSet<String>,
    work_periods: Vec<(String, WorkPeriod)>,
    payments: HashMap<String, Paid>,
    wallets: BTreeMap<(String, String), Units>,
    deposits: BTreeMap<(String, String), Units>,
    gifts: HashSet<String>,
    /// (claim key, gift pk).
    claims: Vec<(String, String)>,
    customers: HashSet<String>,
    /// (subscription key, customer).
    subscriptions: Vec<(String, String)>,
    subscription_ids: HashMap<String, Vec<String>>,
}

/// Which kind of item a key is.
fn item_kind(pk: &str, sk: &str) -> &'static str {
    let head = pk.split('#').next().unwrap_or_default();
    match (head, sk) {
        ("NS", "NS") => "namespace",
        ("PACK", "PACK") => "pack",
        ("WP", "WP") => "work_period",
        ("PAY", "PAY") => "payment",
        ("PROJECT", "PROJECT") => "project",
        ("PROJECT", sk) if sk.starts_with(gifts::WALLET_PREFIX) => "wallet",
        ("PROJECT", sk) if sk.starts_with(gifts::DEPOSIT_PREFIX) => "deposit",
        ("PROJECT", sk) if sk.starts_with("CLAIMREQ#") => "claim_receipt",
        ("PROJECT", sk) if sk.starts_with(gifts::LISTING_PREFIX) => "gift_listing",
        ("GIFT", "GIFT") => "gift",
        ("GIFT", sk) if sk.starts_with("CRIT#") => "gift_criterion",
        ("GIFT", sk) if sk.starts_with("CLAIM#") => "gift_claim",
        ("FERRY", _) if pk.starts_with("FERRY#PRODUCT#") => "ferry_product",
        ("FERRY", _) if pk.starts_with("FERRY#CUSTOMER#") => "ferry_customer",
        ("FERRY", _) if pk.starts_with("FERRY#SUB#") => "ferry_subscription",
        ("IDEM", "IDEM") => "idempotency",
        ("SEQ", _) => "sequence",
        ("PACKREQ", "PACKREQ") => "pack_request",
        ("GIFTREQ", "GIFTREQ") => "gift_request",
        _ => "other",
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn required<'a>(item: &'a Item, name: &str) -> Result<&'a str, DbError> {
    text(item, name).ok_or_else(|| DbError::Other(format!("no valid {name}")))
}

/// A whole number of units, exactly.
fn units(item: &Item, name: &str) -> Result<Decimal, DbError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => Decimal::from_str(v).ok().filter(|d| d.fract().is_zero()),
        _ => None,
    }
    .ok_or_else(|| DbError::Other(format!("no valid {name} (a whole number)")))
}

/// The item has every attribute of `key` with the same value.
fn key_matches(item: &Item, key: &Item) -> bool {
    key.iter().all(|(k, v)| item.get(k) == Some(v))
}

fn show(key: &Item) -> String {
    format!("{} / {}", text(key, PK).unwrap_or("?"), text(key, SK).unwrap_or("?"))
}

impl Facts {
    /// Packs whose run can no longer undo them (older than the undo window)
    /// and never committed; younger than a day, since commit markers expire
    /// after one (an older marked pack proves nothing either way).
    fn orphans(&mut self, now: time::OffsetDateTime) {
        let settled = crate::validate::format_timestamp(now - packs::UNDO_WINDOW);
        let markers_kept = crate::validate::format_timestamp(now - time::Duration::hours(23));
        for (at, run, created_at) in std::mem::take(&mut self.marked_packs) {
            if created_at.as_str() <= settled.as_str() && created_at.as_str() >= markers_kept.as_str() && !self.committed_runs.contains(&run) {
                let message = format!("pack created {created_at} by run {run}, which neither committed nor undid it: a run cut off before it answered; confirm with the caller whether it was meant to exist");
                self.flag(kind::PACK_ORPHAN, vec![at], message);
            }
        }
    }

    fn flag(&mut self, kind: &'static str, keys: Vec<String>, message: String) {
        self.violations.push(Violation { kind, keys, message });
    }

    fn add(&mut self, item: Item) {
        self.items += 1;
        let (pk, sk) = (text(&item, PK).unwrap_or_default(), text(&item, SK).unwrap_or_default());
        let at = format!("{pk} / {sk}");
        let kind = item_kind(pk, sk);
        *self.checked.entry(kind).or_default() += 1;
        if let Err(e) = self.check(kind, &at, item) {
            let reason = match e {
                DbError::Other(m) => m,
                e => e.to_string(),
            };
            self.flag(kind::UNREADABLE, vec![at], format!("{kind} item does not parse: {reason}"));
        }
    }

    /// The checks of one item on its own, and the facts the cross-checks need.
    fn check(&mut self, kind: &'static str, at: &str, item: Item) -> Result<(), DbError> {
        let one = || vec![at.to_owned()];
        match kind {
            "namespace" => {
                let ns: packs::NamespaceItem = from_item(item)?;
                if ns.pk != packs::namespace_pk(NamespaceId(ns.id)) {
                    self.flag(kind::KEY_MISMATCH, one(), format!("namespace {} is not under NS#{}", ns.id, ns.id));
                }
                self.namespaces.insert(ns.id, ns.parent_id.is_none());
            }
            "pack" => {
                let stored: packs::PackItem = from_item(item)?;
                let (pk, gsi1pk, namespace) = (stored.pk.clone(), stored.gsi1pk.clone(), stored.namespace_id);
                if let Some(run) = &stored.request_id {
                    self.marked_packs.push((at.to_owned(), run.clone(), stored.created_at.clone()));
                }
                let pack = stored.into_domain()?;
                match &pack.purchase_xid {
                    Some(xid) if pk != packs::xid_pack_pk(xid) => self.flag(
                        kind::PACK_KEY,
                        one(),
                        format!("pack of purchase_xid {} is under {pk}, not {}", xid.as_str(), packs::xid_pack_pk(xid)),
                    ),
                    None if !pk.starts_with("PACK#U#") => {
                        self.flag(kind::PACK_KEY, one(), format!("pack without a purchase_xid is under {pk}, not PACK#U#<id>"))
                    }
                    _ => {}
                }
                let want = packs::packs_gsi_pk(NamespaceId(namespace));
                if gsi1pk != want {
                    self.flag(kind::PACK_INDEX, one(), format!("pack of namespace {namespace} has gsi1pk {gsi1pk}, not {want}"));
                }
                self.packs.push((at.to_owned(), namespace));
            }
            "pack_request" => {
                if let Some(run) = text(&item, PK).and_then(|pk| pk.strip_prefix("PACKREQ#")) {
                    self.committed_runs.insert(run.to_owned());
                }
            }
            "work_period" => {
                let wp = payments::work_period_from_item(item.clone())?;
                if !key_matches(&item, &payments::work_period_key(&wp.id)) {
                    self.flag(kind::KEY_MISMATCH, one(), format!("work period {} is not under WP#{}", wp.id, wp.id));
                }
                self.work_periods.push((at.to_owned(), wp));
            }
            "payment" => {
                let p = payments::payment_from_item(item.clone())?;
                if !key_matches(&item, &payments::payment_key(&p.id)) {
                    self.flag(kind::KEY_MISMATCH, one(), format!("payment {} is not under PAY#{}", p.id, p.id));
                }
                let (by_wp, by_status) = (payments::by_work_period_pk(&p.work_period_id), payments::by_status_pk(p.status));
                if text(&item, GSI1_PK) != Some(&by_wp) || text(&item, GSI2_PK) != Some(&by_status) {
                    self.flag(
                        kind::PAYMENT_INDEX,
                        one(),
                        format!(
                            "payment has gsi1pk {:?} and gsi2pk {:?}, not {by_wp} and {by_status}",
                            text(&item, GSI1_PK),
                            text(&item, GSI2_PK)
                        ),
                    );
                }
                let paid = self.payments.entry(p.work_period_id).or_default();
                *paid.counts.entry(p.status).or_default() += 1;
                paid.keys.push(at);
                if p.status.is_active() {
                    paid.days += u64::from(p.days);
                    paid.total = paid.total.checked_add(p.amount).ok_or_else(|| DbError::Other("payment total out of range".into()))?;
                }
            }
            "wallet" | "deposit" => {
                let (category, provider) = (required(&item, "category")?, required(&item, "provider")?);
                let amount = units(&item, if kind == "wallet" { "balance" } else { "amount" })?;
                if kind == "wallet" {
                    let project = text(&item, PK).and_then(|pk| pk.strip_prefix("PROJECT#")).unwrap_or_default();
                    if !key_matches(&item, &gifts::wallet_key(project, category, provider)) {
                        self.flag(kind::KEY_MISMATCH, one(), format!("wallet of ({category}, {provider}) is not under its sort key"));
                    }
                    if amount.is_sign_negative() && !amount.is_zero() {
                        self.flag(kind::WALLET_NEGATIVE, one(), format!("wallet ({category}, {provider}) has balance {amount}"));
                    }
                }
                let group = if kind == "wallet" { &mut self.wallets } else { &mut self.deposits };
                let units = group.entry((category.to_owned(), provider.to_owned())).or_default();
                units.sum = units.sum.checked_add(amount).ok_or_else(|| DbError::Other("units out of range".into()))?;
                units.keys.push(at);
            }
            "gift" => {
                let gift: gifts::Gift = from_item(item.clone())?;
                if !key_matches(&item, &gifts::gift_key(gift.id)) {
                    self.flag(kind::KEY_MISMATCH, one(), format!("gift {} is not under GIFT#{}", gift.id, gift.id));
                }
                self.gifts.insert(gifts::gift_pk(gift.id));
            }
            "gift_claim" => {
                let sub = text(&item, SK).and_then(|sk| sk.strip_prefix("CLAIM#")).unwrap_or_default().to_owned();
                let pk = text(&item, PK).unwrap_or_default().to_owned();
                let claim: gifts::ClaimItem = from_item(item)?;
                if claim.gsi2pk != gifts::claims_of_pk(&sub) || pk != gifts::gift_pk(claim.gift_id) {
                    self.flag(
                        kind::CLAIM_INDEX,
                        one(),
                        format!("claim of gift {} by {sub} has gsi2pk {}, not {}", claim.gift_id, claim.gsi2pk, gifts::claims_of_pk(&sub)),
                    );
                }
                self.claims.push((at.to_owned(), pk));
            }
            "project" => drop(from_item::<gifts::Project>(item)?),
            "gift_listing" => drop(from_item::<gifts::Gift>(item)?),
            "gift_criterion" => drop(from_item::<gifts::CriterionItem>(item)?),
            "ferry_product" => drop(ferry::product_from_item(item)?),
            "ferry_customer" => {
                let customer: ferry::Customer = from_item(item.clone())?;
                if !key_matches(&item, &ferry::customer_key(&customer.customer)) {
                    self.flag(kind::KEY_MISMATCH, one(), format!("customer {} is not under its key", customer.customer));
                }
                self.customers.insert(customer.customer);
            }
            "ferry_subscription" => {
                let sub: ferry::Subscription = from_item(item.clone())?;
                let want = ferry::subscription_key(&sub.reference_subscription_id, &sub.reference_product_id);
                if !key_matches(&item, &want) {
                    self.flag(
                        kind::FERRY_SUBSCRIPTION_KEY,
                        one(),
                        format!(
                            "subscription {} of pair ({}, {}) belongs under {}",
                            sub.id,
                            sub.reference_subscription_id,
                            sub.reference_product_id,
                            show(&want)
                        ),
                    );
                }
                self.subscription_ids.entry(sub.id).or_default().push(at.to_owned());
                self.subscriptions.push((at.to_owned(), sub.customer));
            }
            "idempotency" if required(&item, "state")? == crate::idempotency::COMPLETED => {
                let status = matches!(item.get("status"), Some(AttributeValue::N(n)) if n.parse::<u16>().is_ok());
                let body = matches!(item.get("body"), Some(AttributeValue::B(_)));
                if !(status && body) {
                    self.flag(kind::IDEMPOTENCY_INCOMPLETE, one(), "completed record without its status or body".into());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The checks across items.
    fn finish(mut self) -> Report {
        self.orphans(time::OffsetDateTime::now_utc());
        for (at, namespace) in std::mem::take(&mut self.packs) {
            match self.namespaces.get(&namespace) {
                None => self.flag(kind::PACK_NAMESPACE_MISSING, vec![at], format!("namespace {namespace} (NS#{namespace}) does not exist")),
                Some(false) => {
                    self.flag(kind::PACK_NAMESPACE_NOT_TOP_LEVEL, vec![at], format!("namespace {namespace} is not top-level"))
                }
                Some(true) => {}
            }
        }
        for (at, wp) in std::mem::take(&mut self.work_periods) {
            let paid = self.payments.remove(&wp.id).unwrap_or_default();
            let keys = || std::iter::once(at.clone()).chain(paid.keys.listed.iter().cloned()).collect::<Vec<_>>();
            let of = |what: &str, sum: &dyn std::fmt::Display| format!("its active payments' {what} add up to {sum} ({} payments in all)", paid.keys.count);
            if u64::from(wp.days_paid) != paid.days {
                self.flag(kind::WP_DAYS_PAID, keys(), format!("days_paid is {} but {}", wp.days_paid, of("days", &paid.days)));
            }
            if wp.payment_total != paid.total {
                let message = format!("payment_total is {} but {}", wp.payment_total, of("amounts", &paid.total));
                self.flag(kind::WP_PAYMENT_TOTAL, keys(), message);
            }
            if u16::from(wp.days_paid) + u16::from(wp.days_unpaid) != u16::from(wp.days_worked) || wp.days_paid > wp.days_worked {
                let message = format!("days_paid {} + days_unpaid {} against days_worked {}", wp.days_paid, wp.days_unpaid, wp.days_worked);
                self.flag(kind::WP_DAYS, vec![at.clone()], message);
            }
            for status in PaymentStatus::ALL {
                let (stored, counted) = (wp.counts.get(&status).copied().unwrap_or(0), paid.counts.get(&status).copied().unwrap_or(0));
                if stored != counted {
                    let message = format!("{} is {stored} but {counted} payments are {}", status.counter(), status.as_str());
                    self.flag(kind::WP_STATUS_COUNT, keys(), message);
                }
            }
        }
        for (wp, paid) in std::mem::take(&mut self.payments) {
            let message = format!("{} payments of work period {wp}, which does not exist", paid.keys.count);
            self.flag(kind::PAYMENT_WORK_PERIOD_MISSING, paid.keys.listed, message);
        }
        let (wallets, mut deposits) = (std::mem::take(&mut self.wallets), std::mem::take(&mut self.deposits));
        let mut pairs: Vec<((String, String), Units, Units)> =
            wallets.into_iter().map(|(pair, w)| { let d = deposits.remove(&pair).unwrap_or_default(); (pair, w, d) }).collect();
        pairs.extend(deposits.into_iter().map(|(pair, d)| (pair, Units::default(), d)));
        for ((category, provider), w, d) in pairs {
            if w.sum != d.sum {
                let message = format!(
                    "({category}, {provider}): wallets hold {} in total ({} wallets), deposits add up to {} ({} deposits)",
                    w.sum, w.keys.count, d.sum, d.keys.count
                );
                let mut keys: Vec<String> = w.keys.listed.into_iter().chain(d.keys.listed).collect();
                keys.sort();
                keys.truncate(MAX_KEYS);
                self.flag(kind::WALLET_CONSERVATION, keys, message);
            }
        }
        for (at, gift) in std::mem::take(&mut self.claims) {
            if !self.gifts.contains(&gift) {
                self.flag(kind::CLAIM_GIFT_MISSING, vec![at], format!("gift {gift} / GIFT does not exist"));
            }
        }
        for (id, mut keys) in std::mem::take(&mut self.subscription_ids) {
            if keys.len() > 1 {
                keys.sort();
                let message = format!("subscription id {id} is on {} items", keys.len());
                self.flag(kind::FERRY_DUPLICATE_ID, keys, message);
            }
        }
        for (at, customer) in std::mem::take(&mut self.subscriptions) {
            if !self.customers.contains(&customer) {
                self.flag(kind::FERRY_CUSTOMER_MISSING, vec![at], format!("customer {customer} (FERRY#CUSTOMER#{customer}) does not exist"));
            }
        }
        self.violations.sort();
        Report { items_scanned: self.items, checked: self.checked, violations: self.violations }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{key, n, s};

    fn facts(items: Vec<Item>) -> Report {
        let mut f = Facts::default();
        items.into_iter().for_each(|i| f.add(i));
        f.finish()
    }

    fn wallet(project: &str, category: &str, balance: &str) -> Item {
        let mut item = gifts::wallet_key(project, category, "ucloud");
        item.extend([("category".into(), s(category)), ("provider".into(), s("ucloud")), ("balance".into(), AttributeValue::N(balance.into()))]);
        item
    }

    fn deposit(project: &str, id: &str, category: &str, amount: u64) -> Item {
        let mut item = key(gifts::project_pk(project), format!("DEPOSIT#{id}"));
        item.extend([("category".into(), s(category)), ("provider".into(), s("ucloud")), ("amount".into(), n(amount)), ("token".into(), s(id))]);
        item
    }

    #[test]
    fn item_kinds_come_from_the_key_layout() {
        assert_eq!(item_kind("PACK#X#abc", "PACK"), "pack");
        assert_eq!(item_kind("PROJECT#p", "WALLET#cpu#ucloud"), "wallet");
        assert_eq!(item_kind("PROJECT#p", "DEPOSIT#d1"), "deposit");
        assert_eq!(item_kind("PROJECT#p", "GIFT#0000000000000001"), "gift_listing");
        assert_eq!(item_kind("GIFT#1", "CLAIM#carol"), "gift_claim");
        assert_eq!(item_kind("FERRY#SUB#1:a#b", "SUB"), "ferry_subscription");
        assert_eq!(item_kind("SOMETHING#new", "X"), "other");
        assert_eq!(item_kind("", ""), "other");
    }

    #[test]
    fn wallets_must_add_up_to_deposits_per_category_and_provider() {
        let clean = facts(vec![wallet("p", "cpu", "70"), wallet("personal:c", "cpu", "30"), deposit("p", "d1", "cpu", 100)]);
        assert!(clean.is_clean(), "{:?}", clean.violations);
        let dirty = facts(vec![wallet("p", "cpu", "-5"), wallet("p", "gpu", "3"), deposit("p", "d1", "cpu", 100)]);
        let kinds: Vec<_> = dirty.violations.iter().map(|v| (v.kind, v.keys[0].as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (kind::WALLET_CONSERVATION, "PROJECT#p / DEPOSIT#d1"),
                (kind::WALLET_CONSERVATION, "PROJECT#p / WALLET#gpu#ucloud"),
                (kind::WALLET_NEGATIVE, "PROJECT#p / WALLET#cpu#ucloud"),
            ]
        );
        assert!(dirty.violations[0].message.contains("-5") && dirty.violations[0].message.contains("100"), "{:?}", dirty.violations[0]);
    }

    #[test]
    fn an_item_that_does_not_parse_is_a_violation_and_unknown_kinds_are_only_counted() {
        let mut bad = wallet("p", "cpu", "1.5");
        bad.insert("write_token".into(), s("extra attributes are fine"));
        let report = facts(vec![bad, key("NEWKIND#1", "X")]);
        assert_eq!(report.items_scanned, 2);
        assert_eq!(report.checked.get("other"), Some(&1));
        assert_eq!(report.violations[0].kind, kind::UNREADABLE);
        assert_eq!(report.violations[0].keys, vec!["PROJECT#p / WALLET#cpu#ucloud".to_owned()]);
    }
}

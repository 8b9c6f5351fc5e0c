//! The table's stream as the outbox: which item change is which domain
//! event. An event exists exactly when its change was committed, and a
//! write that changed nothing a consumer cares about — a re-sync, a replay,
//! a pack adopted, an aggregate moved, a payment re-stated — gives none.
//!
//! The same mapping runs in the publisher function (Lambda's DynamoDB
//! event) and locally (`make run` and the tests follow DynamoDB Local's
//! stream): both hand it the item's key, its images before and after, the
//! record's sequence number and its time.

use serde_dynamo::{AttributeValue, Item};

use super::rules::*;
use crate::money::Money;

/// One committed item change, as a stream record carries it.
pub struct Change {
    pub old: Option<Item>,
    pub new: Option<Item>,
    /// The record's sequence number.
    pub sequence: String,
    /// When it was committed ([`committed_at`]).
    pub at: String,
}

/// A stream record's time as events carry it: RFC 3339, UTC, milliseconds
/// (`2026-12-02T10:00:00.000Z`), from its Unix time in milliseconds.
pub fn committed_at(unix_millis: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_millis) * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    crate::validate::format_timestamp(at)
}

/// Why a record could not be mapped: a stored item of an unexpected shape.
/// The publisher reports such a record as failed (the poison path: bisect,
/// then the dead-letter queue), never as an empty event list.
#[derive(Debug, thiserror::Error)]
#[error("stream record {sequence} ({pk} {sk}): {why}")]
pub struct Unmappable {
    pub sequence: String,
    pub pk: String,
    pub sk: String,
    pub why: String,
}

/// The events of one change. `low_balance`: the wallet balance under which
/// [`WalletLowBalance`] fires (0: never).
pub fn events_of(change: &Change, low_balance: u64) -> Result<Vec<Event>, Unmappable> {
    let Some(image) = change.new.as_ref().or(change.old.as_ref()) else {
        return Ok(Vec::new());
    };
    let (pk, sk) = (text(image, "pk").unwrap_or_default(), text(image, "sk").unwrap_or_default());
    let origin = Origin { pk, sk, sequence: &change.sequence, at: &change.at };
    let fail = |why: String| Unmappable { sequence: change.sequence.clone(), pk: pk.to_owned(), sk: sk.to_owned(), why };
    let view = View { old: change.old.as_ref(), new: change.new.as_ref() };
    let kind = pk.split('#').next().unwrap_or_default();
    let events = match (kind, sk) {
        ("PACK", "PACK") => pack(&origin, &view),
        ("NS", "NS") => namespace(&origin, &view),
        ("PAY", "PAY") => payment(&origin, &view),
        ("WP", "WP") => work_period(&origin, &view),
        ("PROJECT", sk) if sk.starts_with("DEPOSIT#") => deposit(&origin, &view),
        ("PROJECT", sk) if sk.starts_with("WALLET#") => wallet(&origin, &view, low_balance),
        ("GIFT", "GIFT") => gift(&origin, &view),
        ("GIFT", sk) if sk.starts_with("CLAIM#") => claim(&origin, &view),
        ("FERRY", "SUB") => subscription(&origin, &view),
        // Keys, receipts, markers, sequences, listings, criteria, projects,
        // Ferry's catalogue and customers: not events.
        _ => Ok(Vec::new()),
    };
    events.map_err(fail)
}

/// An item's images before and after the change.
struct View<'a> {
    old: Option<&'a Item>,
    new: Option<&'a Item>,
}

type Mapped = Result<Vec<Event>, String>;

fn one<T: serde::Serialize>(origin: &Origin, kind: &'static str, fields: &T) -> Mapped {
    origin.event(kind, fields).map(|e| vec![e]).map_err(|e| format!("{kind}: {e}"))
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn money(item: &Item, name: &str) -> Option<Money> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => Money::parse(v).ok(),
        _ => None,
    }
}

fn need<T>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("no valid {name}"))
}

/// Whether any of `names` differs between the two images.
fn differs(old: &Item, new: &Item, names: &[&str]) -> bool {
    names.iter().any(|n| old.get(*n) != new.get(*n))
}

fn pack(origin: &Origin, v: &View) -> Mapped {
    let item = need(v.new.or(v.old), "image")?;
    let pack = PackFields {
        number_of_minutes: need(number(item, "number_of_minutes"), "number_of_minutes")?,
        expires_at: need(text(item, "expires_at"), "expires_at")?.to_owned(),
        purchase_xid: text(item, "purchase_xid").map(str::to_owned),
    };
    let namespace = |image: &Item| need(number(image, "namespace_id"), "namespace_id");
    match (v.old, v.new) {
        (None, Some(new)) => one(origin, "PackProvisioned", &PackProvisioned { namespace_id: namespace(new)?, pack }),
        (Some(old), Some(new)) if differs(old, new, &["namespace_id"]) => {
            one(origin, "PackMoved", &PackMoved { from_namespace_id: namespace(old)?, to_namespace_id: namespace(new)?, pack })
        }
        // Adopted (its creator's id removed), or rewritten as it was.
        (Some(_), Some(_)) => Ok(Vec::new()),
        (Some(old), None) => one(origin, "PackWithdrawn", &PackWithdrawn { namespace_id: namespace(old)?, pack }),
        (None, None) => Ok(Vec::new()),
    }
}

fn namespace(origin: &Origin, v: &View) -> Mapped {
    let Some(new) = v.new else { return Ok(Vec::new()) };
    if v.old.is_some_and(|old| !differs(old, new, &["name", "parent_id", "owner_id"])) {
        return Ok(Vec::new());
    }
    let fields = NamespaceRegistered {
        namespace_id: need(number(new, "id"), "id")?,
        name: need(text(new, "name"), "name")?.to_owned(),
        parent_id: number(new, "parent_id"),
        owner_id: need(number(new, "owner_id"), "owner_id")?,
    };
    one(origin, "NamespaceRegistered", &fields)
}

fn payment(origin: &Origin, v: &View) -> Mapped {
    let Some(new) = v.new else { return Ok(Vec::new()) };
    let payment_id = need(text(new, "id"), "id")?.to_owned();
    let work_period_id = need(text(new, "work_period_id"), "work_period_id")?.to_owned();
    let status = need(text(new, "status"), "status")?.to_owned();
    let days = need(number(new, "days"), "days")?;
    let amount = need(money(new, "amount"), "amount")?;
    let member_rate = need(money(new, "member_rate"), "member_rate")?;
    let customer_rate = money(new, "customer_rate");
    let billing_account_id = need(number(new, "billing_account_id"), "billing_account_id")?;
    let by = need(text(new, "updated_by"), "updated_by")?.to_owned();
    let Some(old) = v.old else {
        let fields = PaymentNow { payment_id, work_period_id, status, days, amount, member_rate, customer_rate, billing_account_id, by };
        return one(origin, "PaymentCreated", &fields);
    };
    // A status change and a change of amounts may come in one write: one
    // event each. Re-stated as it was (only its version and token moved): none.
    let mut events = Vec::new();
    if differs(old, new, &["status"]) {
        let from = need(text(old, "status"), "status")?.to_owned();
        let fields = PaymentStatusChanged { payment_id: payment_id.clone(), work_period_id: work_period_id.clone(), from, to: status.clone(), days, amount, by: by.clone() };
        events.extend(one(origin, "PaymentStatusChanged", &fields)?);
    }
    if differs(old, new, &["days", "amount", "member_rate", "customer_rate", "billing_account_id"]) {
        let fields = PaymentNow { payment_id, work_period_id, status, days, amount, member_rate, customer_rate, billing_account_id, by };
        events.extend(one(origin, "PaymentChanged", &fields)?);
    }
    Ok(events)
}

/// The fields a work period's registration sets; its aggregates are not among them.
const REGISTRATION: [&str; 8] =
    ["resource_booking_id", "user_handle", "start_date", "end_date", "days_worked", "member_rate", "customer_rate", "billing_account_id"];

fn work_period(origin: &Origin, v: &View) -> Mapped {
    let Some(new) = v.new else { return Ok(Vec::new()) };
    if v.old.is_some_and(|old| !differs(old, new, &REGISTRATION)) {
        return Ok(Vec::new());
    }
    let fields = WorkPeriodChanged {
        work_period_id: need(text(new, "id"), "id")?.to_owned(),
        created: v.old.is_none(),
        resource_booking_id: need(text(new, "resource_booking_id"), "resource_booking_id")?.to_owned(),
        user_handle: need(text(new, "user_handle"), "user_handle")?.to_owned(),
        start_date: need(text(new, "start_date"), "start_date")?.to_owned(),
        end_date: need(text(new, "end_date"), "end_date")?.to_owned(),
        days_worked: need(number(new, "days_worked"), "days_worked")?,
        member_rate: money(new, "member_rate"),
        customer_rate: money(new, "customer_rate"),
        billing_account_id: number(new, "billing_account_id"),
    };
    one(origin, "WorkPeriodChanged", &fields)
}

fn project_of(pk: &str) -> String {
    pk.strip_prefix("PROJECT#").unwrap_or(pk).to_owned()
}

fn deposit(origin: &Origin, v: &View) -> Mapped {
    let (None, Some(new)) = (v.old, v.new) else { return Ok(Vec::new()) };
    let fields = WalletDeposited {
        project: project_of(origin.pk),
        category: need(text(new, "category"), "category")?.to_owned(),
        provider: need(text(new, "provider"), "provider")?.to_owned(),
        amount: need(number(new, "amount"), "amount")?,
        deposit_id: origin.sk.strip_prefix("DEPOSIT#").unwrap_or(origin.sk).to_owned(),
    };
    one(origin, "WalletDeposited", &fields)
}

/// Once per crossing: the balance was at or above the threshold and is now
/// below it. A wallet that stays low gives nothing more until a deposit (or
/// a credit) lifts it back, which re-arms it.
fn wallet(origin: &Origin, v: &View, threshold: u64) -> Mapped {
    let (Some(old), Some(new)) = (v.old, v.new) else { return Ok(Vec::new()) };
    let (before, after) = (need(number(old, "balance"), "balance")?, need(number(new, "balance"), "balance")?);
    if threshold == 0 || !(before >= threshold && after < threshold) {
        return Ok(Vec::new());
    }
    let fields = WalletLowBalance {
        project: project_of(origin.pk),
        category: need(text(new, "category"), "category")?.to_owned(),
        provider: need(text(new, "provider"), "provider")?.to_owned(),
        balance: after,
        threshold,
    };
    one(origin, "WalletLowBalance", &fields)
}

fn units(item: &Item, name: &str, amount: &str) -> Result<Vec<Units>, String> {
    let Some(AttributeValue::L(list)) = item.get(name) else { return Ok(Vec::new()) };
    list.iter()
        .map(|r| match r {
            AttributeValue::M(m) => {
                let m: Item = m.clone().into();
                Ok(Units {
                    category: need(text(&m, "category"), "category")?.to_owned(),
                    provider: need(text(&m, "provider"), "provider")?.to_owned(),
                    amount: need(number(&m, amount), amount)?,
                })
            }
            _ => Err(format!("{name} holds a non-map")),
        })
        .collect()
}

fn gift(origin: &Origin, v: &View) -> Mapped {
    let gift_id = || need(origin.pk.strip_prefix("GIFT#").and_then(|id| id.parse().ok()), "gift id");
    match (v.old, v.new) {
        (None, Some(new)) => {
            let fields = GiftCreated {
                gift_id: gift_id()?,
                owner: need(text(new, "owner"), "owner")?.to_owned(),
                title: need(text(new, "title"), "title")?.to_owned(),
                resources: units(new, "resources", "balanceRequested")?,
                renew_every: need(number(new, "renew_every"), "renew_every")? as u32,
            };
            one(origin, "GiftCreated", &fields)
        }
        (Some(old), None) => one(origin, "GiftDeleted", &GiftDeleted { gift_id: gift_id()?, owner: need(text(old, "owner"), "owner")?.to_owned() }),
        // Marked for deletion: the deletion is the event, when it is done.
        _ => Ok(Vec::new()),
    }
}

fn claim(origin: &Origin, v: &View) -> Mapped {
    let Some(new) = v.new else { return Ok(Vec::new()) }; // removed with its gift
    if v.old.is_some_and(|old| !differs(old, new, &["claimed_at"])) {
        return Ok(Vec::new());
    }
    let claimant = origin.sk.strip_prefix("CLAIM#").unwrap_or(origin.sk).to_owned();
    let fields = GiftClaimed {
        gift_id: need(number(new, "gift_id"), "gift_id")?,
        debited_project: need(text(new, "owner"), "owner")?.to_owned(),
        credited_project: crate::gifts::personal_project(&claimant),
        claimant,
        resources: units(new, "resources", "balanceRequested")?,
    };
    one(origin, "GiftClaimed", &fields)
}

fn subscription(origin: &Origin, v: &View) -> Mapped {
    let (None, Some(new)) = (v.old, v.new) else { return Ok(Vec::new()) };
    let field = |name: &str| need(text(new, name), name).map(str::to_owned);
    let fields = SubscriptionMigrated {
        subscription_id: field("id")?,
        customer: field("customer")?,
        group: field("group")?,
        slug: field("slug")?,
        reference_subscription_id: field("reference_subscription_id")?,
        reference_product_id: field("reference_product_id")?,
        domain: text(new, "domain").map(str::to_owned),
        extension: text(new, "extension").map(str::to_owned),
    };
    one(origin, "SubscriptionMigrated", &fields)
}

//! Work periods and payments in DynamoDB: item mapping, reads, the work
//! period's registration, the write actions a payment plan is made of, and
//! the listings. Bulk writes run in rounds ([`super::rounds`]).
//!
//! Key layout:
//! - work period: `pk = WP#<id>`, `sk = WP`, with its payment aggregates kept in
//!   the same item: `days_paid`, `days_unpaid` (= days_worked − days_paid),
//!   `payment_total`, and one counter per payment status. Every payment write
//!   changes them in the same transaction, under `days_unpaid >= :days`, so the
//!   days of active payments can never exceed `days_worked`.
//! - payment: `pk = PAY#<id>`, `sk = PAY`; `gsi1pk = WPPAY#<work period>`,
//!   `gsi2pk = PAYSTATUS#<status>`, both sorted by `<created_at>#<id>`.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::rules::*;
use crate::error::Invalid;
use crate::db::{from_item, key, keyed, n, s, Db, DbError, Item, Partition, GSI1, GSI1_PK, GSI2, GSI2_PK};
use crate::money::Money;
use crate::validate::{format_date, parse_date};
use time::Date;

// ---------------------------------------------------------------- item mapping

pub fn work_period_key(id: &str) -> Item {
    key(format!("WP#{id}"), "WP")
}

pub fn payment_key(id: &str) -> Item {
    key(format!("PAY#{id}"), "PAY")
}

pub fn by_work_period_pk(work_period_id: &str) -> String {
    format!("WPPAY#{work_period_id}")
}

pub fn by_status_pk(status: PaymentStatus) -> String {
    format!("PAYSTATUS#{}", status.as_str())
}

/// Money as stored: an exact decimal `N` (what the work period's `ADD`s keep
/// exact). serde_dynamo writes numbers only from Rust integers and floats,
/// so money attributes are written and read beside it, by [`Money::to_attr`].
fn money_attr(item: &Item, name: &str, what: &str) -> Result<Option<Money>, DbError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(attr) => Money::from_attr(attr).map(Some).ok_or_else(|| DbError::Other(format!("stored {what} has no valid {name}"))),
    }
}

fn stored_date(raw: &str, what: &str) -> Result<Date, DbError> {
    parse_date(raw).map_err(|m| DbError::Other(format!("stored {what}: {m}")))
}

/// A work period as stored (but its money, see [`money_attr`]). Its
/// aggregates are written by `ADD`s, so each may be missing until the first.
#[derive(Serialize, Deserialize)]
struct WorkPeriodItem {
    id: String,
    resource_booking_id: String,
    user_handle: String,
    start_date: String,
    end_date: String,
    days_worked: u8,
    #[serde(default)]
    billing_account_id: Option<u64>,
    #[serde(default)]
    days_paid: u8,
    days_unpaid: u8,
    #[serde(default)]
    n_scheduled: u32,
    #[serde(default)]
    n_in_progress: u32,
    #[serde(default)]
    n_completed: u32,
    #[serde(default)]
    n_failed: u32,
    #[serde(default)]
    n_cancelled: u32,
}

pub fn work_period_from_item(item: Item) -> Result<WorkPeriod, DbError> {
    const W: &str = "work period";
    let member_rate = money_attr(&item, "member_rate", W)?;
    let customer_rate = money_attr(&item, "customer_rate", W)?;
    let payment_total = money_attr(&item, "payment_total", W)?.unwrap_or(Money::ZERO);
    let w: WorkPeriodItem = from_item(item)?;
    let counts = HashMap::from([
        (PaymentStatus::Scheduled, w.n_scheduled),
        (PaymentStatus::InProgress, w.n_in_progress),
        (PaymentStatus::Completed, w.n_completed),
        (PaymentStatus::Failed, w.n_failed),
        (PaymentStatus::Cancelled, w.n_cancelled),
    ]);
    Ok(WorkPeriod {
        start_date: stored_date(&w.start_date, W)?,
        end_date: stored_date(&w.end_date, W)?,
        id: w.id,
        resource_booking_id: w.resource_booking_id,
        user_handle: w.user_handle,
        days_worked: w.days_worked,
        member_rate,
        customer_rate,
        billing_account_id: w.billing_account_id,
        days_paid: w.days_paid,
        days_unpaid: w.days_unpaid,
        payment_total,
        counts,
    })
}

/// A payment as stored (but its money, see [`money_attr`]).
#[derive(Serialize, Deserialize)]
struct PaymentItem {
    id: String,
    work_period_id: String,
    billing_account_id: u64,
    days: u8,
    status: PaymentStatus,
    created_at: String,
    updated_at: String,
    created_by: String,
    updated_by: String,
    version: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    write_tokens: Vec<String>,
}

/// The payment's item: its key, its two listing-index keys (by work period,
/// by status; both sorted by `<created_at>#<id>`), its fields and its money.
pub fn payment_to_item(p: &Payment) -> Result<Item, DbError> {
    let mut base = payment_key(&p.id);
    let sort = format!("{}#{}", p.created_at, p.id);
    base.insert("gsi1pk".into(), s(by_work_period_pk(&p.work_period_id)));
    base.insert("gsi1sk".into(), s(&sort));
    base.insert("gsi2pk".into(), s(by_status_pk(p.status)));
    base.insert("gsi2sk".into(), s(sort));
    base.insert("member_rate".into(), p.member_rate.to_attr());
    base.insert("amount".into(), p.amount.to_attr());
    if let Some(rate) = p.customer_rate {
        base.insert("customer_rate".into(), rate.to_attr());
    }
    let fields = PaymentItem {
        id: p.id.clone(),
        work_period_id: p.work_period_id.clone(),
        billing_account_id: p.billing_account_id,
        days: p.days,
        status: p.status,
        created_at: p.created_at.clone(),
        updated_at: p.updated_at.clone(),
        created_by: p.created_by.clone(),
        updated_by: p.updated_by.clone(),
        version: p.version,
        write_tokens: p.write_tokens.clone(),
    };
    keyed(base, &fields)
}

pub fn payment_from_item(item: Item) -> Result<Payment, DbError> {
    const P: &str = "payment";
    let missing = |name: &str| DbError::Other(format!("stored {P} has no valid {name}"));
    let member_rate = money_attr(&item, "member_rate", P)?.ok_or_else(|| missing("member_rate"))?;
    let amount = money_attr(&item, "amount", P)?.ok_or_else(|| missing("amount"))?;
    let customer_rate = money_attr(&item, "customer_rate", P)?;
    let p: PaymentItem = from_item(item)?;
    Ok(Payment {
        id: p.id,
        work_period_id: p.work_period_id,
        member_rate,
        customer_rate,
        billing_account_id: p.billing_account_id,
        days: p.days,
        amount,
        status: p.status,
        created_at: p.created_at,
        updated_at: p.updated_at,
        created_by: p.created_by,
        updated_by: p.updated_by,
        version: p.version,
        write_tokens: p.write_tokens,
    })
}

/// The work period's registration fields as update-expression values.
pub fn work_period_fields(
    wp: &WorkPeriod,
) -> Vec<(&'static str, &'static str, Option<AttributeValue>)> {
    vec![
        ("id", ":id", Some(s(&wp.id))),
        (
            "resource_booking_id",
            ":rb",
            Some(s(&wp.resource_booking_id)),
        ),
        ("user_handle", ":uh", Some(s(&wp.user_handle))),
        ("start_date", ":sd", Some(s(format_date(wp.start_date)))),
        ("end_date", ":ed", Some(s(format_date(wp.end_date)))),
        ("days_worked", ":dw", Some(n(wp.days_worked))),
        ("member_rate", ":mr", wp.member_rate.map(Money::to_attr)),
        ("customer_rate", ":cr", wp.customer_rate.map(Money::to_attr)),
        ("billing_account_id", ":ba", wp.billing_account_id.map(n)),
    ]
}
impl Ctx {
    /// (Re)reads these work periods and payments, strongly consistent.
    pub async fn load(
        &mut self,
        db: &Db,
        wp_ids: &HashSet<String>,
        payment_ids: &HashSet<String>,
    ) -> Result<(), DbError> {
        let mut keys: Vec<Item> = wp_ids.iter().map(|id| work_period_key(id)).collect();
        keys.extend(payment_ids.iter().map(|id| payment_key(id)));
        for id in wp_ids {
            self.work_periods.remove(id);
        }
        for id in payment_ids {
            self.payments.remove(id);
        }
        for item in db.batch_get(keys).await? {
            match item.get("sk") {
                Some(AttributeValue::S(sk)) if sk == "WP" => {
                    let wp = work_period_from_item(item)?;
                    self.work_periods.insert(wp.id.clone(), wp);
                }
                _ => {
                    let p = payment_from_item(item)?;
                    self.payments.insert(p.id.clone(), p);
                }
            }
        }
        Ok(())
    }
}

/// Puts the payment item, on condition `condition`.
pub fn put_payment(
    db: &Db,
    p: &Payment,
    condition: &str,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, DbError> {
    let mut put = Put::builder()
        .table_name(&*db.table)
        .set_item(Some(payment_to_item(p)?))
        .condition_expression(condition);
    for (k, v) in values {
        put = put.expression_attribute_values(*k, v.clone());
    }
    if condition.contains("#pk") {
        put = put.expression_attribute_names("#pk", "pk");
    }
    put.build()
        .map(|put| TransactWriteItem::builder().put(put).build())
        .map_err(DbError::from)
}

/// Changes a work period's aggregates by `d`; when days are taken, on
/// condition that enough are unpaid.
pub fn update_work_period(
    db: &Db,
    work_period_id: &str,
    d: &Delta,
) -> Result<TransactWriteItem, DbError> {
    let mut adds = vec![
        "days_unpaid :neg_days",
        "days_paid :days",
        "payment_total :amount",
    ];
    let mut values = vec![
        (":neg_days", n(-d.days)),
        (":days", n(d.days)),
        (
            ":amount",
            AttributeValue::N((d.amount.decimal()).to_string()),
        ),
    ];
    let (from_clause, to_clause);
    if d.from != d.to {
        if let Some(from) = d.from {
            from_clause = format!("{} :minus_one", from.counter());
            adds.push(&from_clause);
            values.push((":minus_one", n(-1)));
        }
        if let Some(to) = d.to {
            to_clause = format!("{} :one", to.counter());
            adds.push(&to_clause);
            values.push((":one", n(1)));
        }
    }
    let condition = if d.days > 0 {
        "attribute_exists(pk) AND days_unpaid >= :days"
    } else {
        "attribute_exists(pk)"
    };
    let mut update = Update::builder()
        .table_name(&*db.table)
        .set_key(Some(work_period_key(work_period_id)))
        .update_expression(format!("ADD {}", adds.join(", ")))
        .condition_expression(condition);
    for (k, v) in values {
        update = update.expression_attribute_values(k, v);
    }
    update
        .build()
        .map(|u| TransactWriteItem::builder().update(u).build())
        .map_err(DbError::from)
}

/// Registers (creates or replaces) a work period, keeping its aggregates:
/// one UpdateItem, refused if the new days worked are fewer than those paid.
pub async fn put_work_period(db: &Db, wp: &WorkPeriod) -> Result<WorkPeriod, Refused> {
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    let mut values: Vec<(&str, AttributeValue)> = vec![(":zero", n(0))];
    for (attr, placeholder, value) in work_period_fields(wp) {
        match value {
            Some(v) => {
                sets.push(format!("{attr} = {placeholder}"));
                values.push((placeholder, v));
            }
            None => removes.push(attr),
        }
    }
    sets.push("days_paid = if_not_exists(days_paid, :zero)".into());
    sets.push("days_unpaid = :dw - if_not_exists(days_paid, :zero)".into());
    sets.push("payment_total = if_not_exists(payment_total, :zero)".into());
    for status in PaymentStatus::ALL {
        sets.push(format!(
            "{c} = if_not_exists({c}, :zero)",
            c = status.counter()
        ));
    }
    let mut expr = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    match db
        .update_if(
            work_period_key(&wp.id),
            &expr,
            "attribute_not_exists(pk) OR days_paid <= :dw",
            &[],
            &values,
        )
        .await
    {
        Ok(()) => {}
        Err(DbError::ConditionFailed(_)) => return Err(Refused::DaysBelowPaid(wp.id.clone())),
        Err(e) => return Err(e.into()),
    }
    get_work_period(db, &wp.id)
        .await?
        .ok_or_else(|| Refused::Store("work period vanished after its write".into()))
}

pub async fn get_work_period(db: &Db, id: &str) -> Result<Option<WorkPeriod>, DbError> {
    db.get(work_period_key(id))
        .await?
        .map(work_period_from_item)
        .transpose()
}

pub async fn get_payment(db: &Db, id: &str) -> Result<Option<Payment>, DbError> {
    db.get(payment_key(id))
        .await?
        .map(payment_from_item)
        .transpose()
}

pub fn payment_put_new(db: &Db, p: &Payment) -> Result<TransactWriteItem, DbError> {
    put_payment(db, p, "attribute_not_exists(#pk)", &[])
}

pub fn payment_put_versioned(
    db: &Db,
    p: &Payment,
    expected_version: u64,
) -> Result<TransactWriteItem, DbError> {
    put_payment(
        db,
        p,
        "version = :version",
        &[(":version", n(expected_version))],
    )
}

// ---------------------------------------------------------------- listing

/// Which payments a listing shows: of one work period (and one status of
/// it), of one status, or all.
pub struct Listing {
    pub work_period_id: Option<String>,
    pub status: Option<PaymentStatus>,
}

/// Where a page ends: which partition (for the all-statuses listing), and the
/// last item's index sort key and id.
#[derive(Clone, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "p")]
    pub partition: String,
    #[serde(rename = "k")]
    pub sort: String,
    #[serde(rename = "i")]
    pub id: String,
}

/// One page of at most `per_page` payments after `after`, and where the next
/// page begins if one may follow: by work period (optionally one status,
/// filtered), by one status, or every status in turn — Queries of the two
/// listing indexes ([`Db::query_window`]), never a Scan.
pub async fn list_payments(db: &Db, listing: &Listing, per_page: usize, after: Option<Cursor>) -> Result<(Vec<Payment>, Option<Cursor>), Refused> {
    let (index, pk_attr, sk_attr, partitions): (_, _, _, Vec<String>) = match (&listing.work_period_id, listing.status) {
        (Some(wp), _) => (GSI1, GSI1_PK, "gsi1sk", vec![by_work_period_pk(wp)]),
        (None, Some(st)) => (GSI2, GSI2_PK, "gsi2sk", vec![by_status_pk(st)]),
        (None, None) => (GSI2, GSI2_PK, "gsi2sk", PaymentStatus::ALL.iter().map(|s| by_status_pk(*s)).collect()),
    };
    let first = match &after {
        None => 0,
        Some(c) => partitions.iter().position(|p| *p == c.partition).ok_or_else(|| Invalid::field("next", "does not belong to this listing"))?,
    };
    let mut start = after.map(|c| {
        let mut k = payment_key(&c.id);
        k.insert(pk_attr.into(), s(c.partition));
        k.insert(sk_attr.into(), s(c.sort));
        k
    });
    // By work period the index holds every status: one is kept by a filter.
    let only = listing.work_period_id.as_ref().and(listing.status).map(|st| ("status", st.as_str()));
    let mut page: Vec<(String, Payment)> = Vec::new();
    let mut next = None;
    for (i, pk) in partitions.iter().enumerate().skip(first) {
        let partition = Partition { only, ..Partition::index(index, pk_attr, pk) };
        let (items, more) = db.query_window(&partition, start.take(), 0, per_page - page.len()).await?;
        for item in items {
            let sort = match item.get(sk_attr) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            page.push((sort, payment_from_item(item)?));
        }
        if page.len() == per_page {
            if more || i + 1 < partitions.len() {
                next = page.last().map(|(sort, p)| Cursor { partition: pk.clone(), sort: sort.clone(), id: p.id.clone() });
            }
            break;
        }
    }
    Ok((page.into_iter().map(|(_, p)| p).collect(), next))
}

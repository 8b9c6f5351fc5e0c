//! Work periods and their payments: domain types, wire shapes, item mapping.
//!
//! Key layout:
//! - work period: `pk = WP#<id>`, `sk = WP`, with its payment aggregates kept in
//!   the same item: `days_paid`, `days_unpaid` (= days_worked − days_paid),
//!   `payment_total`, and one counter per payment status. Every payment write
//!   changes them in the same transaction, under `days_unpaid >= :days`, so the
//!   days of active payments can never exceed `days_worked`.
//! - payment: `pk = PAY#<id>`, `sk = PAY`; `gsi1pk = WPPAY#<work period>`,
//!   `gsi2pk = PAYSTATUS#<status>`, both sorted by `<created_at>#<id>`.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Deserializer, Serialize};
use time::Date;

use crate::db::{key, n, s, DbError, Item};
use crate::money::Money;
use crate::validate::{self, format_date, parse_date};

pub const MAX_DAYS: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentStatus {
    Scheduled,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        Self::Scheduled,
        Self::InProgress,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Scheduled, in-progress and completed payments count against the days
    /// worked and the payment total; failed and cancelled ones do not.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Scheduled | Self::InProgress | Self::Completed)
    }

    /// The work period's counter attribute for this status.
    pub fn counter(self) -> &'static str {
        match self {
            Self::Scheduled => "n_scheduled",
            Self::InProgress => "n_in_progress",
            Self::Completed => "n_completed",
            Self::Failed => "n_failed",
            Self::Cancelled => "n_cancelled",
        }
    }
}

/// A work period id: 1–64 letters, digits, `-` or `_` (UUIDs in practice).
pub fn valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkPeriod {
    pub id: String,
    pub resource_booking_id: String,
    pub user_handle: String,
    pub start_date: Date,
    pub end_date: Date,
    pub days_worked: u8,
    pub member_rate: Option<Money>,
    pub customer_rate: Option<Money>,
    pub billing_account_id: Option<u64>,
    // Aggregates of its payments.
    pub days_paid: u8,
    pub days_unpaid: u8,
    pub payment_total: Money,
    pub counts: HashMap<PaymentStatus, u32>,
}

impl WorkPeriod {
    fn count(&self, status: PaymentStatus) -> u32 {
        self.counts.get(&status).copied().unwrap_or(0)
    }

    /// The aggregate status (SPEC §4), from the counters kept with the period.
    pub fn payment_status(&self) -> &'static str {
        if self.days_worked == 0 {
            "no-days"
        } else if self.count(PaymentStatus::InProgress) > 0 {
            "in-progress"
        } else if self.count(PaymentStatus::Scheduled) > 0 {
            "scheduled"
        } else if self.days_paid >= self.days_worked {
            "completed"
        } else if self.count(PaymentStatus::Completed) > 0 {
            "partially-completed"
        } else if self.count(PaymentStatus::Failed) > 0 {
            "failed"
        } else {
            // Days are due and nothing is paid yet: the seed's "pending".
            "pending"
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub id: String,
    pub work_period_id: String,
    pub member_rate: Money,
    pub customer_rate: Option<Money>,
    pub billing_account_id: u64,
    pub days: u8,
    pub amount: Money,
    pub status: PaymentStatus,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub updated_by: String,
    /// Optimistic-concurrency version, bumped by every update.
    pub version: u64,
    /// The tokens of the last [`WRITE_TOKENS_KEPT`] jobs that wrote it (not on
    /// the wire): a job whose answer was lost — or a re-run of its request —
    /// finds its own write among them even after others wrote since.
    pub write_tokens: Vec<String>,
}

pub const WRITE_TOKENS_KEPT: usize = 8;

impl Payment {
    pub fn written_by(&self, token: &str) -> bool {
        self.write_tokens.iter().any(|t| t == token)
    }

    /// Its tokens with `token` added, the oldest dropped past the limit.
    pub fn tokens_with(&self, token: &str) -> Vec<String> {
        let skip = self.write_tokens.len().saturating_sub(WRITE_TOKENS_KEPT - 1);
        self.write_tokens.iter().skip(skip).cloned().chain([token.to_owned()]).collect()
    }
}

// ---------------------------------------------------------------- wire shapes

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkPeriodInput {
    pub resource_booking_id: String,
    pub user_handle: String,
    pub start_date: String,
    pub end_date: String,
    pub days_worked: i64,
    #[serde(default)]
    pub member_rate: Option<Money>,
    #[serde(default)]
    pub customer_rate: Option<Money>,
    #[serde(default)]
    pub billing_account_id: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkPeriodOut<'a> {
    pub id: &'a str,
    pub resource_booking_id: &'a str,
    pub user_handle: &'a str,
    #[serde(with = "validate::date_format")]
    pub start_date: Date,
    #[serde(with = "validate::date_format")]
    pub end_date: Date,
    pub days_worked: u8,
    pub member_rate: Option<Money>,
    pub customer_rate: Option<Money>,
    pub billing_account_id: Option<u64>,
    pub days_paid: u8,
    pub payment_total: Money,
    pub payment_status: &'static str,
}

impl<'a> From<&'a WorkPeriod> for WorkPeriodOut<'a> {
    fn from(wp: &'a WorkPeriod) -> Self {
        Self {
            id: &wp.id,
            resource_booking_id: &wp.resource_booking_id,
            user_handle: &wp.user_handle,
            start_date: wp.start_date,
            end_date: wp.end_date,
            days_worked: wp.days_worked,
            member_rate: wp.member_rate,
            customer_rate: wp.customer_rate,
            billing_account_id: wp.billing_account_id,
            days_paid: wp.days_paid,
            payment_total: wp.payment_total,
            payment_status: wp.payment_status(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentInput {
    pub work_period_id: String,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub days: Option<i64>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub amount: Option<Money>,
}

/// `Some(None)` when the field is `null`, `None` when it is absent.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentPatch {
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub amount: Option<Money>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub days: Option<i64>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub member_rate: Option<Money>,
    #[serde(default, deserialize_with = "nullable")]
    pub customer_rate: Option<Option<Money>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub billing_account_id: Option<i64>,
}

impl PaymentPatch {
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.amount.is_none()
            && self.days.is_none()
            && self.member_rate.is_none()
            && self.customer_rate.is_none()
            && self.billing_account_id.is_none()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOut<'a> {
    pub id: &'a str,
    pub work_period_id: &'a str,
    pub member_rate: Money,
    pub customer_rate: Option<Money>,
    pub billing_account_id: u64,
    pub days: u8,
    pub amount: Money,
    pub status: PaymentStatus,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub created_by: &'a str,
    pub updated_by: &'a str,
}

impl<'a> From<&'a Payment> for PaymentOut<'a> {
    fn from(p: &'a Payment) -> Self {
        Self {
            id: &p.id,
            work_period_id: &p.work_period_id,
            member_rate: p.member_rate,
            customer_rate: p.customer_rate,
            billing_account_id: p.billing_account_id,
            days: p.days,
            amount: p.amount,
            status: p.status,
            created_at: &p.created_at,
            updated_at: &p.updated_at,
            created_by: &p.created_by,
            updated_by: &p.updated_by,
        }
    }
}

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

fn corrupt(what: &str, name: &str) -> DbError {
    DbError::Other(format!("stored {what} has no valid {name}"))
}

fn get_s<'a>(item: &'a Item, name: &str, what: &str) -> Result<&'a str, DbError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(what, name)),
    }
}

fn get_n<T: FromStr>(item: &Item, name: &str, what: &str) -> Result<T, DbError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(what, name)),
        _ => Err(corrupt(what, name)),
    }
}

fn opt_n<T: FromStr>(item: &Item, name: &str, what: &str) -> Result<Option<T>, DbError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| corrupt(what, name)),
        Some(_) => Err(corrupt(what, name)),
    }
}

fn get_money(item: &Item, name: &str, what: &str) -> Result<Money, DbError> {
    item.get(name)
        .and_then(Money::from_attr)
        .ok_or_else(|| corrupt(what, name))
}

fn opt_money(item: &Item, name: &str, what: &str) -> Result<Option<Money>, DbError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(attr) => Money::from_attr(attr)
            .map(Some)
            .ok_or_else(|| corrupt(what, name)),
    }
}

fn get_date(item: &Item, name: &str, what: &str) -> Result<Date, DbError> {
    parse_date(get_s(item, name, what)?).map_err(|_| corrupt(what, name))
}

pub fn work_period_from_item(item: &Item) -> Result<WorkPeriod, DbError> {
    const W: &str = "work period";
    let mut counts = HashMap::new();
    for status in PaymentStatus::ALL {
        counts.insert(status, opt_n(item, status.counter(), W)?.unwrap_or(0));
    }
    Ok(WorkPeriod {
        id: get_s(item, "id", W)?.to_owned(),
        resource_booking_id: get_s(item, "resource_booking_id", W)?.to_owned(),
        user_handle: get_s(item, "user_handle", W)?.to_owned(),
        start_date: get_date(item, "start_date", W)?,
        end_date: get_date(item, "end_date", W)?,
        days_worked: get_n(item, "days_worked", W)?,
        member_rate: opt_money(item, "member_rate", W)?,
        customer_rate: opt_money(item, "customer_rate", W)?,
        billing_account_id: opt_n(item, "billing_account_id", W)?,
        days_paid: opt_n(item, "days_paid", W)?.unwrap_or(0),
        days_unpaid: get_n(item, "days_unpaid", W)?,
        payment_total: opt_money(item, "payment_total", W)?.unwrap_or(Money::ZERO),
        counts,
    })
}

pub fn payment_to_item(p: &Payment) -> Item {
    let mut item = payment_key(&p.id);
    let sort = format!("{}#{}", p.created_at, p.id);
    item.insert("gsi1pk".into(), s(by_work_period_pk(&p.work_period_id)));
    item.insert("gsi1sk".into(), s(&sort));
    item.insert("gsi2pk".into(), s(by_status_pk(p.status)));
    item.insert("gsi2sk".into(), s(sort));
    item.insert("id".into(), s(&p.id));
    item.insert("work_period_id".into(), s(&p.work_period_id));
    item.insert("member_rate".into(), p.member_rate.to_attr());
    if let Some(rate) = p.customer_rate {
        item.insert("customer_rate".into(), rate.to_attr());
    }
    item.insert("billing_account_id".into(), n(p.billing_account_id));
    item.insert("days".into(), n(p.days));
    item.insert("amount".into(), p.amount.to_attr());
    item.insert("status".into(), s(p.status.as_str()));
    item.insert("created_at".into(), s(&p.created_at));
    item.insert("updated_at".into(), s(&p.updated_at));
    item.insert("created_by".into(), s(&p.created_by));
    item.insert("updated_by".into(), s(&p.updated_by));
    item.insert("version".into(), n(p.version));
    if !p.write_tokens.is_empty() {
        item.insert("write_tokens".into(), AttributeValue::L(p.write_tokens.iter().map(s).collect()));
    }
    item
}

pub fn payment_from_item(item: &Item) -> Result<Payment, DbError> {
    const P: &str = "payment";
    Ok(Payment {
        id: get_s(item, "id", P)?.to_owned(),
        work_period_id: get_s(item, "work_period_id", P)?.to_owned(),
        member_rate: get_money(item, "member_rate", P)?,
        customer_rate: opt_money(item, "customer_rate", P)?,
        billing_account_id: get_n(item, "billing_account_id", P)?,
        days: get_n(item, "days", P)?,
        amount: get_money(item, "amount", P)?,
        status: PaymentStatus::parse(get_s(item, "status", P)?)
            .ok_or_else(|| corrupt(P, "status"))?,
        created_at: get_s(item, "created_at", P)?.to_owned(),
        updated_at: get_s(item, "updated_at", P)?.to_owned(),
        created_by: get_s(item, "created_by", P)?.to_owned(),
        updated_by: get_s(item, "updated_by", P)?.to_owned(),
        version: get_n(item, "version", P)?,
        write_tokens: match item.get("write_tokens") {
            Some(AttributeValue::L(list)) => list.iter().filter_map(|t| t.as_s().ok().cloned()).collect(),
            _ => Vec::new(),
        },
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

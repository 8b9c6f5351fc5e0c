//! Work periods and their payments: the domain's types (Topcoder's wire
//! shapes among them) and its rules — what a work period and a payment must
//! be, who may change what, which status follows which, and how a payment
//! is planned against its work period's unpaid days — and [`Refused`],
//! every reason a payment request is refused. Pure: no DynamoDB, no HTTP.
//!
//! A plan is made on a [`Ctx`] (the work periods and payments read for
//! it) and says what to write: the payment as it will be, the version it
//! replaces, and the [`Delta`] its work period's aggregates take in the same
//! transaction. The store writes plans, and plans again on a fresh read when
//! a write lost a race.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};
use time::{Date, OffsetDateTime};

use crate::db::DbError;
use crate::error::{FieldError, Invalid};
use crate::money::Money;
use crate::validate::{self, parse_date, ID};

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

/// A work period, and (camelCase, without its internal counters) its wire shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkPeriod {
    pub id: String,
    pub resource_booking_id: String,
    pub user_handle: String,
    #[serde(with = "validate::date_format")]
    pub start_date: Date,
    #[serde(with = "validate::date_format")]
    pub end_date: Date,
    pub days_worked: u8,
    pub member_rate: Option<Money>,
    pub customer_rate: Option<Money>,
    pub billing_account_id: Option<u64>,
    // Aggregates of its payments.
    pub days_paid: u8,
    #[serde(skip)]
    pub days_unpaid: u8,
    pub payment_total: Money,
    #[serde(skip)]
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

/// A payment, and (camelCase, without its version and write tokens) its wire shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
    #[serde(skip)]
    pub version: u64,
    /// The tokens of the last [`WRITE_TOKENS_KEPT`] jobs that wrote it (not on
    /// the wire): a job whose answer was lost — or a re-run of its request —
    /// finds its own write among them even after others wrote since.
    #[serde(skip)]
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

/// A work period as answered: itself and its aggregate payment status.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkPeriodOut<'a> {
    #[serde(flatten)]
    pub period: &'a WorkPeriod,
    pub payment_status: &'static str,
}

impl<'a> From<&'a WorkPeriod> for WorkPeriodOut<'a> {
    fn from(period: &'a WorkPeriod) -> Self {
        Self { period, payment_status: period.payment_status() }
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
    /// The payment, in an entry of a bulk update (a single update names it in its path).
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub id: Option<String>,
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

// ---------------------------------------------------------------- validation

/// A number of days, if given: 0 to [`MAX_DAYS`].
fn days(errors: &mut Vec<FieldError>, field: &str, raw: Option<i64>) -> Option<u8> {
    match raw {
        Some(d) if !(0..=MAX_DAYS).contains(&d) => {
            errors.push(FieldError::new(field, format!("must be an integer from 0 to {MAX_DAYS}")));
            None
        }
        other => other.map(|d| d as u8),
    }
}

/// A billing account id, if given: 1 to 2^53 − 1 (`rule` says so when it is not).
fn billing_account(errors: &mut Vec<FieldError>, raw: Option<i64>, rule: &str) -> Option<u64> {
    match raw {
        Some(b) if b <= 0 || b > crate::validate::MAX_SAFE_INTEGER => {
            errors.push(FieldError::new("billingAccountId", rule));
            None
        }
        other => other.map(|b| b as u64),
    }
}

fn text(errors: &mut Vec<FieldError>, field: &str, value: &str) -> String {
    crate::validate::check_text(value, 64).unwrap_or_else(|m| {
        errors.push(FieldError::new(field, m));
        String::new()
    })
}

pub fn validate_work_period(id: String, input: WorkPeriodInput) -> Result<WorkPeriod, Invalid> {
    let mut errors = Vec::new();
    let resource_booking_id = text(&mut errors, "resourceBookingId", &input.resource_booking_id);
    let user_handle = text(&mut errors, "userHandle", &input.user_handle);
    let start = parse_date(&input.start_date)
        .map_err(|m| errors.push(FieldError::new("startDate", m)))
        .ok();
    let end = parse_date(&input.end_date)
        .map_err(|m| errors.push(FieldError::new("endDate", m)))
        .ok();
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            errors.push(FieldError::new("endDate", "must not be before startDate"));
        }
    }
    days(&mut errors, "daysWorked", Some(input.days_worked));
    let billing_account_id = billing_account(&mut errors, input.billing_account_id, "must be a positive integer (at most 2^53 - 1) or null");
    match (errors.is_empty(), start, end) {
        (true, Some(start_date), Some(end_date)) => Ok(WorkPeriod {
            id,
            resource_booking_id,
            user_handle,
            start_date,
            end_date,
            days_worked: input.days_worked as u8,
            member_rate: input.member_rate,
            customer_rate: input.customer_rate,
            billing_account_id,
            days_paid: 0,
            days_unpaid: input.days_worked as u8,
            payment_total: Money::ZERO,
            counts: HashMap::new(),
        }),
        _ => Err(Invalid(errors)),
    }
}

/// A payment to create, checked on its own (the work period is checked when planned).
pub struct NewPayment {
    pub work_period_id: String,
    pub days: Option<u8>,
    pub amount: Option<Money>,
}

pub fn validate_new_payment(input: PaymentInput) -> Result<NewPayment, Invalid> {
    let mut errors = Vec::new();
    if let Err(rule) = ID.check(&input.work_period_id) {
        errors.push(FieldError::new("workPeriodId", rule));
    }
    let days = days(&mut errors, "days", input.days);
    match (days, input.amount) {
        (Some(0), None) => errors.push(FieldError::new(
            "amount",
            "is required, above 0, when days is 0 (an additional payment)",
        )),
        (Some(0), Some(a)) if !a.is_positive() => {
            errors.push(FieldError::new("amount", "must be above 0"))
        }
        (Some(0), Some(_)) => {}
        (_, Some(_)) => errors.push(FieldError::new(
            "amount",
            "is computed from memberRate and days; give it only with days: 0",
        )),
        _ => {}
    }
    Invalid::check(errors)?;
    Ok(NewPayment {
        work_period_id: input.work_period_id,
        days,
        amount: input.amount,
    })
}

/// What the caller may do to payments: set amounts, schedule and cancel
/// (`edit`: scope admin or payments); set in-progress, completed or failed
/// (`process`: scope payments:process).
#[derive(Debug, Clone, Copy)]
pub struct Powers {
    pub edit: bool,
    pub process: bool,
}

/// An update, checked on its own and against what the caller may do.
pub struct PaymentChange {
    pub status: Option<PaymentStatus>,
    pub amount: Option<Money>,
    pub days: Option<u8>,
    pub member_rate: Option<Money>,
    pub customer_rate: Option<Option<Money>>,
    pub billing_account_id: Option<u64>,
}

impl PaymentChange {
    /// Whether it touches anything financial (anything but the status).
    pub fn changes_money(&self) -> bool {
        self.amount.is_some()
            || self.days.is_some()
            || self.member_rate.is_some()
            || self.customer_rate.is_some()
            || self.billing_account_id.is_some()
    }
}

pub fn validate_change(may: Powers, patch: PaymentPatch) -> Result<PaymentChange, Refused> {
    if patch.is_empty() {
        return Err(Refused::NothingToChange);
    }
    let mut errors = Vec::new();
    let status = match patch.status.as_deref() {
        None => None,
        Some(raw) => match PaymentStatus::parse(raw) {
            Some(s) => Some(s),
            None => {
                errors.push(FieldError::new(
                    "status",
                    "must be scheduled, cancelled, in-progress, completed or failed",
                ));
                None
            }
        },
    };
    let days = days(&mut errors, "days", patch.days);
    let billing_account_id = billing_account(&mut errors, patch.billing_account_id, "must be a positive integer");
    Invalid::check(errors)?;
    let change = PaymentChange {
        status,
        amount: patch.amount,
        days,
        member_rate: patch.member_rate,
        customer_rate: patch.customer_rate,
        billing_account_id,
    };
    if change.changes_money() && !may.edit {
        return Err(Refused::NotAllowed("Changing a payment's amounts needs scope admin or payments"));
    }
    match status {
        Some(PaymentStatus::Scheduled | PaymentStatus::Cancelled) if !may.edit => {
            return Err(Refused::NotAllowed("Scheduling or cancelling needs scope admin or payments"))
        }
        Some(PaymentStatus::InProgress | PaymentStatus::Completed | PaymentStatus::Failed) if !may.process => {
            return Err(Refused::NotAllowed("Setting in-progress, completed or failed needs scope payments:process"))
        }
        _ => {}
    }
    Ok(change)
}

// ---------------------------------------------------------------- planning

/// What plans are made from: the work periods and payments involved.
#[derive(Default)]
pub struct Ctx {
    pub work_periods: HashMap<String, WorkPeriod>,
    pub payments: HashMap<String, Payment>,
}

/// What planning a job decided.
pub enum Planned {
    /// Write this.
    Write(Change),
    /// Already written by this job (an attempt whose answer was lost, or an
    /// earlier run of the same request): answer with it.
    Done(Payment),
}

/// One payment write: the payment as it will be, the version it replaces
/// (`None`: it is new), and what its work period's aggregates take.
pub struct Change {
    pub payment: Payment,
    pub expected_version: Option<u64>,
    pub delta: Option<Delta>,
}

/// What a payment write adds to its work period's aggregates: days, amount,
/// and one payment moving between status counters.
pub struct Delta {
    pub days: i64,
    pub amount: Money,
    pub from: Option<PaymentStatus>,
    pub to: Option<PaymentStatus>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.days == 0 && self.amount == Money::ZERO && self.from == self.to
    }

    /// `wp` as this delta's transaction left it (the same ADDs, in memory),
    /// or `None` if the result would not be a valid work period.
    pub fn applied_to(&self, wp: &WorkPeriod) -> Option<WorkPeriod> {
        let mut next = wp.clone();
        next.days_paid = u8::try_from(i64::from(wp.days_paid) + self.days).ok()?;
        next.days_unpaid = u8::try_from(i64::from(wp.days_unpaid) - self.days).ok()?;
        next.payment_total = wp.payment_total.checked_add(self.amount)?;
        if self.from != self.to {
            for (status, step) in [(self.from, -1i64), (self.to, 1)] {
                if let Some(status) = status {
                    let count = next.counts.entry(status).or_insert(0);
                    *count = u32::try_from(i64::from(*count) + step).ok()?;
                }
            }
        }
        Some(next)
    }
}

/// Plans creating the payment `id` for `input` on what `ctx` holds: the
/// work period must have a billing account and member rate, have started by
/// `now`, and have the days unpaid; a payment already under `id` is this
/// job's own (its id is fresh, or derived from its Idempotency-Key).
pub fn plan_create(
    ctx: &Ctx,
    input: &NewPayment,
    id: &str,
    sub: &str,
    now: OffsetDateTime,
) -> Result<Planned, Refused> {
    let today = now.date();
    // The id is this job's own (fresh, or derived from its Idempotency-Key):
    // a payment under it is one this request already created.
    if let Some(done) = ctx.payments.get(id) {
        return Ok(Planned::Done(done.clone()));
    }
    let wp = ctx.work_periods.get(&input.work_period_id).ok_or_else(|| Refused::WorkPeriodNotFound(input.work_period_id.clone()))?;
    let billing_account_id = wp.billing_account_id.ok_or(Refused::NoBillingAccount)?;
    let member_rate = wp.member_rate.ok_or(Refused::NoMemberRate)?;
    if wp.start_date > today {
        return Err(Refused::NotStarted(wp.start_date));
    }
    let days = match input.days {
        Some(0) => 0,
        _ if wp.days_unpaid == 0 => return Err(Refused::NoUnpaidDays),
        None => wp.days_unpaid,
        Some(d) if d > wp.days_unpaid => {
            return Err(Invalid::field("days", format!("{d} days exceed the {} unpaid days of the work period", wp.days_unpaid)).into())
        }
        Some(d) => d,
    };
    let amount = match input.amount {
        Some(a) if days == 0 => a,
        _ => Money::for_days(member_rate, days),
    };
    let at = crate::validate::format_timestamp(now);
    let payment = Payment {
        id: id.to_owned(),
        work_period_id: wp.id.clone(),
        member_rate,
        customer_rate: wp.customer_rate,
        billing_account_id,
        days,
        amount,
        status: PaymentStatus::Scheduled,
        created_at: at.clone(),
        updated_at: at,
        created_by: sub.to_owned(),
        updated_by: sub.to_owned(),
        version: 1,
        write_tokens: vec![id.to_owned()],
    };
    let delta = Delta {
        days: i64::from(days),
        amount,
        from: None,
        to: Some(PaymentStatus::Scheduled),
    };
    Ok(Planned::Write(Change { payment, expected_version: None, delta: Some(delta) }))
}

/// Whether a payment may go from `from` to `to` (SPEC §4).
pub fn transition_allowed(from: PaymentStatus, to: PaymentStatus) -> Result<(), Refused> {
    use PaymentStatus::*;
    match (from, to) {
        // Re-stating the status is a no-op, except `scheduled`, which SPEC §4
        // allows only from `failed` (a scheduled payment is not rescheduled).
        (a, b) if a == b && a != Scheduled => Ok(()),
        (Scheduled, Cancelled | InProgress | Failed)
        | (Failed, Cancelled | Scheduled)
        | (InProgress, Completed | Failed) => Ok(()),
        (InProgress, Cancelled) => Err(Refused::InProgressCancel),
        (_, Scheduled) => Err(Refused::OnlyFailedReschedules(from)),
        _ => Err(Refused::Transition { from, to }),
    }
}

/// Plans `change` to payment `id` on what `ctx` holds, writing `token`: a
/// payment already holding `token` is this job's own earlier write.
pub fn plan_update(
    ctx: &Ctx,
    id: &str,
    change: &PaymentChange,
    token: &str,
    sub: &str,
    now: OffsetDateTime,
) -> Result<Planned, Refused> {
    let current = ctx.payments.get(id).ok_or_else(|| Refused::PaymentNotFound(id.to_owned()))?;
    if current.written_by(token) {
        return Ok(Planned::Done(current.clone()));
    }
    let wp = ctx.work_periods.get(&current.work_period_id).ok_or(Refused::WorkPeriodGone)?;
    if current.status == PaymentStatus::Cancelled {
        return Err(Refused::CancelledIsFinal);
    }
    if change.changes_money()
        && matches!(
            current.status,
            PaymentStatus::InProgress | PaymentStatus::Completed
        )
    {
        return Err(Refused::AmountsLocked(current.status));
    }
    let mut next = current.clone();
    if let Some(to) = change.status {
        transition_allowed(current.status, to)?;
        next.status = to;
    }
    if let Some(rate) = change.member_rate {
        next.member_rate = rate;
    }
    if let Some(rate) = change.customer_rate {
        next.customer_rate = rate;
    }
    if let Some(b) = change.billing_account_id {
        next.billing_account_id = b;
    }
    if let Some(d) = change.days {
        next.days = d;
    }
    next.amount = match change.amount {
        Some(a) => a,
        None if next.days > 0 && (change.days.is_some() || change.member_rate.is_some()) => {
            Money::for_days(next.member_rate, next.days)
        }
        None => current.amount,
    };
    if next.days == 0 && !next.amount.is_positive() {
        return Err(Invalid::field("amount", "must be above 0 for a payment of 0 days").into());
    }
    // Days this payment may hold: the unpaid ones, plus its own if it holds them now.
    let held = if current.status.is_active() {
        current.days
    } else {
        0
    };
    let available = wp.days_unpaid + held;
    if next.status.is_active() && next.days > available {
        return Err(if change.days.is_some() {
            Invalid::field("days", format!("{} days exceed the {available} days this payment may take", next.days)).into()
        } else {
            Refused::NoDaysLeft
        });
    }
    let take = |p: &Payment| {
        if p.status.is_active() {
            (i64::from(p.days), p.amount)
        } else {
            (0, Money::ZERO)
        }
    };
    let (old_days, old_amount) = take(current);
    let (new_days, new_amount) = take(&next);
    next.updated_at = crate::validate::format_timestamp(now);
    next.updated_by = sub.to_owned();
    next.version = current.version + 1;
    next.write_tokens = current.tokens_with(token);
    let delta = Delta {
        days: new_days - old_days,
        amount: new_amount - old_amount,
        from: Some(current.status),
        to: Some(next.status),
    };
    let delta = (!delta.is_empty()).then_some(delta);
    Ok(Planned::Write(Change { payment: next, expected_version: Some(current.version), delta }))
}

// ---------------------------------------------------------------- refusals

/// Why a work period or payment request (or one entry of a bulk one) is refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("Give at least one of status, amount, days, memberRate, customerRate, billingAccountId")]
    NothingToChange,
    /// The caller lacks the scope this change needs.
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("Work period {0} not found")]
    WorkPeriodNotFound(String),
    #[error("Payment {0} not found")]
    PaymentNotFound(String),
    #[error("The work period has no billing account")]
    NoBillingAccount,
    #[error("The work period has no member rate")]
    NoMemberRate,
    #[error("The work period has not started (it starts {})", validate::format_date(*.0))]
    NotStarted(Date),
    #[error("The work period has no unpaid days left")]
    NoUnpaidDays,
    #[error("The payment's work period no longer exists")]
    WorkPeriodGone,
    #[error("A cancelled payment cannot be changed")]
    CancelledIsFinal,
    #[error("Amounts cannot change while the payment is {}", .0.as_str())]
    AmountsLocked(PaymentStatus),
    #[error("An in-progress payment cannot be cancelled")]
    InProgressCancel,
    #[error("Only a failed payment can be scheduled again; this one is {}", .0.as_str())]
    OnlyFailedReschedules(PaymentStatus),
    #[error("A payment cannot go from {} to {}", .from.as_str(), .to.as_str())]
    Transition { from: PaymentStatus, to: PaymentStatus },
    #[error("No unpaid days remain on the work period for this payment")]
    NoDaysLeft,
    #[error("daysWorked cannot be fewer than the days already paid on work period {0}")]
    DaysBelowPaid(String),
    /// The work period kept changing under it, or the request's time ran
    /// out before its turn: send it again.
    #[error("The service is busy; retry later")]
    Busy,
    #[error("{0}")]
    Store(String),
}

impl From<DbError> for Refused {
    fn from(e: DbError) -> Self {
        match e {
            // Transient: the same answer as a conflict that outlasted its retries.
            DbError::Exhausted(cause) => {
                tracing::warn!(%cause, "retries exhausted");
                Refused::Busy
            }
            DbError::ConditionFailed(_) => {
                tracing::warn!("unhandled condition failure: a concurrent change");
                Refused::Busy
            }
            DbError::Other(cause) => Refused::Store(cause),
        }
    }
}

//! Work periods and their payments (SPEC §4; Topcoder's work-period payments).

pub mod model;
pub mod store;

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::Request;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use self::model::*;
use self::store::*;
use crate::auth::{caller, Caller, SCOPE_ADMIN};
use crate::db::{Db, Item};
use crate::error::{ApiError, FieldError};
use crate::http::{
    json_body, json_bytes, json_response, parse_json, path_param, query_param, HandlerResult,
};
use crate::idempotency::RequestIds;
use crate::pagetoken::PageToken;
use crate::money::Money;
use crate::validate::parse_date;
use crate::App;

pub const SCOPE_PAYMENTS: &str = "payments";
pub const SCOPE_PROCESS: &str = "payments:process";
pub const MAX_BULK: usize = 1000;

// ---------------------------------------------------------------- validation

fn id_param(req: &Request, name: &str) -> Result<String, ApiError> {
    let id = path_param(req, name)?;
    if valid_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::field(
            name,
            "must be 1 to 64 letters, digits, '-' or '_'",
        ))
    }
}

fn text(errors: &mut Vec<FieldError>, field: &str, value: &str) -> String {
    crate::validate::check_text(value, 64).unwrap_or_else(|m| {
        errors.push(FieldError::new(field, m));
        String::new()
    })
}

pub fn validate_work_period(id: String, input: WorkPeriodInput) -> Result<WorkPeriod, ApiError> {
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
    if !(0..=MAX_DAYS).contains(&input.days_worked) {
        errors.push(FieldError::new(
            "daysWorked",
            format!("must be an integer from 0 to {MAX_DAYS}"),
        ));
    }
    let billing_account_id = match input.billing_account_id {
        Some(b) if b <= 0 || b > crate::validate::MAX_SAFE_INTEGER => {
            errors.push(FieldError::new(
                "billingAccountId",
                "must be a positive integer (at most 2^53 - 1) or null",
            ));
            None
        }
        other => other.map(|b| b as u64),
    };
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
        _ => Err(ApiError::invalid(errors)),
    }
}

/// A payment to create, checked on its own (the work period is checked when planned).
pub struct NewPayment {
    pub work_period_id: String,
    pub days: Option<u8>,
    pub amount: Option<Money>,
}

pub fn validate_new_payment(input: PaymentInput) -> Result<NewPayment, ApiError> {
    let mut errors = Vec::new();
    if !valid_id(&input.work_period_id) {
        errors.push(FieldError::new(
            "workPeriodId",
            "must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    let days = match input.days {
        Some(d) if !(0..=MAX_DAYS).contains(&d) => {
            errors.push(FieldError::new(
                "days",
                format!("must be an integer from 0 to {MAX_DAYS}"),
            ));
            None
        }
        other => other.map(|d| d as u8),
    };
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
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(NewPayment {
        work_period_id: input.work_period_id,
        days,
        amount: input.amount,
    })
}

/// An update, checked on its own and against the caller's scopes.
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

pub fn validate_change(who: &Caller, patch: PaymentPatch) -> Result<PaymentChange, ApiError> {
    if patch.is_empty() {
        return Err(ApiError::bad_request(
            "Give at least one of status, amount, days, memberRate, customerRate, billingAccountId",
        ));
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
    let days = match patch.days {
        Some(d) if !(0..=MAX_DAYS).contains(&d) => {
            errors.push(FieldError::new(
                "days",
                format!("must be an integer from 0 to {MAX_DAYS}"),
            ));
            None
        }
        other => other.map(|d| d as u8),
    };
    let billing_account_id = match patch.billing_account_id {
        Some(b) if b <= 0 || b > crate::validate::MAX_SAFE_INTEGER => {
            errors.push(FieldError::new(
                "billingAccountId",
                "must be a positive integer",
            ));
            None
        }
        other => other.map(|b| b as u64),
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let change = PaymentChange {
        status,
        amount: patch.amount,
        days,
        member_rate: patch.member_rate,
        customer_rate: patch.customer_rate,
        billing_account_id,
    };
    let editor = who.has_scope(SCOPE_ADMIN) || who.has_scope(SCOPE_PAYMENTS);
    if change.changes_money() && !editor {
        return Err(ApiError::Forbidden(
            "Changing a payment's amounts needs scope admin or payments".into(),
        ));
    }
    match status {
        Some(PaymentStatus::Scheduled | PaymentStatus::Cancelled) if !editor => {
            return Err(ApiError::Forbidden(
                "Scheduling or cancelling needs scope admin or payments".into(),
            ))
        }
        Some(PaymentStatus::InProgress | PaymentStatus::Completed | PaymentStatus::Failed)
            if !who.has_scope(SCOPE_PROCESS) =>
        {
            return Err(ApiError::Forbidden(
                "Setting in-progress, completed or failed needs scope payments:process".into(),
            ))
        }
        _ => {}
    }
    Ok(change)
}

// ---------------------------------------------------------------- planning

fn plan_create(
    db: &Db,
    ctx: &Ctx,
    input: &NewPayment,
    id: &str,
    sub: &str,
    now: OffsetDateTime,
) -> Result<Planned, ApiError> {
    let today = now.date();
    // The id is this job's own (fresh, or derived from its Idempotency-Key):
    // a payment under it is one this request already created.
    if let Some(done) = ctx.payments.get(id) {
        return Ok(Planned::Done(done.clone()));
    }
    let wp = ctx.work_periods.get(&input.work_period_id).ok_or_else(|| {
        ApiError::NotFound(format!("Work period {} not found", input.work_period_id))
    })?;
    let billing_account_id = wp
        .billing_account_id
        .ok_or_else(|| ApiError::Conflict("The work period has no billing account".into()))?;
    let member_rate = wp
        .member_rate
        .ok_or_else(|| ApiError::Conflict("The work period has no member rate".into()))?;
    if wp.start_date > today {
        return Err(ApiError::bad_request(format!(
            "The work period has not started (it starts {})",
            crate::validate::format_date(wp.start_date)
        )));
    }
    let days = match input.days {
        Some(0) => 0,
        _ if wp.days_unpaid == 0 => {
            return Err(ApiError::Conflict(
                "The work period has no unpaid days left".into(),
            ))
        }
        None => wp.days_unpaid,
        Some(d) if d > wp.days_unpaid => {
            return Err(ApiError::field(
                "days",
                format!(
                    "{d} days exceed the {} unpaid days of the work period",
                    wp.days_unpaid
                ),
            ))
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
    let actions = vec![
        payment_put_new(db, &payment)?,
        update_work_period(db, &wp.id, &delta)?,
    ];
    Ok(Planned::Write(Plan {
        payment,
        actions,
        delta: Some(delta),
    }))
}

fn transition_allowed(from: PaymentStatus, to: PaymentStatus) -> Result<(), ApiError> {
    use PaymentStatus::*;
    match (from, to) {
        // Re-stating the status is a no-op, except `scheduled`, which SPEC §4
        // allows only from `failed` (a scheduled payment is not rescheduled).
        (a, b) if a == b && a != Scheduled => Ok(()),
        (Scheduled, Cancelled | InProgress | Failed)
        | (Failed, Cancelled | Scheduled)
        | (InProgress, Completed | Failed) => Ok(()),
        (InProgress, Cancelled) => Err(ApiError::Conflict(
            "An in-progress payment cannot be cancelled".into(),
        )),
        (_, Scheduled) => Err(ApiError::Conflict(format!(
            "Only a failed payment can be scheduled again; this one is {}",
            from.as_str()
        ))),
        _ => Err(ApiError::Conflict(format!(
            "A payment cannot go from {} to {}",
            from.as_str(),
            to.as_str()
        ))),
    }
}

fn plan_update(
    db: &Db,
    ctx: &Ctx,
    id: &str,
    change: &PaymentChange,
    token: &str,
    sub: &str,
    now: OffsetDateTime,
) -> Result<Planned, ApiError> {
    let current = ctx
        .payments
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("Payment {id} not found")))?;
    if current.written_by(token) {
        return Ok(Planned::Done(current.clone()));
    }
    let wp = ctx
        .work_periods
        .get(&current.work_period_id)
        .ok_or_else(|| ApiError::Conflict("The payment's work period no longer exists".into()))?;
    if current.status == PaymentStatus::Cancelled {
        return Err(ApiError::Conflict(
            "A cancelled payment cannot be changed".into(),
        ));
    }
    if change.changes_money()
        && matches!(
            current.status,
            PaymentStatus::InProgress | PaymentStatus::Completed
        )
    {
        return Err(ApiError::Conflict(format!(
            "Amounts cannot change while the payment is {}",
            current.status.as_str()
        )));
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
        return Err(ApiError::field(
            "amount",
            "must be above 0 for a payment of 0 days",
        ));
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
            ApiError::field(
                "days",
                format!(
                    "{} days exceed the {available} days this payment may take",
                    next.days
                ),
            )
        } else {
            ApiError::Conflict("No unpaid days remain on the work period for this payment".into())
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
    let mut actions = vec![payment_put_versioned(db, &next, current.version)?];
    let delta = if delta.is_empty() {
        None
    } else {
        actions.push(update_work_period(db, &wp.id, &delta)?);
        Some(delta)
    };
    Ok(Planned::Write(Plan {
        payment: next,
        actions,
        delta,
    }))
}

// ---------------------------------------------------------------- operations

/// Creates payments; one result per input, in order. The `i`th payment's id
/// is `ids.id("payment", i)`: with an Idempotency-Key, a re-run of the same
/// request finds the payments an earlier run created and answers with them.
pub async fn create_payments(
    db: &Db,
    sub: &str,
    ids: &RequestIds,
    deadline: std::time::Instant,
    clock: &crate::clock::Clock,
    inputs: Vec<Result<NewPayment, ApiError>>,
) -> Vec<Result<Payment, ApiError>> {
    let mut results: Vec<Option<Result<Payment, ApiError>>> = Vec::with_capacity(inputs.len());
    let mut jobs = Vec::new();
    for (idx, input) in inputs.into_iter().enumerate() {
        match input {
            Ok(p) => {
                let id = ids.id("payment", idx);
                jobs.push(Job::new(idx, p.work_period_id.clone(), id.clone(), id, p));
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    let wp_ids: HashSet<String> = jobs.iter().map(|j| j.work_period_id.clone()).collect();
    // Fresh random ids cannot exist yet; derived ones may, from an earlier run.
    let earlier: HashSet<String> = if ids.is_keyed() {
        jobs.iter().map(|j| j.payment_id.clone()).collect()
    } else {
        HashSet::new()
    };
    let mut ctx = Ctx::default();
    if let Err(e) = ctx.load(db, &wp_ids, &earlier).await {
        let e = ApiError::from(e);
        return results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(e.clone())))
            .collect();
    }
    let now = clock.now();
    let mut done = run_jobs(db, ctx, jobs, deadline, |ctx, input, id| {
        plan_create(db, ctx, input, id, sub, now)
    })
    .await;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.or_else(|| done.remove(&i))
                .unwrap_or_else(|| Err(ApiError::Internal("payment left unanswered".into())))
        })
        .collect()
}

/// Updates payments; one result per input, in order. The `i`th update writes
/// the token `ids.id("payment-update", i)`, by which a lost answer's retry
/// or a re-run of the same request recognises it as done.
pub async fn update_payments(
    db: &Db,
    sub: &str,
    ids: &RequestIds,
    deadline: std::time::Instant,
    clock: &crate::clock::Clock,
    inputs: Vec<Result<(String, PaymentChange), ApiError>>,
) -> Vec<Result<Payment, ApiError>> {
    let mut results: Vec<Option<Result<Payment, ApiError>>> = Vec::with_capacity(inputs.len());
    let mut valid = Vec::new();
    for (idx, input) in inputs.into_iter().enumerate() {
        match input {
            Ok(v) => {
                valid.push((idx, v));
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    let payment_ids: HashSet<String> = valid.iter().map(|(_, (id, _))| id.clone()).collect();
    let mut ctx = Ctx::default();
    let loaded = ctx.load(db, &HashSet::new(), &payment_ids).await;
    let wp_ids: HashSet<String> = ctx
        .payments
        .values()
        .map(|p| p.work_period_id.clone())
        .collect();
    let loaded = match loaded {
        Ok(()) => ctx.load(db, &wp_ids, &HashSet::new()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = loaded {
        let e = ApiError::from(e);
        return results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(e.clone())))
            .collect();
    }
    let mut jobs = Vec::new();
    for (idx, (id, change)) in valid {
        match ctx.payments.get(&id) {
            Some(p) => jobs.push(Job::new(
                idx,
                p.work_period_id.clone(),
                id.clone(),
                ids.id("payment-update", idx),
                (id, change),
            )),
            None => results[idx] = Some(Err(ApiError::NotFound(format!("Payment {id} not found")))),
        }
    }
    let mut done = run_jobs(db, ctx, jobs, deadline, |ctx, (id, change), token| {
        plan_update(db, ctx, id, change, token, sub, clock.now())
    })
    .await;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.or_else(|| done.remove(&i))
                .unwrap_or_else(|| Err(ApiError::Internal("payment left unanswered".into())))
        })
        .collect()
}

// ---------------------------------------------------------------- listing

pub struct ListQuery {
    pub work_period_id: Option<String>,
    pub status: Option<PaymentStatus>,
    pub per_page: usize,
    pub next: Option<Cursor>,
}

/// Where a page ends: which partition (for the all-statuses listing), and the
/// last item's index key.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    #[serde(rename = "p")]
    partition: String,
    #[serde(rename = "k")]
    sort: String,
    #[serde(rename = "i")]
    id: String,
}

/// The listing a page token belongs to: the query's filters.
fn listing_scope(work_period_id: Option<&str>, status: Option<PaymentStatus>) -> String {
    format!("payments:{}:{}", work_period_id.unwrap_or(""), status.map(PaymentStatus::as_str).unwrap_or(""))
}

/// `next` of a listing: the cursor, signed ([`PageToken`]) and bound to the
/// listing's filters, so a tampered or foreign token is 400, never a Query.
fn decode_cursor(page_key: &[u8], raw: &str, scope: &str) -> Result<Cursor, ApiError> {
    let token = PageToken::decode(page_key, raw, scope)?;
    let cursor: Cursor = serde_json::from_str(&token.key).map_err(|_| crate::pagetoken::foreign())?;
    if !valid_id(&cursor.id) || !cursor.sort.ends_with(&format!("#{}", cursor.id)) {
        return Err(crate::pagetoken::foreign());
    }
    Ok(cursor)
}

pub fn parse_list_query(req: &Request, page_key: &[u8]) -> Result<ListQuery, ApiError> {
    let work_period_id = query_param(req, "workPeriodId");
    if let Some(id) = &work_period_id {
        if !valid_id(id) {
            return Err(ApiError::field(
                "workPeriodId",
                "must be 1 to 64 letters, digits, '-' or '_'",
            ));
        }
    }
    let status = match query_param(req, "status") {
        None => None,
        Some(raw) => Some(
            PaymentStatus::parse(&raw)
                .ok_or_else(|| ApiError::field("status", "is not a payment status"))?,
        ),
    };
    let per_page = match query_param(req, "perPage") {
        None => 20,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::field("perPage", "must be an integer from 1 to 100"))?,
    };
    let scope = listing_scope(work_period_id.as_deref(), status);
    let next = query_param(req, "next").map(|raw| decode_cursor(page_key, &raw, &scope)).transpose()?;
    Ok(ListQuery {
        work_period_id,
        status,
        per_page,
        next,
    })
}

/// One page of payments: by work period (optionally one status), by one
/// status, or every status in turn. Always Queries, never a Scan.
pub async fn list_payments(
    db: &Db,
    q: ListQuery,
) -> Result<(Vec<Payment>, Option<Cursor>), ApiError> {
    let (index, partitions): (&str, Vec<String>) = match (&q.work_period_id, q.status) {
        (Some(wp), _) => ("gsi1", vec![by_work_period_pk(wp)]),
        (None, Some(st)) => ("gsi2", vec![by_status_pk(st)]),
        (None, None) => (
            "gsi2",
            PaymentStatus::ALL
                .iter()
                .map(|s| by_status_pk(*s))
                .collect(),
        ),
    };
    let (pk_attr, sk_attr) = if index == "gsi1" {
        ("gsi1pk", "gsi1sk")
    } else {
        ("gsi2pk", "gsi2sk")
    };
    let mut start = 0;
    let mut exclusive: Option<Item> = None;
    if let Some(c) = &q.next {
        start = partitions
            .iter()
            .position(|p| *p == c.partition)
            .ok_or_else(|| ApiError::field("next", "does not belong to this listing"))?;
        let mut k = payment_key(&c.id);
        k.insert(pk_attr.into(), AttributeValue::S(c.partition.clone()));
        k.insert(sk_attr.into(), AttributeValue::S(c.sort.clone()));
        exclusive = Some(k);
    }
    let status_filter = if q.work_period_id.is_some() {
        q.status
    } else {
        None
    };
    let mut items: Vec<(String, String, Payment)> = Vec::new();
    for partition in &partitions[start..] {
        let mut page_start = exclusive.take();
        loop {
            let want = q.per_page - items.len();
            let mut query = db
                .client
                .query()
                .table_name(&*db.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
                .limit(want as i32)
                .set_exclusive_start_key(page_start.clone());
            if let Some(st) = status_filter {
                query = query
                    .filter_expression("#st = :st")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", AttributeValue::S(st.as_str().into()));
            }
            let out = db.with_retries(|| query.clone().send()).await?;
            for item in out.items.unwrap_or_default() {
                let sort = match item.get(sk_attr) {
                    Some(AttributeValue::S(v)) => v.clone(),
                    _ => String::new(),
                };
                items.push((partition.clone(), sort, payment_from_item(&item)?));
            }
            if items.len() >= q.per_page {
                break;
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => page_start = Some(k),
                _ => break,
            }
        }
        if items.len() >= q.per_page {
            break;
        }
    }
    items.truncate(q.per_page);
    // A full page may have more after it; its last item is where the next starts.
    let next = if items.len() == q.per_page {
        items.last().map(|(p, sort, pay)| Cursor { partition: p.clone(), sort: sort.clone(), id: pay.id.clone() })
    } else {
        None
    };
    Ok((items.into_iter().map(|(_, _, p)| p).collect(), next))
}

// ---------------------------------------------------------------- handlers

/// When this request stops starting new rounds of payments.
fn deadline(app: &App) -> std::time::Instant {
    std::time::Instant::now() + app.work_budget
}

/// `PUT /work-periods/{id}`
pub async fn put_work_period_handler(app: App, req: Request) -> HandlerResult {
    let id = id_param(&req, "id")?;
    let wp = validate_work_period(id, json_body(&req)?)?;
    let stored = put_work_period(&app.db, &wp).await?;
    json_response(200, &WorkPeriodOut::from(&stored))
}

/// `GET /work-periods/{id}`
pub async fn get_work_period_handler(app: App, req: Request) -> HandlerResult {
    let id = id_param(&req, "id")?;
    let wp = get_work_period(&app.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Work period {id} not found")))?;
    json_response(200, &WorkPeriodOut::from(&wp))
}

fn starts_with_array(req: &Request) -> bool {
    let body: &[u8] = req.body().as_ref();
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// `POST /work-period-payments`
pub async fn post_payment_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    if starts_with_array(&req) {
        return Err(ApiError::field(
            "body",
            "must be one payment object; send arrays to POST /work-period-payments/bulk",
        ));
    }
    let input = validate_new_payment(json_body(&req)?)?;
    let mut results =
        create_payments(&app.db, &who.sub, &RequestIds::of(&req), deadline(&app), &app.clock, vec![Ok(input)]).await;
    let payment = results
        .pop()
        .unwrap_or_else(|| Err(ApiError::Internal("no result".into())))?;
    tracing::info!(payment_id = %payment.id, work_period_id = %payment.work_period_id, days = payment.days, "payment created");
    json_response(201, &PaymentOut::from(&payment))
}

/// The body of a bulk request: a JSON array of 1 to 1000 objects.
fn bulk_items(req: &Request) -> Result<Vec<&RawValue>, ApiError> {
    crate::http::bounded_array(json_bytes(req)?, MAX_BULK)
}

/// The input object echoed back with `error: {message, code}`.
fn error_entry(input: &RawValue, err: &ApiError) -> Value {
    // Only an object of moderate size is echoed (callers check the size), so
    // reading it whole costs little; anything else echoes no fields.
    let entry = serde_json::from_str::<Map<String, Value>>(input.get()).unwrap_or_default();
    error_entry_of(entry, err)
}

/// The largest bulk entry echoed beside its error; a larger one is answered
/// by its position (`index`) alone.
pub const ECHO_ENTRY_MAX_BYTES: usize = 16 * 1024;

fn error_entry_of(mut entry: Map<String, Value>, err: &ApiError) -> Value {
    entry.insert("error".into(), serde_json::to_value(err.body().error).unwrap_or(Value::Null));
    Value::Object(entry)
}

/// One bulk entry, parsed from its own text (never re-serialised).
fn item_of<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, ApiError> {
    if !raw.get().trim_start().starts_with('{') {
        return Err(ApiError::field("body", "each entry must be a JSON object"));
    }
    parse_json(raw.get().as_bytes())
}

/// One entry per input. Entries are kept as raw JSON so that money keeps its
/// two places (a `serde_json::Value` would turn `120.00` into `120.0`).
/// The largest bulk answer that echoes failed inputs: Lambda's response
/// limit is 6 MB for the whole invocation answer, in which the body is a
/// JSON string (quotes escaped), so a body past this answers failed entries
/// by their position instead: `{"index": i, "error": {...}}`.
pub const ECHO_BUDGET_BYTES: usize = 4 * 1024 * 1024;

fn bulk_response(inputs: &[&RawValue], results: Vec<Result<Payment, ApiError>>) -> HandlerResult {
    let unfinished = results.iter().any(|r| matches!(r, Err(e) if e.status() >= 500));
    let render = |echo: bool| {
        inputs
            .iter()
            .zip(&results)
            .enumerate()
            .map(|(i, (input, r))| {
                let text = match r {
                    Ok(p) => serde_json::to_string(&PaymentOut::from(p)),
                    Err(e) if echo && input.get().len() <= ECHO_ENTRY_MAX_BYTES => serde_json::to_string(&error_entry(input, e)),
                    Err(e) => serde_json::to_string(&error_entry_of(Map::from_iter([("index".to_owned(), json!(i))]), e)),
                };
                text.and_then(serde_json::value::RawValue::from_string)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::Internal(format!("serialize bulk response: {e}")))
    };
    let mut entries = render(true)?;
    if entries.iter().map(|e| e.get().len() + 1).sum::<usize>() > ECHO_BUDGET_BYTES {
        entries = render(false)?;
    }
    let mut response = json_response(200, &entries)?;
    if unfinished {
        // Some entries are 5xx (busy, out of time): the key's answer is not
        // kept, so the same request sent again with the same key finishes
        // them — and finds the entries done here by their derived ids.
        response.extensions_mut().insert(crate::idempotency::Unfinished);
    }
    Ok(response)
}

/// `POST /work-period-payments/bulk`
pub async fn post_payments_bulk_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let inputs = bulk_items(&req)?;
    let parsed = inputs
        .iter()
        .map(|v| item_of::<PaymentInput>(v).and_then(validate_new_payment))
        .collect();
    let results = create_payments(&app.db, &who.sub, &RequestIds::of(&req), deadline(&app), &app.clock, parsed).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    tracing::info!(items = inputs.len(), created, "bulk payments");
    bulk_response(&inputs, results)
}

/// `PATCH /work-period-payments/{id}`
pub async fn patch_payment_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let id = id_param(&req, "id")?;
    let change = validate_change(&who, json_body(&req)?)?;
    let mut results = update_payments(&app.db, &who.sub, &RequestIds::of(&req), deadline(&app), &app.clock, vec![Ok((id, change))]).await;
    let payment = results
        .pop()
        .unwrap_or_else(|| Err(ApiError::Internal("no result".into())))?;
    json_response(200, &PaymentOut::from(&payment))
}

/// `PATCH /work-period-payments/bulk`
pub async fn patch_payments_bulk_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let inputs = bulk_items(&req)?;
    let parsed = inputs
        .iter()
        .map(|v| {
            // The fields as their own text: the rest is parsed as sent.
            let mut fields: std::collections::BTreeMap<String, Box<RawValue>> = item_of(v)?;
            let id = match fields.remove("id").map(|raw| serde_json::from_str::<String>(raw.get())) {
                Some(Ok(id)) if valid_id(&id) => id,
                _ => {
                    return Err(ApiError::field(
                        "id",
                        "is required: 1 to 64 letters, digits, '-' or '_'",
                    ))
                }
            };
            let rest = serde_json::to_vec(&fields).map_err(|e| ApiError::Internal(format!("re-join a bulk entry: {e}")))?;
            let patch: PaymentPatch = parse_json(&rest)?;
            Ok((id, validate_change(&who, patch)?))
        })
        .collect();
    let results = update_payments(&app.db, &who.sub, &RequestIds::of(&req), deadline(&app), &app.clock, parsed).await;
    bulk_response(&inputs, results)
}

/// `GET /work-period-payments/{id}`
pub async fn get_payment_handler(app: App, req: Request) -> HandlerResult {
    let id = id_param(&req, "id")?;
    let p = get_payment(&app.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Payment {id} not found")))?;
    json_response(200, &PaymentOut::from(&p))
}

/// `GET /work-period-payments?workPeriodId=&status=&perPage=&next=`
pub async fn list_payments_handler(app: App, req: Request) -> HandlerResult {
    let q = parse_list_query(&req, &app.page_key)?;
    let scope = listing_scope(q.work_period_id.as_deref(), q.status);
    let (items, next) = list_payments(&app.db, q).await?;
    let next = match next {
        Some(cursor) => {
            let key = serde_json::to_string(&cursor).map_err(|e| ApiError::Internal(format!("page token: {e}")))?;
            Some(PageToken { scope, key }.encode(&app.page_key))
        }
        None => None,
    };
    // Serialised as itself, not through a `Value`: money keeps its two places.
    #[derive(serde::Serialize)]
    struct Page<'a> {
        items: Vec<PaymentOut<'a>>,
        next: Option<String>,
    }
    json_response(200, &Page { items: items.iter().map(PaymentOut::from).collect(), next })
}

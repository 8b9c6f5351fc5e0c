//! Payments over HTTP: each handler parses its request (a bulk body entry by
//! entry, each parsed once from its own text), applies the rules, calls the
//! store and answers; [`From<Refused>`] is the one place a payments refusal
//! becomes a status. A bulk answer has one entry per input: the payment, or
//! the input echoed beside its error.

use crate::telemetry::{self, metric};
use serde_json::{json, Map, Value};

use super::rules::*;
use super::rounds::*;
use super::store::*;
use crate::auth::SCOPE_ADMIN;
use crate::call::Call;
use crate::error::ApiError;
use crate::http::{json_response, parse_json, HandlerResult};
use crate::pagetoken::PageToken;
use crate::validate::ID;
use crate::App;

pub const SCOPE_PAYMENTS: &str = "payments";
pub const SCOPE_PROCESS: &str = "payments:process";
/// The most entries one bulk request may hold.
pub const MAX_BULK: usize = 1000;

impl From<Refused> for ApiError {
    fn from(err: Refused) -> Self {
        let message = err.to_string();
        match err {
            Refused::NothingToChange | Refused::NotStarted(_) => ApiError::bad_request(message),
            Refused::NotAllowed(_) => ApiError::Forbidden(message),
            Refused::WorkPeriodNotFound(_) | Refused::PaymentNotFound(_) => ApiError::NotFound(message),
            Refused::NoBillingAccount
            | Refused::NoMemberRate
            | Refused::NoUnpaidDays
            | Refused::WorkPeriodGone
            | Refused::CancelledIsFinal
            | Refused::AmountsLocked(_)
            | Refused::InProgressCancel
            | Refused::OnlyFailedReschedules(_)
            | Refused::Transition { .. }
            | Refused::NoDaysLeft
            | Refused::DaysBelowPaid(_) => ApiError::Conflict(message),
            // Transient: 503 with Retry-After, never stored as a key's answer.
            Refused::Busy => ApiError::Unavailable { retry_after_secs: 1 },
            Refused::Invalid(invalid) => invalid.into(),
            Refused::Store(cause) => ApiError::Internal(cause),
        }
    }
}

/// What the caller's scopes let them do to payments.
fn powers(call: &Call) -> Powers {
    let has = |s| call.caller.has_scope(s);
    Powers { edit: has(SCOPE_ADMIN) || has(SCOPE_PAYMENTS), process: has(SCOPE_PROCESS) }
}

/// When this request stops starting new rounds of payments.
fn deadline(app: &App) -> std::time::Instant {
    std::time::Instant::now() + app.work_budget
}

/// `PUT /work-periods/{id}`
pub async fn put_work_period_handler(app: App, call: Call) -> HandlerResult {
    let id = call.path_identifier("id", &ID)?;
    let wp = validate_work_period(id, call.body()?)?;
    let stored = put_work_period(&app.db, &wp).await?;
    json_response(200, &WorkPeriodOut::from(&stored))
}

/// `GET /work-periods/{id}`
pub async fn get_work_period_handler(app: App, call: Call) -> HandlerResult {
    let id = call.path_identifier("id", &ID)?;
    let wp = get_work_period(&app.db, &id).await.map_err(Refused::from)?.ok_or(Refused::WorkPeriodNotFound(id))?;
    json_response(200, &WorkPeriodOut::from(&wp))
}

/// `POST /work-period-payments`
pub async fn post_payment_handler(app: App, call: Call) -> HandlerResult {
    let input = validate_new_payment(call.body()?)?;
    let mut results = create_payments(&app.db, &call.caller.sub, &call.ids, deadline(&app), &app.clock, vec![Ok::<_, ApiError>(input)]).await;
    let payment = results.pop().unwrap_or_else(|| Err(ApiError::Internal("no result".into())))?;
    tracing::info!(payment_id = %payment.id, work_period_id = %payment.work_period_id, days = payment.days, "payment created");
    telemetry::count_by(metric::PAYMENTS_CREATED, "Status", payment.status.as_str(), 1);
    json_response(201, &payment)
}

/// `POST /work-period-payments/bulk`
pub async fn post_payments_bulk_handler(app: App, call: Call) -> HandlerResult {
    let inputs = call.entries()?;
    let parsed = inputs.iter().map(|v| entry_of::<PaymentInput>(v).and_then(|i| Ok(validate_new_payment(i)?))).collect();
    let results = create_payments(&app.db, &call.caller.sub, &call.ids, deadline(&app), &app.clock, parsed).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    for payment in results.iter().flatten() {
        telemetry::count_by(metric::PAYMENTS_CREATED, "Status", payment.status.as_str(), 1);
    }
    tracing::info!(items = inputs.len(), created, "bulk payments");
    bulk_response(&inputs, results)
}

/// `PATCH /work-period-payments/{id}`
pub async fn patch_payment_handler(app: App, call: Call) -> HandlerResult {
    let id = call.path_identifier("id", &ID)?;
    let patch: PaymentPatch = call.body()?;
    if patch.id.is_some() {
        return Err(ApiError::field("id", "is the path's; give it only in the entries of PATCH /work-period-payments/bulk"));
    }
    let change = validate_change(powers(&call), patch)?;
    let mut results = update_payments(&app.db, &call.caller.sub, &call.ids, deadline(&app), &app.clock, vec![Ok::<_, ApiError>((id, change))]).await;
    let payment = results.pop().unwrap_or_else(|| Err(ApiError::Internal("no result".into())))?;
    json_response(200, &payment)
}

/// `PATCH /work-period-payments/bulk`
pub async fn patch_payments_bulk_handler(app: App, call: Call) -> HandlerResult {
    let inputs = call.entries()?;
    let may = powers(&call);
    let parsed = inputs
        .iter()
        .map(|v| {
            let mut patch: PaymentPatch = entry_of(v)?;
            let id = match patch.id.take() {
                Some(id) if ID.accepts(&id) => id,
                _ => return Err(ApiError::field("id", "is required: 1 to 64 letters, digits, '-' or '_'")),
            };
            Ok((id, validate_change(may, patch)?))
        })
        .collect();
    let results = update_payments(&app.db, &call.caller.sub, &call.ids, deadline(&app), &app.clock, parsed).await;
    bulk_response(&inputs, results)
}

/// `GET /work-period-payments/{id}`
pub async fn get_payment_handler(app: App, call: Call) -> HandlerResult {
    let id = call.path_identifier("id", &ID)?;
    let p = get_payment(&app.db, &id).await.map_err(Refused::from)?.ok_or(Refused::PaymentNotFound(id))?;
    json_response(200, &p)
}

/// `GET /work-period-payments?workPeriodId=&status=&perPage=&next=`
pub async fn list_payments_handler(app: App, call: Call) -> HandlerResult {
    let work_period_id = call.query("workPeriodId");
    if let Some(id) = &work_period_id {
        ID.check(id).map_err(|rule| ApiError::field("workPeriodId", rule))?;
    }
    let status = match call.query("status") {
        None => None,
        Some(raw) => Some(PaymentStatus::parse(&raw).ok_or_else(|| ApiError::field("status", "is not a payment status"))?),
    };
    let per_page = match call.query("perPage") {
        None => 20,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::field("perPage", "must be an integer from 1 to 100"))?,
    };
    let listing = Listing { work_period_id, status };
    let scope = listing_scope(&listing);
    let after = call.query("next").map(|raw| decode_cursor(&app.page_key, &raw, &scope)).transpose()?;
    let (items, next) = list_payments(&app.db, &listing, per_page, after).await?;
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
        items: &'a [Payment],
        next: Option<String>,
    }
    json_response(200, &Page { items: &items, next })
}

// ---------------------------------------------------------------- listing tokens

/// The listing a page token belongs to: the query's filters.
fn listing_scope(listing: &Listing) -> String {
    format!("payments:{}:{}", listing.work_period_id.as_deref().unwrap_or(""), listing.status.map(PaymentStatus::as_str).unwrap_or(""))
}

/// `next` of a listing: the cursor, signed ([`PageToken`]) and bound to the
/// listing's filters, so a tampered or foreign token is 400, never a Query.
fn decode_cursor(page_key: &[u8], raw: &str, scope: &str) -> Result<Cursor, ApiError> {
    let token = PageToken::decode(page_key, raw, scope)?;
    let cursor: Cursor = serde_json::from_str(&token.key).map_err(|_| crate::pagetoken::foreign())?;
    if !ID.accepts(&cursor.id) || !cursor.sort.ends_with(&format!("#{}", cursor.id)) {
        return Err(crate::pagetoken::foreign());
    }
    Ok(cursor)
}

// ---------------------------------------------------------------- bulk answers

/// One bulk entry, parsed from its own text (never re-serialised).
fn entry_of<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    if !raw.trim_start().starts_with('{') {
        return Err(ApiError::field("body", "each entry must be a JSON object"));
    }
    parse_json(raw.as_bytes())
}

/// The input object echoed back with `error: {message, code}`.
fn error_entry(input: &str, err: &ApiError) -> Value {
    // Only an object of moderate size is echoed (callers check the size), so
    // reading it whole costs little; anything else echoes no fields.
    let entry = serde_json::from_str::<Map<String, Value>>(input).unwrap_or_default();
    error_entry_of(entry, err)
}

/// The largest bulk entry echoed beside its error; a larger one is answered
/// by its position (`index`) alone.
pub const ECHO_ENTRY_MAX_BYTES: usize = 16 * 1024;

fn error_entry_of(mut entry: Map<String, Value>, err: &ApiError) -> Value {
    entry.insert("error".into(), serde_json::to_value(err.body().error).unwrap_or(Value::Null));
    Value::Object(entry)
}

/// The largest bulk answer that echoes failed inputs: Lambda's response
/// limit is 6 MB for the whole invocation answer, in which the body is a
/// JSON string (quotes escaped), so a body past this answers failed entries
/// by their position instead: `{"index": i, "error": {...}}`.
pub const ECHO_BUDGET_BYTES: usize = 4 * 1024 * 1024;

/// One entry per input. Entries are kept as raw JSON so that money keeps its
/// two places (a `serde_json::Value` would turn `120.00` into `120.0`).
fn bulk_response(inputs: &[&str], results: Vec<Result<Payment, ApiError>>) -> HandlerResult {
    let unfinished = results.iter().any(|r| matches!(r, Err(e) if e.status() >= 500));
    let render = |echo: bool| {
        inputs
            .iter()
            .zip(&results)
            .enumerate()
            .map(|(i, (input, r))| {
                let text = match r {
                    Ok(p) => serde_json::to_string(p),
                    Err(e) if echo && input.len() <= ECHO_ENTRY_MAX_BYTES => serde_json::to_string(&error_entry(input, e)),
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

//! Ferry: bulk migration of an acquired brand's subscriptions (SPEC §6; the
//! seed's Ferry API): rules and handlers. Layout: `model.rs` (domain, wire,
//! the domain-name rule, items), `store.rs` (DynamoDB), this file.
//!
//! A request is checked whole first (JSON shape, the 1000 limit, the
//! customer's reference id); then each subscription on its own, in request
//! order, exactly as the seed's "Process" says, and answered in the seed's
//! FerryResponse: one message per subscription.

pub mod model;
pub mod store;

use std::collections::{BTreeSet, HashMap};

use lambda_http::Request;
use serde_json::json;

use self::model::*;
use self::store::*;
use crate::error::{ApiError, FieldError};
use crate::http::{json_body, json_response, path_param, query_param, HandlerResult};
use crate::pagetoken::{foreign, PageToken};
use crate::validate::{check_text, format_timestamp, parse_date};
use crate::App;

pub const PAGE_SIZE: usize = 100;

// ---------------------------------------------------------------- validation

/// A product slug or customer id: 1–64 letters, digits, `.`, `-` or `_`.
pub fn valid_id(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

const ID_RULE: &str = "must be 1 to 64 letters, digits, '.', '-' or '_'";

fn id_param(req: &Request, name: &str) -> Result<String, ApiError> {
    let id = path_param(req, name)?;
    if valid_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::field(name, ID_RULE))
    }
}

fn period(errors: &mut Vec<FieldError>, field: String, v: i64) -> u32 {
    if !(1..=MAX_PERIOD_MONTHS).contains(&v) {
        errors.push(FieldError::new(field, format!("must be a whole number of months from 1 to {MAX_PERIOD_MONTHS}")));
        return 0;
    }
    v as u32
}

pub fn validate_product(slug: String, input: ProductInput) -> Result<Product, ApiError> {
    let mut errors = Vec::new();
    if !GROUPS.contains(&input.group.as_str()) {
        errors.push(FieldError::new("group", format!("must be one of {}", GROUPS.join(", "))));
    }
    let name = check_text(&input.name, MAX_TEXT).unwrap_or_else(|m| {
        errors.push(FieldError::new("name", m));
        String::new()
    });
    if input.prices.len() > MAX_PRICES {
        errors.push(FieldError::new("prices", format!("must list at most {MAX_PRICES} prices")));
    }
    let mut seen = BTreeSet::new();
    for (i, p) in input.prices.iter().enumerate() {
        if errors.len() >= crate::error::MAX_DETAILS {
            break; // enough to fix first; the rest is not read
        }
        period(&mut errors, format!("prices[{i}].contract_period"), p.contract_period.into());
        period(&mut errors, format!("prices[{i}].billing_period"), p.billing_period.into());
        if p.billing_period > p.contract_period {
            errors.push(FieldError::new(format!("prices[{i}].billing_period"), "must not exceed contract_period"));
        }
        if !seen.insert((p.contract_period, p.billing_period)) {
            errors.push(FieldError::new(format!("prices[{i}]"), "repeats an earlier contract_period + billing_period"));
        }
    }
    if errors.is_empty() {
        Ok(Product { slug, group: input.group, name, prices: input.prices })
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// Whole-request checks of a migration: text bounds (a 400 naming the field),
/// then the 1000 limit (413).
pub fn check_request(reference_customer_id: &str, items: &[(&'static str, PlaceholderInput)]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Err(m) = check_text(reference_customer_id, MAX_TEXT) {
        errors.push(FieldError::new("reference_customer_id", m));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (group, item) in items {
        if errors.len() >= crate::error::MAX_DETAILS {
            break; // enough to fix first; the rest is not read
        }
        let i = index.entry(group).or_default();
        let field = |name: &str| format!("subscriptions.{group}[{i}].{name}");
        for (name, value, max) in [
            ("slug", item.slug.as_str(), MAX_TEXT),
            ("reference_subscription_id", item.reference_subscription_id.as_str(), MAX_TEXT),
            ("reference_product_id", item.reference_product_id.as_str(), MAX_TEXT),
        ] {
            if value.is_empty() || value.chars().count() > max {
                errors.push(FieldError::new(field(name), format!("must be 1 to {max} characters")));
            } else if !crate::validate::fits_key(value) {
                // Both reference ids make one partition key (≤ 2048 bytes).
                let limit = crate::validate::KEY_PART_MAX_BYTES;
                errors.push(FieldError::new(field(name), format!("must be at most {limit} bytes in UTF-8")));
            }
        }
        if item.internal_comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
            errors.push(FieldError::new(field("internal_comment"), format!("must be at most {MAX_COMMENT} characters")));
        }
        for (name, v) in [("contract_period", item.contract_period), ("billing_period", item.billing_period)] {
            if !(1..=MAX_PERIOD_MONTHS).contains(&v) {
                errors.push(FieldError::new(field(name), format!("must be a whole number of months from 1 to {MAX_PERIOD_MONTHS}")));
            }
        }
        *i += 1;
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    if items.len() > MAX_SUBSCRIPTIONS {
        return Err(ApiError::PayloadTooLarge(format!(
            "The request has {} subscriptions; at most {MAX_SUBSCRIPTIONS} are accepted in one request",
            items.len()
        )));
    }
    Ok(())
}

/// The seed's per-subscription validation, in its order. `Err` is the
/// sentence a migration engineer reads.
fn plan_one(
    group: &'static str,
    item: &PlaceholderInput,
    products: &HashMap<String, Product>,
) -> Result<(Option<String>, Option<String>), String> {
    let product = products.get(&item.slug).ok_or_else(|| format!("No product with slug {:?} exists; register it first (PUT /ferry/products/{{slug}})", item.slug))?;
    if product.group != group {
        return Err(format!("Product {:?} is in group {}, not {group}; list the subscription under {}", item.slug, product.group, product.group));
    }
    let (contract, billing) = (item.contract_period as u32, item.billing_period as u32);
    if billing > contract {
        return Err(format!("billing_period {billing} exceeds contract_period {contract}; a subscription cannot be billed beyond its contract"));
    }
    if product.price_for(contract, billing).is_none() {
        let offered: Vec<String> = product.prices.iter().map(|p| format!("{}/{}", p.contract_period, p.billing_period)).collect();
        return Err(format!(
            "Product {:?} has no prolongation price for contract_period {contract} with billing_period {billing} (it has: {})",
            item.slug,
            if offered.is_empty() { "none".to_owned() } else { offered.join(", ") }
        ));
    }
    check_alone(group, item)
}

/// What a subscription must satisfy whatever the catalogue holds — billing
/// within the contract, real dates, for domain extensions a registrable ICANN
/// domain whose suffix is the extension — and the domain and extension it
/// gets. The migration checks it after the product; `allotment import`
/// checks it locally, so a file's bad lines are the API's bad lines.
pub fn check_alone(group: &str, item: &PlaceholderInput) -> Result<(Option<String>, Option<String>), String> {
    let (contract, billing) = (item.contract_period as u32, item.billing_period as u32);
    if billing > contract {
        return Err(format!("billing_period {billing} exceeds contract_period {contract}; a subscription cannot be billed beyond its contract"));
    }
    for (name, value) in [("start_date", &item.start_date), ("next_contract_date", &item.next_contract_date), ("next_billing_date", &item.next_billing_date)] {
        parse_date(value).map_err(|m| format!("{name} {m}"))?;
    }
    if group != EXTENSION_GROUP {
        return Ok((item.domain.clone(), item.extension.clone()));
    }
    let raw_domain = item.domain.as_deref().unwrap_or_default();
    let registrable = registrable_domain(raw_domain).map_err(|m| format!("The domain is not valid: {m}"))?;
    let extension = item.extension.as_deref().unwrap_or_default();
    let extension_norm = normalize_name(extension.strip_prefix('.').unwrap_or(extension));
    if extension_norm.as_deref() != Some(registrable.suffix.as_str()) {
        return Err(format!("extension {extension:?} does not match the domain's public suffix {:?}", registrable.suffix));
    }
    Ok((Some(registrable.domain), Some(registrable.suffix)))
}

fn pair_params(item: &PlaceholderInput, group: &str) -> Vec<Param> {
    vec![
        Param { key: "reference_subscription_id", value: item.reference_subscription_id.clone() },
        Param { key: "reference_product_id", value: item.reference_product_id.clone() },
        Param { key: "group", value: group.to_owned() },
    ]
}

// ---------------------------------------------------------------- the migration

/// Processes a checked request for `customer`: each subscription on its own,
/// one message each. Retries running out is the whole request's 503.
/// Each new subscription's id is `ids.id("subscription", position)`: with an
/// Idempotency-Key, a re-run of the same request (its function cut off, its
/// answer lost) finds the pairs its first run migrated under the very ids it
/// would give them, and reports them as created, not as someone else's.
pub async fn migrate(
    app: &App,
    customer: &Customer,
    items: Vec<(&'static str, PlaceholderInput)>,
    ids: &crate::idempotency::RequestIds,
) -> Result<(FerryResponse, bool), ApiError> {
    let db = &app.db;
    let slugs: BTreeSet<String> = items.iter().map(|(_, i)| i.slug.clone()).collect();
    let pairs: BTreeSet<(String, String)> =
        items.iter().map(|(_, i)| (i.reference_subscription_id.clone(), i.reference_product_id.clone())).collect();
    let products = get_products(db, &slugs).await?;
    let links = existing_subscriptions(db, &pairs).await?;

    enum Outcome {
        Failure(String, Option<String>),
        Pending(Subscription),
        /// Migrated by an earlier run of this same request, under the id
        /// this position derives from its Idempotency-Key.
        Mine(String),
    }
    let created_at = format_timestamp(app.clock.now());
    let mut seen = BTreeSet::new();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut to_write = Vec::new();
    for (position, (group, item)) in items.iter().enumerate() {
        let pair = (item.reference_subscription_id.clone(), item.reference_product_id.clone());
        let id = ids.id("subscription", position);
        let outcome = if links.get(&pair) == Some(&id) && seen.insert(pair.clone()) {
            Outcome::Mine(id)
        } else if let Some(existing) = links.get(&pair).filter(|existing| **existing != id) {
            Outcome::Failure(
                format!("Reference subscription {} (product {}) was already migrated as subscription {existing}; skipped", pair.0, pair.1),
                Some(existing.clone()),
            )
        } else if !seen.insert(pair.clone()) {
            Outcome::Failure(format!("Reference subscription {} (product {}) appears earlier in this request; skipped", pair.0, pair.1), None)
        } else {
            match plan_one(group, item, &products) {
                Err(m) => Outcome::Failure(m, None),
                Ok((domain, extension)) => {
                    let technical = placeholder_type(group).map(|kind| TechnicalSubscription {
                        kind: kind.to_owned(),
                        provider: "placeholder".to_owned(),
                        domain: if kind == "domain" { domain.clone() } else { None },
                    });
                    let s = Subscription {
                        id,
                        customer: customer.customer.clone(),
                        group: (*group).to_owned(),
                        slug: item.slug.clone(),
                        contract_period: item.contract_period as u32,
                        billing_period: item.billing_period as u32,
                        start_date: item.start_date.clone(),
                        next_contract_date: item.next_contract_date.clone(),
                        next_billing_date: item.next_billing_date.clone(),
                        reference_subscription_id: pair.0.clone(),
                        reference_product_id: pair.1.clone(),
                        domain,
                        extension,
                        internal_comment: item.internal_comment.clone(),
                        technical_status: if *group == EXTENSION_GROUP { "ACTIVE" } else { "OK" }.to_owned(),
                        technical_subscription: technical,
                        created_at: created_at.clone(),
                    };
                    to_write.push(NewSubscription { position, subscription: s.clone() });
                    Outcome::Pending(s)
                }
            }
        };
        outcomes.push(outcome);
    }
    let written = create_subscriptions(db, to_write, std::time::Instant::now() + app.work_budget).await?;

    let base = vec![
        Param { key: "customer", value: customer.customer.clone() },
        Param { key: "reference_customer_id", value: customer.reference_customer_id.clone() },
    ];
    let mut response = FerryResponse::default();
    let unfinished = written.values().any(|w| *w == Written::NotStarted);
    for (position, outcome) in outcomes.into_iter().enumerate() {
        let (group, item) = &items[position];
        let mut parameters = pair_params(item, group);
        match outcome {
            Outcome::Mine(id) => {
                parameters.push(Param { key: "subscription_id", value: id.clone() });
                response.success.push(Message {
                    message: format!(
                        "Subscription {id} was created for reference subscription {} (product {})",
                        item.reference_subscription_id, item.reference_product_id
                    ),
                    parameters,
                    base_parameters: base.clone(),
                });
            }
            Outcome::Pending(s)
                if matches!(written.get(&position), Some(Written::Created))
                    || matches!(written.get(&position), Some(Written::Taken(id)) if *id == s.id) =>
            {
                parameters.push(Param { key: "subscription_id", value: s.id.clone() });
                response.success.push(Message {
                    message: format!(
                        "Subscription {} was created for reference subscription {} (product {})",
                        s.id, s.reference_subscription_id, s.reference_product_id
                    ),
                    parameters,
                    base_parameters: base.clone(),
                });
            }
            Outcome::Pending(s) if matches!(written.get(&position), Some(Written::NotStarted)) => {
                response.failures.push(Message {
                    message: format!(
                        "Reference subscription {} (product {}) was not migrated: this request's time budget was spent; post it again",
                        s.reference_subscription_id, s.reference_product_id
                    ),
                    parameters,
                    base_parameters: base.clone(),
                });
            }
            Outcome::Pending(s) => {
                let pair = (s.reference_subscription_id.clone(), s.reference_product_id.clone());
                let existing = match written.get(&position) {
                    Some(Written::Taken(id)) => id.clone(),
                    _ => String::new(),
                };
                parameters.push(Param { key: "subscription_id", value: existing.clone() });
                response.failures.push(Message {
                    message: format!(
                        "Reference subscription {} (product {}) was migrated by a concurrent request as subscription {existing}; skipped",
                        pair.0, pair.1
                    ),
                    parameters,
                    base_parameters: base.clone(),
                });
            }
            Outcome::Failure(message, existing) => {
                if let Some(id) = existing {
                    parameters.push(Param { key: "subscription_id", value: id });
                }
                response.failures.push(Message { message, parameters, base_parameters: base.clone() });
            }
        }
    }
    Ok((response, unfinished))
}

// ---------------------------------------------------------------- handlers


/// `PUT /ferry/products/{slug}`
pub async fn put_product_handler(app: App, req: Request) -> HandlerResult {
    let slug = id_param(&req, "slug")?;
    let product = validate_product(slug, json_body(&req)?)?;
    put_product(&app.db, &product).await?;
    json_response(200, &product)
}

/// `PUT /ferry/customers/{customer}`: the seed's MigratedCustomer.
pub async fn put_customer_handler(app: App, req: Request) -> HandlerResult {
    let customer = id_param(&req, "customer")?;
    let input: CustomerInput = json_body(&req)?;
    check_text(&input.reference_customer_id, MAX_TEXT).map_err(|m| ApiError::field("reference_customer_id", m))?;
    let c = Customer { customer, reference_customer_id: input.reference_customer_id };
    put_customer(&app.db, &c).await?;
    json_response(200, &c)
}

/// `POST /ferry/customers/{customer}/subscriptions`
pub async fn post_subscriptions_handler(app: App, req: Request) -> HandlerResult {
    let customer_id = id_param(&req, "customer")?;
    let MigrationRequest { reference_customer_id, subscriptions } = json_body(&req)?;
    let items = subscriptions.into_items();
    check_request(&reference_customer_id, &items)?;
    let customer = get_customer(&app.db, &customer_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Customer {customer_id} is not being migrated; register it with PUT /ferry/customers/{customer_id}")))?;
    if customer.reference_customer_id != reference_customer_id {
        return Err(ApiError::Conflict(format!(
            "reference_customer_id {reference_customer_id:?} does not match the one registered for customer {customer_id}"
        )));
    }
    let count = items.len();
    let (response, unfinished) = migrate(&app, &customer, items, &crate::idempotency::RequestIds::of(&req)).await?;
    tracing::info!(customer = %customer_id, subscriptions = count, created = response.success.len(), "ferry migration");
    let mut answer = json_response(200, &response)?;
    if unfinished {
        // Left for lack of time: not kept as the key's answer (see idempotency::Unfinished).
        answer.extensions_mut().insert(crate::idempotency::Unfinished);
    }
    Ok(answer)
}

/// `GET /ferry/customers/{customer}/subscriptions?next=`
pub async fn list_subscriptions_handler(app: App, req: Request) -> HandlerResult {
    let customer = id_param(&req, "customer")?;
    let next = query_param(&req, "next").map(|raw| PageToken::decode(&app.page_key, &raw, &format!("ferry:{customer}"))).transpose()?;
    // Even a token signed with a guessed key names only a key DynamoDB takes
    // (`<sort key>|<table key>`, within the key limits), or it is 400.
    if let Some(t) = &next {
        let fits = t.key.split_once('|').is_some_and(|(sk, pk)| !sk.is_empty() && sk.len() <= 1024 && !pk.is_empty() && pk.len() <= 2048);
        if !fits {
            return Err(foreign());
        }
    }
    let after = match &next {
        Some(t) if !t.key.contains('|') => return Err(foreign()),
        Some(t) => Some(t.key.as_str()),
        None => None,
    };
    let (items, more) = list_subscriptions(&app.db, &customer, after, PAGE_SIZE).await?;
    // Subscriptions exist only for a registered customer, and customers are
    // never removed: the customer is read only when there is nothing to show.
    if items.is_empty() && get_customer(&app.db, &customer).await?.is_none() {
        return Err(ApiError::NotFound(format!("Customer {customer} is not being migrated")));
    }
    let next = match (more, items.last()) {
        (true, Some((cursor, _))) => Some(PageToken { scope: format!("ferry:{customer}"), key: cursor.clone() }.encode(&app.page_key)),
        _ => None,
    };
    let subs: Vec<&Subscription> = items.iter().map(|(_, s)| s).collect();
    json_response(200, &json!({"items": subs, "next": next}))
}

//! Ferry (subscription migration): the domain's types — the seed's wire
//! shapes among them — and its rules: what a product, a customer and a
//! subscription must be, the domain-name rule, how a migration request is
//! planned subscription by subscription, and the seed's FerryResponse made
//! from what was written. Pure: no DynamoDB, no HTTP.
//!
//! A request is checked whole first (JSON shape, the 1000 limit, the
//! customer's reference id); then each subscription on its own, in request
//! order, exactly as the seed's "Process" says, and answered in the seed's
//! FerryResponse: one message per subscription.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::db::DbError;
use crate::error::{FieldError, Invalid};
use crate::money::Money;
use crate::validate::{check_text, domain_name, parse_date};

pub const MAX_SUBSCRIPTIONS: usize = 1000;
pub const MAX_PERIOD_MONTHS: i64 = 1200;
pub const MAX_PRICES: usize = 100;
pub const MAX_TEXT: usize = 255;
pub const MAX_COMMENT: usize = 10_000;

/// The seed's nine product groups, in its order.
pub const GROUPS: [&str; 9] = [
    "domain_extensions",
    "hosting",
    "ssl",
    "reseller-discount",
    "manual-subscription",
    "dns",
    "other",
    "server",
    "domein-uitbreiding",
];

/// The group whose subscriptions are domain names (`technical_status` ACTIVE).
pub const EXTENSION_GROUP: &str = "domain_extensions";

/// The placeholder technical subscription a group's products get, if any.
pub fn placeholder_type(group: &str) -> Option<&'static str> {
    match group {
        EXTENSION_GROUP => Some("domain"),
        "ssl" => Some("ssl"),
        "hosting" => Some("hosting"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub contract_period: u32,
    pub billing_period: u32,
    pub price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub slug: String,
    pub group: String,
    pub name: String,
    pub prices: Vec<Price>,
}

impl Product {
    pub fn price_for(&self, contract_period: u32, billing_period: u32) -> Option<&Price> {
        self.prices.iter().find(|p| p.contract_period == contract_period && p.billing_period == billing_period)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer: String,
    pub reference_customer_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TechnicalSubscription {
    #[serde(rename = "type")]
    pub kind: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub group: String,
    pub slug: String,
    pub contract_period: u32,
    pub billing_period: u32,
    pub start_date: String,
    pub next_contract_date: String,
    pub next_billing_date: String,
    pub reference_subscription_id: String,
    pub reference_product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_comment: Option<String>,
    pub technical_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technical_subscription: Option<TechnicalSubscription>,
    pub created_at: String,
}

// ---------------------------------------------------------------- wire DTOs

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    pub group: String,
    pub name: String,
    pub prices: Vec<Price>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    pub reference_customer_id: String,
}

/// The seed's request: `reference_customer_id` and the subscriptions
/// grouped by product group (an unknown group is an unknown field: 400).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationRequest {
    pub reference_customer_id: String,
    pub subscriptions: Groups,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Groups {
    #[serde(default)]
    pub domain_extensions: Vec<PlaceholderInput>,
    #[serde(default)]
    pub hosting: Vec<PlaceholderInput>,
    #[serde(default)]
    pub ssl: Vec<PlaceholderInput>,
    #[serde(default, rename = "reseller-discount")]
    pub reseller_discount: Vec<PlaceholderInput>,
    #[serde(default, rename = "manual-subscription")]
    pub manual_subscription: Vec<PlaceholderInput>,
    #[serde(default)]
    pub dns: Vec<PlaceholderInput>,
    #[serde(default)]
    pub other: Vec<PlaceholderInput>,
    #[serde(default)]
    pub server: Vec<PlaceholderInput>,
    #[serde(default, rename = "domein-uitbreiding")]
    pub domein_uitbreiding: Vec<PlaceholderInput>,
}

impl Groups {
    /// Every subscription with its group, in the seed's group order, each
    /// group in request order.
    pub fn into_items(self) -> Vec<(&'static str, PlaceholderInput)> {
        let mut out: Vec<(&'static str, PlaceholderInput)> =
            self.domain_extensions.into_iter().map(|e| (EXTENSION_GROUP, e)).collect();
        for (group, items) in [
            ("hosting", self.hosting),
            ("ssl", self.ssl),
            ("reseller-discount", self.reseller_discount),
            ("manual-subscription", self.manual_subscription),
            ("dns", self.dns),
            ("other", self.other),
            ("server", self.server),
            ("domein-uitbreiding", self.domein_uitbreiding),
        ] {
            out.extend(items.into_iter().map(|i| (group, i)));
        }
        out
    }
}

/// The seed's `PlaceholderSubscription`, and its `domain_extensions` item,
/// which must have `domain` and `extension` ([`check_request`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderInput {
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub domain: Option<String>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub extension: Option<String>,
    pub slug: String,
    pub contract_period: i64,
    pub billing_period: i64,
    pub start_date: String,
    pub next_contract_date: String,
    pub next_billing_date: String,
    pub reference_subscription_id: String,
    pub reference_product_id: String,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub internal_comment: Option<String>,
}

/// The seed's FerryResponseMessageParameter.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub key: &'static str,
    pub value: String,
}

/// The seed's FerryResponseMessage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub message: String,
    pub parameters: Vec<Param>,
    pub base_parameters: Vec<Param>,
}

/// The seed's FerryResponseSchema.
#[derive(Debug, Default, Serialize)]
pub struct FerryResponse {
    pub success: Vec<Message>,
    pub failures: Vec<Message>,
}

// ---------------------------------------------------------------- domain names

/// A domain and the ICANN public suffix it sits directly under, both in
/// lower-case ASCII (IDNs as punycode), without a trailing dot.
#[derive(Debug, PartialEq, Eq)]
pub struct RegistrableDomain {
    pub domain: String,
    pub suffix: String,
}

/// `raw` if it is a registrable domain directly under an ICANN public
/// suffix: not a suffix itself, not under a private-section suffix (such as
/// github.io), not a subdomain of a registrable domain. Wildcard rules and
/// their exceptions (`*.ck`, `!www.ck`) are the list's.
pub fn registrable_domain(raw: &str) -> Result<RegistrableDomain, String> {
    let domain = domain_name(raw).ok_or_else(|| format!("{raw:?} is not a domain name"))?;
    let suffix = psl::suffix(domain.as_bytes()).ok_or_else(|| format!("{domain} has no public suffix"))?;
    let suffix_str = String::from_utf8_lossy(suffix.as_bytes()).into_owned();
    if !suffix.is_known() {
        return Err(format!("{suffix_str} is not a public suffix (TLD) ICANN delegates"));
    }
    if suffix.typ() != Some(psl::Type::Icann) {
        return Err(format!("{domain} is under {suffix_str}, a privately run suffix, not an ICANN one"));
    }
    match psl::domain(domain.as_bytes()) {
        None => Err(format!("{domain} is itself a public suffix, not a registrable domain")),
        Some(d) if d.as_bytes() != domain.as_bytes() => Err(format!(
            "{domain} is a subdomain of {}; give the registrable domain",
            String::from_utf8_lossy(d.as_bytes())
        )),
        Some(_) => Ok(RegistrableDomain { domain, suffix: suffix_str }),
    }
}

// ---------------------------------------------------------------- validation

fn period(errors: &mut Vec<FieldError>, field: String, v: i64) -> u32 {
    if !(1..=MAX_PERIOD_MONTHS).contains(&v) {
        errors.push(FieldError::new(field, format!("must be a whole number of months from 1 to {MAX_PERIOD_MONTHS}")));
        return 0;
    }
    v as u32
}

pub fn validate_product(slug: String, input: ProductInput) -> Result<Product, Invalid> {
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
    Invalid::check(errors)?;
    Ok(Product { slug, group: input.group, name, prices: input.prices })
}

/// Whole-request checks of a migration: text bounds, a 400 naming each field
/// (the 1000 limit is the handler's, a 413).
pub fn check_request(reference_customer_id: &str, items: &[(&'static str, PlaceholderInput)]) -> Result<(), Invalid> {
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
        if *group == EXTENSION_GROUP {
            for (name, value) in [("domain", &item.domain), ("extension", &item.extension)] {
                if value.is_none() {
                    errors.push(FieldError::new(field(name), "is required for domain_extensions"));
                }
            }
        }
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
    Invalid::check(errors)
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
    let extension_norm = domain_name(extension.strip_prefix('.').unwrap_or(extension));
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

/// What planning decided for one subscription of a request.
pub enum Outcome {
    /// Not migrated, for this reason (and the subscription that holds its pair, if any).
    Failure(String, Option<String>),
    /// To be written.
    Pending(Subscription),
    /// Migrated by an earlier run of this same request, under the id this
    /// position derives from its Idempotency-Key.
    Mine(String),
}

/// What writing one subscription did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    /// Its reference pair was migrated by another request meanwhile, as this subscription id.
    Taken(String),
    /// Not started: the request's time budget was spent (post it again).
    NotStarted,
}

/// Plans every subscription of a checked request for `customer`, in request
/// order: a pair already migrated (`links`: pair → subscription id) is this
/// request's own if it holds the id this position would get (`id_of`), else
/// skipped; a pair given twice is skipped the second time; the rest go
/// through the seed's checks ([`plan_one`]) and become subscriptions created
/// at `created_at`.
pub fn plan_migration(
    customer: &Customer,
    items: &[(&'static str, PlaceholderInput)],
    products: &HashMap<String, Product>,
    links: &HashMap<(String, String), String>,
    id_of: impl Fn(usize) -> String,
    created_at: &str,
) -> Vec<Outcome> {
    let mut seen = BTreeSet::new();
    let mut outcomes = Vec::with_capacity(items.len());
    for (position, (group, item)) in items.iter().enumerate() {
        let pair = (item.reference_subscription_id.clone(), item.reference_product_id.clone());
        let id = id_of(position);
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
            match plan_one(group, item, products) {
                Err(m) => Outcome::Failure(m, None),
                Ok((domain, extension)) => Outcome::Pending(new_subscription(customer, group, item, id, domain, extension, created_at)),
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// The subscription (with its placeholder technical subscription) a checked item becomes.
fn new_subscription(
    customer: &Customer,
    group: &str,
    item: &PlaceholderInput,
    id: String,
    domain: Option<String>,
    extension: Option<String>,
    created_at: &str,
) -> Subscription {
    let technical = placeholder_type(group).map(|kind| TechnicalSubscription {
        kind: kind.to_owned(),
        provider: "placeholder".to_owned(),
        domain: if kind == "domain" { domain.clone() } else { None },
    });
    Subscription {
        id,
        customer: customer.customer.clone(),
        group: group.to_owned(),
        slug: item.slug.clone(),
        contract_period: item.contract_period as u32,
        billing_period: item.billing_period as u32,
        start_date: item.start_date.clone(),
        next_contract_date: item.next_contract_date.clone(),
        next_billing_date: item.next_billing_date.clone(),
        reference_subscription_id: item.reference_subscription_id.clone(),
        reference_product_id: item.reference_product_id.clone(),
        domain,
        extension,
        internal_comment: item.internal_comment.clone(),
        technical_status: if group == EXTENSION_GROUP { "ACTIVE" } else { "OK" }.to_owned(),
        technical_subscription: technical,
        created_at: created_at.to_owned(),
    }
}

/// The seed's FerryResponse: one message per subscription, from what was
/// planned and what its write did (by position); and whether any was left
/// for lack of time (then the answer is not kept as the key's answer).
pub fn report(
    customer: &Customer,
    items: &[(&'static str, PlaceholderInput)],
    outcomes: Vec<Outcome>,
    written: &HashMap<usize, Written>,
) -> (FerryResponse, bool) {
    let base = vec![
        Param { key: "customer", value: customer.customer.clone() },
        Param { key: "reference_customer_id", value: customer.reference_customer_id.clone() },
    ];
    let created = |id: &str, s: &str, p: &str| format!("Subscription {id} was created for reference subscription {s} (product {p})");
    let mut response = FerryResponse::default();
    let unfinished = written.values().any(|w| *w == Written::NotStarted);
    for (position, outcome) in outcomes.into_iter().enumerate() {
        let (group, item) = &items[position];
        let mut parameters = pair_params(item, group);
        let (success, message) = match (outcome, written.get(&position)) {
            (Outcome::Mine(id), _) => {
                let message = created(&id, &item.reference_subscription_id, &item.reference_product_id);
                parameters.push(Param { key: "subscription_id", value: id });
                (true, message)
            }
            (Outcome::Pending(s), Some(Written::Created)) => {
                parameters.push(Param { key: "subscription_id", value: s.id.clone() });
                (true, created(&s.id, &s.reference_subscription_id, &s.reference_product_id))
            }
            (Outcome::Pending(s), Some(Written::Taken(id))) if *id == s.id => {
                parameters.push(Param { key: "subscription_id", value: s.id.clone() });
                (true, created(&s.id, &s.reference_subscription_id, &s.reference_product_id))
            }
            (Outcome::Pending(s), Some(Written::NotStarted)) => (
                false,
                format!(
                    "Reference subscription {} (product {}) was not migrated: this request's time budget was spent; post it again",
                    s.reference_subscription_id, s.reference_product_id
                ),
            ),
            (Outcome::Pending(s), w) => {
                let existing = match w {
                    Some(Written::Taken(id)) => id.clone(),
                    _ => String::new(),
                };
                parameters.push(Param { key: "subscription_id", value: existing.clone() });
                let message = format!(
                    "Reference subscription {} (product {}) was migrated by a concurrent request as subscription {existing}; skipped",
                    s.reference_subscription_id, s.reference_product_id
                );
                (false, message)
            }
            (Outcome::Failure(message, existing), _) => {
                if let Some(id) = existing {
                    parameters.push(Param { key: "subscription_id", value: id });
                }
                (false, message)
            }
        };
        let entry = Message { message, parameters, base_parameters: base.clone() };
        if success {
            response.success.push(entry);
        } else {
            response.failures.push(entry);
        }
    }
    (response, unfinished)
}

// ---------------------------------------------------------------- refusals

/// Why a Ferry request is refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A migration for a customer nobody registered.
    #[error("Customer {0} is not being migrated; register it with PUT /ferry/customers/{0}")]
    NotRegistered(String),
    /// A listing of a customer nobody registered.
    #[error("Customer {0} is not being migrated")]
    NotMigrating(String),
    #[error("reference_customer_id {given:?} does not match the one registered for customer {customer}")]
    OtherReference { given: String, customer: String },
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] DbError),
}

/// The customer a migration names: registered, with the same reference id.
pub fn check_customer(customer_id: &str, reference_customer_id: &str, registered: Option<Customer>) -> Result<Customer, Refused> {
    let customer = registered.ok_or_else(|| Refused::NotRegistered(customer_id.to_owned()))?;
    if customer.reference_customer_id != reference_customer_id {
        return Err(Refused::OtherReference { given: reference_customer_id.to_owned(), customer: customer_id.to_owned() });
    }
    Ok(customer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains_directly_under_icann_suffixes() {
        let ok = |raw: &str, domain: &str, suffix: &str| {
            assert_eq!(
                registrable_domain(raw),
                Ok(RegistrableDomain { domain: domain.into(), suffix: suffix.into() }),
                "{raw}"
            )
        };
        ok("customer-domain.co.uk", "customer-domain.co.uk", "co.uk");
        ok("example.com", "example.com", "com");
        ok("EXAMPLE.Com", "example.com", "com");
        ok("example.com.", "example.com", "com");
        ok("bar.foo.ck", "bar.foo.ck", "foo.ck"); // *.ck: foo.ck is a suffix
        ok("www.ck", "www.ck", "ck"); // !www.ck: the exception is registrable
        ok("пример.рф", "xn--e1afmkfd.xn--p1ai", "xn--p1ai"); // an IDN TLD, as punycode
        ok("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai", "xn--p1ai");
        ok("city.kawasaki.jp", "city.kawasaki.jp", "kawasaki.jp");
        let bad = |raw: &str, why: &str| {
            let e = registrable_domain(raw).expect_err(raw);
            assert!(e.contains(why), "{raw}: {e}");
        };
        bad("co.uk", "itself a public suffix");
        bad("com", "itself a public suffix");
        bad("foo.ck", "itself a public suffix");
        bad("www.example.com", "subdomain of example.com");
        bad("foo.github.io", "privately run");
        bad("github.io", "privately run");
        bad("example.blogspot.com", "privately run");
        bad("example.notatld", "not a public suffix");
        bad("", "not a domain");
        bad("example..com", "not a domain");
        bad("exa mple.com", "not a domain");
        bad("example.com..", "not a domain");
    }
}

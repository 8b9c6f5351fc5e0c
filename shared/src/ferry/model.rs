//! Ferry (subscription migration): domain types, the seed's wire shapes, the
//! domain-name rule and item mapping.
//!
//! Key layout (one table, see template.yaml):
//! - product: `pk = FERRY#PRODUCT#<slug>`, `sk = PRODUCT`
//! - migrated customer: `pk = FERRY#CUSTOMER#<customer>`, `sk = CUSTOMER`
//! - subscription, keyed by its reference pair (the seed's MigratedSubscription
//!   link and the subscription are one item): `pk = FERRY#SUB#<n>:<reference_subscription_id>#<reference_product_id>`
//!   (`n` the length of the first id, so any two pairs give two keys), `sk = SUB`,
//!   with its placeholder technical subscription inside;
//!   `gsi1pk = FERRYCUST#<customer>`, `gsi1sk = <created_at>#<position>#<id>`.
//!
//! Creating it with one PutItem under `attribute_not_exists(pk)` is what makes
//! each pair migrate exactly once — no transaction, no second item: 1 write
//! unit and its listing-index entry, a quarter of a transaction writing link,
//! subscription and placeholder (bench: capacity table).

use serde::{Deserialize, Serialize};

pub use crate::db::{from_item, keyed, to_item};
use crate::db::{key, DbError, Item};
use crate::money::Money;

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
    pub domain_extensions: Vec<ExtensionInput>,
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
            self.domain_extensions.into_iter().map(|e| (EXTENSION_GROUP, e.into())).collect();
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

/// The seed's `domain_extensions` item: `domain` and `extension` required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionInput {
    pub domain: String,
    pub extension: String,
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

/// The seed's `PlaceholderSubscription` (every other group).
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

impl From<ExtensionInput> for PlaceholderInput {
    fn from(e: ExtensionInput) -> Self {
        Self {
            domain: Some(e.domain),
            extension: Some(e.extension),
            slug: e.slug,
            contract_period: e.contract_period,
            billing_period: e.billing_period,
            start_date: e.start_date,
            next_contract_date: e.next_contract_date,
            next_billing_date: e.next_billing_date,
            reference_subscription_id: e.reference_subscription_id,
            reference_product_id: e.reference_product_id,
            internal_comment: e.internal_comment,
        }
    }
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

/// Lower case, one trailing dot dropped, IDNs to punycode (UTS 46): the one
/// form domains and extensions are compared and stored in.
pub fn normalize_name(raw: &str) -> Option<String> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() || trimmed.ends_with('.') {
        return None;
    }
    let ascii = idna::domain_to_ascii_strict(trimmed).ok()?;
    (!ascii.is_empty() && ascii.len() <= 253 && ascii.split('.').all(|l| !l.is_empty() && l.len() <= 63)).then_some(ascii)
}

/// `raw` if it is a registrable domain directly under an ICANN public
/// suffix: not a suffix itself, not under a private-section suffix (such as
/// github.io), not a subdomain of a registrable domain. Wildcard rules and
/// their exceptions (`*.ck`, `!www.ck`) are the list's.
pub fn registrable_domain(raw: &str) -> Result<RegistrableDomain, String> {
    let domain = normalize_name(raw).ok_or_else(|| format!("{raw:?} is not a domain name"))?;
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

// ---------------------------------------------------------------- item mapping

pub fn product_key(slug: &str) -> Item {
    key(format!("FERRY#PRODUCT#{slug}"), "PRODUCT")
}

pub fn customer_key(customer: &str) -> Item {
    key(format!("FERRY#CUSTOMER#{customer}"), "CUSTOMER")
}

/// The key of the subscription a reference pair became; it encodes the pair
/// unambiguously.
pub fn subscription_key(reference_subscription_id: &str, reference_product_id: &str) -> Item {
    key(subscription_pk(reference_subscription_id, reference_product_id), "SUB")
}

pub fn subscription_pk(reference_subscription_id: &str, reference_product_id: &str) -> String {
    format!("FERRY#SUB#{}:{reference_subscription_id}#{reference_product_id}", reference_subscription_id.len())
}

pub fn by_customer_pk(customer: &str) -> String {
    format!("FERRYCUST#{customer}")
}


/// A product as stored: prices as exact decimal text (Money's serde form is
/// JSON-only).
#[derive(Serialize, Deserialize)]
struct ProductItem {
    slug: String,
    group: String,
    name: String,
    prices: Vec<(u32, u32, String)>,
}

pub fn product_to_item(p: &Product) -> Result<Item, DbError> {
    let prices = p.prices.iter().map(|x| (x.contract_period, x.billing_period, x.price.to_string())).collect();
    keyed(product_key(&p.slug), &ProductItem { slug: p.slug.clone(), group: p.group.clone(), name: p.name.clone(), prices })
}

pub fn product_from_item(item: Item) -> Result<Product, DbError> {
    let p: ProductItem = from_item(item)?;
    let prices = p
        .prices
        .into_iter()
        .map(|(contract_period, billing_period, price)| {
            Money::parse(&price)
                .map(|price| Price { contract_period, billing_period, price })
                .map_err(|m| DbError::Other(format!("stored product {}: price {m}", p.slug)))
        })
        .collect::<Result<_, _>>()?;
    Ok(Product { slug: p.slug, group: p.group, name: p.name, prices })
}

pub fn customer_to_item(c: &Customer) -> Result<Item, DbError> {
    keyed(customer_key(&c.customer), c)
}

/// The sort key of a customer's listing: creation time, then request position.
pub fn listing_sk(s: &Subscription, position: usize) -> String {
    format!("{}#{position:04}#{}", s.created_at, s.id)
}

pub fn subscription_to_item(s: &Subscription, position: usize) -> Result<Item, DbError> {
    let mut item = keyed(subscription_key(&s.reference_subscription_id, &s.reference_product_id), s)?;
    item.insert("gsi1pk".into(), crate::db::s(by_customer_pk(&s.customer)));
    item.insert("gsi1sk".into(), crate::db::s(listing_sk(s, position)));
    Ok(item)
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

    #[test]
    fn subscription_keys_never_collide() {
        assert_ne!(subscription_key("a#b", "c"), subscription_key("a", "b#c"));
        assert_eq!(subscription_key("domain-1234", ".nl-domain"), subscription_key("domain-1234", ".nl-domain"));
    }
}

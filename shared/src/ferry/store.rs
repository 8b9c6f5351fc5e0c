//! Ferry in DynamoDB: products, migrated customers, and subscriptions written
//! exactly once — each one a single item keyed by its reference pair, put
//! under `attribute_not_exists(pk)`, many at once.
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

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use serde::{Deserialize, Serialize};

use super::rules::*;
use crate::db::{all_ok, from_item, key, keyed, Db, DbError, Item, Partition, GSI1, GSI1_PK};
use crate::money::Money;

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

pub async fn put_product(db: &Db, p: &Product) -> Result<(), DbError> {
    db.put(product_to_item(p)?).await
}

pub async fn put_customer(db: &Db, c: &Customer) -> Result<(), DbError> {
    db.put(customer_to_item(c)?).await
}

pub async fn get_customer(db: &Db, customer: &str) -> Result<Option<Customer>, DbError> {
    db.get(customer_key(customer)).await?.map(from_item).transpose()
}

/// The products with these slugs that exist, by slug.
pub async fn get_products(db: &Db, slugs: &BTreeSet<String>) -> Result<HashMap<String, Product>, DbError> {
    let keys = slugs.iter().map(|s| product_key(s)).collect();
    db.batch_get(keys).await?.into_iter().map(|i| product_from_item(i).map(|p| (p.slug.clone(), p))).collect()
}

/// The subscriptions these reference pairs already became: pair → subscription
/// id. Read eventually consistent (half the capacity): a pair migrated a moment
/// ago and missed here is caught by the conditional put, which answers with it.
pub async fn existing_subscriptions(
    db: &Db,
    pairs: &BTreeSet<(String, String)>,
) -> Result<HashMap<(String, String), String>, DbError> {
    let keys = pairs.iter().map(|(s, p)| subscription_key(s, p)).collect();
    db.batch_get_eventual(keys)
        .await?
        .into_iter()
        .map(|i| from_item::<Subscription>(i).map(|s| ((s.reference_subscription_id, s.reference_product_id), s.id)))
        .collect()
}

/// A subscription ready to be written, with its position in the request.
pub struct NewSubscription {
    pub position: usize,
    pub subscription: Subscription,
}

/// Subscriptions a request writes whatever its budget, so every call progresses.
pub const AT_LEAST: usize = 200;

/// Writes every subscription: one conditional PutItem each, many at once. A
/// put that finds its pair taken answers with the subscription that took it.
/// Any other failure (retries exhausted) is the whole call's error: the caller
/// answers 503 and reports nothing as created; what did land is found by a
/// re-post and reported as already migrated.
/// Puts not started by `deadline` are left (at least [`AT_LEAST`] are made).
pub async fn create_subscriptions(
    db: &Db,
    subs: Vec<NewSubscription>,
    deadline: std::time::Instant,
) -> Result<HashMap<usize, Written>, DbError> {
    let items: Vec<(usize, usize, Item)> = subs
        .iter()
        .enumerate()
        .map(|(i, n)| subscription_to_item(&n.subscription, n.position).map(|item| (i, n.position, item)))
        .collect::<Result<_, _>>()?;
    let outcomes = db
        .for_each(crate::db::ITEM_CONCURRENCY, items, move |db, (i, position, item)| async move {
            if i >= AT_LEAST && std::time::Instant::now() >= deadline {
                return Ok((position, Written::NotStarted));
            }
            let written = match db.put_if_absent(item, "id").await? {
                None => Written::Created,
                Some(old) => match old.get("id") {
                    Some(AttributeValue::S(id)) => Written::Taken(id.clone()),
                    _ => Written::Taken(String::new()),
                },
            };
            Ok((position, written))
        })
        .await;
    Ok(all_ok(outcomes)?.into_iter().collect())
}

/// One page of a customer's subscriptions in creation order, after the
/// cursor `after`, and whether more follow. Each comes with its cursor:
/// `<listing sort key>|<table key>` (the sort key never holds a `|`).
pub async fn list_subscriptions(
    db: &Db,
    customer: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<(String, Subscription)>, bool), DbError> {
    let index_pk = by_customer_pk(customer);
    let partition = Partition::index(GSI1, GSI1_PK, &index_pk);
    let start = match after {
        None => None,
        Some(cursor) => {
            let (sk, pk) = cursor.split_once('|').ok_or_else(|| DbError::Other("malformed listing cursor".into()))?;
            let mut k = crate::db::key(pk, "SUB");
            k.insert("gsi1pk".into(), crate::db::s(&index_pk));
            k.insert("gsi1sk".into(), crate::db::s(sk));
            Some(k)
        }
    };
    let (items, more) = db.query_window(&partition, start, 0, limit).await?;
    let listed = items
        .into_iter()
        .map(|item| {
            let sk = match item.get("gsi1sk") {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            from_item::<Subscription>(item).map(|s| (format!("{sk}|{}", subscription_pk(&s.reference_subscription_id, &s.reference_product_id)), s))
        })
        .collect::<Result<_, _>>()?;
    Ok((listed, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_keys_never_collide() {
        assert_ne!(subscription_key("a#b", "c"), subscription_key("a", "b#c"));
        assert_eq!(subscription_key("domain-1234", ".nl-domain"), subscription_key("domain-1234", ".nl-domain"));
    }
}

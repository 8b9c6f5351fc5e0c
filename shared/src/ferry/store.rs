//! Ferry in DynamoDB: products, migrated customers, and subscriptions written
//! exactly once — each one's link (keyed by its reference pair, under
//! `attribute_not_exists`), subscription and placeholder in one transaction,
//! up to 33 subscriptions (≤ 100 actions) per TransactWriteItems.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::model::*;
use crate::db::{Db, DbError, Item, Partition, GSI1, GSI1_PK, TRANSACT_LIMIT};

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> DbError {
    DbError::Other(format!("build request: {e}"))
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

/// The links that exist for these reference pairs: pair → subscription id.
pub async fn existing_links(db: &Db, pairs: &BTreeSet<(String, String)>) -> Result<HashMap<(String, String), String>, DbError> {
    let keys = pairs.iter().map(|(s, p)| link_key(s, p)).collect();
    db.batch_get(keys)
        .await?
        .into_iter()
        .map(|i| from_item::<Link>(i).map(|l| ((l.reference_subscription_id, l.reference_product_id), l.subscription_id)))
        .collect()
}

/// A subscription ready to be written, with its position in the request.
pub struct NewSubscription {
    pub position: usize,
    pub subscription: Subscription,
}

/// What happened to one subscription.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    /// Its reference pair was migrated by another request meanwhile.
    Taken,
}

fn actions_of(db: &Db, n: &NewSubscription) -> Result<Vec<TransactWriteItem>, DbError> {
    let s = &n.subscription;
    let put = |item: Item, condition: Option<&str>| -> Result<TransactWriteItem, DbError> {
        let mut p = Put::builder().table_name(&*db.table).set_item(Some(item));
        if let Some(c) = condition {
            p = p.condition_expression(c);
        }
        Ok(TransactWriteItem::builder().put(p.build().map_err(build_err)?).build())
    };
    let mut actions = vec![
        put(link_to_item(s)?, Some("attribute_not_exists(pk)"))?,
        put(subscription_to_item(s, n.position)?, Some("attribute_not_exists(pk)"))?,
    ];
    if let Some(t) = &s.technical_subscription {
        actions.push(put(technical_to_item(s, t)?, Some("attribute_not_exists(pk)"))?);
    }
    Ok(actions)
}

/// Writes every subscription: transactions of up to 100 actions, several at
/// once; a transaction cancelled because some links exist already marks
/// those `Taken` and is sent again without them. Any other failure (retries
/// exhausted) is the whole call's error: the caller answers 503 and reports
/// nothing as created.
pub async fn create_subscriptions(db: &Db, subs: Vec<NewSubscription>) -> Result<HashMap<usize, Written>, DbError> {
    let mut out = HashMap::new();
    let mut pending: Vec<(NewSubscription, Vec<TransactWriteItem>)> =
        subs.into_iter().map(|s| actions_of(db, &s).map(|a| (s, a))).collect::<Result<_, _>>()?;
    while !pending.is_empty() {
        let mut chunks: Vec<Vec<(NewSubscription, Vec<TransactWriteItem>)>> = Vec::new();
        let mut in_last = 0;
        for entry in pending.drain(..) {
            if chunks.is_empty() || in_last + entry.1.len() > TRANSACT_LIMIT {
                chunks.push(Vec::new());
                in_last = 0;
            }
            in_last += entry.1.len();
            if let Some(last) = chunks.last_mut() {
                last.push(entry);
            }
        }
        let results = db
            .for_each_chunk(chunks, |db, chunk| async move {
                let actions: Vec<TransactWriteItem> = chunk.iter().flat_map(|(_, a)| a.iter().cloned()).collect();
                let outcome = db.transact(actions).await;
                Ok((chunk, outcome))
            })
            .await;
        for result in results {
            let (chunk, outcome) = result?;
            match outcome {
                Ok(()) => out.extend(chunk.into_iter().map(|(s, _)| (s.position, Written::Created))),
                Err(DbError::ConditionFailed(failed)) => {
                    // Which subscriptions own the failed actions: they lost their pair.
                    let mut first = 0;
                    for entry in chunk {
                        let range = first..first + entry.1.len();
                        first = range.end;
                        if failed.iter().any(|i| range.contains(i)) {
                            out.insert(entry.0.position, Written::Taken);
                        } else {
                            pending.push(entry);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// One page of a customer's subscriptions in creation order, after `after`
/// (a listing sort key), and whether more follow.
pub async fn list_subscriptions(
    db: &Db,
    customer: &str,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<(Vec<(String, Subscription)>, bool), DbError> {
    let pk = by_customer_pk(customer);
    let partition = Partition::index(GSI1, GSI1_PK, &pk);
    let start = after.map(|(sk, id)| {
        let mut k = crate::db::key(subscription_pk(&id), "SUB");
        k.insert("gsi1pk".into(), crate::db::s(&pk));
        k.insert("gsi1sk".into(), crate::db::s(sk));
        k
    });
    let (items, more) = db.query_window(&partition, start, 0, limit).await?;
    let listed = items
        .into_iter()
        .map(|item| {
            let sk = match item.get("gsi1sk") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            from_item::<Subscription>(item).map(|s| (sk, s))
        })
        .collect::<Result<_, _>>()?;
    Ok((listed, more))
}

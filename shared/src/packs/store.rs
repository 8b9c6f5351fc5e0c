//! CI-minute packs in DynamoDB: namespaces, exactly-once pack creation with
//! undo of partial writes, crash-safe moves.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};

use super::model::*;
use crate::db::{self, all_ok, Db, DbError, Item, GSI1_PK, PK, TRANSACT_LIMIT};
use crate::error::ApiError;
use crate::validate;

pub async fn put_namespace(db: &Db, ns: &Namespace) -> Result<(), DbError> {
    db.put(to_item(&NamespaceItem::from_domain(ns))?).await
}

pub async fn get_namespace(db: &Db, id: NamespaceId) -> Result<Option<Namespace>, DbError> {
    db.get(namespace_key(id)).await?.map(|item| from_item::<NamespaceItem>(item).map(NamespaceItem::into_domain)).transpose()
}

/// Both namespaces in one BatchGetItem.
pub async fn get_namespace_pair(
    db: &Db,
    a: NamespaceId,
    b: NamespaceId,
) -> Result<(Option<Namespace>, Option<Namespace>), DbError> {
    let found = db.batch_get(vec![namespace_key(a), namespace_key(b)]).await?;
    let mut by_id: HashMap<u64, Namespace> = HashMap::new();
    for item in found {
        let ns = from_item::<NamespaceItem>(item)?.into_domain();
        by_id.insert(ns.id.0, ns);
    }
    Ok((by_id.remove(&a.0), by_id.remove(&b.0)))
}

/// Every pack of a namespace, oldest first.
pub async fn list_packs(db: &Db, id: NamespaceId) -> Result<Vec<Pack>, DbError> {
    db.query_gsi1(&packs_gsi_pk(id)).await?.into_iter().map(|item| from_item::<PackItem>(item)?.into_domain()).collect()
}

/// Namespace `ns` and the stored packs among `xids` (by xid), in one
/// BatchGetItem round.
async fn get_xid_packs(
    db: &Db,
    ns: NamespaceId,
    xids: &[&PurchaseXid],
) -> Result<(Option<Namespace>, HashMap<String, Pack>), DbError> {
    let mut keys: Vec<Item> = vec![namespace_key(ns)];
    keys.extend(xids.iter().map(|x| pack_key_of(xid_pack_pk(x))));
    let mut namespace = None;
    let mut by_xid = HashMap::new();
    for item in db.batch_get(keys).await? {
        if matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk == "NS") {
            namespace = Some(from_item::<NamespaceItem>(item)?.into_domain());
            continue;
        }
        let pack = from_item::<PackItem>(item)?.into_domain()?;
        if let Some(xid) = &pack.purchase_xid {
            by_xid.insert(xid.as_str().to_owned(), pack);
        }
    }
    Ok((namespace, by_xid))
}

/// What creating packs can end in, short of success.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("Namespace Not Found")]
    NamespaceNotFound,
    #[error("Namespace must be a top-level namespace")]
    NotTopLevel,
    #[error("purchase_xid already provisioned to another namespace: {0:?}")]
    XidTaken(Vec<String>),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<CreateError> for ApiError {
    fn from(err: CreateError) -> Self {
        match err {
            CreateError::NamespaceNotFound => ApiError::NotFound("Namespace Not Found".into()),
            CreateError::NotTopLevel => ApiError::bad_request("Namespace must be a top-level namespace"),
            CreateError::XidTaken(xids) => ApiError::Conflict(format!(
                "purchase_xid {} already provisioned to another namespace",
                xids.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", ")
            )),
            CreateError::Db(e) => e.into(),
        }
    }
}

/// One pack this request is about to create.
struct NewPack {
    pack: Pack,
    pk: String,
    position: usize,
}

/// Creates `specs` in namespace `ns` exactly once, returning one pack per
/// distinct pack in request order (stored packs unchanged for known xids).
///
/// 1. One BatchGetItem round reads the namespace (it must exist and be
///    top-level) and finds xids already provisioned; any in another namespace
///    → [`CreateError::XidTaken`] and nothing written.
/// 2. New xid packs go in TransactWriteItems of 100, each put conditioned on
///    `attribute_not_exists(pk)`; a pack without xid has a fresh key and goes
///    through BatchWriteItem. A lost race on an xid is re-read: same namespace,
///    the winner's pack is returned; another namespace, 409.
/// 3. If the request fails after writing some packs (409 from a race, or
///    retries exhausted), it deletes what it wrote before answering, so an
///    error never leaves half a request behind and a retry converges.
pub async fn create_packs(db: &Db, ns: NamespaceId, specs: Vec<PackSpec>) -> Result<Vec<Pack>, CreateError> {
    // Distinct packs in request order; the same xid twice is one pack.
    let mut seen: HashSet<&PurchaseXid> = HashSet::new();
    let distinct: Vec<&PackSpec> =
        specs.iter().filter(|s| s.purchase_xid.as_ref().is_none_or(|x| seen.insert(x))).collect();
    let xids: Vec<&PurchaseXid> = distinct.iter().filter_map(|s| s.purchase_xid.as_ref()).collect();

    let (namespace, mut stored) = get_xid_packs(db, ns, &xids).await?;
    match namespace {
        None => return Err(CreateError::NamespaceNotFound),
        Some(n) if !n.is_top_level() => return Err(CreateError::NotTopLevel),
        Some(_) => {}
    }
    let taken: Vec<String> =
        stored.iter().filter(|(_, p)| p.namespace_id != ns).map(|(x, _)| x.clone()).collect();
    if !taken.is_empty() {
        return Err(CreateError::XidTaken(sorted(taken)));
    }

    let request_id = uuid::Uuid::new_v4().to_string();
    let created_at = validate::now_timestamp();
    let mut with_xid = Vec::new();
    let mut without_xid = Vec::new();
    for (position, spec) in distinct.iter().enumerate() {
        let pack = Pack {
            namespace_id: ns,
            expires_at: spec.expires_at,
            number_of_minutes: spec.number_of_minutes,
            purchase_xid: spec.purchase_xid.clone(),
        };
        match &spec.purchase_xid {
            Some(xid) if stored.contains_key(xid.as_str()) => {}
            Some(xid) => with_xid.push(NewPack { pk: xid_pack_pk(xid), pack, position }),
            None => without_xid.push(NewPack { pk: format!("PACK#U#{}", uuid::Uuid::new_v4()), pack, position }),
        }
    }

    let item_of = |p: &NewPack| -> Result<Item, DbError> {
        to_item(&PackItem {
            pk: p.pk.clone(),
            sk: "PACK".into(),
            gsi1pk: packs_gsi_pk(ns),
            gsi1sk: format!("{created_at}#{:04}#{}", p.position, p.pk),
            namespace_id: ns.0,
            number_of_minutes: p.pack.number_of_minutes,
            expires_at: validate::format_date(p.pack.expires_at),
            purchase_xid: p.pack.purchase_xid.as_ref().map(|x| x.as_str().to_owned()),
            created_at: created_at.clone(),
            request_id: request_id.clone(),
        })
    };
    let xid_chunks: Vec<Vec<(String, Item)>> = with_xid
        .iter()
        .map(|p| Ok((p.pk.clone(), item_of(p)?)))
        .collect::<Result<Vec<_>, DbError>>()?
        .chunks(TRANSACT_LIMIT)
        .map(<[_]>::to_vec)
        .collect();
    let plain_requests = without_xid
        .iter()
        .map(|p| Ok(WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item_of(p)?)).build().map_err(build_err)?).build()))
        .collect::<Result<Vec<_>, DbError>>()?;

    let (xid_outcomes, plain_outcome) = tokio::join!(
        db.for_each_chunk(xid_chunks, move |db, chunk| async move { put_new_xid_packs(&db, ns, chunk).await }),
        db.batch_write(plain_requests),
    );

    let mut failure: Option<CreateError> = plain_outcome.err().map(CreateError::from);
    let mut taken = Vec::new();
    for outcome in xid_outcomes {
        match outcome {
            Ok(chunk) => {
                taken.extend(chunk.taken);
                stored.extend(chunk.raced.into_iter().filter_map(|p| Some((p.purchase_xid.clone()?.as_str().to_owned(), p))));
            }
            Err(e) => {
                failure.get_or_insert(e.into());
            }
        }
    }
    if !taken.is_empty() {
        failure = Some(CreateError::XidTaken(sorted(taken)));
    }
    if let Some(err) = failure {
        let xid_pks = with_xid.iter().map(|p| p.pk.clone()).collect();
        let plain_pks = without_xid.iter().map(|p| p.pk.clone()).collect();
        if let Err(undo) = undo_packs(db, &request_id, xid_pks, plain_pks).await {
            tracing::error!(error = %undo, request_id, "could not undo a failed pack request");
        }
        return Err(err);
    }

    // Assemble the answer in request order.
    let mut fresh: HashMap<usize, Pack> = with_xid.into_iter().chain(without_xid).map(|p| (p.position, p.pack)).collect();
    let mut out = Vec::with_capacity(distinct.len());
    for (position, spec) in distinct.iter().enumerate() {
        let pack = match &spec.purchase_xid {
            Some(xid) => match stored.remove(xid.as_str()) {
                Some(p) => Some(p),
                None => fresh.remove(&position),
            },
            None => fresh.remove(&position),
        };
        out.extend(pack);
    }
    Ok(out)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> DbError {
    DbError::Other(format!("build request: {e}"))
}

#[derive(Default)]
struct XidChunkOutcome {
    /// Packs another request created first, in this namespace: returned as stored.
    raced: Vec<Pack>,
    /// Xids another request provisioned to another namespace first.
    taken: Vec<String>,
}

/// Puts one chunk (≤ 100) of new xid packs atomically. When some xids were
/// created concurrently, reads them, sets them aside and puts the rest again.
async fn put_new_xid_packs(db: &Db, ns: NamespaceId, mut chunk: Vec<(String, Item)>) -> Result<XidChunkOutcome, DbError> {
    let mut outcome = XidChunkOutcome::default();
    while !chunk.is_empty() {
        let puts = chunk
            .iter()
            .map(|(_, item)| {
                Put::builder()
                    .table_name(&*db.table)
                    .set_item(Some(item.clone()))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build()
                    .map(|put| TransactWriteItem::builder().put(put).build())
                    .map_err(build_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        match db.transact(puts).await {
            Ok(()) => break,
            Err(DbError::ConditionFailed(indices)) => {
                let lost: HashSet<usize> = indices.into_iter().collect();
                let (raced, rest): (Vec<_>, Vec<_>) =
                    chunk.into_iter().enumerate().partition(|(i, _)| lost.contains(i));
                let keys = raced.iter().map(|(_, (pk, _))| pack_key_of(pk.clone())).collect();
                for item in db.batch_get(keys).await? {
                    let pack = from_item::<PackItem>(item)?.into_domain()?;
                    match (&pack.purchase_xid, pack.namespace_id == ns) {
                        (Some(_), true) => outcome.raced.push(pack),
                        (Some(xid), false) => outcome.taken.push(xid.as_str().to_owned()),
                        (None, _) => {}
                    }
                }
                if !outcome.taken.is_empty() {
                    // The request will fail whole; writing the rest is wasted work.
                    break;
                }
                chunk = rest.into_iter().map(|(_, c)| c).collect();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}

/// Deletes what request `request_id` wrote: xid packs only where this request
/// created them (a condition on `request_id`), packs without xid by key (their
/// keys are this request's own).
async fn undo_packs(db: &Db, request_id: &str, xid_pks: Vec<String>, plain_pks: Vec<String>) -> Result<(), DbError> {
    let deletes = plain_pks
        .into_iter()
        .map(|pk| {
            DeleteRequest::builder()
                .set_key(Some(pack_key_of(pk)))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(build_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    db.batch_write(deletes).await?;
    let chunks: Vec<Vec<String>> = xid_pks.chunks(TRANSACT_LIMIT).map(<[String]>::to_vec).collect();
    let rid = request_id.to_owned();
    all_ok(
        db.for_each_chunk(chunks, move |db, chunk| {
            let rid = rid.clone();
            async move { conditional_each(&db, chunk, |db, pk| delete_if_created_by(db, pk, &rid)).await }
        })
        .await,
    )?;
    Ok(())
}

fn delete_if_created_by(db: &Db, pk: &str, request_id: &str) -> Result<TransactWriteItem, DbError> {
    aws_sdk_dynamodb::types::Delete::builder()
        .table_name(&*db.table)
        .set_key(Some(pack_key_of(pk.to_owned())))
        .condition_expression("request_id = :rid")
        .expression_attribute_values(":rid", AttributeValue::S(request_id.to_owned()))
        .build()
        .map(|d| TransactWriteItem::builder().delete(d).build())
        .map_err(build_err)
}

/// Applies one conditional write per key in a single transaction; keys whose
/// condition fails are dropped and the rest tried again. Returns how many
/// writes applied.
async fn conditional_each<F>(db: &Db, mut pks: Vec<String>, write: F) -> Result<usize, DbError>
where
    F: Fn(&Db, &str) -> Result<TransactWriteItem, DbError>,
{
    while !pks.is_empty() {
        let items = pks.iter().map(|pk| write(db, pk)).collect::<Result<Vec<_>, _>>()?;
        match db.transact(items).await {
            Ok(()) => return Ok(pks.len()),
            Err(DbError::ConditionFailed(indices)) => {
                let failed: HashSet<usize> = indices.into_iter().collect();
                pks = pks.into_iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, pk)| pk).collect();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(0)
}

/// Moves every pack of `from` to `to`: one conditional update of each pack's
/// namespace (`namespace_id = from`), 100 a transaction. Running it again after
/// a crash moves what is left; a pack is never copied, so never duplicated.
/// Returns how many packs this call moved.
pub async fn move_packs(db: &Db, from: NamespaceId, to: NamespaceId) -> Result<usize, DbError> {
    let pks: Vec<String> = db
        .query_gsi1(&packs_gsi_pk(from))
        .await?
        .into_iter()
        .filter_map(|mut item| match item.remove(PK) {
            Some(AttributeValue::S(pk)) => Some(pk),
            _ => None,
        })
        .collect();
    let chunks: Vec<Vec<String>> = pks.chunks(TRANSACT_LIMIT).map(<[String]>::to_vec).collect();
    let moved = all_ok(
        db.for_each_chunk(chunks, move |db, chunk| async move {
            conditional_each(&db, chunk, |db, pk| move_one(db, pk, from, to)).await
        })
        .await,
    )?;
    Ok(moved.into_iter().sum())
}

fn move_one(db: &Db, pk: &str, from: NamespaceId, to: NamespaceId) -> Result<TransactWriteItem, DbError> {
    Update::builder()
        .table_name(&*db.table)
        .set_key(Some(pack_key_of(pk.to_owned())))
        .update_expression("SET namespace_id = :to, #gpk = :gpk")
        .condition_expression("namespace_id = :from")
        .expression_attribute_names("#gpk", GSI1_PK)
        .expression_attribute_values(":to", db::n(to.0))
        .expression_attribute_values(":from", db::n(from.0))
        .expression_attribute_values(":gpk", db::s(packs_gsi_pk(to)))
        .build()
        .map(|u| TransactWriteItem::builder().update(u).build())
        .map_err(build_err)
}


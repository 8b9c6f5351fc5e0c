//! Projects, wallets and gifts in DynamoDB. A claim is one transaction: the
//! gift still stands, each resource leaves the owner's wallet under
//! `balance >= :amount`, reaches the claimant's personal wallet, and the claim
//! is recorded under "not claimed in this renewal period".
//!
//! Key layout (one table, see template.yaml):
//! - project: `pk = PROJECT#<id>`, `sk = PROJECT`, members as a map username → role.
//!   A user's personal project is `personal:<sub>`; registered ids cannot
//!   contain `:`, so the two never collide.
//! - wallet: `pk = PROJECT#<id>`, `sk = WALLET#<category>#<provider>`, `balance`.
//! - gift: `pk = GIFT#<id>`, `sk = GIFT`, the whole GiftWithCriteria; `deleting`
//!   set while a delete is under way (no claim succeeds from then on).
//! - the owner's listing of it: `pk = PROJECT#<owner>`, `sk = GIFT#<id, 16 digits>`,
//!   a copy (gifts never change), so browsing is one Query of the table —
//!   strongly consistent when asked, which an index could not be.
//! - one item per criterion: `pk = GIFT#<id>`, `sk = CRIT#<type>#<value>`,
//!   `gsi1pk = GIFTCRIT#anyone` | `GIFTCRIT#email#<domain>` | `GIFTCRIT#wayf#<org>`
//!   (lower case), so a caller's candidate gifts are at most three Queries.
//! - a claim: `pk = GIFT#<id>`, `sk = CLAIM#<sub>`, `claimed_at`;
//!   `gsi2pk = CLAIMS#<sub>`, so a caller's claims are one Query.
//! - the gift id counter: `pk = SEQ#gift`.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, TransactWriteItem, Update,
    WriteRequest,
};

use serde::{Deserialize, Serialize};

use super::rules::*;
use crate::db::{from_item, key, keyed, n, s, Db, DbError, Item, Partition, GSI1, GSI1_PK, GSI2, GSI2_PK, PK, SK};

// ---------------------------------------------------------------- item mapping

pub fn project_pk(id: &str) -> String {
    format!("PROJECT#{id}")
}

pub fn project_key(id: &str) -> Item {
    key(project_pk(id), "PROJECT")
}

pub const WALLET_PREFIX: &str = "WALLET#";

pub fn wallet_key(project: &str, category: &str, provider: &str) -> Item {
    key(
        project_pk(project),
        format!("{WALLET_PREFIX}{category}#{provider}"),
    )
}

pub fn gift_pk(id: u64) -> String {
    format!("GIFT#{id}")
}

pub fn gift_key(id: u64) -> Item {
    key(gift_pk(id), "GIFT")
}

pub const LISTING_PREFIX: &str = "GIFT#";

/// Ids padded so that the listing's sort order is creation order.
pub fn listing_sk(id: u64) -> String {
    format!("{LISTING_PREFIX}{id:016}")
}

pub fn listing_key(owner: &str, id: u64) -> Item {
    key(project_pk(owner), listing_sk(id))
}

pub fn criterion_key(gift: u64, c: &Criterion) -> Item {
    let sk = match c {
        Criterion::Anyone {} => "CRIT#anyone".to_owned(),
        Criterion::Email { domain } => format!("CRIT#email#{}", domain.to_lowercase()),
        Criterion::Wayf { org } => format!("CRIT#wayf#{}", org.to_lowercase()),
    };
    key(gift_pk(gift), sk)
}

pub fn claim_key(gift: u64, sub: &str) -> Item {
    key(gift_pk(gift), format!("CLAIM#{sub}"))
}

pub fn claims_of_pk(sub: &str) -> String {
    format!("CLAIMS#{sub}")
}

pub fn project_to_item(p: &Project) -> Result<Item, DbError> {
    keyed(project_key(&p.id), p)
}

pub fn gift_to_item(g: &Gift) -> Result<Item, DbError> {
    keyed(gift_key(g.id), g)
}

pub fn listing_to_item(g: &Gift) -> Result<Item, DbError> {
    keyed(listing_key(&g.owner, g.id), g)
}

#[derive(Serialize, Deserialize)]
pub struct CriterionItem {
    pub gsi1pk: String,
    pub gsi1sk: String,
    pub gift_id: u64,
}

pub fn criterion_to_item(gift: u64, c: &Criterion) -> Result<Item, DbError> {
    keyed(
        criterion_key(gift, c),
        &CriterionItem {
            gsi1pk: c.index_pk(),
            gsi1sk: format!("{gift:016}"),
            gift_id: gift,
        },
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClaimItem {
    pub gsi2pk: String,
    pub gsi2sk: String,
    pub gift_id: u64,
    pub claimed_at: String,
    /// The claiming request's token: a claim whose answer was lost finds
    /// its own claim by it instead of answering "already claimed".
    #[serde(default)]
    pub token: Option<String>,
    /// The project the claim debited and what moved: the claim's event
    /// carries its debit and credit from this item alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

pub fn claim_to_item(gift: &Gift, sub: &str, claimed_at: &str, token: &str) -> Result<Item, DbError> {
    let claim = ClaimItem {
        gsi2pk: claims_of_pk(sub),
        gsi2sk: format!("{:016}", gift.id),
        gift_id: gift.id,
        claimed_at: claimed_at.to_owned(),
        token: Some(token.to_owned()),
        owner: Some(gift.owner.clone()),
        resources: gift.resources.clone(),
    };
    keyed(claim_key(gift.id, sub), &claim)
}

pub const DEPOSIT_PREFIX: &str = "DEPOSIT#";

/// One deposit into a project's wallet, written in the deposit's
/// transaction: its key makes the deposit apply once, and the deposits are
/// the ledger `allotment verify` balances every wallet against.
#[derive(Debug, Serialize, Deserialize)]
pub struct DepositItem {
    pub category: String,
    pub provider: String,
    pub amount: u64,
    pub deposited_at: String,
}

pub fn deposit_key(project: &str, deposit_id: &str) -> Item {
    key(project_pk(project), format!("{DEPOSIT_PREFIX}{deposit_id}"))
}

pub async fn put_project(db: &Db, p: &Project) -> Result<(), DbError> {
    db.put(project_to_item(p)?).await
}

pub async fn get_project(db: &Db, id: &str) -> Result<Option<Project>, DbError> {
    db.get(project_key(id)).await?.map(from_item).transpose()
}

/// Adds `amount` to the project's wallet for (category, provider), creating
/// it at 0 first; refused ([`Refused::DepositTooLarge`]) if the balance would pass
/// [`MAX_UNITS`]. Returns the wallet after the deposit.
///
/// Exactly once: the deposit's record (`DEPOSIT#<deposit_id>`, put under
/// `attribute_not_exists`) and the wallet's `ADD` are one transaction. A
/// retry whose earlier attempt was applied — or a re-run of the same request,
/// whose `deposit_id` is derived from its Idempotency-Key — finds its record
/// and adds nothing.
pub async fn deposit(
    db: &Db,
    project: &str,
    category: &str,
    provider: &str,
    amount: u64,
    deposit_id: &str,
    at: &str,
) -> Result<Wallet, Refused> {
    let record = DepositItem {
        category: category.to_owned(),
        provider: provider.to_owned(),
        amount,
        deposited_at: at.to_owned(),
    };
    let record = put(
        db,
        keyed(deposit_key(project, deposit_id), &record)?,
        Some("attribute_not_exists(pk)"),
    )?;
    let add = Update::builder()
        .table_name(&*db.table)
        .set_key(Some(wallet_key(project, category, provider)))
        .update_expression("SET category = :c, provider = :p ADD balance :amount")
        .condition_expression("attribute_not_exists(balance) OR balance <= :room")
        .expression_attribute_values(":c", s(category))
        .expression_attribute_values(":p", s(provider))
        .expression_attribute_values(":amount", n(amount))
        .expression_attribute_values(":room", n(MAX_UNITS - amount))
        .build()
        .map_err(DbError::from)?;
    match db
        .transact(vec![
            record,
            TransactWriteItem::builder().update(add).build(),
        ])
        .await
    {
        Ok(()) => {}
        // The record is there: this deposit was applied already.
        Err(DbError::ConditionFailed(failed)) if failed.contains(&0) => {
            tracing::info!(
                deposit_id,
                "deposit already applied (a lost answer or a re-run)"
            );
        }
        // The wallet's room: the deposit would take it past MAX_UNITS.
        Err(DbError::ConditionFailed(_)) => return Err(Refused::DepositTooLarge),
        Err(e) => return Err(e.into()),
    }
    let wallet = db.get(wallet_key(project, category, provider)).await?.map(from_item).transpose()?;
    Ok(wallet.ok_or_else(|| DbError::Other("wallet missing after its deposit".into()))?)
}

/// Every wallet of a project, in (category, provider) order.
pub async fn list_wallets(db: &Db, project: &str) -> Result<Vec<Wallet>, DbError> {
    let pk = project_pk(project);
    db.query_all(&Partition::table(&pk, WALLET_PREFIX, true))
        .await?
        .into_iter()
        .map(from_item)
        .collect()
}

/// Which of these (category, provider) pairs have no wallet in `project`.
pub async fn missing_wallets(
    db: &Db,
    project: &str,
    pairs: &BTreeSet<(String, String)>,
) -> Result<Vec<(String, String)>, DbError> {
    let keys = pairs
        .iter()
        .map(|(c, p)| wallet_key(project, c, p))
        .collect();
    let found: BTreeSet<(String, String)> = db
        .batch_get(keys)
        .await?
        .into_iter()
        .map(|item| from_item::<Wallet>(item).map(|w| (w.category, w.provider)))
        .collect::<Result<_, _>>()?;
    Ok(pairs
        .iter()
        .filter(|p| !found.contains(p))
        .cloned()
        .collect())
}

fn put(db: &Db, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, DbError> {
    let mut put = Put::builder().table_name(&*db.table).set_item(Some(item));
    if let Some(c) = condition {
        put = put.condition_expression(c);
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(DbError::from)?)
        .build())
}

/// The record a keyed `POST /gifts` leaves: which gift it created, so a
/// re-run of the same request (after a crash, or after its answer expired)
/// answers with that gift instead of making a second.
pub fn gift_request_key(request: &str) -> Item {
    crate::db::key(format!("GIFTREQ#{request}"), "GIFTREQ")
}

/// The gift an earlier run of this keyed request created, if any.
pub async fn gift_of_request(db: &Db, request: &str) -> Result<Option<u64>, DbError> {
    Ok(db.get(gift_request_key(request)).await?.and_then(|item| match item.get("gift_id") {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }))
}

/// What writing a new gift ended in.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Gift(u64),
    /// An overlapping run of the same keyed request created this one first.
    ByEarlierRun(u64),
}

/// Writes a new gift — its item, the owner's listing copy, one item per
/// criterion and, for a keyed request, its request record — in one
/// transaction: all of it or nothing. The gift's id came from this request's
/// own sequence step, so a gift already under it can only be this request's:
/// a retry whose earlier attempt was applied succeeds.
pub async fn create_gift(db: &Db, gift: &Gift, request: Option<&str>) -> Result<Created, DbError> {
    let mut actions = vec![
        put(db, gift_to_item(gift)?, Some("attribute_not_exists(pk)"))?,
        put(db, listing_to_item(gift)?, Some("attribute_not_exists(pk)"))?,
    ];
    for c in &gift.criteria {
        actions.push(put(db, criterion_to_item(gift.id, c)?, None)?);
    }
    if let Some(request) = request {
        let mut record = gift_request_key(request);
        record.insert("gift_id".into(), n(gift.id));
        actions.push(put(db, record, Some("attribute_not_exists(pk)"))?);
    }
    let last = actions.len() - 1;
    match db.transact(actions).await {
        Ok(()) => Ok(Created::Gift(gift.id)),
        Err(DbError::ConditionFailed(failed)) if failed.contains(&0) => {
            tracing::info!(gift_id = gift.id, "gift already written (a lost answer)");
            Ok(Created::Gift(gift.id))
        }
        Err(DbError::ConditionFailed(failed)) => match request.filter(|_| failed.contains(&last)) {
            // The request record stood in the way: an overlapping run of
            // this keyed request created the gift first.
            Some(request) => gift_of_request(db, request).await?.map(Created::ByEarlierRun).ok_or(DbError::ConditionFailed(failed)),
            None => Err(DbError::ConditionFailed(failed)),
        },
        Err(e) => Err(e),
    }
}

pub async fn get_gift(db: &Db, id: u64) -> Result<Option<Gift>, DbError> {
    db.get(gift_key(id)).await?.map(from_item).transpose()
}

/// The claim transaction. `cutoff`: the latest earlier claim that still
/// allows this one (`None`: any earlier claim forbids it — renewEvery 0).
/// `token` marks the claim as this request's: when the claim's condition
/// fails, the claim is read, and one holding `token` is this request's own
/// (an attempt whose answer was lost, or an earlier run with the same
/// Idempotency-Key) — success, not "already claimed".
pub async fn claim_gift(
    db: &Db,
    gift: &Gift,
    sub: &str,
    now: &str,
    cutoff: Option<&str>,
    token: &str,
    receipt: bool,
) -> Result<(), Refused> {
    let recipient = personal_project(sub);
    let mut actions = Vec::with_capacity(2 + 2 * gift.resources.len());
    let check = ConditionCheck::builder()
        .table_name(&*db.table)
        .set_key(Some(gift_key(gift.id)))
        .condition_expression("attribute_exists(pk) AND attribute_not_exists(deleting)")
        .build()
        .map_err(DbError::from)?;
    actions.push(TransactWriteItem::builder().condition_check(check).build());
    for r in &gift.resources {
        let debit = Update::builder()
            .table_name(&*db.table)
            .set_key(Some(wallet_key(&gift.owner, &r.category, &r.provider)))
            .update_expression("ADD balance :minus")
            .condition_expression("balance >= :amount")
            .expression_attribute_values(
                ":minus",
                AttributeValue::N(format!("-{}", r.balance_requested)),
            )
            .expression_attribute_values(":amount", n(r.balance_requested))
            .build()
            .map_err(DbError::from)?;
        actions.push(TransactWriteItem::builder().update(debit).build());
    }
    for r in &gift.resources {
        let credit = Update::builder()
            .table_name(&*db.table)
            .set_key(Some(wallet_key(&recipient, &r.category, &r.provider)))
            .update_expression("SET category = :c, provider = :p ADD balance :amount")
            .condition_expression("attribute_not_exists(balance) OR balance <= :room")
            .expression_attribute_values(":c", s(&r.category))
            .expression_attribute_values(":p", s(&r.provider))
            .expression_attribute_values(":amount", n(r.balance_requested))
            .expression_attribute_values(":room", n(MAX_UNITS - r.balance_requested))
            .build()
            .map_err(DbError::from)?;
        actions.push(TransactWriteItem::builder().update(credit).build());
    }
    let mut claim = Put::builder()
        .table_name(&*db.table)
        .set_item(Some(claim_to_item(gift, sub, now, token)?));
    claim = match cutoff {
        None => claim.condition_expression("attribute_not_exists(pk)"),
        Some(cutoff) => claim
            .condition_expression("attribute_not_exists(pk) OR claimed_at <= :cutoff")
            .expression_attribute_values(":cutoff", s(cutoff)),
    };
    let claim_index = actions.len();
    actions.push(
        TransactWriteItem::builder()
            .put(claim.build().map_err(DbError::from)?)
            .build(),
    );
    if receipt {
        let mut item = claim_receipt_key(sub, token);
        item.insert("gift_id".into(), n(gift.id));
        actions.push(put(db, item, Some("attribute_not_exists(pk)"))?);
    }
    let receipt_index = actions.len() - 1;

    match db.transact(actions).await {
        Ok(()) => Ok(()),
        Err(DbError::ConditionFailed(failed)) if receipt && failed.contains(&receipt_index) => {
            tracing::info!(gift_id = gift.id, sub, "claim already applied by an earlier run of this request");
            Ok(())
        }
        Err(DbError::ConditionFailed(failed))
            if failed.contains(&claim_index) && own_claim(db, gift.id, sub, token).await? =>
        {
            tracing::info!(
                gift_id = gift.id,
                sub,
                "claim already applied (a lost answer or a re-run)"
            );
            Ok(())
        }
        Err(DbError::ConditionFailed(failed)) => {
            let k = gift.resources.len();
            let refused = if failed.contains(&0) {
                Refused::ClaimedGiftGone
            } else if failed.contains(&claim_index) {
                Refused::AlreadyClaimed
            } else if failed.iter().any(|&i| (1..=k).contains(&i)) {
                let short = failed
                    .iter()
                    .filter(|&&i| (1..=k).contains(&i))
                    .map(|&i| {
                        (
                            gift.resources[i - 1].category.clone(),
                            gift.resources[i - 1].provider.clone(),
                        )
                    })
                    .collect();
                Refused::OwnerShort(short)
            } else {
                Refused::RecipientFull
            };
            Err(refused)
        }
        Err(e) => Err(e.into()),
    }
}

/// The receipt a keyed claim leaves beside the claimant's wallets: a re-run
/// of the same request finds it even if the gift (and its claims) was
/// deleted since, or the caller no longer matches its criteria.
pub fn claim_receipt_key(sub: &str, token: &str) -> Item {
    crate::db::key(project_pk(&personal_project(sub)), format!("CLAIMREQ#{token}"))
}

pub async fn claimed_by_request(db: &Db, sub: &str, token: &str) -> Result<bool, DbError> {
    Ok(db.get(claim_receipt_key(sub, token)).await?.is_some())
}

/// Whether the claim of `sub` on `gift` is the one `token` wrote.
async fn own_claim(db: &Db, gift: u64, sub: &str, token: &str) -> Result<bool, DbError> {
    let claim = db
        .get(claim_key(gift, sub))
        .await?
        .map(from_item::<ClaimItem>)
        .transpose()?;
    Ok(claim.and_then(|c| c.token).as_deref() == Some(token))
}

/// Deletes a gift and everything of it, safe to re-run after a crash at any
/// point: first the gift is marked `deleting` (from then on no claim
/// succeeds) and leaves its owner's listing, in one transaction; then its
/// criteria and claims go; the gift item itself goes last, so a re-run finds
/// it and finishes.
pub async fn delete_gift(db: &Db, gift: &Gift) -> Result<usize, DbError> {
    if !gift.deleting {
        let mark = Update::builder()
            .table_name(&*db.table)
            .set_key(Some(gift_key(gift.id)))
            .update_expression("SET deleting = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .build()
            .map_err(DbError::from)?;
        let unlist = Delete::builder()
            .table_name(&*db.table)
            .set_key(Some(listing_key(&gift.owner, gift.id)))
            .build()
            .map_err(DbError::from)?;
        db.transact(vec![
            TransactWriteItem::builder().update(mark).build(),
            TransactWriteItem::builder().delete(unlist).build(),
        ])
        .await?;
    }
    let pk = gift_pk(gift.id);
    let mut removed = 0;
    // Criteria and claims, a page at a time (a popular gift has many claims).
    let mut start = None;
    loop {
        let partition = Partition {
            index: None,
            pk_attr: PK,
            pk: &pk,
            sk_prefix: None,
            consistent: true,
            only: None,
        };
        let (page, next) = db.query_page(&partition, Some(1000), start.take()).await?;
        let deletes: Vec<WriteRequest> = page
            .into_iter()
            .filter(|item| !matches!(item.get(SK), Some(AttributeValue::S(sk)) if sk == "GIFT"))
            .map(|item| {
                let key: Item = item
                    .into_iter()
                    .filter(|(k, _)| k == PK || k == SK)
                    .collect();
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<_, _>>()
            .map_err(DbError::from)?;
        removed += deletes.len();
        db.batch_write(deletes).await?;
        match next {
            Some(k) => start = Some(k),
            None => break,
        }
    }
    db.delete_if(gift_key(gift.id), "attribute_exists(pk)", &[])
        .await
        .or_else(|e| match e {
            DbError::ConditionFailed(_) => Ok(()),
            e => Err(e),
        })?;
    Ok(removed)
}

/// One page of a project's gifts in creation order, after the listing key
/// `after` (a sort key), and whether more follow.
pub async fn browse_gifts(
    db: &Db,
    project: &str,
    after: Option<String>,
    skip: u64,
    limit: usize,
    consistent: bool,
) -> Result<(Vec<Gift>, bool), DbError> {
    let pk = project_pk(project);
    let partition = Partition::table(&pk, LISTING_PREFIX, consistent);
    let start = after.map(|sk| HashMap::from([(PK.to_owned(), s(&pk)), (SK.to_owned(), s(sk))]));
    let (items, more) = db.query_window(&partition, start, skip, limit).await?;
    Ok((
        items.into_iter().map(from_item).collect::<Result<_, _>>()?,
        more,
    ))
}

/// The ids of gifts with a criterion in any of these index partitions (one
/// Query each, all at once).
pub async fn candidate_gifts(db: &Db, criteria_pks: &[String]) -> Result<BTreeSet<u64>, DbError> {
    let partitions = db
        .for_each(crate::db::CHUNK_CONCURRENCY, criteria_pks.to_vec(), |db, pk| async move {
            db.query_all(&Partition::index(GSI1, GSI1_PK, &pk)).await
        })
        .await;
    let mut ids = BTreeSet::new();
    for item in crate::db::all_ok(partitions)?.into_iter().flatten() {
        ids.insert(from_item::<CriterionItem>(item)?.gift_id);
    }
    Ok(ids)
}

/// When the caller last claimed each gift they ever claimed.
pub async fn claims_of(db: &Db, sub: &str) -> Result<HashMap<u64, String>, DbError> {
    let pk = claims_of_pk(sub);
    db.query_all(&Partition::index(GSI2, GSI2_PK, &pk))
        .await?
        .into_iter()
        .map(|item| from_item::<ClaimItem>(item).map(|c| (c.gift_id, c.claimed_at)))
        .collect()
}

/// The gifts with these ids that exist and are not being deleted. Read
/// strongly consistent: the criteria index may lag a delete, and this read is
/// what keeps a gift being deleted out of every listing from the moment the
/// delete marks it.
pub async fn live_gifts(db: &Db, ids: &BTreeSet<u64>) -> Result<Vec<Gift>, DbError> {
    let keys = ids.iter().map(|id| gift_key(*id)).collect();
    let mut gifts: Vec<Gift> = db
        .batch_get(keys)
        .await?
        .into_iter()
        .map(from_item::<Gift>)
        .filter(|g| !matches!(g, Ok(g) if g.deleting))
        .collect::<Result<_, _>>()?;
    gifts.sort_by_key(|g| g.id);
    Ok(gifts)
}

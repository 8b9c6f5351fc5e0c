//! CI-minute packs in DynamoDB: namespaces, exactly-once pack creation with
//! undo of partial writes, crash-safe moves.
//!
//! Key layout (one table, see template.yaml):
//! - namespace: `pk = NS#<id>`, `sk = NS`
//! - pack: `pk = PACK#X#<purchase_xid>` (or `PACK#U#<uuid>` without one), `sk = PACK`,
//!   `gsi1pk = NSPACKS#<namespace>`, `gsi1sk = <created_at>#<position>#<key>`.
//!
//! The pack's own key encodes the unique fact, so "a purchase_xid is provisioned
//! at most once, ever" is one `attribute_not_exists(pk)` condition, and moving a
//! pack is one conditional update of its namespace: a pack can never exist twice,
//! and a move interrupted anywhere is finished by running it again.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::rules::*;
use crate::db::{self, all_ok, from_item, key, to_item, Db, DbError, Item, GSI1_PK, PK};
use crate::idempotency::RequestIds;
use crate::validate::{self, parse_date};

// ---------------------------------------------------------------- item mapping

pub(crate) fn namespace_pk(id: NamespaceId) -> String {
    format!("NS#{}", id.0)
}

pub(super) fn namespace_key(id: NamespaceId) -> Item {
    key(namespace_pk(id), "NS")
}

pub(crate) fn packs_gsi_pk(id: NamespaceId) -> String {
    format!("NSPACKS#{}", id.0)
}

pub(crate) fn xid_pack_pk(xid: &PurchaseXid) -> String {
    format!("PACK#X#{}", xid.as_str())
}

pub(super) fn pack_key_of(pk: String) -> Item {
    key(pk, "PACK")
}

/// A namespace as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct NamespaceItem {
    pub(crate) pk: String,
    pub(super) sk: String,
    pub(crate) id: u64,
    pub(super) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent_id: Option<u64>,
    pub(super) owner_id: u64,
}

impl NamespaceItem {
    pub(super) fn from_domain(ns: &Namespace) -> Self {
        Self {
            pk: namespace_pk(ns.id),
            sk: "NS".into(),
            id: ns.id.0,
            name: ns.name.clone(),
            parent_id: ns.parent_id.map(|p| p.0),
            owner_id: ns.owner_id,
        }
    }

    pub(super) fn into_domain(self) -> Namespace {
        Namespace {
            id: NamespaceId(self.id),
            name: self.name,
            parent_id: self.parent_id.map(NamespaceId),
            owner_id: self.owner_id,
        }
    }
}

/// A pack as stored. `request_id` marks the request that created it, so that
/// request (and only it) can undo its own partial writes; another request
/// that reports the pack as stored first removes it (adoption), so a pack
/// somebody was told exists is never undone.
#[derive(Serialize, Deserialize)]
pub(crate) struct PackItem {
    pub(crate) pk: String,
    pub(super) sk: String,
    pub(crate) gsi1pk: String,
    pub(super) gsi1sk: String,
    pub(crate) namespace_id: u64,
    pub(super) number_of_minutes: u32,
    pub(super) expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) purchase_xid: Option<String>,
    pub(crate) created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
}

impl PackItem {
    pub(crate) fn into_domain(self) -> Result<Pack, DbError> {
        let expires_at =
            parse_date(&self.expires_at).map_err(|m| DbError::Other(format!("stored pack {}: expires_at {m}", self.pk)))?;
        let purchase_xid = self
            .purchase_xid
            .as_deref()
            .map(PurchaseXid::parse)
            .transpose()
            .map_err(|m| DbError::Other(format!("stored pack {}: purchase_xid {m}", self.pk)))?;
        Ok(Pack {
            namespace_id: NamespaceId(self.namespace_id),
            expires_at,
            number_of_minutes: self.number_of_minutes,
            purchase_xid,
        })
    }
}


pub async fn put_namespace(db: &Db, ns: &Namespace) -> Result<(), DbError> {
    db.put(to_item(&NamespaceItem::from_domain(ns))?).await
}

pub async fn get_namespace(db: &Db, id: NamespaceId) -> Result<Option<Namespace>, DbError> {
    db.get(namespace_key(id))
        .await?
        .map(|item| from_item::<NamespaceItem>(item).map(NamespaceItem::into_domain))
        .transpose()
}

/// Both namespaces in one BatchGetItem.
pub async fn get_namespace_pair(
    db: &Db,
    a: NamespaceId,
    b: NamespaceId,
) -> Result<(Option<Namespace>, Option<Namespace>), DbError> {
    let found = db
        .batch_get(vec![namespace_key(a), namespace_key(b)])
        .await?;
    let mut by_id: HashMap<u64, Namespace> = HashMap::new();
    for item in found {
        let ns = from_item::<NamespaceItem>(item)?.into_domain();
        by_id.insert(ns.id.0, ns);
    }
    Ok((by_id.remove(&a.0), by_id.remove(&b.0)))
}

/// Every pack of a namespace, oldest first.
pub async fn list_packs(db: &Db, id: NamespaceId) -> Result<Vec<Pack>, DbError> {
    db.query_gsi1(&packs_gsi_pk(id))
        .await?
        .into_iter()
        .map(|item| from_item::<PackItem>(item)?.into_domain())
        .collect()
}

/// Namespace `ns` (strongly consistent: it may have been registered a moment
/// ago) and the stored packs among `xids` (by xid), read at once. The packs
/// are read eventually consistent — half the capacity of a re-sync — because
/// a stale answer is caught by the conditional write that follows: a pack
/// missed is found by its failed `attribute_not_exists`, and a pack seen in
/// another namespace is re-read strongly consistent before it becomes a 409
/// (the consistent read replaces what the stale one saw, absence included).
async fn get_xid_packs(
    db: &Db,
    ns: NamespaceId,
    xids: &[&PurchaseXid],
) -> Result<(Option<Namespace>, HashMap<String, Stored>), DbError> {
    let keys: Vec<Item> = xids.iter().map(|x| pack_key_of(xid_pack_pk(x))).collect();
    let (namespace, packs) = tokio::join!(get_namespace(db, ns), db.batch_get_eventual(keys));
    let mut by_xid = packs_by_xid(packs?)?;
    let elsewhere: Vec<String> = by_xid
        .iter()
        .filter(|(_, s)| s.pack.namespace_id != ns)
        .map(|(x, _)| x.clone())
        .collect();
    if !elsewhere.is_empty() {
        let keys = elsewhere
            .iter()
            .filter_map(|x| by_xid.remove(x))
            .map(|s| pack_key_of(s.pk))
            .collect();
        by_xid.extend(packs_by_xid(db.batch_get(keys).await?)?);
    }
    Ok((namespace?, by_xid))
}

/// A stored xid pack and what adoption needs to know of it.
struct Stored {
    pack: Pack,
    pk: String,
    request_id: Option<String>,
    created_at: String,
}

impl Stored {
    fn of(item: Item) -> Result<Self, DbError> {
        let raw = from_item::<PackItem>(item)?;
        let (pk, request_id, created_at) = (
            raw.pk.clone(),
            raw.request_id.clone(),
            raw.created_at.clone(),
        );
        Ok(Self {
            pack: raw.into_domain()?,
            pk,
            request_id,
            created_at,
        })
    }

    /// Whether its creating request may still undo it: it carries that
    /// request's id and was created at or after `cutoff` ([`adopt_cutoff`]).
    fn undoable(&self, cutoff: &str) -> bool {
        self.request_id.is_some() && self.created_at.as_str() >= cutoff
    }
}

/// The oldest creation time a pack can still be undone from: now minus [`ADOPT_WINDOW`].
fn adopt_cutoff(now: time::OffsetDateTime) -> String {
    validate::format_timestamp(now - ADOPT_WINDOW)
}

/// A request undoes its packs only within [`UNDO_WINDOW`] of creating them
/// (a request lives 29 s at most); a pack is adopted before it is reported
/// if it is younger than [`ADOPT_WINDOW`], which leaves minutes for clocks
/// that disagree.
pub const UNDO_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);
pub const ADOPT_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

fn packs_by_xid(items: Vec<Item>) -> Result<HashMap<String, Stored>, DbError> {
    let mut by_xid = HashMap::new();
    for item in items {
        let stored = Stored::of(item)?;
        if let Some(xid) = &stored.pack.purchase_xid {
            by_xid.insert(xid.as_str().to_owned(), stored);
        }
    }
    Ok(by_xid)
}

/// The marker a pack request writes once it has succeeded: from then on it
/// never undoes, so its packs need no adoption (a re-sync stays write-free).
fn committed_key(request_id: &str) -> Item {
    db::key(format!("PACKREQ#{request_id}"), "PACKREQ")
}

/// Of these young stored packs, the ones whose creating request has not
/// said it succeeded (one strongly consistent read per distinct request).
/// Each is (pk, the creating request's id).
async fn uncommitted(db: &Db, young: Vec<(String, String)>) -> Result<Vec<(String, String)>, DbError> {
    if young.is_empty() {
        return Ok(young);
    }
    let requests: HashSet<&String> = young.iter().map(|(_, rid)| rid).collect();
    let committed: HashSet<String> = db
        .batch_get(requests.into_iter().map(|rid| committed_key(rid)).collect())
        .await?
        .into_iter()
        .filter_map(|mut item| match item.remove(PK) {
            Some(AttributeValue::S(pk)) => pk.strip_prefix("PACKREQ#").map(str::to_owned),
            _ => None,
        })
        .collect();
    Ok(young
        .into_iter()
        .filter(|(_, rid)| !committed.contains(rid))
        .collect())
}

/// Makes packs another request created moments ago permanent before they are
/// reported as stored: `REMOVE request_id` under `request_id = :theirs`, so
/// their creator's undo (conditioned on its id) no longer deletes them.
/// Takes (pk, creator's request id) pairs; returns the pks of the packs that
/// were gone (undone first): the caller creates those itself.
async fn adopt(db: &Db, packs: Vec<(String, String)>) -> Result<Vec<String>, DbError> {
    let outcomes = db
        .for_each(crate::db::ITEM_CONCURRENCY, packs, |db, (pk, rid)| async move { adopt_one(&db, pk, rid).await })
        .await;
    Ok(all_ok(outcomes)?.into_iter().flatten().collect())
}

/// Times one adoption follows a pack to the request that now carries it.
const ADOPT_TRIES: usize = 4;

/// Adopts one pack, seen carrying `rid`: `Some(pk)` if it is gone. When the
/// condition fails, the pack as it is now decides — gone, permanent (adopted,
/// or its creator committed), or re-created meanwhile by another request that
/// may still undo it (the id seen was read from a stale replica, or the
/// creator undid it and a retry put it back): that request's id is adopted in
/// turn, never assumed away. A pack that keeps changing hands is a 503.
async fn adopt_one(db: &Db, pk: String, mut rid: String) -> Result<Option<String>, DbError> {
    for _ in 0..ADOPT_TRIES {
        let result = db
            .update_if(pack_key_of(pk.clone()), "REMOVE request_id", "request_id = :rid", &[], &[(":rid", db::s(rid.clone()))])
            .await;
        if applied(result)? {
            return Ok(None);
        }
        let Some(now) = db.get(pack_key_of(pk.clone())).await? else {
            return Ok(Some(pk));
        };
        let Some(AttributeValue::S(theirs)) = now.get("request_id") else {
            return Ok(None);
        };
        if uncommitted(db, vec![(pk.clone(), theirs.clone())]).await?.is_empty() {
            return Ok(None);
        }
        rid = theirs.clone();
    }
    Err(DbError::Exhausted(format!("pack {pk} kept changing hands while it was adopted")))
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
/// 1. One round reads the namespace (it must exist and be top-level) and
///    finds xids already provisioned; any in another namespace →
///    [`Refused::XidTaken`] and nothing written.
/// 2. Each new xid pack is one PutItem conditioned on
///    `attribute_not_exists(pk)`, many at once (not a transaction: each pack
///    stands alone, and a transactional write costs twice the capacity); a
///    pack without xid has its own key (derived from the Idempotency-Key when
///    one was sent, so a re-run rewrites the same items) and goes through
///    BatchWriteItem. A lost race answers with the winner's pack: same
///    namespace, it is returned; another namespace, 409.
/// 3. A stored pack another request created moments ago is adopted before it
///    is reported (see [`adopt`]), so its creator's undo cannot remove a pack
///    this answer says exists.
/// 4. If the request fails after writing some packs (409 from a race, or
///    retries exhausted), it deletes what it wrote before answering, so an
///    error never leaves half a request behind and a retry converges.
pub async fn create_packs(
    db: &Db,
    ns: NamespaceId,
    specs: Vec<PackSpec>,
    ids: &RequestIds,
    now: time::OffsetDateTime,
) -> Result<Created, Refused> {
    let started = std::time::Instant::now();
    let cutoff = adopt_cutoff(now);
    // Distinct packs in request order; the same xid twice is one pack.
    let mut seen: HashSet<&PurchaseXid> = HashSet::new();
    let distinct: Vec<&PackSpec> = specs.iter().filter(|s| s.purchase_xid.as_ref().is_none_or(|x| seen.insert(x))).collect();
    let mut stored = match stored_packs(db, ns, &distinct, &cutoff).await {
        Err(refused) if ids.is_keyed() && refused.is_final() => {
            settle_earlier_runs(db, &distinct, ids, now).await?;
            return Err(refused);
        }
        other => other?,
    };
    // This run's own id: what its undo deletes and how its own writes are
    // recognised after a lost answer (an earlier run of the same keyed
    // request has another; its packs are found, and adopted, as stored).
    let run = Run { ns, request_id: uuid::Uuid::new_v4().to_string(), created_at: validate::format_timestamp(now), cutoff };
    let (with_xid, without_xid) = new_packs(ns, &distinct, &stored, ids);
    let earlier_plain = match run.write(db, &with_xid, &without_xid, &mut stored).await {
        Ok(earlier_plain) => earlier_plain,
        Err(err) => {
            // A refusal says nothing of the request was written: only once
            // the undo is done. Otherwise 503 (never stored), and a retry
            // converges.
            run.undo(db, &with_xid, &without_xid, started).await?;
            // Refused at step 3 (an xid taken meanwhile): what earlier runs
            // of the key left goes too, as at step 1.
            if ids.is_keyed() && err.is_final() {
                settle_earlier_runs(db, &distinct, ids, now).await?;
            }
            return Err(err);
        }
    };
    if !with_xid.is_empty() || !without_xid.is_empty() {
        // Not undone if the marker cannot be written: it may have landed
        // with its answer lost, and a re-sync that read it reported the
        // packs without adopting them. A keyed request answers 503: its
        // retry finds its packs under the key and adopts them, so none is
        // left marked by a run that never committed (`verify`'s orphans).
        // A keyless one answers 201 (its retry would be a new request):
        // re-syncs adopt its packs instead.
        if let Err(e) = run.commit(db, now).await {
            if ids.is_keyed() {
                return Err(Refused::Store(e));
            }
        }
    }
    Ok(answer(&distinct, stored, earlier_plain, with_xid.into_iter().chain(without_xid)))
}

/// Step 1: the stored packs among the request's xids (by xid), once the
/// namespace is known to take packs and none of them is another
/// namespace's; young ones another request made are adopted first.
async fn stored_packs(db: &Db, ns: NamespaceId, distinct: &[&PackSpec], cutoff: &str) -> Result<HashMap<String, Stored>, Refused> {
    let xids: Vec<&PurchaseXid> = distinct.iter().filter_map(|s| s.purchase_xid.as_ref()).collect();
    let (namespace, mut stored) = get_xid_packs(db, ns, &xids).await?;
    check_create_target(namespace.as_ref())?;
    let taken: Vec<String> = stored.iter().filter(|(_, p)| p.pack.namespace_id != ns).map(|(x, _)| x.clone()).collect();
    if !taken.is_empty() {
        return Err(Refused::XidTaken(sorted(taken)));
    }
    let young: Vec<(String, String)> =
        stored.values().filter(|p| p.undoable(cutoff)).filter_map(|p| p.request_id.clone().map(|rid| (p.pk.clone(), rid))).collect();
    let gone = adopt(db, uncommitted(db, young).await?).await?;
    stored.retain(|_, p| !gone.contains(&p.pk));
    Ok(stored)
}

/// Before a keyed request is refused at step 1: the plain packs an earlier
/// run of it wrote (their keys are the Idempotency-Key's) and left behind —
/// a run cut off at the time limit, or one whose answer could not be stored
/// (then it answered 503) — are deleted, so the refusal's "nothing was
/// written" holds and a client that re-sends the rest under a new key
/// creates them once.
async fn settle_earlier_runs(db: &Db, distinct: &[&PackSpec], ids: &RequestIds, now: time::OffsetDateTime) -> Result<(), DbError> {
    // A key is the same request for its retention (24 h) only: a pack older
    // than that may be a finished run's whose answer has expired, and stays.
    let same_request_since = validate::format_timestamp(now - time::Duration::hours(23));
    let keys: Vec<Item> = distinct
        .iter()
        .enumerate()
        .filter(|(_, s)| s.purchase_xid.is_none())
        .map(|(position, _)| pack_key_of(format!("PACK#U#{}", ids.id("pack", position))))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let earlier: Vec<Stored> = db.batch_get(keys).await?.into_iter().map(Stored::of).collect::<Result<_, _>>()?;
    for p in earlier.into_iter().filter(|p| p.created_at >= same_request_since) {
        // Only this key names these packs, and no run of it gave a final
        // answer (it would be the key's stored answer, replayed instead of
        // this run): whatever an earlier run left — committed, or moved
        // since — was never acknowledged, and goes. One moved meanwhile is
        // a 503: the retry settles it where it is now.
        let (pk, namespace) = (p.pk.clone(), p.pack.namespace_id);
        let deleted = db.delete_if(pack_key_of(pk.clone()), "namespace_id = :ns", &[(":ns", db::n(namespace.0))]).await;
        if !applied(deleted)? && db.get(pack_key_of(pk.clone())).await?.is_some() {
            return Err(DbError::Exhausted(format!("pack {pk} moved while it was settled: send the request again")));
        }
    }
    Ok(())
}

/// Step 2: the packs to write — new xids under their xid's key, packs
/// without xid under a key of their own (derived from the Idempotency-Key
/// when one was sent, so a re-run names the same items).
fn new_packs(ns: NamespaceId, distinct: &[&PackSpec], stored: &HashMap<String, Stored>, ids: &RequestIds) -> (Vec<NewPack>, Vec<NewPack>) {
    let mut with_xid = Vec::new();
    let mut without_xid = Vec::new();
    for (position, spec) in distinct.iter().enumerate() {
        let pack = Pack { namespace_id: ns, expires_at: spec.expires_at, number_of_minutes: spec.number_of_minutes, purchase_xid: spec.purchase_xid.clone() };
        match &spec.purchase_xid {
            Some(xid) if stored.contains_key(xid.as_str()) => {}
            Some(xid) => with_xid.push(NewPack { pk: xid_pack_pk(xid), pack, position }),
            None => without_xid.push(NewPack { pk: format!("PACK#U#{}", ids.id("pack", position)), pack, position }),
        }
    }
    (with_xid, without_xid)
}

/// One run of a pack request: where it writes, its own id, and its clock.
struct Run {
    ns: NamespaceId,
    request_id: String,
    created_at: String,
    /// Packs created after this may still be undone by their creator.
    cutoff: String,
}

impl Run {
    fn item_of(&self, p: &NewPack) -> Result<Item, DbError> {
        to_item(&PackItem {
            pk: p.pk.clone(),
            sk: "PACK".into(),
            gsi1pk: packs_gsi_pk(self.ns),
            gsi1sk: format!("{}#{:04}#{}", self.created_at, p.position, p.pk),
            namespace_id: self.ns.0,
            number_of_minutes: p.pack.number_of_minutes,
            expires_at: validate::format_date(p.pack.expires_at),
            purchase_xid: p.pack.purchase_xid.as_ref().map(|x| x.as_str().to_owned()),
            created_at: self.created_at.clone(),
            request_id: Some(self.request_id.clone()),
        })
    }

    /// Step 3: writes the new packs, xid packs and plain packs at once. A
    /// lost xid race adds the winner to `stored` (same namespace) or is
    /// [`Refused::XidTaken`]; winners and plain packs an earlier run wrote
    /// are adopted before they are reported. Returns the plain packs an
    /// earlier run of the request wrote, by position.
    async fn write(
        &self,
        db: &Db,
        with_xid: &[NewPack],
        without_xid: &[NewPack],
        stored: &mut HashMap<String, Stored>,
    ) -> Result<HashMap<usize, Stored>, Refused> {
        let xid_items: Vec<Item> = with_xid.iter().map(|p| self.item_of(p)).collect::<Result<_, _>>()?;
        let plain_items: Vec<(usize, Item)> = without_xid.iter().map(|p| Ok((p.position, self.item_of(p)?))).collect::<Result<_, DbError>>()?;
        let ns = self.ns;
        let (xid_outcomes, plain_outcome) = tokio::join!(
            db.for_each(crate::db::ITEM_CONCURRENCY, xid_items, move |db, item| async move { put_new_xid_pack(&db, ns, item).await }),
            put_plain_packs(db, plain_items),
        );
        let mut earlier_plain: HashMap<usize, Stored> = HashMap::new();
        let mut failure: Option<Refused> = None;
        let mut taken = Vec::new();
        let mut raced = Vec::new();
        match plain_outcome {
            Ok(found) => {
                for (position, earlier) in found {
                    if let Some(rid) = earlier.request_id.clone().filter(|_| earlier.undoable(&self.cutoff)) {
                        raced.push((earlier.pk.clone(), rid));
                    }
                    earlier_plain.insert(position, earlier);
                }
            }
            Err(e) => failure = Some(e.into()),
        }
        for outcome in xid_outcomes {
            match outcome {
                Ok(XidPut::Written) => {}
                Ok(XidPut::Raced(winner)) => {
                    if let Some(rid) = winner.request_id.clone().filter(|rid| *rid != self.request_id) {
                        raced.push((winner.pk.clone(), rid));
                    }
                    stored.extend(winner.pack.purchase_xid.clone().map(|x| (x.as_str().to_owned(), winner)));
                }
                Ok(XidPut::Taken(xid)) => taken.push(xid),
                Err(e) => {
                    failure.get_or_insert(e.into());
                }
            }
        }
        if !taken.is_empty() {
            failure = Some(Refused::XidTaken(sorted(taken)));
        }
        if let Some(err) = failure {
            return Err(err);
        }
        if !raced.is_empty() {
            // The winners are reported as this request's packs: adopt them. One
            // undone meanwhile would have to be written again: this request is
            // answered 503 instead (undone by the caller), and its retry writes it.
            let gone = adopt(db, uncommitted(db, raced).await?).await?;
            if !gone.is_empty() {
                return Err(Refused::Store(DbError::Exhausted("a concurrent request undid a pack".into())));
            }
        }
        Ok(earlier_plain)
    }

    /// After a failure: deletes what this run wrote, so an error never
    /// leaves half a request behind and a retry converges — unless it is
    /// too late ([`UNDO_WINDOW`]): another request may have adopted them.
    async fn undo(&self, db: &Db, with_xid: &[NewPack], without_xid: &[NewPack], started: std::time::Instant) -> Result<(), DbError> {
        let request_id = &self.request_id;
        if started.elapsed() > UNDO_WINDOW {
            tracing::error!(request_id, "too late to undo a failed pack request; its packs stay");
            return Err(DbError::Exhausted("too late to undo a failed pack request: send it again".into()));
        }
        let xid_pks = with_xid.iter().map(|p| p.pk.clone()).collect();
        let plain_pks = without_xid.iter().map(|p| p.pk.clone()).collect();
        undo_packs(db, request_id, self.ns, xid_pks, plain_pks).await.map_err(|undo| {
            tracing::error!(error = %undo, request_id, "could not undo a failed pack request");
            DbError::Exhausted(format!("could not undo a failed pack request ({undo}): send it again"))
        })
    }

    /// Step 4: nothing of this run will be undone now: says so, so that a
    /// re-sync reports its packs without adopting them. (If this write
    /// fails, re-syncs adopt instead: slower, as safe.)
    async fn commit(&self, db: &Db, now: time::OffsetDateTime) -> Result<(), DbError> {
        let mut marker = committed_key(&self.request_id);
        marker.insert("ttl".into(), db::n((now + time::Duration::days(1)).unix_timestamp()));
        db.put(marker).await.inspect_err(|e| {
            tracing::warn!(error = %e, request_id = %self.request_id, "could not mark the pack request committed");
        })
    }
}

/// Step 5: the answer in request order — each pack as stored (before, or by
/// an earlier run) or as this run wrote it — and how many this run created.
fn answer(distinct: &[&PackSpec], mut stored: HashMap<String, Stored>, mut earlier_plain: HashMap<usize, Stored>, fresh: impl Iterator<Item = NewPack>) -> Created {
    let mut fresh: HashMap<usize, Pack> = fresh.map(|p| (p.position, p.pack)).collect();
    let mut packs = Vec::with_capacity(distinct.len());
    let mut created = 0;
    for (position, spec) in distinct.iter().enumerate() {
        let found = match &spec.purchase_xid {
            Some(xid) => stored.remove(xid.as_str()).map(|p| p.pack),
            None => earlier_plain.remove(&position).map(|p| p.pack),
        };
        let pack = found.or_else(|| {
            let new = fresh.remove(&position);
            created += usize::from(new.is_some());
            new
        });
        packs.extend(pack);
    }
    Created { packs, created }
}

/// The packs a request answers with, and how many of them it created (the
/// rest were stored before).
pub struct Created {
    pub packs: Vec<Pack>,
    pub created: usize,
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// What one new xid pack's conditional put ended in.
enum XidPut {
    Written,
    /// Another request created it first, in this namespace: returned as stored.
    Raced(Stored),
    /// Another request provisioned the xid to another namespace first.
    Taken(String),
}

/// Puts one new xid pack under `attribute_not_exists(pk)`: one write unit
/// (plus its listing index), half what the same put costs in a transaction.
/// A lost race answers with the pack that stood in the way (ALL_OLD), so it
/// needs no second read.
async fn put_new_xid_pack(db: &Db, ns: NamespaceId, item: Item) -> Result<XidPut, DbError> {
    match db.put_if_absent(item, "request_id").await? {
        None => Ok(XidPut::Written),
        Some(old) => {
            let winner = Stored::of(old)?;
            match (
                winner.pack.purchase_xid.clone(),
                winner.pack.namespace_id == ns,
            ) {
                (Some(_), true) => Ok(XidPut::Raced(winner)),
                (Some(xid), false) => Ok(XidPut::Taken(xid.as_str().to_owned())),
                (None, _) => Err(DbError::Other("a pack without xid under an xid key".into())),
            }
        }
    }
}

/// Deletes what run `request_id` wrote: each pack only where this run
/// created it and it is still in `ns` (a pack moved meanwhile, or one an
/// earlier run of the same request wrote, stays).
async fn undo_packs(
    db: &Db,
    request_id: &str,
    ns: NamespaceId,
    xid_pks: Vec<String>,
    plain_pks: Vec<String>,
) -> Result<(), DbError> {
    let rid = request_id.to_owned();
    let outcomes = db
        .for_each(crate::db::ITEM_CONCURRENCY, xid_pks.into_iter().chain(plain_pks).collect(), move |db, pk| {
            let rid = rid.clone();
            async move {
                let deleted = db
                    .delete_if(
                        pack_key_of(pk.clone()),
                        "request_id = :rid AND namespace_id = :ns",
                        &[(":rid", AttributeValue::S(rid.clone())), (":ns", db::n(ns.0))],
                    )
                    .await;
                if applied(deleted)? {
                    return Ok(true);
                }
                // Not ours any more (adopted, or another run's), or gone: as
                // it should be. Still ours but moved by a move meanwhile: not
                // undone, and the request cannot say nothing was written.
                let still_ours = db.get(pack_key_of(pk.clone())).await?.and_then(|mut i| i.remove("request_id")) == Some(AttributeValue::S(rid));
                if still_ours {
                    return Err(DbError::Exhausted(format!("pack {pk} was moved before it could be undone")));
                }
                Ok(false)
            }
        })
        .await;
    all_ok(outcomes)?;
    Ok(())
}

/// Writes packs without xid: one conditional put each, keyed or not. Keyed,
/// their keys are the Idempotency-Key's, so an earlier run of the same
/// request may have written them: an item already there is returned (by
/// position) as stored instead of overwritten. Keyless, the keys are fresh,
/// and the condition is what keeps a put re-sent after a lost answer from
/// overwriting what happened since (a move): it is recognised as our own.
async fn put_plain_packs(db: &Db, items: Vec<(usize, Item)>) -> Result<Vec<(usize, Stored)>, DbError> {
    let outcomes = db
        .for_each(crate::db::ITEM_CONCURRENCY, items, |db, (position, item)| async move {
            match db.put_if_absent(item, "request_id").await? {
                None => Ok(None),
                Some(old) => Ok(Some((position, Stored::of(old)?))),
            }
        })
        .await;
    Ok(all_ok(outcomes)?.into_iter().flatten().collect())
}

/// A conditional write's outcome: applied, or its condition was false.
fn applied(result: Result<(), DbError>) -> Result<bool, DbError> {
    match result {
        Ok(()) => Ok(true),
        Err(DbError::ConditionFailed(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// How long one move request moves packs before it answers with what is left.
pub const MOVE_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Packs a move request moves whatever its budget, so every call progresses.
pub const MOVE_AT_LEAST: usize = 200;

/// What one move request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub moved: usize,
    /// Packs still in the source namespace when the budget ran out: send the
    /// same request again to move them.
    pub remaining: usize,
}

/// Moves the packs of `from` to `to`: one conditional UpdateItem of each
/// pack's namespace (`namespace_id = from`), [`db::ITEM_CONCURRENCY`] at once
/// — no transaction, since each pack moves on its own: half the capacity.
/// Running it again after a crash moves what is left; a pack is never copied,
/// so never duplicated. Updates not started by `deadline` are left for the
/// next call (at least [`MOVE_AT_LEAST`] are always made), so no request runs
/// past API Gateway's limit however many packs a namespace holds.
pub async fn move_packs(
    db: &Db,
    from: NamespaceId,
    to: NamespaceId,
    deadline: std::time::Instant,
) -> Result<Moved, DbError> {
    let pks: Vec<(usize, String)> = db
        .query_gsi1(&packs_gsi_pk(from))
        .await?
        .into_iter()
        .filter_map(|mut item| match item.remove(PK) {
            Some(AttributeValue::S(pk)) => Some(pk),
            _ => None,
        })
        .enumerate()
        .collect();
    let total = pks.len();
    let outcomes = db
        .for_each(crate::db::ITEM_CONCURRENCY, pks, move |db, (i, pk)| async move {
            if i >= MOVE_AT_LEAST && std::time::Instant::now() >= deadline {
                return Ok(None); // left for the next call
            }
            let moved = db
                .update_if(
                    pack_key_of(pk),
                    "SET namespace_id = :to, #gpk = :gpk",
                    "namespace_id = :from",
                    &[("#gpk", GSI1_PK)],
                    &[
                        (":to", db::n(to.0)),
                        (":from", db::n(from.0)),
                        (":gpk", db::s(packs_gsi_pk(to))),
                    ],
                )
                .await;
            applied(moved).map(Some)
        })
        .await;
    let outcomes = all_ok(outcomes)?;
    let moved = outcomes.iter().filter(|o| **o == Some(true)).count();
    let attempted = outcomes.iter().filter(|o| o.is_some()).count();
    Ok(Moved {
        moved,
        remaining: total - attempted,
    })
}

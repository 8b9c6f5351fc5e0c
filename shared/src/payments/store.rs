//! Payment writes in bulk. Each payment is one small transaction — the payment
//! item plus its work period's aggregates, the latter under
//! `days_unpaid >= :days` — and up to 50 of them (100 actions) for distinct
//! work periods share one TransactWriteItems. Payments of the same work period
//! go in successive rounds, each planned on that period's fresh state, so a
//! failure of one never stops the others and none is planned on stale days.
//!
//! Exactly once when an answer is lost: every job has a token fixed before
//! its first plan — the id of the payment it creates, or the `write_tokens` entry
//! its update stores — derived from the Idempotency-Key when one was sent.
//! A job whose transaction failed its conditions is planned again on a fresh
//! read of its work period and payment; if that read shows its own token,
//! the earlier attempt (or an earlier run of the same request) was applied
//! and the job is answered with what it wrote, never written twice.
//!
//! Key layout:
//! - work period: `pk = WP#<id>`, `sk = WP`, with its payment aggregates kept in
//!   the same item: `days_paid`, `days_unpaid` (= days_worked − days_paid),
//!   `payment_total`, and one counter per payment status. Every payment write
//!   changes them in the same transaction, under `days_unpaid >= :days`, so the
//!   days of active payments can never exceed `days_worked`.
//! - payment: `pk = PAY#<id>`, `sk = PAY`; `gsi1pk = WPPAY#<work period>`,
//!   `gsi2pk = PAYSTATUS#<status>`, both sorted by `<created_at>#<id>`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::rules::*;
use crate::error::Invalid;
use crate::db::{from_item, key, keyed, n, s, Db, DbError, Item, Partition, GSI1, GSI1_PK, GSI2, GSI2_PK, TRANSACT_LIMIT};
use crate::idempotency::RequestIds;
use crate::money::Money;
use crate::validate::{format_date, parse_date};
use time::Date;

/// Times one payment may lose a race for its work period before it is 503.
const MAX_CONFLICTS: u32 = 5;

// ---------------------------------------------------------------- item mapping

pub fn work_period_key(id: &str) -> Item {
    key(format!("WP#{id}"), "WP")
}

pub fn payment_key(id: &str) -> Item {
    key(format!("PAY#{id}"), "PAY")
}

pub fn by_work_period_pk(work_period_id: &str) -> String {
    format!("WPPAY#{work_period_id}")
}

pub fn by_status_pk(status: PaymentStatus) -> String {
    format!("PAYSTATUS#{}", status.as_str())
}

/// Money as stored: an exact decimal `N` (what the work period's `ADD`s keep
/// exact). serde_dynamo writes numbers only from Rust integers and floats,
/// so money attributes are written and read beside it, by [`Money::to_attr`].
fn money_attr(item: &Item, name: &str, what: &str) -> Result<Option<Money>, DbError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(attr) => Money::from_attr(attr).map(Some).ok_or_else(|| DbError::Other(format!("stored {what} has no valid {name}"))),
    }
}

fn stored_date(raw: &str, what: &str) -> Result<Date, DbError> {
    parse_date(raw).map_err(|m| DbError::Other(format!("stored {what}: {m}")))
}

/// A work period as stored (but its money, see [`money_attr`]). Its
/// aggregates are written by `ADD`s, so each may be missing until the first.
#[derive(Serialize, Deserialize)]
struct WorkPeriodItem {
    id: String,
    resource_booking_id: String,
    user_handle: String,
    start_date: String,
    end_date: String,
    days_worked: u8,
    #[serde(default)]
    billing_account_id: Option<u64>,
    #[serde(default)]
    days_paid: u8,
    days_unpaid: u8,
    #[serde(default)]
    n_scheduled: u32,
    #[serde(default)]
    n_in_progress: u32,
    #[serde(default)]
    n_completed: u32,
    #[serde(default)]
    n_failed: u32,
    #[serde(default)]
    n_cancelled: u32,
}

pub fn work_period_from_item(item: Item) -> Result<WorkPeriod, DbError> {
    const W: &str = "work period";
    let member_rate = money_attr(&item, "member_rate", W)?;
    let customer_rate = money_attr(&item, "customer_rate", W)?;
    let payment_total = money_attr(&item, "payment_total", W)?.unwrap_or(Money::ZERO);
    let w: WorkPeriodItem = from_item(item)?;
    let counts = HashMap::from([
        (PaymentStatus::Scheduled, w.n_scheduled),
        (PaymentStatus::InProgress, w.n_in_progress),
        (PaymentStatus::Completed, w.n_completed),
        (PaymentStatus::Failed, w.n_failed),
        (PaymentStatus::Cancelled, w.n_cancelled),
    ]);
    Ok(WorkPeriod {
        start_date: stored_date(&w.start_date, W)?,
        end_date: stored_date(&w.end_date, W)?,
        id: w.id,
        resource_booking_id: w.resource_booking_id,
        user_handle: w.user_handle,
        days_worked: w.days_worked,
        member_rate,
        customer_rate,
        billing_account_id: w.billing_account_id,
        days_paid: w.days_paid,
        days_unpaid: w.days_unpaid,
        payment_total,
        counts,
    })
}

/// A payment as stored (but its money, see [`money_attr`]).
#[derive(Serialize, Deserialize)]
struct PaymentItem {
    id: String,
    work_period_id: String,
    billing_account_id: u64,
    days: u8,
    status: PaymentStatus,
    created_at: String,
    updated_at: String,
    created_by: String,
    updated_by: String,
    version: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    write_tokens: Vec<String>,
}

/// The payment's item: its key, its two listing-index keys (by work period,
/// by status; both sorted by `<created_at>#<id>`), its fields and its money.
pub fn payment_to_item(p: &Payment) -> Result<Item, DbError> {
    let mut base = payment_key(&p.id);
    let sort = format!("{}#{}", p.created_at, p.id);
    base.insert("gsi1pk".into(), s(by_work_period_pk(&p.work_period_id)));
    base.insert("gsi1sk".into(), s(&sort));
    base.insert("gsi2pk".into(), s(by_status_pk(p.status)));
    base.insert("gsi2sk".into(), s(sort));
    base.insert("member_rate".into(), p.member_rate.to_attr());
    base.insert("amount".into(), p.amount.to_attr());
    if let Some(rate) = p.customer_rate {
        base.insert("customer_rate".into(), rate.to_attr());
    }
    let fields = PaymentItem {
        id: p.id.clone(),
        work_period_id: p.work_period_id.clone(),
        billing_account_id: p.billing_account_id,
        days: p.days,
        status: p.status,
        created_at: p.created_at.clone(),
        updated_at: p.updated_at.clone(),
        created_by: p.created_by.clone(),
        updated_by: p.updated_by.clone(),
        version: p.version,
        write_tokens: p.write_tokens.clone(),
    };
    keyed(base, &fields)
}

pub fn payment_from_item(item: Item) -> Result<Payment, DbError> {
    const P: &str = "payment";
    let missing = |name: &str| DbError::Other(format!("stored {P} has no valid {name}"));
    let member_rate = money_attr(&item, "member_rate", P)?.ok_or_else(|| missing("member_rate"))?;
    let amount = money_attr(&item, "amount", P)?.ok_or_else(|| missing("amount"))?;
    let customer_rate = money_attr(&item, "customer_rate", P)?;
    let p: PaymentItem = from_item(item)?;
    Ok(Payment {
        id: p.id,
        work_period_id: p.work_period_id,
        member_rate,
        customer_rate,
        billing_account_id: p.billing_account_id,
        days: p.days,
        amount,
        status: p.status,
        created_at: p.created_at,
        updated_at: p.updated_at,
        created_by: p.created_by,
        updated_by: p.updated_by,
        version: p.version,
        write_tokens: p.write_tokens,
    })
}

/// The work period's registration fields as update-expression values.
pub fn work_period_fields(
    wp: &WorkPeriod,
) -> Vec<(&'static str, &'static str, Option<AttributeValue>)> {
    vec![
        ("id", ":id", Some(s(&wp.id))),
        (
            "resource_booking_id",
            ":rb",
            Some(s(&wp.resource_booking_id)),
        ),
        ("user_handle", ":uh", Some(s(&wp.user_handle))),
        ("start_date", ":sd", Some(s(format_date(wp.start_date)))),
        ("end_date", ":ed", Some(s(format_date(wp.end_date)))),
        ("days_worked", ":dw", Some(n(wp.days_worked))),
        ("member_rate", ":mr", wp.member_rate.map(Money::to_attr)),
        ("customer_rate", ":cr", wp.customer_rate.map(Money::to_attr)),
        ("billing_account_id", ":ba", wp.billing_account_id.map(n)),
    ]
}
impl Ctx {
    /// (Re)reads these work periods and payments, strongly consistent.
    pub async fn load(
        &mut self,
        db: &Db,
        wp_ids: &HashSet<String>,
        payment_ids: &HashSet<String>,
    ) -> Result<(), DbError> {
        let mut keys: Vec<Item> = wp_ids.iter().map(|id| work_period_key(id)).collect();
        keys.extend(payment_ids.iter().map(|id| payment_key(id)));
        for id in wp_ids {
            self.work_periods.remove(id);
        }
        for id in payment_ids {
            self.payments.remove(id);
        }
        for item in db.batch_get(keys).await? {
            match item.get("sk") {
                Some(AttributeValue::S(sk)) if sk == "WP" => {
                    let wp = work_period_from_item(item)?;
                    self.work_periods.insert(wp.id.clone(), wp);
                }
                _ => {
                    let p = payment_from_item(item)?;
                    self.payments.insert(p.id.clone(), p);
                }
            }
        }
        Ok(())
    }
}

/// One payment write: the payment as it will be, and the actions that write it.
pub struct Plan {
    pub payment: Payment,
    pub actions: Vec<TransactWriteItem>,
    /// What its transaction adds to the work period's aggregates, if anything.
    pub delta: Option<Delta>,
}

impl Plan {
    /// The actions of a planned change to a payment of work period `wp`: the
    /// payment's put (new, or replacing the version it was planned on) and
    /// the work period's aggregates, if they change.
    fn of(db: &Db, wp: &str, change: Change) -> Result<Plan, DbError> {
        let mut actions = vec![match change.expected_version {
            None => payment_put_new(db, &change.payment)?,
            Some(v) => payment_put_versioned(db, &change.payment, v)?,
        }];
        if let Some(delta) = &change.delta {
            actions.push(update_work_period(db, wp, delta)?);
        }
        Ok(Plan { payment: change.payment, actions, delta: change.delta })
    }
}

/// A request item waiting its turn.
pub struct Job<I> {
    pub idx: usize,
    /// The work period it touches; jobs of one period run one per round.
    pub work_period_id: String,
    /// The payment it creates or updates (re-read after a conflict).
    pub payment_id: String,
    /// The created payment's id, or the token an update writes.
    pub token: String,
    pub input: I,
    conflicts: u32,
    /// Its transaction failed beside others for a reason of its own: it is
    /// written alone from then on, so one bad payment answers only for itself.
    alone: bool,
    /// Its transaction ran out of retries once: it may have been applied, so
    /// it is re-read (and found, if it was) before it is tried again.
    exhausted: bool,
}

impl<I> Job<I> {
    pub fn new(
        idx: usize,
        work_period_id: String,
        payment_id: String,
        token: String,
        input: I,
    ) -> Self {
        Self {
            idx,
            work_period_id,
            payment_id,
            token,
            input,
            conflicts: 0,
            alone: false,
            exhausted: false,
        }
    }
}

enum Outcome {
    Written,
    /// Its own condition failed: the work period or payment changed meanwhile.
    Conflict,
    /// Another item of its transaction failed; it was not applied.
    NotRun,
    /// Its shared transaction failed for good (not busy, not a condition):
    /// it is tried again in a transaction of its own.
    Isolate,
    Failed(DbError),
}

/// Runs `jobs` to completion: plans each on the current state, writes a round
/// of transactions, re-reads what changed, and goes on until every job has an
/// answer. Returns one result per job index. No round starts after
/// `deadline` (the first always runs): the jobs left are answered 503, to be
/// sent again.
pub async fn run_jobs<I, F>(db: &Db, ctx: Ctx, jobs: Vec<Job<I>>, deadline: std::time::Instant, plan: F) -> HashMap<usize, Result<Payment, Refused>>
where
    I: Send + 'static,
    F: Fn(&Ctx, &I, &str) -> Result<Planned, Refused>,
{
    let mut run = Run::new(ctx, jobs);
    let mut rounds = 0;
    while !run.queues.is_empty() {
        if rounds > 0 && std::time::Instant::now() >= deadline {
            run.answer_rest("time budget spent: payments left for the next request", Refused::Busy);
            break;
        }
        rounds += 1;
        let round = run.plan_round(db, &plan);
        if round.is_empty() {
            break;
        }
        let written = db.for_each(crate::db::CHUNK_CONCURRENCY, transactions(round), |db, chunk| async move { Ok(write_chunk(&db, chunk).await) }).await;
        let mut stale = Stale::default();
        for (job, plan, outcome) in written.into_iter().flatten().flatten() {
            run.settle(job, plan, outcome, &mut stale);
        }
        if let Err(e) = run.reread(db, stale).await {
            run.answer_rest("a re-read failed", Refused::from(e));
            break;
        }
    }
    run.out
}

/// The state of a [`run_jobs`]: what plans are made from, the jobs waiting
/// (one queue per work period, so a period's payments go one per round), and
/// the answers so far.
struct Run<I> {
    ctx: Ctx,
    queues: BTreeMap<String, VecDeque<Job<I>>>,
    out: HashMap<usize, Result<Payment, Refused>>,
}

/// What must be read again before the next round: the work periods and
/// payments of jobs whose transaction did not go as planned.
#[derive(Default)]
struct Stale {
    work_periods: HashSet<String>,
    payments: HashSet<String>,
}

impl<I> Run<I> {
    fn new(ctx: Ctx, jobs: Vec<Job<I>>) -> Self {
        let mut queues: BTreeMap<String, VecDeque<Job<I>>> = BTreeMap::new();
        for job in jobs {
            queues.entry(job.work_period_id.clone()).or_default().push_back(job);
        }
        Self { ctx, queues, out: HashMap::new() }
    }

    /// Answers every job still waiting with `err`.
    fn answer_rest(&mut self, why: &str, err: Refused) {
        tracing::warn!(left = self.queues.values().map(VecDeque::len).sum::<usize>(), why);
        for job in std::mem::take(&mut self.queues).into_values().flatten() {
            self.out.insert(job.idx, Err(err.clone()));
        }
    }

    /// Plans the head of every queue; a job that cannot be planned, or was
    /// already written, is answered now and the next of its queue planned.
    fn plan_round<F>(&mut self, db: &Db, plan: &F) -> Vec<(Job<I>, Plan)>
    where
        F: Fn(&Ctx, &I, &str) -> Result<Planned, Refused>,
    {
        let mut round = Vec::new();
        for queue in self.queues.values_mut() {
            while let Some(job) = queue.pop_front() {
                let planned = plan(&self.ctx, &job.input, &job.token)
                    .and_then(|p| match p {
                        Planned::Write(change) => Plan::of(db, &job.work_period_id, change).map(Some).map_err(Refused::from),
                        Planned::Done(payment) => {
                            self.out.insert(job.idx, Ok(payment));
                            Ok(None)
                        }
                    });
                match planned {
                    Ok(Some(p)) => {
                        round.push((job, p));
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.out.insert(job.idx, Err(e));
                    }
                }
            }
        }
        round
    }

    /// Takes one job's outcome: answers it, or puts it back at the head of
    /// its queue (marking what must be read again first).
    fn settle(&mut self, mut job: Job<I>, plan: Plan, outcome: Outcome, stale: &mut Stale) {
        let requeue = match outcome {
            Outcome::Written => {
                // What this transaction wrote is known: the next job of the
                // same work period (or payment) is planned on it without a
                // re-read. Had anyone else changed them meanwhile, that
                // job's own conditions fail and it is planned again on a read.
                let known = match &plan.delta {
                    None => true, // the work period is as it was read
                    Some(d) => match self.ctx.work_periods.get(&job.work_period_id).and_then(|wp| d.applied_to(wp)) {
                        Some(wp) => {
                            self.ctx.work_periods.insert(job.work_period_id.clone(), wp);
                            true
                        }
                        None => false,
                    },
                };
                self.ctx.payments.insert(plan.payment.id.clone(), plan.payment.clone());
                self.out.insert(job.idx, Ok(plan.payment));
                if known {
                    return;
                }
                false
            }
            Outcome::Failed(DbError::Exhausted(_)) if !job.exhausted => {
                job.exhausted = true;
                true
            }
            Outcome::Failed(e) => {
                self.out.insert(job.idx, Err(e.into()));
                false
            }
            Outcome::NotRun => true,
            Outcome::Isolate => {
                job.alone = true;
                true
            }
            Outcome::Conflict => {
                job.conflicts += 1;
                if job.conflicts > MAX_CONFLICTS {
                    // Transient: 503 with Retry-After, never stored as the key's answer.
                    tracing::warn!(work_period_id = %job.work_period_id, "work period kept changing");
                    self.out.insert(job.idx, Err(Refused::Busy));
                    false
                } else {
                    true
                }
            }
        };
        stale.work_periods.insert(job.work_period_id.clone());
        // Re-read with its work period: a failed condition may be this
        // job's own earlier attempt, found by its token.
        stale.payments.insert(job.payment_id.clone());
        if requeue {
            self.queues.entry(job.work_period_id.clone()).or_default().push_front(job);
        }
    }

    /// Reads again what a remaining job will be planned on, and only that.
    async fn reread(&mut self, db: &Db, mut stale: Stale) -> Result<(), DbError> {
        self.queues.retain(|_, q| !q.is_empty());
        stale.work_periods.retain(|id| self.queues.contains_key(id));
        let pending: HashSet<&String> = self.queues.values().flatten().map(|j| &j.payment_id).collect();
        stale.payments.retain(|id| pending.contains(id));
        if stale.work_periods.is_empty() && stale.payments.is_empty() {
            return Ok(());
        }
        self.ctx.load(db, &stale.work_periods, &stale.payments).await
    }
}

/// A round's plans as transactions: up to [`TRANSACT_LIMIT`] actions each,
/// shared by jobs of distinct work periods; a job that failed beside others
/// for a reason of its own goes alone.
fn transactions<I>(round: Vec<(Job<I>, Plan)>) -> Vec<Vec<(Job<I>, Plan)>> {
    let mut chunks: Vec<Vec<(Job<I>, Plan)>> = Vec::new();
    let mut actions_in_last = 0;
    for entry in round {
        let n = entry.1.actions.len();
        if entry.0.alone {
            chunks.insert(0, vec![entry]);
            continue;
        }
        if chunks.is_empty() || actions_in_last + n > TRANSACT_LIMIT {
            chunks.push(Vec::new());
            actions_in_last = 0;
        }
        actions_in_last += n;
        if let Some(last) = chunks.last_mut() {
            last.push(entry);
        }
    }
    chunks
}

type Written<I> = Vec<(Job<I>, Plan, Outcome)>;

async fn write_chunk<I>(db: &Db, chunk: Vec<(Job<I>, Plan)>) -> Written<I> {
    let mut owner = Vec::new();
    let mut actions = Vec::new();
    for (i, (_, plan)) in chunk.iter().enumerate() {
        for action in &plan.actions {
            owner.push(i);
            actions.push(action.clone());
        }
    }
    let result = db.transact(actions).await;
    let failed: HashSet<usize> = match &result {
        Err(DbError::ConditionFailed(indices)) => indices
            .iter()
            .filter_map(|a| owner.get(*a).copied())
            .collect(),
        _ => HashSet::new(),
    };
    let shared = chunk.len() > 1;
    let mut result = Some(result);
    chunk
        .into_iter()
        .enumerate()
        .map(|(i, (job, plan))| {
            let outcome = match &result {
                Some(Ok(())) => Outcome::Written,
                Some(Err(DbError::ConditionFailed(_))) if failed.contains(&i) => Outcome::Conflict,
                Some(Err(DbError::ConditionFailed(_))) => Outcome::NotRun,
                Some(Err(DbError::Other(_))) if shared => Outcome::Isolate,
                _ => match result.take() {
                    Some(Err(e)) => Outcome::Failed(e),
                    _ => Outcome::Failed(DbError::Exhausted("transaction failed".into())),
                },
            };
            (job, plan, outcome)
        })
        .collect()
}

/// Puts the payment item, on condition `condition`.
pub fn put_payment(
    db: &Db,
    p: &Payment,
    condition: &str,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, DbError> {
    let mut put = Put::builder()
        .table_name(&*db.table)
        .set_item(Some(payment_to_item(p)?))
        .condition_expression(condition);
    for (k, v) in values {
        put = put.expression_attribute_values(*k, v.clone());
    }
    if condition.contains("#pk") {
        put = put.expression_attribute_names("#pk", "pk");
    }
    put.build()
        .map(|put| TransactWriteItem::builder().put(put).build())
        .map_err(DbError::from)
}

/// Changes a work period's aggregates by `d`; when days are taken, on
/// condition that enough are unpaid.
pub fn update_work_period(
    db: &Db,
    work_period_id: &str,
    d: &Delta,
) -> Result<TransactWriteItem, DbError> {
    let mut adds = vec![
        "days_unpaid :neg_days",
        "days_paid :days",
        "payment_total :amount",
    ];
    let mut values = vec![
        (":neg_days", n(-d.days)),
        (":days", n(d.days)),
        (
            ":amount",
            AttributeValue::N((d.amount.decimal()).to_string()),
        ),
    ];
    let (from_clause, to_clause);
    if d.from != d.to {
        if let Some(from) = d.from {
            from_clause = format!("{} :minus_one", from.counter());
            adds.push(&from_clause);
            values.push((":minus_one", n(-1)));
        }
        if let Some(to) = d.to {
            to_clause = format!("{} :one", to.counter());
            adds.push(&to_clause);
            values.push((":one", n(1)));
        }
    }
    let condition = if d.days > 0 {
        "attribute_exists(pk) AND days_unpaid >= :days"
    } else {
        "attribute_exists(pk)"
    };
    let mut update = Update::builder()
        .table_name(&*db.table)
        .set_key(Some(work_period_key(work_period_id)))
        .update_expression(format!("ADD {}", adds.join(", ")))
        .condition_expression(condition);
    for (k, v) in values {
        update = update.expression_attribute_values(k, v);
    }
    update
        .build()
        .map(|u| TransactWriteItem::builder().update(u).build())
        .map_err(DbError::from)
}

/// Registers (creates or replaces) a work period, keeping its aggregates:
/// one UpdateItem, refused if the new days worked are fewer than those paid.
pub async fn put_work_period(db: &Db, wp: &WorkPeriod) -> Result<WorkPeriod, Refused> {
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    let mut values: Vec<(&str, AttributeValue)> = vec![(":zero", n(0))];
    for (attr, placeholder, value) in work_period_fields(wp) {
        match value {
            Some(v) => {
                sets.push(format!("{attr} = {placeholder}"));
                values.push((placeholder, v));
            }
            None => removes.push(attr),
        }
    }
    sets.push("days_paid = if_not_exists(days_paid, :zero)".into());
    sets.push("days_unpaid = :dw - if_not_exists(days_paid, :zero)".into());
    sets.push("payment_total = if_not_exists(payment_total, :zero)".into());
    for status in PaymentStatus::ALL {
        sets.push(format!(
            "{c} = if_not_exists({c}, :zero)",
            c = status.counter()
        ));
    }
    let mut expr = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    match db
        .update_if(
            work_period_key(&wp.id),
            &expr,
            "attribute_not_exists(pk) OR days_paid <= :dw",
            &[],
            &values,
        )
        .await
    {
        Ok(()) => {}
        Err(DbError::ConditionFailed(_)) => return Err(Refused::DaysBelowPaid(wp.id.clone())),
        Err(e) => return Err(e.into()),
    }
    get_work_period(db, &wp.id)
        .await?
        .ok_or_else(|| Refused::Store("work period vanished after its write".into()))
}

pub async fn get_work_period(db: &Db, id: &str) -> Result<Option<WorkPeriod>, DbError> {
    db.get(work_period_key(id))
        .await?
        .map(work_period_from_item)
        .transpose()
}

pub async fn get_payment(db: &Db, id: &str) -> Result<Option<Payment>, DbError> {
    db.get(payment_key(id))
        .await?
        .map(payment_from_item)
        .transpose()
}

pub fn payment_put_new(db: &Db, p: &Payment) -> Result<TransactWriteItem, DbError> {
    put_payment(db, p, "attribute_not_exists(#pk)", &[])
}

pub fn payment_put_versioned(
    db: &Db,
    p: &Payment,
    expected_version: u64,
) -> Result<TransactWriteItem, DbError> {
    put_payment(
        db,
        p,
        "version = :version",
        &[(":version", n(expected_version))],
    )
}

// ---------------------------------------------------------------- bulk operations

/// Creates payments; one result per input, in order. The `i`th payment's id
/// is `ids.id("payment", i)`: with an Idempotency-Key, a re-run of the same
/// request finds the payments an earlier run created and answers with them.
pub async fn create_payments<E: From<Refused>>(
    db: &Db,
    sub: &str,
    ids: &RequestIds,
    deadline: std::time::Instant,
    clock: &crate::clock::Clock,
    inputs: Vec<Result<NewPayment, E>>,
) -> Vec<Result<Payment, E>> {
    let mut results: Vec<Option<Result<Payment, E>>> = Vec::with_capacity(inputs.len());
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
        return answered(results, HashMap::new(), Some(Refused::from(e)));
    }
    let now = clock.now();
    let done = run_jobs(db, ctx, jobs, deadline, |ctx, input, id| plan_create(ctx, input, id, sub, now)).await;
    answered(results, done, None)
}

/// Updates payments; one result per input, in order. The `i`th update writes
/// the token `ids.id("payment-update", i)`, by which a lost answer's retry
/// or a re-run of the same request recognises it as done.
pub async fn update_payments<E: From<Refused>>(
    db: &Db,
    sub: &str,
    ids: &RequestIds,
    deadline: std::time::Instant,
    clock: &crate::clock::Clock,
    inputs: Vec<Result<(String, PaymentChange), E>>,
) -> Vec<Result<Payment, E>> {
    let mut results: Vec<Option<Result<Payment, E>>> = Vec::with_capacity(inputs.len());
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
        return answered(results, HashMap::new(), Some(Refused::from(e)));
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
            None => results[idx] = Some(Err(Refused::PaymentNotFound(id).into())),
        }
    }
    let done = run_jobs(db, ctx, jobs, deadline, |ctx, (id, change), token| plan_update(ctx, id, change, token, sub, clock.now())).await;
    answered(results, done, None)
}

/// One answer per input, in order: the input's own error, else what its job
/// came to (`failed`: the error of every job, when none could run).
fn answered<E: From<Refused>>(
    results: Vec<Option<Result<Payment, E>>>,
    mut done: HashMap<usize, Result<Payment, Refused>>,
    failed: Option<Refused>,
) -> Vec<Result<Payment, E>> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let outcome = done.remove(&i).or_else(|| failed.clone().map(Err));
                outcome.unwrap_or_else(|| Err(Refused::Store("payment left unanswered".into()))).map_err(E::from)
            })
        })
        .collect()
}


// ---------------------------------------------------------------- listing

/// Which payments a listing shows: of one work period (and one status of
/// it), of one status, or all.
pub struct Listing {
    pub work_period_id: Option<String>,
    pub status: Option<PaymentStatus>,
}

/// Where a page ends: which partition (for the all-statuses listing), and the
/// last item's index sort key and id.
#[derive(Clone, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "p")]
    pub partition: String,
    #[serde(rename = "k")]
    pub sort: String,
    #[serde(rename = "i")]
    pub id: String,
}

/// One page of at most `per_page` payments after `after`, and where the next
/// page begins if one may follow: by work period (optionally one status,
/// filtered), by one status, or every status in turn — Queries of the two
/// listing indexes ([`Db::query_window`]), never a Scan.
pub async fn list_payments(db: &Db, listing: &Listing, per_page: usize, after: Option<Cursor>) -> Result<(Vec<Payment>, Option<Cursor>), Refused> {
    let (index, pk_attr, sk_attr, partitions): (_, _, _, Vec<String>) = match (&listing.work_period_id, listing.status) {
        (Some(wp), _) => (GSI1, GSI1_PK, "gsi1sk", vec![by_work_period_pk(wp)]),
        (None, Some(st)) => (GSI2, GSI2_PK, "gsi2sk", vec![by_status_pk(st)]),
        (None, None) => (GSI2, GSI2_PK, "gsi2sk", PaymentStatus::ALL.iter().map(|s| by_status_pk(*s)).collect()),
    };
    let first = match &after {
        None => 0,
        Some(c) => partitions.iter().position(|p| *p == c.partition).ok_or_else(|| Invalid::field("next", "does not belong to this listing"))?,
    };
    let mut start = after.map(|c| {
        let mut k = payment_key(&c.id);
        k.insert(pk_attr.into(), s(c.partition));
        k.insert(sk_attr.into(), s(c.sort));
        k
    });
    // By work period the index holds every status: one is kept by a filter.
    let only = listing.work_period_id.as_ref().and(listing.status).map(|st| ("status", st.as_str()));
    let mut page: Vec<(String, Payment)> = Vec::new();
    let mut next = None;
    for (i, pk) in partitions.iter().enumerate().skip(first) {
        let partition = Partition { only, ..Partition::index(index, pk_attr, pk) };
        let (items, more) = db.query_window(&partition, start.take(), 0, per_page - page.len()).await?;
        for item in items {
            let sort = match item.get(sk_attr) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            page.push((sort, payment_from_item(item)?));
        }
        if page.len() == per_page {
            if more || i + 1 < partitions.len() {
                next = page.last().map(|(sort, p)| Cursor { partition: pk.clone(), sort: sort.clone(), id: p.id.clone() });
            }
            break;
        }
    }
    Ok((page.into_iter().map(|(_, p)| p).collect(), next))
}

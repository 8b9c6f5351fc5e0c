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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::model::*;
use crate::db::{n, Db, DbError, Item, TRANSACT_LIMIT};
use crate::error::ApiError;
use crate::money::Money;

/// Times one payment may lose a race for its work period before it is 409.
const MAX_CONFLICTS: u32 = 5;

/// What plans are made from: the work periods and payments involved.
#[derive(Default)]
pub struct Ctx {
    pub work_periods: HashMap<String, WorkPeriod>,
    pub payments: HashMap<String, Payment>,
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
                    let wp = work_period_from_item(&item)?;
                    self.work_periods.insert(wp.id.clone(), wp);
                }
                _ => {
                    let p = payment_from_item(&item)?;
                    self.payments.insert(p.id.clone(), p);
                }
            }
        }
        Ok(())
    }
}

/// What planning a job decided.
pub enum Planned {
    /// Write this.
    Write(Plan),
    /// Already written by this job (an attempt whose answer was lost, or an
    /// earlier run of the same request): answer with it.
    Done(Payment),
}

/// One payment write: the payment as it will be, and the actions that write it.
pub struct Plan {
    pub payment: Payment,
    pub actions: Vec<TransactWriteItem>,
    /// What its transaction adds to the work period's aggregates, if anything.
    pub delta: Option<Delta>,
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
pub async fn run_jobs<I, F>(db: &Db, mut ctx: Ctx, jobs: Vec<Job<I>>, deadline: std::time::Instant, plan: F) -> HashMap<usize, Result<Payment, ApiError>>
where
    I: Send + 'static,
    F: Fn(&Ctx, &I, &str) -> Result<Planned, ApiError>,
{
    let mut rounds = 0;
    let mut out = HashMap::new();
    let mut queues: BTreeMap<String, VecDeque<Job<I>>> = BTreeMap::new();
    for job in jobs {
        queues
            .entry(job.work_period_id.clone())
            .or_default()
            .push_back(job);
    }
    while !queues.is_empty() {
        if rounds > 0 && std::time::Instant::now() >= deadline {
            tracing::warn!(left = queues.values().map(VecDeque::len).sum::<usize>(), "time budget spent: payments left for the next request");
            for job in queues.into_values().flatten() {
                out.insert(job.idx, Err(ApiError::Unavailable { retry_after_secs: 1 }));
            }
            break;
        }
        rounds += 1;
        // Plan the head of every queue; a job that cannot be planned is answered now.
        let mut round: Vec<(Job<I>, Plan)> = Vec::new();
        for queue in queues.values_mut() {
            while let Some(job) = queue.pop_front() {
                match plan(&ctx, &job.input, &job.token) {
                    Ok(Planned::Write(p)) => {
                        round.push((job, p));
                        break;
                    }
                    Ok(Planned::Done(payment)) => {
                        out.insert(job.idx, Ok(payment));
                    }
                    Err(e) => {
                        out.insert(job.idx, Err(e));
                    }
                }
            }
        }
        if round.is_empty() {
            break;
        }
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
        let written = db
            .for_each_chunk(chunks, |db, chunk| async move {
                Ok(write_chunk(&db, chunk).await)
            })
            .await;

        let mut stale_wps = HashSet::new();
        let mut stale_payments = HashSet::new();
        for outcome in written.into_iter().flatten().flatten() {
            let (mut job, plan, result) = outcome;
            let requeue = match result {
                Outcome::Written => {
                    // What this transaction wrote is known: the next job of the
                    // same work period (or payment) is planned on it without a
                    // re-read. Had anyone else changed them meanwhile, that
                    // job's own conditions fail and it is planned again on a read.
                    let known = match &plan.delta {
                        None => true, // the work period is as it was read
                        Some(d) => match ctx
                            .work_periods
                            .get(&job.work_period_id)
                            .and_then(|wp| d.applied_to(wp))
                        {
                            Some(wp) => {
                                ctx.work_periods.insert(job.work_period_id.clone(), wp);
                                true
                            }
                            None => false,
                        },
                    };
                    ctx.payments
                        .insert(plan.payment.id.clone(), plan.payment.clone());
                    out.insert(job.idx, Ok(plan.payment));
                    if known {
                        continue;
                    }
                    false
                }
                Outcome::Failed(DbError::Exhausted(_)) if !job.exhausted => {
                    job.exhausted = true;
                    true
                }
                Outcome::Failed(e) => {
                    out.insert(job.idx, Err(e.into()));
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
                        out.insert(
                            job.idx,
                            Err(ApiError::Unavailable {
                                retry_after_secs: 1,
                            }),
                        );
                        false
                    } else {
                        true
                    }
                }
            };
            stale_wps.insert(job.work_period_id.clone());
            // Re-read with its work period: a failed condition may be this
            // job's own earlier attempt, found by its token.
            stale_payments.insert(job.payment_id.clone());
            if requeue {
                queues
                    .entry(job.work_period_id.clone())
                    .or_default()
                    .push_front(job);
            }
        }
        queues.retain(|_, q| !q.is_empty());
        // Only what a remaining job will be planned on needs reading again.
        stale_wps.retain(|id| queues.contains_key(id));
        let pending_payments: HashSet<&String> =
            queues.values().flatten().map(|j| &j.payment_id).collect();
        stale_payments.retain(|id| pending_payments.contains(id));
        if !stale_wps.is_empty() || !stale_payments.is_empty() {
            if let Err(e) = ctx.load(db, &stale_wps, &stale_payments).await {
                let err = ApiError::from(e);
                for job in queues.into_values().flatten() {
                    out.insert(job.idx, Err(err.clone()));
                }
                break;
            }
        }
    }
    out
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

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> ApiError {
    ApiError::Internal(format!("build request: {e}"))
}

/// Puts the payment item, on condition `condition`.
pub fn put_payment(
    db: &Db,
    p: &Payment,
    condition: &str,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, ApiError> {
    let mut put = Put::builder()
        .table_name(&*db.table)
        .set_item(Some(payment_to_item(p)))
        .condition_expression(condition);
    for (k, v) in values {
        put = put.expression_attribute_values(*k, v.clone());
    }
    if condition.contains("#pk") {
        put = put.expression_attribute_names("#pk", "pk");
    }
    put.build()
        .map(|put| TransactWriteItem::builder().put(put).build())
        .map_err(build_err)
}

/// Changes a work period's aggregates by these deltas; when days are taken,
/// on condition that enough are unpaid.
pub struct Delta {
    pub days: i64,
    pub amount: Money,
    pub from: Option<PaymentStatus>,
    pub to: Option<PaymentStatus>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.days == 0 && self.amount == Money::ZERO && self.from == self.to
    }

    /// `wp` as this delta's transaction left it (the same ADDs, in memory),
    /// or `None` if the result would not be a valid work period.
    pub fn applied_to(&self, wp: &WorkPeriod) -> Option<WorkPeriod> {
        let mut next = wp.clone();
        next.days_paid = u8::try_from(i64::from(wp.days_paid) + self.days).ok()?;
        next.days_unpaid = u8::try_from(i64::from(wp.days_unpaid) - self.days).ok()?;
        next.payment_total = wp.payment_total.checked_add(self.amount)?;
        if self.from != self.to {
            for (status, step) in [(self.from, -1i64), (self.to, 1)] {
                if let Some(status) = status {
                    let count = next.counts.entry(status).or_insert(0);
                    *count = u32::try_from(i64::from(*count) + step).ok()?;
                }
            }
        }
        Some(next)
    }
}

pub fn update_work_period(
    db: &Db,
    work_period_id: &str,
    d: &Delta,
) -> Result<TransactWriteItem, ApiError> {
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
        .map_err(build_err)
}

/// Registers (creates or replaces) a work period, keeping its aggregates:
/// one UpdateItem, refused if the new days worked are fewer than those paid.
pub async fn put_work_period(db: &Db, wp: &WorkPeriod) -> Result<WorkPeriod, ApiError> {
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
        Err(DbError::ConditionFailed(_)) => {
            return Err(ApiError::Conflict(format!(
                "daysWorked cannot be fewer than the days already paid on work period {}",
                wp.id
            )))
        }
        Err(e) => return Err(e.into()),
    }
    get_work_period(db, &wp.id)
        .await?
        .ok_or_else(|| ApiError::Internal("work period vanished after its write".into()))
}

pub async fn get_work_period(db: &Db, id: &str) -> Result<Option<WorkPeriod>, DbError> {
    db.get(work_period_key(id))
        .await?
        .map(|item| work_period_from_item(&item))
        .transpose()
}

pub async fn get_payment(db: &Db, id: &str) -> Result<Option<Payment>, DbError> {
    db.get(payment_key(id))
        .await?
        .map(|item| payment_from_item(&item))
        .transpose()
}

pub fn payment_put_new(db: &Db, p: &Payment) -> Result<TransactWriteItem, ApiError> {
    put_payment(db, p, "attribute_not_exists(#pk)", &[])
}

pub fn payment_put_versioned(
    db: &Db,
    p: &Payment,
    expected_version: u64,
) -> Result<TransactWriteItem, ApiError> {
    put_payment(
        db,
        p,
        "version = :version",
        &[(":version", n(expected_version))],
    )
}

//! Payment writes in bulk, in rounds. Each payment is one small transaction — the payment
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

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::rules::*;
use super::store::*;
use crate::db::{Db, DbError, TRANSACT_LIMIT};
use crate::idempotency::RequestIds;

/// Times one payment may lose a race for its work period before it is 503.
const MAX_CONFLICTS: u32 = 5;

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



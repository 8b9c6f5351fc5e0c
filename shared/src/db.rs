//! The DynamoDB bulk engine: every batch API at its limit (BatchGetItem 100,
//! BatchWriteItem 25, TransactWriteItems 100), chunks run concurrently, and
//! `UnprocessedItems`/`UnprocessedKeys`, throttling and transaction conflicts
//! retried with bounded exponential backoff and full jitter. The SDK's own
//! retries are off so that one policy, here, bounds every attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt};

pub type Item = HashMap<String, AttributeValue>;

pub const BATCH_GET_LIMIT: usize = 100;
pub const BATCH_WRITE_LIMIT: usize = 25;
pub const TRANSACT_LIMIT: usize = 100;
/// Chunks of one bulk call in flight at once.
pub const CHUNK_CONCURRENCY: usize = 8;
/// Single-item requests of one call in flight at once (packs, moves): enough
/// to keep a connection pool busy without one call hogging a table partition.
pub const ITEM_CONCURRENCY: usize = 16;

/// Names of the table's key attributes and its one GSI (see template.yaml).
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in [0, min(max, base·2^attempt)].
    fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        cap.mul_f64(fastrand::f64())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Throttling, conflicts or unprocessed items outlasted every retry.
    #[error("DynamoDB is busy: {0}")]
    Exhausted(String),
    /// A transaction was cancelled because these items' conditions failed
    /// (indices into the request).
    #[error("condition failed on items {0:?}")]
    ConditionFailed(Vec<usize>),
    #[error("DynamoDB error: {0}")]
    Other(String),
}

/// A request the SDK could not build (a missing required field): our fault.
impl From<aws_sdk_dynamodb::error::BuildError> for DbError {
    fn from(e: aws_sdk_dynamodb::error::BuildError) -> Self {
        DbError::Other(format!("build request: {e}"))
    }
}

/// Error codes that mean "try again later", not "this request is wrong".
fn is_retryable_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionConflictException"
                | "TransactionInProgressException"
                | "ThrottlingError"
                | "TransactionConflict"
                | "ProvisionedThroughputExceeded"
        )
    )
}

enum Failure {
    Retry(String),
    Fatal(DbError),
}

/// What one attempt of a DynamoDB call came to.
enum Attempt<S, T> {
    Done(T),
    /// Try again after a backoff, with `S`: what is left to do (the keys or
    /// writes DynamoDB left unprocessed), and why.
    Again(S, String),
    Failed(DbError),
}

impl<S, T> Attempt<S, T> {
    /// An SDK error: retryable (throttling, a lost answer, a timeout) or not.
    fn sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(err: SdkError<E, R>, state: S) -> Self {
        match classify(err) {
            Failure::Retry(cause) => Attempt::Again(state, cause),
            Failure::Fatal(e) => Attempt::Failed(e),
        }
    }
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: SdkError<E, R>,
) -> Failure {
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Retry(format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ))
        }
        SdkError::ServiceError(service)
            if service.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Failure::Fatal(DbError::ConditionFailed(vec![0]))
        }
        SdkError::ServiceError(service) if is_retryable_code(service.err().code()) => {
            Failure::Retry(service.err().code().unwrap_or("retryable").to_owned())
        }
        _ => Failure::Fatal(DbError::Other(format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        ))),
    }
}

#[derive(Clone)]
pub struct Db {
    pub client: Client,
    pub table: Arc<str>,
    pub retry: RetryPolicy,
}

impl Db {
    pub fn new(client: Client, table: impl Into<Arc<str>>) -> Self {
        Self {
            client,
            table: table.into(),
            retry: RetryPolicy::default(),
        }
    }

    async fn backoff(&self, attempt: u32, cause: &str) -> Result<(), DbError> {
        if attempt + 1 >= self.retry.max_attempts {
            return Err(DbError::Exhausted(cause.to_owned()));
        }
        tracing::debug!(attempt, cause, "retrying DynamoDB call");
        crate::telemetry::count(crate::telemetry::metric::DYNAMODB_RETRIES, 1);
        tokio::time::sleep(self.retry.delay(attempt)).await;
        Ok(())
    }

    /// The one retry loop: runs `attempt` on `state` until it is done, fails
    /// for good, or the policy's attempts run out ([`DbError::Exhausted`]),
    /// with a full-jitter backoff before each retry. `attempt` is told
    /// whether an earlier attempt failed in a way that may have been applied
    /// (its answer lost), so a conditional write can recognise its own.
    ///
    /// The whole call, retries included, is one `dynamodb` span (a trace's
    /// `DynamoDB.<op>`), with its retries counted on it.
    async fn retrying<S, T, F, Fut>(&self, op: &'static str, state: S, attempt: F) -> Result<T, DbError>
    where
        F: FnMut(S, bool) -> Fut,
        Fut: std::future::Future<Output = Attempt<S, T>>,
    {
        let span = tracing::info_span!(
            "dynamodb",
            otel.name = %format_args!("DynamoDB.{op}"),
            otel.kind = "client",
            db.system = "dynamodb",
            db.operation = op,
            aws.dynamodb.table_names = %self.table,
            retries = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        tracing::Instrument::instrument(self.retry_loop(state, attempt), span).await
    }

    async fn retry_loop<S, T, F, Fut>(&self, mut state: S, mut attempt: F) -> Result<T, DbError>
    where
        F: FnMut(S, bool) -> Fut,
        Fut: std::future::Future<Output = Attempt<S, T>>,
    {
        let mut n = 0;
        let mut retried = false;
        loop {
            match attempt(state, retried).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Failed(e) => {
                    if !matches!(e, DbError::ConditionFailed(_)) {
                        tracing::Span::current().record("otel.status_code", "ERROR");
                    }
                    return Err(e);
                }
                Attempt::Again(left, cause) => {
                    tracing::Span::current().record("retries", n + 1);
                    if let Err(e) = self.backoff(n, &cause).await {
                        tracing::Span::current().record("otel.status_code", "ERROR");
                        return Err(e);
                    }
                    state = left;
                    n += 1;
                    retried = true;
                }
            }
        }
    }

    /// Runs one SDK `call` until it succeeds, fails for good, or retries run out.
    pub async fn with_retries<T, E, R, F, Fut>(&self, op: &'static str, mut call: F) -> Result<T, DbError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
    {
        self.retrying(op, (), |(), _| {
            let sent = call();
            async move {
                match sent.await {
                    Ok(v) => Attempt::Done(v),
                    Err(err) => Attempt::sdk(err, ()),
                }
            }
        })
        .await
    }

    pub async fn get(&self, key: Item) -> Result<Option<Item>, DbError> {
        self.with_retries("GetItem", || {
            self.client
                .get_item()
                .table_name(&*self.table)
                .set_key(Some(key.clone()))
                .consistent_read(true)
                .send()
        })
        .await
        .map(|out| out.item)
    }

    pub async fn put(&self, item: Item) -> Result<(), DbError> {
        self.with_retries("PutItem", || {
            self.client
                .put_item()
                .table_name(&*self.table)
                .set_item(Some(item.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    /// A conditional PutItem. `Ok(None)`: written. `Ok(Some(old))`: the
    /// condition failed and `old` is the item that stood in the way.
    ///
    /// An attempt whose answer was lost (a 500, a timeout, a reset
    /// connection) may have been applied; its retry then fails the condition
    /// on our own item. Every item put this way carries an attribute unique
    /// to its writer (`own`: a run's request id, a lock id, a fresh uuid), so
    /// an `old` holding our value of it after such an attempt is our own
    /// write, even if another writer changed the item since: `Ok(None)`.
    pub async fn put_if(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
        own: &str,
    ) -> Result<Option<Item>, DbError> {
        self.retrying("PutItem", (), |(), ambiguous| {
            let sent = self
                .client
                .put_item()
                .table_name(&*self.table)
                .set_item(Some(item.clone()))
                .condition_expression(condition)
                .set_expression_attribute_names(expr_names(names))
                .set_expression_attribute_values(expr_values(values))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send();
            let item = &item;
            async move {
                match sent.await {
                    Ok(_) => Attempt::Done(None),
                    Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                        let old = match e.into_err() {
                            PutItemError::ConditionalCheckFailedException(c) => c.item,
                            _ => None,
                        };
                        let old = old.unwrap_or_default();
                        if ambiguous && old.get(own).is_some() && old.get(own) == item.get(own) {
                            tracing::info!("a lost answer's put had been applied: recognised as our own");
                            return Attempt::Done(None);
                        }
                        Attempt::Done(Some(old))
                    }
                    Err(err) => Attempt::sdk(err, ()),
                }
            }
        })
        .await
    }

    /// Puts `item` only if no item has its key. `Ok(None)`: written;
    /// `Ok(Some(old))`: the item that was there first. `own`: see [`Db::put_if`].
    pub async fn put_if_absent(&self, item: Item, own: &str) -> Result<Option<Item>, DbError> {
        self.put_if(item, "attribute_not_exists(#pk)", &[("#pk", PK)], &[], own).await
    }

    /// A conditional UpdateItem; a failed condition is [`DbError::ConditionFailed`].
    pub async fn update_if(
        &self,
        key: Item,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<(), DbError> {
        let (names, values) = (expr_names(names), expr_values(values));
        let send = || {
            let request = self.client.update_item().table_name(&*self.table).set_key(Some(key.clone())).update_expression(update);
            request.condition_expression(condition).set_expression_attribute_names(names.clone()).set_expression_attribute_values(values.clone()).send()
        };
        self.with_retries("UpdateItem", send).await.map(drop)
    }

    /// A conditional DeleteItem; a failed condition is [`DbError::ConditionFailed`].
    pub async fn delete_if(&self, key: Item, condition: &str, values: &[(&str, AttributeValue)]) -> Result<(), DbError> {
        let values = expr_values(values);
        let send = || {
            let request = self.client.delete_item().table_name(&*self.table).set_key(Some(key.clone()));
            request.condition_expression(condition).set_expression_attribute_values(values.clone()).send()
        };
        self.with_retries("DeleteItem", send).await.map(drop)
    }

    /// Strongly consistent reads of `keys`, 100 a request, chunks concurrent.
    /// Returns the items found, in no particular order.
    pub async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, DbError> {
        self.batch_get_with(keys, true).await
    }

    /// The same, eventually consistent: half the read capacity, for reads
    /// whose staleness a later conditional write catches anyway.
    pub async fn batch_get_eventual(&self, keys: Vec<Item>) -> Result<Vec<Item>, DbError> {
        self.batch_get_with(keys, false).await
    }

    async fn batch_get_with(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, DbError> {
        let chunks: Vec<Vec<Item>> = keys.chunks(BATCH_GET_LIMIT).map(<[Item]>::to_vec).collect();
        let found = all_ok(
            self.for_each(CHUNK_CONCURRENCY, chunks, move |db, chunk| async move {
                db.batch_get_chunk(chunk, consistent).await
            })
            .await,
        )?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn batch_get_chunk(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, DbError> {
        let found = Vec::with_capacity(keys.len());
        self.retrying("BatchGetItem", (keys, found), |(pending, mut found), _| {
            let request = KeysAndAttributes::builder().set_keys(Some(pending.clone())).consistent_read(consistent).build();
            let table = &self.table;
            let sent = request.map(|r| self.client.batch_get_item().request_items(&**table, r).send());
            async move {
                let sent = match sent {
                    Ok(sent) => sent,
                    Err(e) => return Attempt::Failed(e.into()),
                };
                match sent.await {
                    Ok(out) => {
                        if let Some(mut responses) = out.responses {
                            found.extend(responses.remove(&**table).unwrap_or_default());
                        }
                        let left = out.unprocessed_keys.and_then(|mut u| u.remove(&**table)).map(|k| k.keys).unwrap_or_default();
                        if left.is_empty() {
                            Attempt::Done(found)
                        } else {
                            Attempt::Again((left, found), "UnprocessedKeys".into())
                        }
                    }
                    Err(err) => Attempt::sdk(err, (pending, found)),
                }
            }
        })
        .await
    }

    /// Writes `requests` with BatchWriteItem, 25 a request, chunks concurrent,
    /// until every one is processed or retries run out.
    pub async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), DbError> {
        let chunks: Vec<Vec<WriteRequest>> = requests
            .chunks(BATCH_WRITE_LIMIT)
            .map(<[WriteRequest]>::to_vec)
            .collect();
        all_ok(
            self.for_each(CHUNK_CONCURRENCY, chunks, |db, chunk| async move {
                db.batch_write_chunk(chunk).await
            })
            .await,
        )?;
        Ok(())
    }

    async fn batch_write_chunk(&self, requests: Vec<WriteRequest>) -> Result<(), DbError> {
        self.retrying("BatchWriteItem", requests, |pending, _| {
            let table = &self.table;
            let sent = self.client.batch_write_item().request_items(&**table, pending.clone()).send();
            async move {
                match sent.await {
                    Ok(out) => {
                        let left = out.unprocessed_items.and_then(|mut u| u.remove(&**table)).unwrap_or_default();
                        if left.is_empty() {
                            Attempt::Done(())
                        } else {
                            Attempt::Again(left, "UnprocessedItems".into())
                        }
                    }
                    Err(err) => Attempt::sdk(err, pending),
                }
            }
        })
        .await
    }

    /// One TransactWriteItems of at most 100 items, retried on conflicts and
    /// throttling. A failed condition is returned as [`DbError::ConditionFailed`]
    /// with the indices of the items whose condition failed.
    pub async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), DbError> {
        debug_assert!(items.len() <= TRANSACT_LIMIT);
        if items.is_empty() {
            return Ok(());
        }
        if items.len() == 1 {
            if let Some(result) = self.single_write(&items[0]).await {
                return result;
            }
        }
        // One token for every attempt: DynamoDB applies a transaction once per
        // token (for 10 minutes), so a retry after a lost answer is answered
        // as the first attempt was instead of running again. Callers also
        // recognise their own writes after a condition failure (DynamoDB
        // Local and tokens older than 10 minutes give no such guarantee).
        let token = uuid::Uuid::new_v4().to_string();
        self.retrying("TransactWriteItems", (), |(), _| {
            let sent = self.client.transact_write_items().set_transact_items(Some(items.clone())).client_request_token(&token).send();
            async move {
                let err = match sent.await {
                    Ok(_) => return Attempt::Done(()),
                    Err(err) => err,
                };
                if let SdkError::ServiceError(service) = &err {
                    if let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err() {
                        let reasons = cancel.cancellation_reasons();
                        let failed: Vec<usize> = reasons
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                            .map(|(i, _)| i)
                            .collect();
                        if !failed.is_empty() {
                            return Attempt::Failed(DbError::ConditionFailed(failed));
                        }
                        if reasons.iter().any(|r| is_retryable_code(r.code())) {
                            return Attempt::Again((), "TransactionCanceled".into());
                        }
                        return Attempt::Failed(DbError::Other(format!("transaction cancelled: {reasons:?}")));
                    }
                }
                Attempt::sdk(err, ())
            }
        })
        .await
    }

    /// A transaction of one action is that action's own conditional write:
    /// as atomic, one request, no transaction coordinator. `None` for a lone
    /// ConditionCheck, which has no single-request form.
    async fn single_write(&self, action: &TransactWriteItem) -> Option<Result<(), DbError>> {
        // The action's condition, names and values, as its request's.
        macro_rules! conditioned {
            ($request:expr, $action:expr) => {
                $request
                    .set_condition_expression($action.condition_expression().map(str::to_owned))
                    .set_expression_attribute_names($action.expression_attribute_names().cloned())
                    .set_expression_attribute_values($action.expression_attribute_values().cloned())
            };
        }
        let result = if let Some(p) = action.put() {
            let put = || conditioned!(self.client.put_item().table_name(p.table_name()).set_item(Some(p.item().clone())), p).send();
            self.with_retries("PutItem", put).await.map(drop)
        } else if let Some(u) = action.update() {
            let update = || {
                let request = self.client.update_item().table_name(u.table_name()).set_key(Some(u.key().clone()));
                conditioned!(request.update_expression(u.update_expression()), u).send()
            };
            self.with_retries("UpdateItem", update).await.map(drop)
        } else if let Some(d) = action.delete() {
            let delete = || conditioned!(self.client.delete_item().table_name(d.table_name()).set_key(Some(d.key().clone())), d).send();
            self.with_retries("DeleteItem", delete).await.map(drop)
        } else {
            return None;
        };
        Some(result)
    }

    /// Every item of a GSI1 partition, following pagination, in sort-key order.
    pub async fn query_gsi1(&self, gsi1pk: &str) -> Result<Vec<Item>, DbError> {
        self.query_all(&Partition::index(GSI1, GSI1_PK, gsi1pk))
            .await
    }

    /// Every item of `partition`, following pagination, in sort-key order.
    pub async fn query_all(&self, partition: &Partition<'_>) -> Result<Vec<Item>, DbError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (page, next) = self.query_page(partition, None, start.take()).await?;
            items.extend(page);
            match next {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
    }

    /// One Query page of `partition` (at most `limit` items) after
    /// `start`, and the key to continue from if DynamoDB stopped early.
    pub async fn query_page(
        &self,
        partition: &Partition<'_>,
        limit: Option<i32>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), DbError> {
        let mut condition = "#pk = :pk".to_owned();
        if partition.sk_prefix.is_some() {
            condition.push_str(" AND begins_with(#sk, :prefix)");
        }
        let out = self
            .with_retries("Query", || {
                let mut q = self
                    .client
                    .query()
                    .table_name(&*self.table)
                    .set_index_name(partition.index.map(str::to_owned))
                    .key_condition_expression(&condition)
                    .expression_attribute_names("#pk", partition.pk_attr)
                    .expression_attribute_values(":pk", AttributeValue::S(partition.pk.to_owned()))
                    .set_limit(limit)
                    .set_exclusive_start_key(start.clone());
                if let Some((sk_attr, prefix)) = partition.sk_prefix {
                    q = q
                        .expression_attribute_names("#sk", sk_attr)
                        .expression_attribute_values(
                            ":prefix",
                            AttributeValue::S(prefix.to_owned()),
                        );
                }
                if partition.index.is_none() {
                    q = q.consistent_read(partition.consistent);
                }
                if let Some((attr, value)) = partition.only {
                    q = q
                        .filter_expression("#only = :only")
                        .expression_attribute_names("#only", attr)
                        .expression_attribute_values(":only", AttributeValue::S(value.to_owned()));
                }
                q.send()
            })
            .await?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }

    /// A listing page of `partition`: after the key `start`, `skip` items
    /// passed over, then up to `limit` items, and whether more follow (one
    /// more item is read to know, so a last full page has no next).
    pub async fn query_window(
        &self,
        partition: &Partition<'_>,
        mut start: Option<Item>,
        skip: u64,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), DbError> {
        let mut to_skip = skip;
        let mut items = Vec::new();
        loop {
            // With a filter, DynamoDB's Limit counts items read, not items
            // kept: read at least a page's worth each time, or a page's
            // one-item lookahead could take a Query per item filtered out.
            let floor = if partition.only.is_some() { limit + 1 } else { 0 };
            let want = (to_skip as usize).saturating_add(limit + 1 - items.len()).max(floor).min(1000) as i32;
            let (page, next) = self.query_page(partition, Some(want), start.take()).await?;
            for item in page {
                if to_skip > 0 {
                    to_skip -= 1;
                } else {
                    items.push(item);
                }
            }
            if items.len() > limit {
                items.truncate(limit);
                return Ok((items, true));
            }
            match next {
                Some(k) => start = Some(k),
                None => return Ok((items, false)),
            }
        }
    }

    /// The next value (1, 2, 3, …) of the named counter: one atomic ADD.
    pub async fn next_sequence(&self, name: &str) -> Result<u64, DbError> {
        let out = self
            .with_retries("UpdateItem", || {
                self.client
                    .update_item()
                    .table_name(&*self.table)
                    .set_key(Some(key(format!("SEQ#{name}"), "SEQ")))
                    .update_expression("ADD #v :one")
                    .expression_attribute_names("#v", "value")
                    .expression_attribute_values(":one", n(1))
                    .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
                    .send()
            })
            .await?;
        match out.attributes.as_ref().and_then(|a| a.get("value")) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| DbError::Other(format!("sequence {name} is not a number"))),
            _ => Err(DbError::Other(format!("sequence {name} returned no value"))),
        }
    }

    /// Runs `work` on every chunk, at most `concurrency` at once
    /// ([`CHUNK_CONCURRENCY`] for batch requests, [`ITEM_CONCURRENCY`] for
    /// single-item writes), and returns every chunk's outcome in chunk order:
    /// a caller that must undo a partial bulk write knows exactly which
    /// chunks landed. Every chunk runs to its end, so nothing is still
    /// writing when this returns.
    pub async fn for_each<C, T, F, Fut>(&self, concurrency: usize, chunks: Vec<C>, work: F) -> Vec<Result<T, DbError>>
    where
        F: Fn(Db, C) -> Fut,
        Fut: std::future::Future<Output = Result<T, DbError>>,
    {
        // Concurrent in this task: a panic in one chunk's work unwinds the
        // request as it would stop the function (carrying on would act on
        // half-known writes), and nothing outlives the call. Unordered, so a
        // slow chunk (one in backoff) never keeps the next from starting;
        // the outcomes are put back in chunk order.
        let count = chunks.len();
        let mut done: Vec<(usize, Result<T, DbError>)> = stream::iter(chunks.into_iter().enumerate().map(|(i, chunk)| {
            let running = work(self.clone(), chunk);
            async move { (i, running.await) }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
        done.sort_unstable_by_key(|(i, _)| *i);
        debug_assert_eq!(done.len(), count);
        done.into_iter().map(|(_, outcome)| outcome).collect()
    }
}

/// Which items a Query reads: a partition of the table (strongly consistent
/// if asked) or of an index (always eventually consistent), optionally only
/// the sort keys that start with a prefix.
pub struct Partition<'a> {
    pub index: Option<&'a str>,
    pub pk_attr: &'a str,
    pub pk: &'a str,
    pub sk_prefix: Option<(&'a str, &'a str)>,
    pub consistent: bool,
    /// Only the items whose attribute (first) holds this string (second): a
    /// FilterExpression, applied after each page is read.
    pub only: Option<(&'a str, &'a str)>,
}

impl<'a> Partition<'a> {
    /// `pk = <pk> AND begins_with(sk, <prefix>)` on the table.
    pub fn table(pk: &'a str, sk_prefix: &'a str, consistent: bool) -> Self {
        Self {
            index: None,
            pk_attr: PK,
            pk,
            sk_prefix: Some((SK, sk_prefix)),
            consistent,
            only: None,
        }
    }

    /// A whole partition of a global secondary index.
    pub fn index(index: &'a str, pk_attr: &'a str, pk: &'a str) -> Self {
        Self {
            index: Some(index),
            pk_attr,
            pk,
            sk_prefix: None,
            consistent: false,
            only: None,
        }
    }
}

/// The first error of a set of chunk outcomes, or all their values.
pub fn all_ok<T>(outcomes: Vec<Result<T, DbError>>) -> Result<Vec<T>, DbError> {
    outcomes.into_iter().collect()
}

fn expr_names(names: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    (!names.is_empty()).then(|| {
        names
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    })
}

fn expr_values(values: &[(&str, AttributeValue)]) -> Option<HashMap<String, AttributeValue>> {
    (!values.is_empty()).then(|| {
        values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    })
}

/// A value as an item (serde_dynamo), its failure a [`DbError`].
pub fn to_item<T: serde::Serialize>(v: &T) -> Result<Item, DbError> {
    serde_dynamo::to_item(v).map_err(|e| DbError::Other(format!("to item: {e}")))
}

/// An item as a value (serde_dynamo); a stored item that does not fit is a [`DbError`].
pub fn from_item<T: for<'de> serde::Deserialize<'de>>(item: Item) -> Result<T, DbError> {
    serde_dynamo::from_item(item).map_err(|e| DbError::Other(format!("from item: {e}")))
}

/// `base` (a key, and any index keys) with `value`'s fields added.
pub fn keyed<T: serde::Serialize>(base: Item, value: &T) -> Result<Item, DbError> {
    let mut item = to_item(value)?;
    item.extend(base);
    Ok(item)
}

/// `{pk, sk}` as a key map.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk.into())),
        (SK.to_owned(), AttributeValue::S(sk.into())),
    ])
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

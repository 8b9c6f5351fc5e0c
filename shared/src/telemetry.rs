//! What a platform team watches: CloudWatch metrics as Embedded Metric Format
//! documents, written to the function's log and flushed once per invocation
//! (the `metrics` facade, recorded by `metrics_cloudwatch_embedded`), and the
//! Lambda runtime each function runs under.
//!
//! Every document carries the namespace (`METRICS_NAMESPACE`, default
//! `Allotment`), the dimensions `Service` (`METRICS_SERVICE`: the stack's
//! name) and `Function` (the route's name: `PostMinutes`), the request's
//! correlation id (`RequestId`, API Gateway's) and Lambda's own
//! (`LambdaRequestId`). Outside Lambda (tests, `make run`'s front) no
//! recorder is installed and every metric call is a no-op.
//!
//! What each metric means, and the alarms on them: README, Operations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use metrics_cloudwatch_embedded::Collector;

pub const DEFAULT_NAMESPACE: &str = "Allotment";

/// Every metric's name: the dashboard, the alarms and the README use these.
pub mod metric {
    // Per request, by `Function`.
    pub const REQUESTS: &str = "Requests";
    /// Milliseconds from the request reaching the function to its answer.
    pub const LATENCY: &str = "Latency";
    pub const CLIENT_ERRORS: &str = "ClientErrors";
    pub const SERVER_ERRORS: &str = "ServerErrors";
    /// Once per execution environment, on its first invocation.
    pub const COLD_START: &str = "ColdStart";
    /// Idempotency-Key outcomes, by `Outcome`: ran (the key claimed, the
    /// handler run under it), replayed, in_progress (409), mismatch (422).
    pub const IDEMPOTENCY_KEYS: &str = "IdempotencyKeys";
    // DynamoDB, per request's function.
    pub const DYNAMODB_RETRIES: &str = "DynamoDBRetries";
    pub const DYNAMODB_THROTTLES: &str = "DynamoDBThrottles";
    pub const DYNAMODB_CONDITION_FAILURES: &str = "DynamoDBConditionalCheckFailures";
    pub const DYNAMODB_TRANSACTION_CONFLICTS: &str = "DynamoDBTransactionConflicts";
    /// Capacity units one request consumed, as DynamoDB reported them.
    pub const READ_CAPACITY: &str = "ConsumedReadCapacity";
    pub const WRITE_CAPACITY: &str = "ConsumedWriteCapacity";
    // Business.
    pub const PACKS_PROVISIONED: &str = "PacksProvisioned";
    pub const PACKS_RESYNCED: &str = "PacksResynced";
    pub const PACKS_MOVED: &str = "PacksMoved";
    /// By `Status` (the new payment's).
    pub const PAYMENTS_CREATED: &str = "PaymentsCreated";
    pub const DEPOSITS: &str = "Deposits";
    pub const DEPOSITED_UNITS: &str = "DepositedUnits";
    /// By `Outcome`: the answer's status (200, 402, 403, 404, 409 …).
    pub const GIFT_CLAIMS: &str = "GiftClaims";
    pub const SUBSCRIPTIONS_MIGRATED: &str = "SubscriptionsMigrated";
    pub const SUBSCRIPTIONS_SKIPPED: &str = "SubscriptionsSkipped";
    // The events publisher.
    pub const EVENTS_PUBLISHED: &str = "EventsPublished";
    pub const EVENTS_DEAD_LETTERED: &str = "EventsDeadLettered";
    pub const STREAM_RECORDS_RETRIED: &str = "StreamRecordsRetried";
}

/// Routes whose every answer is a business outcome: counted by status.
const OUTCOMES: [(&str, &str); 1] = [("ClaimGift", metric::GIFT_CLAIMS)];

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the EMF recorder for `function` (a route's name, or
/// `PublishEvents`), inside Lambda only. `None`: metrics stay no-ops.
pub fn init(function: &'static str) -> Option<&'static Collector> {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME")?;
    let env = |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
    let built = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(env("METRICS_NAMESPACE", DEFAULT_NAMESPACE))
        .with_dimension("Service", env("METRICS_SERVICE", "allotment"))
        .with_dimension("Function", function)
        .lambda_cold_start_metric(metric::COLD_START)
        .with_lambda_request_id("LambdaRequestId")
        .init();
    match built {
        Ok(collector) => {
            describe();
            let _ = COLLECTOR.set(collector);
            Some(collector)
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics recorder not installed");
            None
        }
    }
}

/// Units, so each document says what its numbers are.
fn describe() {
    use metrics::Unit;
    metrics::describe_histogram!(metric::LATENCY, Unit::Milliseconds, "time to answer");
    for name in [metric::REQUESTS, metric::CLIENT_ERRORS, metric::SERVER_ERRORS, metric::IDEMPOTENCY_KEYS, metric::DYNAMODB_RETRIES, metric::DYNAMODB_THROTTLES, metric::DYNAMODB_CONDITION_FAILURES, metric::DYNAMODB_TRANSACTION_CONFLICTS, metric::PACKS_PROVISIONED, metric::PACKS_RESYNCED, metric::PACKS_MOVED, metric::PAYMENTS_CREATED, metric::DEPOSITS, metric::DEPOSITED_UNITS, metric::GIFT_CLAIMS, metric::SUBSCRIPTIONS_MIGRATED, metric::SUBSCRIPTIONS_SKIPPED, metric::EVENTS_PUBLISHED, metric::EVENTS_DEAD_LETTERED, metric::STREAM_RECORDS_RETRIED] {
        metrics::describe_counter!(name, Unit::Count, "");
    }
    metrics::describe_histogram!(metric::READ_CAPACITY, Unit::Count, "read capacity units per request");
    metrics::describe_histogram!(metric::WRITE_CAPACITY, Unit::Count, "write capacity units per request");
}

pub fn count(name: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!(name).increment(n);
    }
}

/// A count by one label (`Outcome`, `Status`): a dimension of its own.
pub fn count_by(name: &'static str, label: &'static str, value: impl Into<String>, n: u64) {
    if n > 0 {
        metrics::counter!(name, label => value.into()).increment(n);
    }
}

/// A request began: its correlation id goes on the metric documents it flushes.
pub fn request_started(request_id: &str) {
    if let Some(collector) = COLLECTOR.get() {
        collector.set_property("RequestId", request_id.to_owned());
    }
}

/// A request's answer: its count, latency, error class, outcome (for the
/// routes in [`OUTCOMES`]) and the capacity its DynamoDB calls consumed.
pub fn request_finished(route: &str, status: u16, latency: Duration) {
    let (read, write) = take_capacity();
    if COLLECTOR.get().is_none() {
        return;
    }
    metrics::counter!(metric::REQUESTS).increment(1);
    metrics::histogram!(metric::LATENCY).record(latency.as_secs_f64() * 1000.0);
    match status {
        400..=499 => metrics::counter!(metric::CLIENT_ERRORS).increment(1),
        500..=599 => metrics::counter!(metric::SERVER_ERRORS).increment(1),
        _ => {}
    }
    if let Some((_, name)) = OUTCOMES.iter().find(|(r, _)| *r == route) {
        count_by(name, "Outcome", status.to_string(), 1);
    }
    metrics::histogram!(metric::READ_CAPACITY).record(read);
    metrics::histogram!(metric::WRITE_CAPACITY).record(write);
}

/// A function's telemetry: its log subscriber, its metrics recorder and,
/// when a collector is configured, its tracer.
pub struct Telemetry {
    function: &'static str,
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Logging (JSON when Lambda's log format is, level from
    /// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`), and traces when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) names a collector.
    pub fn start(function: &'static str) -> Self {
        use lambda_http::tracing::subscriber::{self as ts, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};
        let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "INFO".into());
        let level = level.parse::<ts::filter::LevelFilter>().unwrap_or(ts::filter::LevelFilter::INFO);
        let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
        let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
        let fmt = ts::fmt::layer().with_target(false).without_time();
        let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
        let traces = traces::provider(function);
        let otel = traces.as_ref().map(|p| traces::layer(p, function));
        let _ = ts::registry().with(fmt.with_filter(filter)).with(otel).try_init();
        Telemetry { function, traces }
    }

    /// Serves `handler` under the Lambda runtime (its tracing layer, as
    /// `lambda_runtime::run` has it), with this function's metrics flushed
    /// after every invocation (a cold start counted once) and, when tracing,
    /// each invocation a span under Lambda's X-Ray segment, flushed before
    /// the next.
    pub async fn serve<A, F, R, B, S, D, E>(self, handler: F) -> Result<(), lambda_http::Error>
    where
        F: lambda_http::Service<lambda_http::LambdaEvent<A>, Response = R>,
        F::Future: std::future::Future<Output = Result<R, F::Error>>,
        F::Error: Into<lambda_http::lambda_runtime::Diagnostic> + std::fmt::Debug,
        A: for<'de> serde::Deserialize<'de>,
        R: lambda_http::lambda_runtime::IntoFunctionResponse<B, S>,
        B: serde::Serialize,
        S: futures::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
        D: Into<bytes::Bytes> + Send,
        E: Into<lambda_http::Error> + Send + std::fmt::Debug,
    {
        use lambda_runtime::layers::{OpenTelemetryLayer, TracingLayer};
        use lambda_runtime::Runtime;
        use metrics_cloudwatch_embedded::lambda::MetricsLayer;
        let runtime = Runtime::new(handler).layer(TracingLayer::new());
        let flush = |provider: opentelemetry_sdk::trace::SdkTracerProvider| {
            move || {
                if let Err(e) = provider.force_flush() {
                    tracing::warn!(error = %e, "traces not flushed");
                }
            }
        };
        match (init(self.function), self.traces) {
            (Some(c), Some(p)) => runtime.layer(OpenTelemetryLayer::new(flush(p))).layer(traces::XrayParent).layer(MetricsLayer::new(c)).run().await,
            (Some(c), None) => runtime.layer(MetricsLayer::new(c)).run().await,
            (None, Some(p)) => runtime.layer(OpenTelemetryLayer::new(flush(p))).layer(traces::XrayParent).run().await,
            (None, None) => runtime.run().await,
        }
    }
}

/// Traces: `tracing` spans as OpenTelemetry spans, sent as OTLP/HTTP
/// (protobuf) to a collector — the ADOT or CloudWatch agent layer's, on
/// `localhost:4318`, which forwards them to X-Ray. (The X-Ray SDKs are in
/// maintenance; OpenTelemetry is the supported path.) Ids are X-Ray's
/// (time-based) and each invocation's span is a child of Lambda's segment.
pub mod traces {
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// The tracer provider when a collector is configured. Built on a thread
    /// of its own: the exporter's blocking HTTP client may not be made (or
    /// dropped) inside the async runtime.
    pub fn provider(function: &'static str) -> Option<SdkTracerProvider> {
        let configured = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|e| !e.is_empty()));
        if !configured {
            return None;
        }
        let service = std::env::var("METRICS_SERVICE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "allotment".into());
        let built = std::thread::spawn(move || {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(opentelemetry_otlp::Protocol::HttpBinary).build()?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .with_attribute(opentelemetry::KeyValue::new("faas.name", function))
                .build();
            Ok::<_, opentelemetry_otlp::ExporterBuildError>(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_id_generator(opentelemetry_aws::trace::XrayIdGenerator::default())
                    .with_resource(resource)
                    .build(),
            )
        })
        .join();
        match built {
            Ok(Ok(provider)) => Some(provider),
            Ok(Err(e)) => {
                eprintln!("traces off: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// The `tracing` layer that turns spans into the provider's spans: ours,
    /// at INFO (the SDK's own debug spans, a dozen per call, stay out).
    pub fn layer<S>(provider: &SdkTracerProvider, function: &'static str) -> impl lambda_http::tracing::subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> lambda_http::tracing::subscriber::registry::LookupSpan<'a>,
    {
        use lambda_http::tracing::subscriber::{filter::LevelFilter, Layer};
        use opentelemetry::trace::TracerProvider;
        tracing_opentelemetry::layer().with_tracer(provider.tracer(function)).with_filter(LevelFilter::INFO)
    }

    /// Lambda's X-Ray trace header (`Root=…;Parent=…;Sampled=1`) as the
    /// parent of what the invocation records. Its sampling decision stands
    /// (the provider's sampler is parent-based): an invocation X-Ray did not
    /// sample (`Sampled=0`, as with TracingMode PassThrough) records nothing.
    pub fn xray_parent(header: Option<&str>) -> Option<opentelemetry::Context> {
        let span = opentelemetry_aws::trace::xray_propagator::span_context_from_str(header?)?;
        Some(opentelemetry::Context::new().with_remote_span_context(span))
    }

    /// Makes Lambda's segment the parent of the runtime's invocation span:
    /// the OpenTelemetry context is current while the inner layers start it.
    pub struct XrayParent;

    impl<S> tower::Layer<S> for XrayParent {
        type Service = XrayParentService<S>;
        fn layer(&self, inner: S) -> Self::Service {
            XrayParentService(inner)
        }
    }

    pub struct XrayParentService<S>(S);

    impl<S: tower::Service<lambda_runtime::LambdaInvocation>> tower::Service<lambda_runtime::LambdaInvocation> for XrayParentService<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, req: lambda_runtime::LambdaInvocation) -> Self::Future {
            let _attached = xray_parent(req.context.xray_trace_id.as_deref()).map(opentelemetry::Context::attach);
            self.0.call(req)
        }
    }
}

// ---------------------------------------------------------------- DynamoDB

/// Capacity consumed since the last request finished, in thousandths of a
/// unit (a function serves one request at a time).
static READ_MILLIS: AtomicU64 = AtomicU64::new(0);
static WRITE_MILLIS: AtomicU64 = AtomicU64::new(0);

fn take_capacity() -> (f64, f64) {
    let units = |a: &AtomicU64| a.swap(0, Ordering::Relaxed) as f64 / 1000.0;
    (units(&READ_MILLIS), units(&WRITE_MILLIS))
}

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const READS: [&str; 3] = ["GetItem", "BatchGetItem", "Query"];
const WRITES: [&str; 5] = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"];

/// An SDK interceptor on the functions' DynamoDB client: it asks every read
/// and write for `ReturnConsumedCapacity: TOTAL` and adds up what DynamoDB
/// reports, and counts throttling, failed conditions and transaction
/// conflicts from the error answers (retries are counted where they are
/// decided, in `db.rs`).
#[derive(Debug, Default)]
pub struct DynamoMetrics;

pub fn with_dynamo_metrics(config: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
    config.interceptor(DynamoMetrics)
}

fn operation(headers: &aws_smithy_runtime_api::http::Headers) -> &str {
    headers.get("x-amz-target").and_then(|t| t.strip_prefix(TARGET_PREFIX)).unwrap_or("")
}

impl Intercept for DynamoMetrics {
    fn name(&self) -> &'static str {
        "allotment-metrics"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request_mut();
        let op = operation(request.headers());
        if !READS.contains(&op) && !WRITES.contains(&op) {
            return Ok(());
        }
        let Some(body) = request.body().bytes().and_then(with_capacity_requested) else { return Ok(()) };
        request.headers_mut().insert("content-length", body.len().to_string());
        *request.body_mut() = SdkBody::from(body);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match ctx.output_or_error() {
            Ok(output) => {
                // (The request has left the context by now: the output's type says what was done.)
                let (units, write) = consumed(output);
                let into = if write { &WRITE_MILLIS } else { &READ_MILLIS };
                into.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                let body = ctx.response().body().bytes().unwrap_or_default();
                let refusal = Refusal::of(body);
                count(metric::DYNAMODB_THROTTLES, refusal.throttled as u64);
                count(metric::DYNAMODB_CONDITION_FAILURES, refusal.condition_failed as u64);
                count(metric::DYNAMODB_TRANSACTION_CONFLICTS, refusal.conflicted as u64);
            }
        }
        Ok(())
    }
}

/// The request body with `"ReturnConsumedCapacity":"TOTAL"` as its first
/// member; `None` when it is not a JSON object or already says.
pub fn with_capacity_requested(body: &[u8]) -> Option<Vec<u8>> {
    const MEMBER: &[u8] = br#""ReturnConsumedCapacity":"TOTAL""#;
    let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[open] != b'{' || body.windows(22).any(|w| w == b"ReturnConsumedCapacity") {
        return None;
    }
    let rest = &body[open + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(body.len() + MEMBER.len() + 2);
    out.push(b'{');
    out.extend_from_slice(MEMBER);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The capacity units an operation's output reports, and whether they were
/// write units. (A failed condition or a cancelled transaction consumes
/// write units too, but its error answer reports none: not counted.)
fn consumed(output: &aws_smithy_runtime_api::client::interceptors::context::Output) -> (f64, bool) {
    use aws_sdk_dynamodb::operation as op;
    use aws_sdk_dynamodb::types::ConsumedCapacity;
    let one = |c: Option<&ConsumedCapacity>| c.and_then(ConsumedCapacity::capacity_units).unwrap_or(0.0);
    let all = |c: &[ConsumedCapacity]| c.iter().filter_map(ConsumedCapacity::capacity_units).sum::<f64>();
    macro_rules! single {
        ($write:expr, $($t:ty),*) => {$(
            if let Some(o) = output.downcast_ref::<$t>() {
                return (one(o.consumed_capacity()), $write);
            }
        )*};
    }
    single!(false, op::get_item::GetItemOutput, op::query::QueryOutput);
    single!(true, op::put_item::PutItemOutput, op::update_item::UpdateItemOutput, op::delete_item::DeleteItemOutput);
    if let Some(o) = output.downcast_ref::<op::batch_write_item::BatchWriteItemOutput>() {
        return (all(o.consumed_capacity()), true);
    }
    if let Some(o) = output.downcast_ref::<op::batch_get_item::BatchGetItemOutput>() {
        return (all(o.consumed_capacity()), false);
    }
    if let Some(o) = output.downcast_ref::<op::transact_write_items::TransactWriteItemsOutput>() {
        return (all(o.consumed_capacity()), true);
    }
    (0.0, false)
}

/// What a DynamoDB error answer says, as metrics count it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refusal {
    pub throttled: bool,
    pub condition_failed: bool,
    pub conflicted: bool,
}

impl Refusal {
    pub fn of(body: &[u8]) -> Self {
        let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let kind = body.get("__type").and_then(serde_json::Value::as_str).unwrap_or("");
        let kind = kind.rsplit('#').next().unwrap_or(kind);
        let reasons: Vec<&str> = body
            .get("CancellationReasons")
            .and_then(serde_json::Value::as_array)
            .map(|r| r.iter().filter_map(|x| x.get("Code").and_then(serde_json::Value::as_str)).collect())
            .unwrap_or_default();
        let throttle = |code: &str| matches!(code, "ThrottlingException" | "ProvisionedThroughputExceededException" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded" | "ThrottlingError");
        Refusal {
            throttled: throttle(kind) || reasons.iter().any(|c| throttle(c)),
            condition_failed: kind == "ConditionalCheckFailedException" || reasons.contains(&"ConditionalCheckFailed"),
            conflicted: kind == "TransactionConflictException" || reasons.contains(&"TransactionConflict"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_asked_for_as_the_bodys_first_member() {
        let out = with_capacity_requested(br#"{"TableName":"t","Key":{}}"#).map(String::from_utf8);
        assert_eq!(out, Some(Ok(r#"{"ReturnConsumedCapacity":"TOTAL","TableName":"t","Key":{}}"#.to_owned())));
        let out = with_capacity_requested(b" { } ").map(String::from_utf8);
        assert_eq!(out, Some(Ok(r#"{"ReturnConsumedCapacity":"TOTAL" } "#.to_owned())));
        assert_eq!(with_capacity_requested(br#"{"ReturnConsumedCapacity":"INDEXES"}"#), None);
        assert_eq!(with_capacity_requested(b"[]"), None);
        let spliced = with_capacity_requested(br#"{"A":1}"#).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_slice(&spliced).unwrap_or_default();
        assert_eq!(parsed, serde_json::json!({"ReturnConsumedCapacity": "TOTAL", "A": 1}));
    }

    #[test]
    fn error_answers_are_told_apart() {
        let of = |s: &str| Refusal::of(s.as_bytes());
        assert_eq!(of(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}"#), Refusal { throttled: true, ..Default::default() });
        assert_eq!(of(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#), Refusal { condition_failed: true, ..Default::default() });
        let cancelled = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict"},{"Code":"ConditionalCheckFailed"}]}"#;
        assert_eq!(of(cancelled), Refusal { throttled: false, condition_failed: true, conflicted: true });
        assert_eq!(of("not json"), Refusal::default());
    }
}

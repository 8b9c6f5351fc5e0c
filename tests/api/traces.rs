//! Traces: a request through `dispatch` is one trace — its stages and every
//! DynamoDB call, retries included, as spans under the request's — recorded
//! through the functions' own `tracing` → OpenTelemetry layer.

use std::collections::HashMap;

use allotment::routes::{dispatch, POST_MINUTES};
use allotment_tests::TestApi;
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{json, Value};

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

/// The sample event of `POST /namespaces/{id}/minutes`, keyed, for namespace 1.
fn keyed_request(key: &str, request_id: &str) -> lambda_http::Request {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("events/post-minutes.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(root).unwrap()).unwrap();
    event["headers"]["idempotency-key"] = json!(key);
    event["requestContext"]["requestId"] = json!(request_id);
    event["pathParameters"]["id"] = json!("1");
    event["rawPath"] = json!("/namespaces/1/minutes");
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test]
async fn a_request_is_one_trace_of_its_stages_and_every_dynamodb_call() {
    let api = TestApi::start().await;
    crate::packs::namespace(&api, 1, None, 7).await;
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    use lambda_http::tracing::subscriber::layer::SubscriberExt;
    let subscriber = lambda_http::tracing::subscriber::registry().with(allotment::telemetry::traces::layer(&provider, "PostMinutes"));
    let _default = tracing::subscriber::set_default(subscriber);

    // One throttle on the idempotency record's put: retried inside its span.
    api.faults.inject("PutItem", allotment_dev::faults::Fault::Throttle, 1);
    let first = dispatch(&POST_MINUTES, api.app.clone(), keyed_request("trace-1", "trace-request-1")).await;
    assert_eq!(first.status(), 201, "{:?}", first.body());
    let replay = dispatch(&POST_MINUTES, api.app.clone(), keyed_request("trace-1", "trace-request-2")).await;
    assert_eq!(replay.status(), 201);
    let spans = exporter.get_finished_spans().unwrap();

    let requests: Vec<&SpanData> = spans.iter().filter(|s| s.name == "POST /namespaces/{id}/minutes").collect();
    assert_eq!(requests.len(), 2, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    for (request, id) in requests.iter().zip(["trace-request-1", "trace-request-2"]) {
        assert_eq!(request.span_kind, SpanKind::Server);
        assert_eq!(attribute(request, "request_id").as_deref(), Some(id));
        assert_eq!(attribute(request, "http.route").as_deref(), Some("/namespaces/{id}/minutes"));
        assert_eq!(attribute(request, "http.response.status_code").as_deref(), Some("201"));
    }
    let (first, second) = (requests[0], requests[1]);
    assert_ne!(first.span_context.trace_id(), second.span_context.trace_id(), "each request its own trace");

    // Every span of the first request's trace, by id, and each one's chain up to the request.
    let trace: Vec<&SpanData> = spans.iter().filter(|s| s.span_context.trace_id() == first.span_context.trace_id()).collect();
    let by_id: HashMap<SpanId, &SpanData> = trace.iter().map(|s| (s.span_context.span_id(), *s)).collect();
    let stage_of = |span: &SpanData| {
        let mut at = span;
        while let Some(parent) = by_id.get(&at.parent_span_id) {
            if parent.span_context.span_id() == first.span_context.span_id() {
                return at.name.to_string();
            }
            at = parent;
        }
        String::new()
    };
    let names: Vec<String> = trace.iter().map(|s| s.name.to_string()).collect();
    for stage in ["authorize", "idempotency.begin", "handler", "idempotency.finish"] {
        let span = trace.iter().find(|s| s.name == stage).unwrap_or_else(|| panic!("no {stage} span: {names:?}"));
        assert_eq!(span.parent_span_id, first.span_context.span_id(), "{stage} is a stage of the request");
    }
    let calls: Vec<&&SpanData> = trace.iter().filter(|s| s.name.starts_with("DynamoDB.")).collect();
    assert!(calls.iter().all(|s| s.span_kind == SpanKind::Client && attribute(s, "db.system").as_deref() == Some("dynamodb")), "{names:?}");
    assert!(calls.iter().all(|s| attribute(s, "db.operation").is_some_and(|op| s.name.ends_with(op.as_str()))), "{names:?}");
    // The key's record (begin and finish) and the pack's write, each under its stage.
    let record = calls.iter().find(|s| s.name == "DynamoDB.PutItem" && stage_of(s) == "idempotency.begin").unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(attribute(record, "retries").as_deref(), Some("1"), "the throttled attempt was retried inside the call's span");
    assert!(calls.iter().any(|s| stage_of(s) == "handler"), "the handler's writes: {names:?}");
    assert!(calls.iter().any(|s| stage_of(s) == "idempotency.finish"), "{names:?}");
    assert!(calls.iter().all(|s| !stage_of(s).is_empty()), "every call under a stage: {names:?}");

    // The replay answered from the record: no handler ran.
    let replayed: Vec<String> = spans.iter().filter(|s| s.span_context.trace_id() == second.span_context.trace_id()).map(|s| s.name.to_string()).collect();
    assert!(replayed.contains(&"idempotency.begin".to_owned()) && !replayed.contains(&"handler".to_owned()), "{replayed:?}");
}

#[test]
fn a_sampled_lambda_segment_is_the_parent_of_an_invocation() {
    use opentelemetry::trace::TraceContextExt;
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let cx = allotment::telemetry::traces::xray_parent(Some(header)).expect("a parent");
    let parent = cx.span().span_context().clone();
    assert_eq!(parent.trace_id().to_string(), "5759e988bd862e3fe1be46a994272793");
    assert_eq!(parent.span_id().to_string(), "53995c3f42cd8ad8");
    assert!(parent.is_remote() && parent.is_sampled());
    // Not sampled (tracing PassThrough): the parent says so, and the parent-based sampler records nothing.
    let unsampled = allotment::telemetry::traces::xray_parent(Some(&header.replace("Sampled=1", "Sampled=0"))).expect("a parent");
    assert!(!unsampled.span().span_context().is_sampled());
    // No header: the invocation starts its own trace.
    assert!(allotment::telemetry::traces::xray_parent(None).is_none());
    assert!(allotment::telemetry::traces::xray_parent(Some("garbage")).is_none());
}

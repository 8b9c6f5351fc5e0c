//! DynamoDB's faults — throttling, unprocessed items and keys, transaction
//! conflicts — are retried with bounded backoff; when retries run out the
//! request is 503 with Retry-After, reports nothing as created, and a retry
//! of the same request converges.

use allotment_tests::{Fault, TestApi};
use serde_json::Value;

use crate::packs::{namespace, pack, post_packs};

fn mixed(n: usize, prefix: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            pack(
                1,
                "2099-01-01",
                if i % 3 == 0 {
                    None
                } else {
                    Some(format!("{prefix}{i}"))
                }
                .as_deref(),
            )
        })
        .collect()
}

#[tokio::test]
async fn throttling_unprocessed_items_and_conflicts_are_retried_to_success() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    api.faults
        .inject("BatchGetItem", Fault::Throttle, 2)
        .inject("BatchGetItem", Fault::Unprocessed, 2)
        .inject("PutItem", Fault::Throttle, 7);
    let r = post_packs(&api, 1, mixed(300, "f")).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body.as_array().unwrap().len(), 300);
    assert_eq!(
        api.faults.faults_injected(),
        11,
        "every planned fault was hit"
    );
    assert_eq!(
        api.count_prefix("PACK#").await,
        300,
        "every pack written once"
    );
    // Retries cost requests beyond the minimum (2 batch gets, 300 puts).
    assert_eq!(api.faults.calls("BatchWriteItem"), 0);
    assert!(api.faults.calls("BatchGetItem") > 2);
    assert_eq!(api.faults.calls("PutItem"), 1 + 300 + 7 + 1, "the namespace, each pack once, the seven throttled attempts, and the request's committed marker");
}

#[tokio::test]
async fn retries_exhausted_on_pack_puts_give_503_then_a_retry_converges() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let body: Vec<Value> = (0..250)
        .map(|i| pack(1, "2099-01-01", Some(format!("t{i}").as_str())))
        .collect();
    // The first 100 packs land; every later put is throttled for good.
    api.faults.fail_after("PutItem", 100, Fault::Throttle);
    let r = post_packs(&api, 1, body.clone()).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(r.body["error"]["code"], 503);
    assert!(
        r.body.get("packs").is_none() && !r.body.is_array(),
        "no pack is reported created"
    );
    api.faults.clear();
    let r = post_packs(&api, 1, body).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body.as_array().unwrap().len(), 250);
    assert_eq!(api.count_prefix("PACK#").await, 250);
}

#[tokio::test]
async fn retries_exhausted_on_pack_writes_undo_the_request() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let body: Vec<Value> = (0..20).map(|_| pack(1, "2099-01-01", None)).collect();
    // Ten puts land; every later one is throttled past its retries.
    api.faults.fail_after("PutItem", 10, Fault::Throttle);
    let r = post_packs(&api, 1, body.clone()).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        api.count_prefix("PACK#").await,
        0,
        "the half-written request was undone"
    );
    api.faults.clear();
    let r = post_packs(&api, 1, body).await;
    assert_eq!(r.status, 201);
    assert_eq!(api.count_prefix("PACK#").await, 20, "a retry converges");
}

#[tokio::test]
async fn retries_exhausted_on_reads_give_503_and_write_nothing() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    api.faults.inject("BatchGetItem", Fault::Throttle, 6);
    api.faults.reset_counts();
    let r = post_packs(&api, 1, mixed(10, "r")).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        api.faults.calls("BatchGetItem"),
        6,
        "bounded: max_attempts calls, no more"
    );
    assert_eq!(api.faults.write_calls(), 0);
    assert_eq!(api.count_prefix("PACK#").await, 0);
}

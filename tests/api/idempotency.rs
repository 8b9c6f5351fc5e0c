//! Idempotency-Key on every POST and PATCH (SPEC §2), exercised through the
//! packs endpoints: packs without purchase_xid are always new, so a second
//! execution would be visible as extra packs.

use std::sync::Arc;
use std::time::Duration;

use allotment::idempotency::{self, IdempotencyConfig};
use allotment_tests::{quick_retry, Fault, TestApi};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::packs::namespace;

const BODY: &[u8] = br#"{"packs": [{"number_of_minutes": 5, "expires_at": "2099-01-01"}, {"number_of_minutes": 6, "expires_at": "2099-01-01"}]}"#;
/// The same request: other whitespace, other key order.
const SAME_BODY: &[u8] = b"{ \"packs\":[ {\"expires_at\":\"2099-01-01\",\n \"number_of_minutes\":5},{\"expires_at\":\"2099-01-01\",\"number_of_minutes\":6} ] }";
const OTHER_BODY: &[u8] = br#"{"packs": [{"number_of_minutes": 7, "expires_at": "2099-01-01"}]}"#;

fn replayed(r: &allotment_tests::Resp) -> bool {
    r.headers
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        == Some("true")
}

#[tokio::test]
async fn a_repeat_replays_the_first_answer_byte_for_byte_and_writes_nothing() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let first = api
        .call_with_key(
            "POST",
            "/namespaces/1/minutes",
            &api.admin(),
            "sync-42",
            BODY,
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(!replayed(&first));
    api.faults.reset_counts();
    let again = api
        .call_with_key(
            "POST",
            "/namespaces/1/minutes",
            &api.admin(),
            "sync-42",
            SAME_BODY,
        )
        .await;
    assert_eq!(again.status, 201);
    assert!(replayed(&again), "Idempotent-Replayed: true");
    assert_eq!(again.bytes, first.bytes, "byte for byte");
    assert_eq!(
        again.headers.get("content-type"),
        first.headers.get("content-type")
    );
    // Exactly the first answer's headers, plus Idempotent-Replayed: no empty Retry-After.
    let names = |r: &allotment_tests::Resp| {
        let mut n: Vec<String> = r.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| !matches!(k.as_str(), "date" | "content-length" | "idempotent-replayed")).collect();
        n.sort();
        n
    };
    assert_eq!(names(&again), names(&first));
    assert!(again.headers.get("retry-after").is_none());
    assert_eq!(again.headers.get("allotment-created"), first.headers.get("allotment-created"));
    assert_eq!(api.count_prefix("PACK#").await, 2, "no second execution");
    assert_eq!(
        api.faults.calls("BatchWriteItem") + api.faults.calls("TransactWriteItems"),
        0,
        "no pack write at all"
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    assert_eq!(
        api.call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "k", BODY)
            .await
            .status,
        201
    );
    let r = api
        .call_with_key(
            "POST",
            "/namespaces/1/minutes",
            &api.admin(),
            "k",
            OTHER_BODY,
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.body["error"]["code"], 422);
    // Another path is another request too.
    namespace(&api, 2, None, 7).await;
    let r = api
        .call_with_key("POST", "/namespaces/2/minutes", &api.admin(), "k", BODY)
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(api.count_prefix("PACK#").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_execute_once_and_the_rest_wait_their_turn() {
    let api = Arc::new(TestApi::start().await);
    namespace(&api, 1, None, 7).await;
    // Slow the first execution down with throttling so the repeats overlap it.
    api.faults.inject("BatchWriteItem", Fault::Throttle, 4);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let api = api.clone();
        set.spawn(async move {
            api.call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "race", BODY)
                .await
        });
    }
    let (mut executed, mut in_progress, mut replays) = (0, 0, 0);
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        match (r.status, replayed(&r)) {
            (201, false) => executed += 1,
            (201, true) => replays += 1,
            (409, _) => in_progress += 1,
            other => panic!("unexpected {other:?}: {r:?}"),
        }
    }
    assert_eq!(executed, 1, "exactly one execution");
    assert!(
        in_progress >= 1,
        "a repeat during the first execution is 409 (got {in_progress} 409s, {replays} replays)"
    );
    assert_eq!(api.count_prefix("PACK#").await, 2);
}

#[tokio::test]
async fn a_crashed_request_holds_its_key_only_until_the_lock_expires() {
    let lock = Duration::from_millis(600);
    let api = TestApi::with_config(
        quick_retry(),
        IdempotencyConfig {
            lock,
            ..Default::default()
        },
    )
    .await;
    namespace(&api, 1, None, 7).await;
    // GIVEN a request that claimed the key and then died before answering
    let fingerprint = idempotency::fingerprint_of("POST", "/namespaces/1/minutes", "", BODY);
    let claim = idempotency::begin(
        &api.app.db,
        api.app.idempotency,
        "billing",
        "PostMinutes",
        "crash",
        &fingerprint,
    )
    .await
    .unwrap();
    assert!(matches!(claim, idempotency::Claim::Proceed(_)));
    // THEN a retry meanwhile is 409
    let r = api
        .call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "crash", BODY)
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    // AND once the lock has expired a retry takes over and runs
    tokio::time::sleep(lock + Duration::from_millis(200)).await;
    let r = api
        .call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "crash", BODY)
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert!(!replayed(&r));
    assert_eq!(api.count_prefix("PACK#").await, 2);
}

#[tokio::test]
async fn keys_are_scoped_to_caller_and_route() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let other_caller = api.token("another-billing-system", "admin");
    assert_eq!(
        api.call_with_key(
            "POST",
            "/namespaces/1/minutes",
            &api.admin(),
            "shared",
            BODY
        )
        .await
        .status,
        201
    );
    let r = api
        .call_with_key(
            "POST",
            "/namespaces/1/minutes",
            &other_caller,
            "shared",
            BODY,
        )
        .await;
    assert_eq!(
        (r.status, replayed(&r)),
        (201, false),
        "another caller's key is another key"
    );
    assert_eq!(api.count_prefix("PACK#").await, 4);
    let r = api
        .call_with_key(
            "PUT",
            "/namespaces/3",
            &api.admin(),
            "shared",
            br#"{"name":"c","owner_id":7}"#,
        )
        .await;
    assert_eq!(
        r.status, 200,
        "PUT is not idempotency-keyed, and never collides: {r:?}"
    );
    let r = api
        .call_with_key(
            "PATCH",
            "/namespaces/1/minutes/move/3",
            &api.admin(),
            "shared",
            b"",
        )
        .await;
    assert_eq!(
        (r.status, replayed(&r)),
        (202, false),
        "another route's key is another key"
    );
    let r = api
        .call_with_key(
            "PATCH",
            "/namespaces/1/minutes/move/3",
            &api.admin(),
            "shared",
            b"",
        )
        .await;
    assert_eq!((r.status, replayed(&r)), (202, true));
}

#[tokio::test]
async fn an_expired_record_counts_as_absent_before_ttl_deletes_it() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    assert_eq!(
        api.call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "old", BODY)
            .await
            .status,
        201
    );
    let records: Vec<_> = api
        .all_items()
        .await
        .into_iter()
        .filter(|i| i["pk"].as_s().unwrap().starts_with("IDEM#"))
        .collect();
    assert_eq!(records.len(), 1);
    let ttl: u64 = records[0]["ttl"].as_n().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 24 * 3600 - 5..=now + 24 * 3600 + 5).contains(&ttl),
        "kept 24 h through the TTL attribute"
    );
    // GIVEN the record's 24 h are over (TTL has not deleted it yet)
    api.app
        .db
        .client
        .update_item()
        .table_name(&api.table)
        .key("pk", records[0]["pk"].clone())
        .key("sk", AttributeValue::S("IDEM".into()))
        .update_expression("SET #t = :past")
        .expression_attribute_names("#t", "ttl")
        .expression_attribute_values(":past", AttributeValue::N((now - 1).to_string()))
        .send()
        .await
        .unwrap();
    let r = api
        .call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "old", BODY)
        .await;
    assert_eq!((r.status, replayed(&r)), (201, false), "runs anew");
    // The key names one logical request for good: the packs it creates are
    // named by it, so running it again finds them instead of adding two more.
    assert_eq!(api.count_prefix("PACK#").await, 2);
}

#[tokio::test]
async fn a_5xx_is_not_stored_so_a_retry_runs_again() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    api.faults.inject("BatchGetItem", Fault::Throttle, 6);
    let body = br#"{"packs": [{"number_of_minutes": 5, "expires_at": "2099-01-01", "purchase_xid": "x1"}]}"#;
    let r = api
        .call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "flaky", body)
        .await;
    assert_eq!(r.status, 503, "{r:?}");
    let r = api
        .call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "flaky", body)
        .await;
    assert_eq!((r.status, replayed(&r)), (201, false), "{r:?}");
}

#[tokio::test]
async fn bad_keys_are_400_and_run_nothing() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    // A tab inside is not the document's visible ASCII (found by the contract test).
    for key in [String::new(), "k".repeat(256), "a\tb".to_owned()] {
        let r = api
            .call_with_key("POST", "/namespaces/1/minutes", &api.admin(), &key, BODY)
            .await;
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(r.body["error"]["details"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(
        api.call_with_key(
            "POST",
            "/namespaces/1/minutes",
            &api.admin(),
            &"k".repeat(255),
            BODY
        )
        .await
        .status,
        201
    );
    assert_eq!(api.count_prefix("PACK#").await, 2);
}

#[tokio::test]
async fn every_answer_names_its_own_request_id_a_replay_included() {
    let api = TestApi::start().await;
    crate::packs::namespace(&api, 1, None, 7).await;
    let body = br#"{"packs":[{"number_of_minutes":1,"expires_at":"2031-01-01","purchase_xid":"r-1"}]}"#;
    let id = |r: &allotment_tests::Resp| r.headers.get("allotment-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned).unwrap_or_default();
    let first = api.call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "k-rid", body).await;
    let replay = api.call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "k-rid", body).await;
    assert_eq!(replay.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let refused = api.call("GET", "/namespaces/1/minutes", None, None).await;
    assert_eq!(refused.status, 401);
    let ids = [id(&first), id(&replay), id(&refused)];
    assert!(ids.iter().all(|i| uuid::Uuid::parse_str(i).is_ok()), "{ids:?}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "each request its own id: {ids:?}");
    // An error names its request in its body too, the id a caller quotes.
    assert_eq!(refused.body["error"]["request_id"], ids[2].as_str(), "{}", refused.body);
    let invalid = api.call_with_key("POST", "/namespaces/1/minutes", &api.admin(), "k-rid-2", b"{}").await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["error"]["request_id"], id(&invalid).as_str(), "{}", invalid.body);
    assert!(first.body.get("request_id").is_none() && first.body[0].get("request_id").is_none(), "only errors carry it in the body");
}

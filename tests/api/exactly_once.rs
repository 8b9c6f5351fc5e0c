//! Exactly once when the answer is lost: a write DynamoDB applied whose answer
//! never arrived (a 500 after commit, a timeout, a reset connection), a
//! request cut off midway and re-run with its Idempotency-Key, a transient
//! refusal. Each test fails on the code before its fix.

use std::time::Duration;

use allotment::idempotency::IdempotencyConfig;
use allotment_dev::proxy::WireFault;
use allotment_tests::{quick_retry, Fault, Resp, TestApi};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use crate::gifts::{create_gift, deposit, gift_body, project, user};
use crate::packs::{namespace, pack, post_packs};

fn clerk(api: &TestApi) -> String {
    api.token("clerk", "payments")
}

async fn given_wp(api: &TestApi, id: &str, days_worked: u64) {
    let body = json!({
        "resourceBookingId": "rb-1", "userHandle": "alice", "startDate": "2026-01-05", "endDate": "2026-01-11",
        "daysWorked": days_worked, "memberRate": 250, "customerRate": 310.5, "billingAccountId": 80000071
    });
    let r = api
        .call(
            "PUT",
            &format!("/work-periods/{id}"),
            Some(&api.admin()),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn wp(api: &TestApi, id: &str) -> Value {
    api.call(
        "GET",
        &format!("/work-periods/{id}"),
        Some(&api.admin()),
        None,
    )
    .await
    .body
}

async fn payments_of(api: &TestApi, wp: &str) -> Vec<Value> {
    let r = api
        .call(
            "GET",
            &format!("/work-period-payments?workPeriodId={wp}&perPage=100"),
            Some(&api.admin()),
            None,
        )
        .await;
    r.body["items"].as_array().cloned().unwrap_or_default()
}

async fn post_key(api: &TestApi, path: &str, token: &str, key: &str, body: &Value) -> Resp {
    api.call_with_key("POST", path, token, key, body.to_string().as_bytes())
        .await
}

/// With its ClientRequestToken, a transaction retried after a lost answer is
/// applied once by DynamoDB itself (Local honours tokens too): the retry of
/// a conditional put is answered as the first attempt was, not as its own
/// condition failing. Said at the transaction, where nothing else (a
/// deposit record, a claim token) could make the retry one effect instead:
/// without the token this retry fails its condition.
#[tokio::test]
async fn a_transactions_token_makes_its_retry_one_effect() {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
    let api = TestApi::start().await;
    // Two items: a one-item transaction is sent as a plain conditional write.
    let put = |pk: &str| {
        let put = Put::builder().table_name(&api.table).set_item(Some(allotment::db::key(pk, "TOKEN"))).condition_expression("attribute_not_exists(pk)").build().unwrap();
        TransactWriteItem::builder().put(put).build()
    };
    api.faults.inject("TransactWriteItems", Fault::LostAnswer, 1);
    let r = api.app.db.transact(vec![put("TOKEN#probe"), put("TOKEN#probe-2")]).await;
    assert!(r.is_ok(), "the retry carried the first attempt's token and was answered as applied: {r:?}");
    assert_eq!(api.faults.calls("TransactWriteItems"), 2, "one lost answer, one retry");
    assert_eq!(api.count_prefix("TOKEN#probe").await, 2, "both items, once each");
}

#[tokio::test]
async fn a_lost_answer_after_a_payment_committed_creates_it_once() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    given_wp(&api, "wp1", 5).await;
    // An additional payment (days 0) has no days condition to stop a second copy.
    api.faults
        .inject("TransactWriteItems", Fault::LostAnswer, 1);
    let r = api
        .call(
            "POST",
            "/work-period-payments",
            Some(&clerk(&api)),
            Some(json!({"workPeriodId": "wp1", "days": 0, "amount": 40})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(api.faults.faults_injected(), 1);
    // A payment with days: the retry must not answer a false 409.
    api.faults
        .inject("TransactWriteItems", Fault::LostAnswer, 1);
    let r = api
        .call(
            "POST",
            "/work-period-payments",
            Some(&clerk(&api)),
            Some(json!({"workPeriodId": "wp1", "days": 2})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let listed = payments_of(&api, "wp1").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let w = wp(&api, "wp1").await;
    assert_eq!(w["daysPaid"], 2);
    assert_eq!(w["paymentTotal"].as_f64(), Some(140.0));
}

#[tokio::test]
async fn a_lost_answer_in_bulk_and_in_patches_applies_each_once() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    for id in ["a", "b", "c"] {
        given_wp(&api, id, 5).await;
    }
    api.faults
        .inject("TransactWriteItems", Fault::LostAnswer, 1);
    let body = json!([{"workPeriodId": "a", "days": 0, "amount": 10}, {"workPeriodId": "b", "days": 1}, {"workPeriodId": "c"}]);
    let r = api
        .call(
            "POST",
            "/work-period-payments/bulk",
            Some(&clerk(&api)),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    for entry in r.body.as_array().unwrap() {
        assert!(entry.get("error").is_none(), "{r:?}");
    }
    for (id, n, days) in [("a", 1, 0), ("b", 1, 1), ("c", 1, 5)] {
        assert_eq!(payments_of(&api, id).await.len(), n, "{id}");
        assert_eq!(wp(&api, id).await["daysPaid"], days, "{id}");
    }
    // Cancelling gives the days back once; its lost answer is not a 409.
    let id = r.body[1]["id"].as_str().unwrap().to_owned();
    api.faults
        .inject("TransactWriteItems", Fault::LostAnswer, 1);
    let r = api
        .call(
            "PATCH",
            &format!("/work-period-payments/{id}"),
            Some(&clerk(&api)),
            Some(json!({"status": "cancelled"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(wp(&api, "b").await["daysPaid"], 0);
    // A change with no days (one conditional put, not a transaction).
    let id = r.body["id"].as_str().unwrap().to_owned();
    let other = payments_of(&api, "c").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.faults.inject("PutItem", Fault::LostAnswer, 1);
    let r = api
        .call(
            "PATCH",
            &format!("/work-period-payments/{other}"),
            Some(&clerk(&api)),
            Some(json!({"customerRate": 300})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["customerRate"].as_f64(), Some(300.0));
    let _ = id;
}

#[tokio::test]
async fn a_lost_deposit_answer_credits_the_wallet_once() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    project(&api, "p", &[("pi", "PI")]).await;
    api.faults
        .inject("TransactWriteItems", Fault::LostAnswer, 1);
    let r = deposit(&api, "p", "cpu", 7).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["balance"], 7, "{r:?}");
    assert_eq!(api.faults.faults_injected(), 1);
    let r = deposit(&api, "p", "cpu", 7).await;
    assert_eq!(
        r.body["balance"], 14,
        "a deposit without a key is a new deposit: {r:?}"
    );
    let deposits = api
        .all_items()
        .await
        .into_iter()
        .filter(
            |i| matches!(i.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with("DEPOSIT#")),
        )
        .count();
    assert_eq!(deposits, 2, "one record per deposit");
}

#[tokio::test]
async fn a_lost_claim_answer_is_the_claim_not_a_409() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    project(&api, "sandbox", &[("pi", "PI")]).await;
    assert_eq!(deposit(&api, "sandbox", "cpu", 100).await.status, 200);
    let gift = create_gift(
        &api,
        &user("pi", None, None),
        gift_body("sandbox", &[("cpu", 10)], json!([{"type": "anyone"}]), 0),
    )
    .await;
    api.faults
        .inject("TransactWriteItems", Fault::LostAnswer, 1);
    let carol = user("carol", None, None);
    let r = api
        .call(
            "POST",
            "/gifts/claim",
            Some(&carol),
            Some(json!({"giftId": gift})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let mine = api.call("GET", "/me/wallets", Some(&carol), None).await;
    assert_eq!(mine.body["wallets"][0]["balance"], 10, "{mine:?}");
    let owner = api
        .call("GET", "/projects/sandbox/wallets", Some(&api.admin()), None)
        .await;
    assert_eq!(owner.body["wallets"][0]["balance"], 90, "{owner:?}");
    // And a second claim is still refused.
    let r = api
        .call(
            "POST",
            "/gifts/claim",
            Some(&carol),
            Some(json!({"giftId": gift})),
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
}

#[tokio::test]
async fn a_lost_answer_on_a_gifts_creation_is_its_creation() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    project(&api, "sandbox", &[("pi", "PI")]).await;
    assert_eq!(deposit(&api, "sandbox", "cpu", 100).await.status, 200);
    api.faults
        .inject("TransactWriteItems", Fault::LostAnswer, 1);
    let r = api
        .call(
            "POST",
            "/gifts",
            Some(&user("pi", None, None)),
            Some(gift_body(
                "sandbox",
                &[("cpu", 10)],
                json!([{"type": "anyone"}]),
                0,
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let listed = api
        .call(
            "GET",
            "/gifts?project=sandbox",
            Some(&user("pi", None, None)),
            None,
        )
        .await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{listed:?}"
    );
}

#[tokio::test]
async fn the_key_records_own_lost_answer_does_not_conflict_with_itself() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    namespace(&api, 1, None, 7).await;
    // The first PutItem of a keyed request is its Idempotency-Key record.
    api.faults.inject("PutItem", Fault::LostAnswer, 1);
    let body = json!({"packs": [pack(5, "2099-01-01", Some("k1"))]});
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "key-1", &body).await;
    assert_eq!(r.status, 201, "not 409 'still being processed': {r:?}");
    let again = post_key(&api, "/namespaces/1/minutes", &api.admin(), "key-1", &body).await;
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(again.bytes, r.bytes);
}

#[tokio::test]
async fn lost_answers_on_pack_puts_report_every_pack_once() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    namespace(&api, 1, None, 7).await;
    api.faults.inject("PutItem", Fault::LostAnswer, 3);
    let packs: Vec<Value> = (0..20)
        .map(|i| pack(1, "2099-01-01", Some(&format!("x{i}"))))
        .collect();
    let r = post_packs(&api, 1, packs).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body.as_array().map(Vec::len), Some(20));
    assert_eq!(api.count_prefix("PACK#").await, 20);
}

/// A pack another request created a moment ago is adopted before a re-sync
/// reports it, so its creator's undo (conditioned on its request id) can no
/// longer delete it; an old pack is reported without any write.
#[tokio::test]
async fn a_pack_a_resync_reported_survives_its_creators_undo() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    namespace(&api, 1, None, 7).await;
    let now = allotment::validate::format_timestamp(time::OffsetDateTime::now_utc());
    let in_flight = |xid: &str, created_at: &str| {
        let mut item = std::collections::HashMap::new();
        for (k, v) in [
            ("pk", format!("PACK#X#{xid}")),
            ("sk", "PACK".into()),
            ("gsi1pk", "NSPACKS#1".into()),
            ("gsi1sk", format!("{created_at}#0000#PACK#X#{xid}")),
            ("expires_at", "2099-01-01".into()),
            ("purchase_xid", xid.into()),
            ("created_at", created_at.into()),
            ("request_id", "request-a".into()),
        ] {
            item.insert(k.to_owned(), AttributeValue::S(v));
        }
        item.insert("namespace_id".into(), AttributeValue::N("1".into()));
        item.insert("number_of_minutes".into(), AttributeValue::N("5".into()));
        item
    };
    // Request A has just written x1 (and is still running); x2 is an old pack.
    for (xid, at) in [("x1", now.as_str()), ("x2", "2020-01-01T00:00:00.000Z")] {
        api.app
            .db
            .client
            .put_item()
            .table_name(&api.table)
            .set_item(Some(in_flight(xid, at)))
            .send()
            .await
            .unwrap();
    }
    api.faults.reset_counts();
    let r = post_packs(&api, 1, vec![pack(5, "2099-01-01", Some("x2"))]).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        api.faults.write_calls(),
        0,
        "an old pack is reported without a write"
    );
    let r = post_packs(&api, 1, vec![pack(5, "2099-01-01", Some("x1"))]).await;
    assert_eq!(r.status, 201, "{r:?}");
    // A fails now and undoes what it wrote, exactly as its undo does.
    let undo = api
        .app
        .db
        .client
        .delete_item()
        .table_name(&api.table)
        .set_key(Some(allotment::db::key("PACK#X#x1", "PACK")))
        .condition_expression("request_id = :rid")
        .expression_attribute_values(":rid", AttributeValue::S("request-a".into()))
        .send()
        .await;
    assert!(undo.is_err(), "the undo's condition no longer holds");
    assert_eq!(
        api.count_prefix("PACK#X#x1").await,
        1,
        "the pack the re-sync reported is still there"
    );
}

/// A failure that is not a condition (an item DynamoDB refuses) in a shared
/// transaction answers only for the payment that caused it: the others are
/// written in transactions of their own.
#[tokio::test]
async fn one_failed_transaction_does_not_fail_the_other_payments_of_its_chunk() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    for id in ["a", "b", "c"] {
        given_wp(&api, id, 5).await;
    }
    api.faults.inject("TransactWriteItems", Fault::Invalid, 1);
    let body = json!([{"workPeriodId": "a", "days": 1}, {"workPeriodId": "b", "days": 1}, {"workPeriodId": "c", "days": 1}]);
    let r = api
        .call(
            "POST",
            "/work-period-payments/bulk",
            Some(&clerk(&api)),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    for entry in r.body.as_array().unwrap() {
        assert!(
            entry.get("error").is_none(),
            "each payment written on its own: {r:?}"
        );
    }
    assert_eq!(
        api.faults.calls("TransactWriteItems"),
        4,
        "one shared attempt, then one each"
    );
}

/// "The work period kept changing" is transient: a 503 with Retry-After that
/// the Idempotency-Key does not keep, so the client's retry with the same key
/// runs again and succeeds.
#[tokio::test]
async fn a_transient_conflict_is_503_and_not_stored_as_the_keys_answer() {
    let api = TestApi::start().await;
    api.faults.without_client_tokens();
    given_wp(&api, "wp1", 5).await;
    api.faults
        .inject("TransactWriteItems", Fault::ConditionFailed, 6);
    let body = json!({"workPeriodId": "wp1", "days": 1});
    let r = post_key(&api, "/work-period-payments", &clerk(&api), "pay-1", &body).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let r = post_key(&api, "/work-period-payments", &clerk(&api), "pay-1", &body).await;
    assert_eq!(r.status, 201, "the retry ran again: {r:?}");
    assert!(r.headers.get("idempotent-replayed").is_none());
    assert_eq!(payments_of(&api, "wp1").await.len(), 1);
}

/// A request cut off after some of its writes (its function killed at the
/// time limit) and sent again with the same key once the lock expired runs
/// again from the start: the payments its first run wrote are found by
/// their derived ids, not written again.
#[tokio::test]
async fn a_bulk_request_cut_off_midway_and_rerun_with_its_key_pays_each_item_once() {
    let config = IdempotencyConfig {
        lock: Duration::ZERO,
        ..IdempotencyConfig::default()
    };
    let api = TestApi::with_config(quick_retry(), config).await;
    api.faults.without_client_tokens();
    given_wp(&api, "wp1", 5).await;
    // Two payments of one work period go in two rounds: the crash comes before the second.
    api.faults.fail_after("TransactWriteItems", 1, Fault::Crash);
    let body = json!([{"workPeriodId": "wp1", "days": 0, "amount": 15}, {"workPeriodId": "wp1", "days": 2}]);
    let r = post_key(
        &api,
        "/work-period-payments/bulk",
        &clerk(&api),
        "bulk-1",
        &body,
    )
    .await;
    assert_eq!(r.status, 500, "the function died: {r:?}");
    assert_eq!(
        payments_of(&api, "wp1").await.len(),
        1,
        "the first round was written"
    );
    api.faults.clear();
    // The lock (zero here) expires once the clock has moved past its millisecond.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(
        &api,
        "/work-period-payments/bulk",
        &clerk(&api),
        "bulk-1",
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("error").is_none()),
        "{r:?}"
    );
    let listed = payments_of(&api, "wp1").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let w = wp(&api, "wp1").await;
    assert_eq!(
        (w["daysPaid"].clone(), w["paymentTotal"].as_f64()),
        (json!(2), Some(115.0))
    );
}

/// On the wire: the proxy forwards the write to DynamoDB Local, then answers
/// after the client's attempt timeout or resets the connection. The SDK's own
/// timeout and dispatch-failure paths run, and each write applies once.
#[tokio::test]
async fn timeouts_and_resets_after_the_write_applied_are_each_one_effect() {
    let api =
        TestApi::through_proxy(Duration::from_millis(1000), IdempotencyConfig::default()).await;
    let proxy = api.proxy.clone().unwrap();
    api.faults.without_client_tokens();
    given_wp(&api, "wp1", 5).await;
    project(&api, "p", &[("pi", "PI")]).await;
    namespace(&api, 1, None, 7).await;
    proxy.inject(
        "TransactWriteItems",
        WireFault::SlowAnswer(Duration::from_millis(2500)),
        1,
    );
    let r = api
        .call(
            "POST",
            "/work-period-payments",
            Some(&clerk(&api)),
            Some(json!({"workPeriodId": "wp1", "days": 0, "amount": 5})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    proxy.inject("TransactWriteItems", WireFault::Reset, 1);
    let r = deposit(&api, "p", "cpu", 7).await;
    assert_eq!(
        (r.status, r.body["balance"].clone()),
        (200, json!(7)),
        "{r:?}"
    );
    proxy.inject("PutItem", WireFault::Reset, 2);
    let r = post_packs(
        &api,
        1,
        vec![
            pack(1, "2099-01-01", Some("w1")),
            pack(1, "2099-01-01", Some("w2")),
        ],
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(payments_of(&api, "wp1").await.len(), 1);
    assert_eq!(api.count_prefix("PACK#").await, 2);
    let injected = proxy.injected();
    assert_eq!(
        (injected.get("slow answer"), injected.get("reset")),
        (Some(&1), Some(&3))
    );
}

fn hosting(reference: &str) -> Value {
    json!({"slug": "hosting-basic", "contract_period": 12, "billing_period": 1, "start_date": "2023-01-01",
        "next_contract_date": "2024-01-01", "next_billing_date": "2023-02-01", "reference_subscription_id": reference, "reference_product_id": "ref-h"})
}

async fn ferry_world(api: &TestApi) {
    crate::ferry::product(api, "hosting-basic", "hosting", &[(12, 1)]).await;
    crate::ferry::customer(api, "c1", "r1").await;
}

fn crash_safe_api_config() -> IdempotencyConfig {
    IdempotencyConfig { lock: Duration::ZERO, ..IdempotencyConfig::default() }
}

/// A Ferry post cut off before its answer and sent again with its key
/// reports every subscription as created — its first run's, found under the
/// ids the key derives — not as "already migrated", and each pair exists once.
#[tokio::test]
async fn a_ferry_post_cut_off_midway_and_rerun_with_its_key_reports_each_subscription_once_as_created() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    api.faults.without_client_tokens();
    ferry_world(&api).await;
    let subs: Vec<Value> = (0..5).map(|i| hosting(&format!("s{i}"))).collect();
    let body = json!({"reference_customer_id": "r1", "subscriptions": {"hosting": subs}});
    // Every subscription is written, then the function dies before its key
    // is settled (a crash between two concurrent puts is left to the chaos
    // harness: which of them reached DynamoDB is a matter of timing).
    api.faults.fail_after("UpdateItem", 0, Fault::Crash);
    let r = post_key(&api, "/ferry/customers/c1/subscriptions", &api.admin(), "ferry-1", &body).await;
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 5, "the first run wrote them all");
    api.faults.clear();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(&api, "/ferry/customers/c1/subscriptions", &api.admin(), "ferry-1", &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["success"].as_array().map(Vec::len), Some(5), "{r:?}");
    assert_eq!(r.body["failures"].as_array().map(Vec::len), Some(0), "{r:?}");
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 5);
}

/// A request that dies after its writes but before its Idempotency-Key
/// record is settled is re-run once the lock expires: the gift, the deposit
/// and the claim it made are found, not made again.
#[tokio::test]
async fn a_request_that_dies_before_settling_its_key_is_rerun_without_a_second_effect() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    api.faults.without_client_tokens();
    project(&api, "p", &[("pi", "PI")]).await;
    let pi = user("pi", None, None);
    // Deposit: its transaction, then the key record's settling UpdateItem dies.
    let body = json!({"category": "cpu", "provider": "ucloud", "amount": 50});
    let r = crash_then_rerun(&api, "UpdateItem", 0, "/projects/p/wallets/deposit", &api.admin(), "dep-1", &body).await;
    assert_eq!((r.status, r.body["balance"].clone()), (200, json!(50)), "credited once: {r:?}");
    // Gift: the sequence step (UpdateItem), its transaction, then the settling dies.
    let body = gift_body("p", &[("cpu", 10)], json!([{"type": "anyone"}]), 0);
    let r = crash_then_rerun(&api, "UpdateItem", 1, "/gifts", &pi, "gift-1", &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let listed = api.call("GET", "/gifts?project=p", Some(&pi), None).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1), "one gift: {listed:?}");
    assert_eq!(listed.body["items"][0]["id"], r.body["id"]);
    // Claim: its transaction, then the settling dies.
    let carol = user("carol", None, None);
    let r = crash_then_rerun(&api, "UpdateItem", 0, "/gifts/claim", &carol, "claim-1", &json!({"giftId": r.body["id"]})).await;
    assert_eq!(r.status, 200, "the re-run finds its own claim: {r:?}");
    let mine = api.call("GET", "/me/wallets", Some(&carol), None).await;
    assert_eq!(mine.body["wallets"][0]["balance"], 10);
}

/// POSTs a request whose function dies at the call after `pass` calls of
/// `op` (the front answers 500, the key stays locked), then — the lock
/// expired — the same request again: the re-run's answer.
async fn crash_then_rerun(api: &TestApi, op: &'static str, pass: usize, path: &str, token: &str, key: &str, body: &Value) -> Resp {
    api.faults.fail_after(op, pass, Fault::Crash);
    let r = post_key(api, path, token, key, body).await;
    assert_eq!(r.status, 500, "the function died: {r:?}");
    api.faults.clear();
    // The lock (zero here) expires once the clock has moved past its millisecond.
    tokio::time::sleep(Duration::from_millis(5)).await;
    post_key(api, path, token, key, body).await
}

/// Bulk payments and Ferry stop starting work when the request's time budget
/// is spent (zero here: one round, or 200 subscriptions, always run) and say
/// what remains; sending the rest again finishes the job.
#[tokio::test]
async fn bulk_payments_and_ferry_stop_at_their_time_budget_and_say_what_remains() {
    let api = TestApi::with_app(quick_retry(), IdempotencyConfig::default(), |app| app.work_budget = Duration::ZERO).await;
    api.faults.without_client_tokens();
    given_wp(&api, "wp1", 5).await;
    let body = json!([{"workPeriodId": "wp1", "days": 1}, {"workPeriodId": "wp1", "days": 1}, {"workPeriodId": "wp1", "days": 1}]);
    let r = post_key(&api, "/work-period-payments/bulk", &clerk(&api), "budget-1", &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let codes: Vec<Value> = r.body.as_array().unwrap().iter().map(|e| e["error"]["code"].clone()).collect();
    assert_eq!(codes, vec![Value::Null, json!(503), json!(503)], "one round ran: {r:?}");
    assert_eq!(wp(&api, "wp1").await["daysPaid"], 1);
    // An answer with 5xx entries is not kept: the same key runs again, finds
    // the first payment by its derived id and writes one more round.
    let again = post_key(&api, "/work-period-payments/bulk", &clerk(&api), "budget-1", &body).await;
    assert!(again.headers.get("idempotent-replayed").is_none(), "{again:?}");
    assert_eq!(again.body[0]["id"], r.body[0]["id"], "the same payment");
    assert_eq!(wp(&api, "wp1").await["daysPaid"], 2);
    ferry_world(&api).await;
    let subs: Vec<Value> = (0..205).map(|i| hosting(&format!("b{i}"))).collect();
    let body = json!({"reference_customer_id": "r1", "subscriptions": {"hosting": subs}});
    let r = api.call("POST", "/ferry/customers/c1/subscriptions", Some(&api.admin()), Some(body.clone())).await;
    assert_eq!(r.status, 200, "{r:?}");
    let failures = r.body["failures"].as_array().cloned().unwrap_or_default();
    assert_eq!((r.body["success"].as_array().map(Vec::len), failures.len()), (Some(200), 5), "{r:?}");
    assert!(failures.iter().all(|f| f["message"].as_str().is_some_and(|m| m.contains("post it again"))), "{failures:?}");
    let r = api.call("POST", "/ferry/customers/c1/subscriptions", Some(&api.admin()), Some(body)).await;
    assert_eq!(r.body["success"].as_array().map(Vec::len), Some(5), "the rest: {r:?}");
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 205);
}

/// A key whose first request died holding it cannot be taken over by a
/// different request (422), and the records a keyed request creates are
/// named by its body too.
#[tokio::test]
async fn a_key_reused_with_another_body_after_a_crash_is_422_not_a_lost_effect() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    api.faults.without_client_tokens();
    project(&api, "p", &[("pi", "PI")]).await;
    api.faults.fail_after("UpdateItem", 0, Fault::Crash);
    let first = json!({"category": "cpu", "provider": "ucloud", "amount": 50});
    assert_eq!(post_key(&api, "/projects/p/wallets/deposit", &api.admin(), "k", &first).await.status, 500);
    api.faults.clear();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let other = json!({"category": "cpu", "provider": "ucloud", "amount": 60});
    let r = post_key(&api, "/projects/p/wallets/deposit", &api.admin(), "k", &other).await;
    assert_eq!(r.status, 422, "{r:?}");
    let r = post_key(&api, "/projects/p/wallets/deposit", &api.admin(), "k2", &other).await;
    assert_eq!(r.body["balance"], 110, "{r:?}");
}

/// An update recognises itself among the payment's recent writers, not only
/// as the last one: a re-run after others changed the payment is not a
/// second effect.
#[tokio::test]
async fn a_patch_rerun_after_other_changes_does_not_apply_again() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    api.faults.without_client_tokens();
    given_wp(&api, "wp1", 5).await;
    let r = api.call("POST", "/work-period-payments", Some(&clerk(&api)), Some(json!({"workPeriodId": "wp1", "days": 1}))).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/work-period-payments/{id}");
    api.faults.fail_after("UpdateItem", 0, Fault::Crash);
    let mine = json!({"customerRate": 300});
    let r = api.call_with_key("PATCH", &path, &clerk(&api), "p1", mine.to_string().as_bytes()).await;
    assert_eq!(r.status, 500, "{r:?}");
    api.faults.clear();
    let r = api.call("PATCH", &path, Some(&clerk(&api)), Some(json!({"customerRate": 280}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = api.call_with_key("PATCH", &path, &clerk(&api), "p1", mine.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["customerRate"].as_f64(), Some(280.0), "the later change stands: {r:?}");
}

/// A keyed claim's re-run answers from its receipt, even after the gift was
/// deleted.
#[tokio::test]
async fn a_claim_rerun_after_its_gift_was_deleted_is_still_the_claim() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    api.faults.without_client_tokens();
    project(&api, "p", &[("pi", "PI")]).await;
    assert_eq!(deposit(&api, "p", "cpu", 100).await.status, 200);
    let pi = user("pi", None, None);
    let gift = create_gift(&api, &pi, gift_body("p", &[("cpu", 10)], json!([{"type": "anyone"}]), 0)).await;
    let carol = user("carol", None, None);
    api.faults.fail_after("UpdateItem", 0, Fault::Crash);
    let body = json!({"giftId": gift});
    assert_eq!(post_key(&api, "/gifts/claim", &carol, "c1", &body).await.status, 500);
    api.faults.clear();
    assert_eq!(api.call("DELETE", &format!("/gifts/{gift}"), Some(&pi), None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(&api, "/gifts/claim", &carol, "c1", &body).await;
    assert_eq!(r.status, 200, "not 404: {r:?}");
}

/// A keyed pack request re-run after its packs were moved does not put them
/// back: the packs its first run wrote are found where they are now.
#[tokio::test]
async fn a_pack_request_rerun_after_a_move_leaves_the_moved_packs_where_they_are() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    api.faults.without_client_tokens();
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let body = json!({"packs": [pack(5, "2099-01-01", None), pack(6, "2099-01-01", None)]});
    api.faults.fail_after("UpdateItem", 0, Fault::Crash);
    assert_eq!(post_key(&api, "/namespaces/1/minutes", &api.admin(), "n1", &body).await.status, 500);
    api.faults.clear();
    let r = api.call("PATCH", "/namespaces/1/minutes/move/2", Some(&api.admin()), None).await;
    assert_eq!(r.body["moved"], 2, "{r:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "n1", &body).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert!(r.body.as_array().unwrap().iter().all(|p| p["namespace_id"] == 2), "reported where they are: {r:?}");
    let listed = api.call("GET", "/namespaces/2/minutes", Some(&api.admin()), None).await;
    assert_eq!(listed.body["packs"].as_array().map(Vec::len), Some(2), "{listed:?}");
    let listed = api.call("GET", "/namespaces/1/minutes", Some(&api.admin()), None).await;
    assert_eq!(listed.body["packs"].as_array().map(Vec::len), Some(0), "nothing put back: {listed:?}");
}

/// An xid an eventually consistent read still shows in another namespace (a
/// pack undone or moved a moment ago) is re-read strongly consistent, and
/// what that read says replaces it — absence included: no spurious 409.
#[tokio::test]
async fn a_stale_read_of_an_xid_elsewhere_does_not_survive_the_consistent_reread() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let ghost = json!({
        "pk": {"S": "PACK#X#gone"}, "sk": {"S": "PACK"}, "gsi1pk": {"S": "NSPACKS#2"}, "gsi1sk": {"S": "2026-01-01T00:00:00.000Z#0000#PACK#X#gone"},
        "namespace_id": {"N": "2"}, "number_of_minutes": {"N": "5"}, "expires_at": {"S": "2099-01-01"}, "purchase_xid": {"S": "gone"},
        "created_at": {"S": "2026-01-01T00:00:00.000Z"}
    });
    api.faults.stale_read(vec![ghost]);
    let r = post_packs(&api, 1, vec![pack(5, "2099-01-01", Some("gone"))]).await;
    assert_eq!(r.status, 201, "the stale sighting is not a 409: {r:?}");
    assert_eq!(r.body[0]["namespace_id"], 1);
}

/// A pack as a request that is still running wrote it, in DynamoDB JSON.
fn running_pack(xid: &str, ns: u64, request_id: &str) -> Value {
    let now = allotment::validate::format_timestamp(time::OffsetDateTime::now_utc());
    json!({
        "pk": {"S": format!("PACK#X#{xid}")}, "sk": {"S": "PACK"}, "gsi1pk": {"S": format!("NSPACKS#{ns}")},
        "gsi1sk": {"S": format!("{now}#0000#PACK#X#{xid}")}, "namespace_id": {"N": ns.to_string()}, "number_of_minutes": {"N": "5"},
        "expires_at": {"S": "2099-01-01"}, "purchase_xid": {"S": xid}, "created_at": {"S": now}, "request_id": {"S": request_id}
    })
}

async fn put_json(api: &TestApi, item: &Value) {
    let item: std::collections::HashMap<String, AttributeValue> = item
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| match (v.get("S"), v.get("N")) {
            (Some(s), _) => (k.clone(), AttributeValue::S(s.as_str().unwrap().to_owned())),
            (_, Some(n)) => (k.clone(), AttributeValue::N(n.as_str().unwrap().to_owned())),
            _ => panic!("{k}: S or N"),
        })
        .collect();
    api.app.db.client.put_item().table_name(&api.table).set_item(Some(item)).send().await.unwrap();
}

/// Issue 29, finding 1: a re-sync reads, from a stale replica, the pack as
/// an earlier request (C, since undone) wrote it, while the pack there now is
/// its retry's (B, still running, still able to undo). Adopting under C's id
/// fails; the pack's present owner is adopted in turn, so B's undo cannot
/// delete the pack the re-sync reported.
#[tokio::test]
async fn a_resync_that_read_a_stale_owner_adopts_the_present_one() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    put_json(&api, &running_pack("x1", 1, "request-b")).await;
    api.faults.stale_read(vec![running_pack("x1", 1, "request-c")]);
    let r = post_packs(&api, 1, vec![pack(5, "2099-01-01", Some("x1"))]).await;
    assert_eq!(r.status, 201, "{r:?}");
    // B fails now and undoes what it wrote, exactly as its undo does.
    let undo = api
        .app
        .db
        .delete_if(allotment::db::key("PACK#X#x1", "PACK"), "request_id = :rid", &[(":rid", AttributeValue::S("request-b".into()))])
        .await;
    assert!(undo.is_err(), "B's undo no longer applies: the re-sync adopted B's pack");
    assert_eq!(api.count_prefix("PACK#X#x1").await, 1, "the pack the re-sync reported is there");
}

/// Issue 29, finding 2a: a request that wrote a plain pack, then met an xid
/// of another namespace (its first read was stale), and could not undo (every
/// delete throttled) answers 503, not a 409 that says nothing was written.
#[tokio::test]
async fn a_failed_undo_is_a_503_never_a_409() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let r = post_packs(&api, 2, vec![pack(5, "2099-01-01", Some("taken"))]).await;
    assert_eq!(r.status, 201, "{r:?}");
    api.faults.stale_read(vec![]);
    api.faults.inject("DeleteItem", Fault::Throttle, usize::MAX);
    let r = post_packs(&api, 1, vec![pack(7, "2099-01-01", None), pack(5, "2099-01-01", Some("taken"))]).await;
    assert_eq!(r.status, 503, "the undo did not happen: {r:?}");
    api.faults.clear();
}

/// Issue 29, finding 2b: a keyed run dies during its undo (the time limit),
/// leaving its plain pack; the re-run after the lock expired is refused (the
/// xid is another namespace's) — and first deletes what its earlier run left,
/// so the 409's "nothing was written" is true and a re-send under a new key
/// makes the plain pack once.
#[tokio::test]
async fn a_keyed_rerun_settles_its_earlier_runs_plain_packs_before_refusing() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let r = post_packs(&api, 2, vec![pack(5, "2099-01-01", Some("taken"))]).await;
    assert_eq!(r.status, 201, "{r:?}");
    let body = json!({"packs": [pack(7, "2099-01-01", None), pack(5, "2099-01-01", Some("taken"))]});
    api.faults.stale_read(vec![]);
    api.faults.inject("DeleteItem", Fault::Crash, 1);
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "import-1", &body).await;
    assert_eq!(r.status, 500, "cut off during its undo: {r:?}");
    assert_eq!(api.count_prefix("PACK#U#").await, 1, "the first run left its plain pack");
    api.faults.clear();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "import-1", &body).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(api.count_prefix("PACK#U#").await, 0, "the refusal settled the earlier run's plain pack");
}

/// A keyed re-run refused at step 3 (its read missed that the xid went to
/// another namespace; the put finds it there) also settles what an earlier,
/// killed run of the key left — here a plain pack a move carried along —
/// so the 409 is true.
#[tokio::test]
async fn a_keyed_rerun_refused_at_its_write_settles_earlier_runs_too() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    for ns in [1, 2] {
        namespace(&api, ns, None, 7).await;
    }
    let body = json!({"packs": [pack(7, "2099-01-01", None), pack(5, "2099-01-01", Some("x9"))]});
    // The first run writes both packs and is cut off before its commit marker.
    api.faults.fail_after("PutItem", 3, Fault::Crash);
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "k-9", &body).await;
    api.faults.clear();
    assert_eq!(r.status, 500, "{r:?}");
    let r = api.call("PATCH", "/namespaces/1/minutes/move/2", Some(&api.admin()), None).await;
    assert_eq!((r.status, r.body["moved"].clone()), (202, json!(2)), "{r:?}");
    // The re-run's read misses x9 (stale): it is refused by x9's put.
    api.faults.stale_read(vec![]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "k-9", &body).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(api.count_prefix("PACK#U#").await, 0, "the earlier run's plain pack was settled");
}

/// An answer that cannot be kept for its Idempotency-Key (the final save
/// throttled throughout) is not given: 503, and the retry — taking over the
/// key once its lock expired — finds the deposit applied and answers it, once.
#[tokio::test]
async fn an_answer_that_cannot_be_stored_is_a_503_and_the_retry_answers_it() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    project(&api, "p", &[("pi", "PI")]).await;
    let body = json!({"category": "cpu", "provider": "ucloud", "amount": 7});
    api.faults.inject("UpdateItem", Fault::Throttle, usize::MAX);
    let r = post_key(&api, "/projects/p/wallets/deposit", &api.admin(), "dep-1", &body).await;
    api.faults.clear();
    assert_eq!(r.status, 503, "{r:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(&api, "/projects/p/wallets/deposit", &api.admin(), "dep-1", &body).await;
    assert_eq!((r.status, r.body["balance"].clone()), (200, json!(7)), "{r:?}");
}

/// A keyed pack run that cannot write its commit marker answers 503 (not
/// undone: the marker may have landed); its retry finds the packs under the
/// key, adopts them and answers 201, so no pack stays marked by a run that
/// never committed — `verify` finds no orphan.
#[tokio::test]
async fn a_keyed_run_that_cannot_commit_is_a_503_and_its_retry_adopts() {
    let api = TestApi::with_config(quick_retry(), crash_safe_api_config()).await;
    namespace(&api, 1, None, 7).await;
    let body = json!({"packs": [pack(7, "2099-01-01", None), pack(5, "2099-01-01", Some("c7"))]});
    // The key's record and the two packs pass; the commit marker is throttled throughout.
    api.faults.fail_after("PutItem", 3, Fault::Throttle);
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "commit-1", &body).await;
    api.faults.clear();
    assert_eq!(r.status, 503, "{r:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = post_key(&api, "/namespaces/1/minutes", &api.admin(), "commit-1", &body).await;
    assert_eq!(r.status, 201, "{r:?}");
    let marked = api.all_items().await.into_iter().filter(|i| matches!(i.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("PACK#")) && i.contains_key("request_id")).count();
    assert_eq!((api.count_prefix("PACK#").await, marked), (2, 0), "both packs, adopted");
}

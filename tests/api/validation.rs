//! Bad input: each gets the spec's JSON error with the right status, and
//! nothing is written.

use allotment_tests::{Resp, TestApi};
use serde_json::{json, Value};

use crate::packs::namespace;

fn assert_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["error"]["code"], status, "error shape: {r:?}");
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "a human message: {r:?}");
    assert!(!message.contains("Error {") && !message.contains("SdkError"), "no Debug text: {message}");
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
}

fn field_of(r: &Resp) -> String {
    r.body["error"]["details"][0]["field"].as_str().unwrap_or_default().to_owned()
}

async fn post_raw(api: &TestApi, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
    let headers = vec![
        ("content-type".to_owned(), content_type.to_owned()),
        ("authorization".to_owned(), format!("Bearer {}", api.admin())),
    ];
    api.raw("POST", path, &headers, body).await
}

#[tokio::test]
async fn every_bad_pack_body_is_400_naming_the_field_and_writes_nothing() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let ok = json!({"number_of_minutes": 10, "expires_at": "2031-01-01", "purchase_xid": "a"});
    let with = |k: &str, v: Value| {
        let mut p = ok.clone();
        p[k] = v;
        json!({"packs": [ok.clone(), p]})
    };
    let without = |k: &str| {
        let mut p = ok.clone();
        p.as_object_mut().unwrap().remove(k);
        json!({"packs": [p]})
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("wrong type of minutes", with("number_of_minutes", json!("10")), "packs[1].number_of_minutes"),
        ("zero minutes", with("number_of_minutes", json!(0)), "packs[1].number_of_minutes"),
        ("negative minutes", with("number_of_minutes", json!(-5)), "packs[1].number_of_minutes"),
        ("minutes over the bound", with("number_of_minutes", json!(10_000_001)), "packs[1].number_of_minutes"),
        ("non-integer minutes", with("number_of_minutes", json!(10.5)), "packs[1].number_of_minutes"),
        ("impossible date", with("expires_at", json!("2022-02-30")), "packs[1].expires_at"),
        ("not a date", with("expires_at", json!("tomorrow")), "packs[1].expires_at"),
        ("date of wrong type", with("expires_at", json!(20220101)), "packs[1].expires_at"),
        ("empty xid", with("purchase_xid", json!("")), "packs[1].purchase_xid"),
        ("xid over 32 chars", with("purchase_xid", json!("x".repeat(33))), "packs[1].purchase_xid"),
        ("xid of wrong type", with("purchase_xid", json!(12)), "packs[1].purchase_xid"),
        ("unknown field in a pack", with("colour", json!("red")), "packs[1].colour"),
        ("missing minutes", without("number_of_minutes"), "packs[0]"),
        ("missing expiry", without("expires_at"), "packs[0]"),
        ("unknown top-level field", json!({"packs": [ok.clone()], "extra": 1}), "extra"),
        ("missing packs", json!({}), "body"),
        ("packs not an array", json!({"packs": {}}), "packs"),
        ("empty packs", json!({"packs": []}), "packs"),
        ("body an array", json!([ok.clone()]), "body"),
    ];
    for (what, body, field) in cases {
        let r = api.call("POST", "/namespaces/1/minutes", Some(&api.admin()), Some(body)).await;
        assert_error(&r, 400);
        assert!(field_of(&r).starts_with(field), "{what}: expected field {field}, got {r:?}");
    }
    // 32 characters is fine, and the null xid is the self-managed case.
    let r = api
        .call("POST", "/namespaces/1/minutes", Some(&api.admin()), Some(json!({"packs": [with("purchase_xid", json!("y".repeat(32)))["packs"][1], with("purchase_xid", Value::Null)["packs"][1]]})))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    api.faults.reset_counts();
    assert_eq!(api.count_prefix("PACK#").await, 2, "only the valid request wrote");
}

#[tokio::test]
async fn every_error_is_reported_at_once() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let body = json!({"packs": [
        {"number_of_minutes": 0, "expires_at": "2022-13-01", "purchase_xid": ""},
        {"number_of_minutes": 5, "expires_at": "2022-01-01"},
        {"number_of_minutes": 99999999, "expires_at": "2022-01-01"}
    ]});
    let r = api.call("POST", "/namespaces/1/minutes", Some(&api.admin()), Some(body)).await;
    assert_error(&r, 400);
    let fields: Vec<&str> = r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["packs[0].number_of_minutes", "packs[0].expires_at", "packs[0].purchase_xid", "packs[2].number_of_minutes"]);
}

#[tokio::test]
async fn malformed_json_names_the_position() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    for body in [&b"{\"packs\": [ {\"number_of_minutes\": 1,,}]}"[..], b"{\"packs\": []} trailing", b"", b"{"] {
        let r = post_raw(&api, "/namespaces/1/minutes", "application/json", body.to_vec()).await;
        assert_error(&r, 400);
        let m = r.body["error"]["message"].as_str().unwrap();
        assert!(m.contains("line 1") || m.contains("empty"), "{m}");
    }
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let r = post_raw(&api, "/namespaces/1/minutes", "text/plain", br#"{"packs":[]}"#.to_vec()).await;
    assert_error(&r, 415);
    let r = api.raw("PUT", "/namespaces/2", &[("authorization".into(), format!("Bearer {}", api.admin()))], br#"{"name":"a","owner_id":1}"#.to_vec()).await;
    assert_error(&r, 415);
    let r = post_raw(&api, "/namespaces/1/minutes", "application/json; charset=utf-8", br#"{"packs":[{"number_of_minutes":1,"expires_at":"2031-01-01"}]}"#.to_vec()).await;
    assert_eq!(r.status, 201, "a charset parameter is fine: {r:?}");
}

#[tokio::test]
async fn oversized_bodies_and_arrays_are_413() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let pack = json!({"number_of_minutes": 1, "expires_at": "2031-01-01"});
    let r = api.call("POST", "/namespaces/1/minutes", Some(&api.admin()), Some(json!({"packs": vec![pack.clone(); 1001]}))).await;
    assert_error(&r, 413);
    let mut big = br#"{"packs":[{"number_of_minutes":1,"expires_at":"2031-01-01","purchase_xid":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 6 * 1024 * 1024));
    big.extend(br#""}]}"#);
    let r = post_raw(&api, "/namespaces/1/minutes", "application/json", big).await;
    assert_error(&r, 413);
    assert_eq!(api.count_prefix("PACK#").await, 0);
}

#[tokio::test]
async fn bad_path_ids_are_400() {
    let api = TestApi::start().await;
    for path in ["/namespaces/abc/minutes", "/namespaces/-1/minutes", "/namespaces/0/minutes", "/namespaces/1.5/minutes", "/namespaces/99999999999999999999999/minutes"] {
        let r = api.call("GET", path, Some(&api.admin()), None).await;
        assert_error(&r, 400);
        assert_eq!(field_of(&r), "id", "{path}");
    }
    let r = api.call("PUT", "/namespaces/-3", Some(&api.admin()), Some(json!({"name": "a", "owner_id": 1}))).await;
    assert_error(&r, 400);
}

#[tokio::test]
async fn bad_namespace_bodies_are_400() {
    let api = TestApi::start().await;
    let cases = [
        (json!({"name": "", "owner_id": 1}), "name"),
        (json!({"name": "a", "owner_id": 0}), "owner_id"),
        (json!({"name": "a", "owner_id": "7"}), "owner_id"),
        (json!({"name": "a", "owner_id": 1, "parent_id": -2}), "parent_id"),
        (json!({"name": "a", "owner_id": 1, "parent_id": 5}), "parent_id"),
        (json!({"name": "a"}), "body"),
        (json!({"name": "a", "owner_id": 1, "plan": "gold"}), "plan"),
    ];
    for (body, field) in cases {
        let r = api.call("PUT", "/namespaces/5", Some(&api.admin()), Some(body.clone())).await;
        assert_error(&r, 400);
        assert_eq!(field_of(&r), field, "{body}");
    }
    assert_eq!(api.count_prefix("NS#").await, 0);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let api = TestApi::start().await;
    for (method, path, status, allow) in [
        ("GET", "/nowhere", 404, None),
        ("GET", "/namespaces", 404, None),
        ("POST", "/namespaces/1/minutes/extra", 404, None),
        ("DELETE", "/namespaces/1/minutes", 405, Some("POST, GET")),
        ("POST", "/namespaces/1", 405, Some("PUT")),
        ("GET", "/namespaces/1/minutes/move/2", 405, Some("PATCH")),
        ("TRACE", "/gifts/7", 405, Some("DELETE")),
        ("PUT", "/gifts", 405, Some("POST, GET")),
        ("OPTIONS", "/gifts/available", 405, Some("GET")),
        ("DELETE", "/gifts/available", 405, Some("GET")),
        ("DELETE", "/gifts/claim", 405, Some("POST")),
    ] {
        // `$default` is behind the authorizer: without a token, 401 first.
        assert_error(&api.call(method, path, None, None).await, 401);
        let r = api.call(method, path, Some(&api.admin()), None).await;
        assert_error(&r, status);
        // RFC 9110: a 405 names the methods the path does take (found by the contract test).
        assert_eq!(r.headers.get("allow").map(|v| v.to_str().unwrap()), allow, "{method} {path}");
    }
}

/// A bulk body is read entry by entry and never re-serialised: an array of
/// millions of numbers is refused at its 1001st entry (413) without being
/// built in memory, and an amount past two places is the same 400 as on the
/// single endpoint, not silently rounded.
#[tokio::test]
async fn bulk_bodies_are_bounded_and_their_entries_parsed_as_sent() {
    let api = TestApi::start().await;
    let clerk = api.token("clerk", "payments");
    let zeros = format!("[{}0]", "0,".repeat(2_900_000)).into_bytes();
    let headers = vec![("content-type".to_owned(), "application/json".to_owned()), ("authorization".to_owned(), format!("Bearer {clerk}"))];
    let r = api.raw("POST", "/work-period-payments/bulk", &headers, zeros).await;
    assert_error(&r, 413);
    let r = api.raw("POST", "/work-period-payments/bulk", &headers, b"[1, 2".to_vec()).await;
    assert_error(&r, 400);
    let r = api.raw("POST", "/work-period-payments/bulk", &headers, br#"{"workPeriodId": "w"}"#.to_vec()).await;
    assert_error(&r, 400);
    let body = r#"{"resourceBookingId": "rb", "userHandle": "u", "startDate": "2026-01-05", "endDate": "2026-01-11",
        "daysWorked": 5, "memberRate": 250, "customerRate": 300, "billingAccountId": 1}"#;
    assert_eq!(api.call("PUT", "/work-periods/w1", Some(&api.admin()), Some(serde_json::from_str(body).unwrap())).await.status, 200);
    for amount in ["0.1000000000000000001", "999999999.999999999999"] {
        let single = format!(r#"{{"workPeriodId": "w1", "days": 0, "amount": {amount}}}"#).into_bytes();
        let r = api.raw("POST", "/work-period-payments", &headers, single.clone()).await;
        assert_error(&r, 400);
        let mut bulk = b"[".to_vec();
        bulk.extend(single);
        bulk.push(b']');
        let r = api.raw("POST", "/work-period-payments/bulk", &headers, bulk).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body[0]["error"]["code"], 400, "{amount} is refused in bulk too: {r:?}");
    }
    assert_eq!(api.count_prefix("PAY#").await, 0);
}

/// A bulk answer stays inside Lambda's response limit: when echoing every
/// failed input would not fit, failed entries name their position instead.
#[tokio::test]
async fn a_bulk_answer_names_failed_entries_by_position_when_echoes_would_not_fit() {
    let api = TestApi::start().await;
    let clerk = api.token("clerk", "payments");
    let headers = vec![("content-type".to_owned(), "application/json".to_owned()), ("authorization".to_owned(), format!("Bearer {clerk}"))];
    let bad = json!({"workPeriodId": "x".repeat(5_600)});
    let body = serde_json::to_vec(&vec![bad; 1000]).unwrap();
    assert!(body.len() > 5_500_000);
    let r = api.raw("POST", "/work-period-payments/bulk", &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.status);
    assert!(r.bytes.len() < 4 * 1024 * 1024, "{} bytes", r.bytes.len());
    let entries = r.body.as_array().unwrap();
    assert_eq!(entries.len(), 1000);
    assert_eq!((entries[7]["index"].clone(), entries[7]["error"]["code"].clone()), (json!(7), json!(400)));
    // A small failure is still echoed.
    let r = api.call("POST", "/work-period-payments/bulk", Some(&clerk), Some(json!([{"workPeriodId": "!"}]))).await;
    assert_eq!(r.body[0]["workPeriodId"], "!", "{r:?}");
}

/// Whatever a caller sends, the error answer stays small: an entry too large
/// to echo is named by its position (never parsed into a tree), messages that
/// quote the input are cut, and at most 100 field errors are listed.
#[tokio::test]
async fn error_answers_stay_small_whatever_the_input() {
    let api = TestApi::start().await;
    let clerk = api.token("clerk", "payments payments:process");
    let headers = vec![("content-type".to_owned(), "application/json".to_owned()), ("authorization".to_owned(), format!("Bearer {clerk}"))];
    let zeros = format!("[{{\"workPeriodId\": \"w\", \"days\": [{}0]}}]", "0,".repeat(2_800_000)).into_bytes();
    for (method, path) in [("POST", "/work-period-payments/bulk"), ("PATCH", "/work-period-payments/bulk")] {
        let r = api.raw(method, path, &headers, zeros.clone()).await;
        assert_eq!(r.status, 200, "{method}: {}", r.status);
        assert!(r.bytes.len() < 2_000, "{method}: {} bytes", r.bytes.len());
        assert_eq!((r.body[0]["index"].clone(), r.body[0]["error"]["code"].clone()), (json!(0), json!(400)));
    }
    let pi = crate::gifts::user("pi", None, None);
    let huge_key = format!("{{\"{}\": 1}}", "k".repeat(5_500_000)).into_bytes();
    let gift_headers = vec![("content-type".to_owned(), "application/json".to_owned()), ("authorization".to_owned(), format!("Bearer {pi}"))];
    let r = api.raw("POST", "/gifts", &gift_headers, huge_key).await;
    assert_error(&r, 400);
    assert!(r.bytes.len() < 2_000, "{} bytes", r.bytes.len());
    let criteria: Vec<Value> = (0..300_000).map(|_| json!({"type": "anyone"})).collect();
    let body = json!({"resourcesOwnedBy": "p", "title": "t", "description": "d", "resources": [{"category": "cpu", "provider": "ucloud", "balanceRequested": 1}], "renewEvery": 0, "criteria": criteria});
    let r = api.call("POST", "/gifts", Some(&pi), Some(body)).await;
    assert_error(&r, 400);
    assert!(r.body["error"]["details"].as_array().map_or(0, Vec::len) <= 100, "{} bytes", r.bytes.len());
    assert!(r.bytes.len() < 20_000, "{} bytes", r.bytes.len());
}

/// Ids and numbers the API takes and answers stay within 2^53 − 1, the
/// largest integer a JSON client reads exactly: above it is a 400, never a
/// value a JavaScript client would silently round.
#[tokio::test]
async fn integers_past_two_to_the_53_are_refused() {
    let api = TestApi::start().await;
    let r = api.call("PUT", "/namespaces/9007199254740992", Some(&api.admin()), Some(json!({"name": "n", "owner_id": 7}))).await;
    assert_error(&r, 400);
    let r = api.call("PUT", "/namespaces/9007199254740991", Some(&api.admin()), Some(json!({"name": "n", "owner_id": 9007199254740992u64}))).await;
    assert_error(&r, 400);
    let r = api.call("PUT", "/namespaces/9007199254740991", Some(&api.admin()), Some(json!({"name": "n", "owner_id": 9007199254740991u64}))).await;
    assert_eq!((r.status, r.body["id"].as_u64()), (200, Some(9007199254740991)), "{r:?}");
    let body = json!({"resourceBookingId": "rb", "userHandle": "u", "startDate": "2026-01-05", "endDate": "2026-01-11",
        "daysWorked": 5, "memberRate": 250, "customerRate": 300, "billingAccountId": 9007199254740992u64});
    assert_error(&api.call("PUT", "/work-periods/w", Some(&api.admin()), Some(body)).await, 400);
    assert_eq!(api.count_prefix("WP#").await, 0);
}

#[tokio::test]
async fn a_body_the_route_does_not_take_is_refused_before_its_key_is_recorded() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let keyed = |content_type: &str| {
        vec![
            ("content-type".to_owned(), content_type.to_owned()),
            ("authorization".to_owned(), format!("Bearer {}", api.admin())),
            ("idempotency-key".to_owned(), "k-1".to_owned()),
        ]
    };
    let pack = br#"{"packs":[{"number_of_minutes":1,"expires_at":"2031-01-01"}]}"#.to_vec();
    let r = api.raw("POST", "/namespaces/1/minutes", &keyed("text/plain"), pack.clone()).await;
    assert_error(&r, 415);
    let r = api.raw("POST", "/namespaces/1/minutes", &keyed("application/json"), b"[1, 2]".to_vec()).await;
    assert_error(&r, 400);
    assert_eq!(field_of(&r), "body");
    // An array route's body is read before the key is recorded too.
    let r = api.raw("POST", "/work-period-payments/bulk", &keyed("application/json"), br#"{"workPeriodId": "w"}"#.to_vec()).await;
    assert_error(&r, 400);
    let r = api.raw("POST", "/work-period-payments/bulk", &keyed("application/json"), b"[]".to_vec()).await;
    assert_error(&r, 400);
    let many = serde_json::to_vec(&vec![json!({"workPeriodId": "w"}); 1001]).unwrap();
    let r = api.raw("POST", "/work-period-payments/bulk", &keyed("application/json"), many).await;
    assert_error(&r, 413);
    assert_eq!(api.count_prefix("IDEM#").await, 0, "a refused body leaves no Idempotency-Key record");
    assert_eq!(api.count_prefix("PACK#").await, 0);
    // The same key is then free for the request as it should have been sent.
    let r = api.raw("POST", "/namespaces/1/minutes", &keyed("application/json"), pack).await;
    assert_eq!(r.status, 201, "{r:?}");
    // A route that takes no body reads none: a move with a text body is a move.
    let r = api.raw("PATCH", "/namespaces/1/minutes/move/1", &keyed("text/plain"), b"anything".to_vec()).await;
    assert_error(&r, 400);
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("differ"), "{r:?}");
}

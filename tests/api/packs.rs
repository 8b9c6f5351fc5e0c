//! CI-minute packs: what a provisioner sees (SPEC §3).

use allotment_tests::TestApi;
use serde_json::{json, Value};

pub async fn namespace(api: &TestApi, id: u64, parent: Option<u64>, owner: u64) {
    let r = api
        .call(
            "PUT",
            &format!("/namespaces/{id}"),
            Some(&api.admin()),
            Some(json!({"name": format!("ns{id}"), "parent_id": parent, "owner_id": owner})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

pub fn pack(minutes: u64, expires: &str, xid: Option<&str>) -> Value {
    match xid {
        Some(x) => json!({"number_of_minutes": minutes, "expires_at": expires, "purchase_xid": x}),
        None => json!({"number_of_minutes": minutes, "expires_at": expires}),
    }
}

pub async fn post_packs(api: &TestApi, ns: u64, packs: Vec<Value>) -> allotment_tests::Resp {
    api.call(
        "POST",
        &format!("/namespaces/{ns}/minutes"),
        Some(&api.admin()),
        Some(json!({"packs": packs})),
    )
    .await
}

pub async fn list(api: &TestApi, ns: u64, expired: bool) -> Value {
    let q = if expired { "?include_expired=true" } else { "" };
    let r = api
        .call(
            "GET",
            &format!("/namespaces/{ns}/minutes{q}"),
            Some(&api.admin()),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

#[tokio::test]
async fn register_namespace_returns_it_and_replaces_on_second_put() {
    let api = TestApi::start().await;
    let r = api
        .call(
            "PUT",
            "/namespaces/9",
            Some(&api.admin()),
            Some(json!({"name": "acme", "parent_id": null, "owner_id": 7})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"id": 9, "name": "acme", "parent_id": null, "owner_id": 7})
    );
    let r = api
        .call(
            "PUT",
            "/namespaces/9",
            Some(&api.admin()),
            Some(json!({"name": "acme-2", "parent_id": 3, "owner_id": 8})),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"id": 9, "name": "acme-2", "parent_id": 3, "owner_id": 8})
    );
    assert_eq!(
        api.count_prefix("NS#").await,
        1,
        "a replace, not a second namespace"
    );
}

#[tokio::test]
async fn seed_example_creates_the_pack_and_answers_201_with_it() {
    // GIVEN a top-level namespace
    let api = TestApi::start().await;
    namespace(&api, 123, None, 7).await;
    // WHEN the provisioner posts the seed's own body
    let r = api
        .call(
            "POST",
            "/namespaces/123/minutes",
            Some(&api.admin()),
            Some(json!({"packs": [{"number_of_minutes": 10000, "expires_at": "2022-01-01", "purchase_xid": "46952fe69bebc1a4de10b2b4ff439d0c"}]})),
        )
        .await;
    // THEN it gets the seed's response, and one pack exists
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        r.body,
        json!([{"namespace_id": 123, "expires_at": "2022-01-01", "number_of_minutes": 10000, "purchase_xid": "46952fe69bebc1a4de10b2b4ff439d0c"}])
    );
    assert_eq!(api.count_prefix("PACK#").await, 1);
}

#[tokio::test]
async fn resync_returns_stored_packs_unchanged_and_writes_nothing() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let first = post_packs(
        &api,
        1,
        vec![
            pack(100, "2031-01-01", Some("a")),
            pack(200, "2031-02-01", Some("b")),
        ],
    )
    .await;
    assert_eq!(first.status, 201);
    api.faults.reset_counts();
    // Same xids, different minutes: the stored packs win.
    let again = post_packs(
        &api,
        1,
        vec![
            pack(999, "2039-01-01", Some("a")),
            pack(200, "2031-02-01", Some("b")),
        ],
    )
    .await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.body, first.body, "stored packs come back unchanged");
    let created = |r: &allotment_tests::Resp| r.headers.get("allotment-created").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!((created(&first).as_deref(), created(&again).as_deref()), (Some("2"), Some("0")), "how many were new");
    assert_eq!(api.faults.write_calls(), 0, "a re-sync writes nothing");
    assert_eq!(api.count_prefix("PACK#").await, 2);
}

#[tokio::test]
async fn same_xid_twice_in_one_request_is_one_pack_in_request_order() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let r = post_packs(
        &api,
        1,
        vec![
            pack(1, "2031-01-01", Some("x")),
            pack(2, "2031-01-01", Some("y")),
            pack(3, "2031-01-01", Some("x")),
        ],
    )
    .await;
    assert_eq!(r.status, 201);
    let xids: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["purchase_xid"].as_str().unwrap())
        .collect();
    assert_eq!(xids, ["x", "y"]);
    assert_eq!(
        r.body[0]["number_of_minutes"], 1,
        "the first occurrence wins"
    );
    assert_eq!(api.count_prefix("PACK#").await, 2);
}

#[tokio::test]
async fn packs_without_xid_are_always_new() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let body = vec![pack(5, "2031-01-01", None), pack(5, "2031-01-01", None)];
    assert_eq!(post_packs(&api, 1, body.clone()).await.status, 201);
    let r = post_packs(&api, 1, body).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body[0]["purchase_xid"], Value::Null);
    assert_eq!(api.count_prefix("PACK#").await, 4);
}

#[tokio::test]
async fn a_thousand_packs_in_one_request() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let packs: Vec<Value> = (0..1000)
        .map(|i| {
            pack(
                1 + i,
                "2031-01-01",
                (i % 2 == 0).then(|| format!("x{i}")).as_deref(),
            )
        })
        .collect();
    let r = post_packs(&api, 1, packs).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body.as_array().unwrap().len(), 1000);
    assert_eq!(r.body[999]["number_of_minutes"], 1000, "request order kept");
    assert_eq!(api.count_prefix("PACK#").await, 1000);
    // ≤ 100 xids a BatchGetItem (500 xids: 5) beside one GetItem of the
    // namespace; each pack one conditional PutItem (no transaction: half the
    // capacity), those without xid too (a re-put after a lost answer must
    // not overwrite a move: issue 29, 4b).
    assert_eq!(api.faults.calls("BatchGetItem"), 5);
    assert_eq!(api.faults.calls("GetItem"), 1, "the namespace");
    assert_eq!(api.faults.calls("TransactWriteItems"), 0);
    assert_eq!(api.faults.calls("BatchWriteItem"), 0);
    assert_eq!(
        api.faults.calls("PutItem"),
        1 + 1000 + 1,
        "the namespace registration, one per pack, and the request's committed marker"
    );
}

#[tokio::test]
async fn xid_of_another_namespace_is_409_and_nothing_of_the_request_is_written() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    assert_eq!(
        post_packs(&api, 1, vec![pack(1, "2031-01-01", Some("taken"))])
            .await
            .status,
        201
    );
    let r = post_packs(
        &api,
        2,
        vec![
            pack(1, "2031-01-01", Some("fresh")),
            pack(1, "2031-01-01", None),
            pack(1, "2031-01-01", Some("taken")),
        ],
    )
    .await;
    assert_eq!(r.status, 409, "{r:?}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"taken\""),
        "names the xid: {r:?}"
    );
    assert_eq!(
        api.count_prefix("PACK#").await,
        1,
        "nothing of the rejected request written"
    );
}

#[tokio::test]
async fn unknown_or_nested_namespace_is_refused() {
    let api = TestApi::start().await;
    let r = post_packs(&api, 404, vec![pack(1, "2031-01-01", Some("a"))]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["message"], "Namespace Not Found");
    namespace(&api, 5, Some(1), 7).await;
    let r = post_packs(&api, 5, vec![pack(1, "2031-01-01", Some("a"))]).await;
    assert_eq!(r.status, 400);
    assert_eq!(api.count_prefix("PACK#").await, 0);
}

#[tokio::test]
async fn listing_sums_current_packs_and_hides_expired_ones_unless_asked() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let r = post_packs(
        &api,
        1,
        vec![
            pack(100, "2099-01-01", Some("future")),
            pack(50, "2001-01-01", Some("past")),
            pack(7, "2099-12-31", None),
        ],
    )
    .await;
    assert_eq!(r.status, 201);
    let current = list(&api, 1, false).await;
    assert_eq!(current["namespace_id"], 1);
    assert_eq!(
        current["purchased_minutes"], 107,
        "expired packs do not count"
    );
    assert_eq!(current["packs"].as_array().unwrap().len(), 2);
    let all = list(&api, 1, true).await;
    assert_eq!(all["purchased_minutes"], 107);
    assert_eq!(all["packs"].as_array().unwrap().len(), 3);
    let r = api
        .call(
            "GET",
            "/namespaces/1/minutes?include_expired=yes",
            Some(&api.admin()),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .call("GET", "/namespaces/2/minutes", Some(&api.admin()), None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn move_takes_every_pack_to_the_target() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    post_packs(
        &api,
        1,
        (0..150)
            .map(|i| pack(1, "2099-01-01", Some(format!("m{i}").as_str())))
            .collect(),
    )
    .await;
    post_packs(&api, 2, vec![pack(5, "2099-01-01", Some("own"))]).await;
    let r = api
        .call(
            "PATCH",
            "/namespaces/1/minutes/move/2",
            Some(&api.admin()),
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(
        r.body,
        json!({"message": "202 Accepted", "moved": 150, "remaining": 0})
    );
    assert_eq!(
        list(&api, 1, true).await["packs"].as_array().unwrap().len(),
        0
    );
    let target = list(&api, 2, true).await;
    assert_eq!(target["packs"].as_array().unwrap().len(), 151);
    assert_eq!(target["purchased_minutes"], 155);
    // A moved xid now belongs to the target: re-posting it there is a re-sync.
    let r = post_packs(&api, 2, vec![pack(1, "2099-01-01", Some("m0"))]).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body[0]["namespace_id"], 2);
    assert_eq!(api.count_prefix("PACK#").await, 151);
}

#[tokio::test]
async fn a_move_past_its_time_budget_answers_what_remains_and_the_next_call_continues() {
    // A budget already spent: each call moves only its guaranteed 200 packs.
    let api = TestApi::with_app(allotment_tests::quick_retry(), Default::default(), |app| {
        app.work_budget = std::time::Duration::ZERO
    })
    .await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    post_packs(
        &api,
        1,
        (0..500)
            .map(|i| pack(1, "2099-01-01", Some(format!("b{i}").as_str())))
            .collect(),
    )
    .await;
    let mut answers = Vec::new();
    loop {
        let r = api
            .call(
                "PATCH",
                "/namespaces/1/minutes/move/2",
                Some(&api.admin()),
                None,
            )
            .await;
        assert_eq!(r.status, 202, "{r:?}");
        answers.push((
            r.body["moved"].as_u64().unwrap(),
            r.body["remaining"].as_u64().unwrap(),
        ));
        if answers.last().unwrap().1 == 0 || answers.len() > 5 {
            break;
        }
    }
    assert_eq!(answers, [(200, 300), (200, 100), (100, 0)]);
    assert_eq!(
        list(&api, 1, true).await["packs"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        list(&api, 2, true).await["packs"].as_array().unwrap().len(),
        500,
        "every pack moved once"
    );
    assert_eq!(api.count_prefix("PACK#").await, 500);
}

#[tokio::test]
async fn move_refuses_bad_pairs() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 8).await;
    namespace(&api, 3, Some(1), 7).await;
    namespace(&api, 4, None, 7).await;
    let cases = [
        ("/namespaces/9/minutes/move/1", 404, "Namespace Not Found"),
        (
            "/namespaces/1/minutes/move/9",
            404,
            "Target namespace Not Found",
        ),
        ("/namespaces/1/minutes/move/1", 400, "differ"),
        ("/namespaces/1/minutes/move/2", 400, "owner"),
        ("/namespaces/1/minutes/move/3", 400, "top-level"),
        ("/namespaces/3/minutes/move/4", 400, "top-level"),
        ("/namespaces/x/minutes/move/4", 400, "positive integer"),
    ];
    for (path, status, needle) in cases {
        let r = api.call("PATCH", path, Some(&api.admin()), None).await;
        assert_eq!(r.status, status, "{path}: {r:?}");
        let msg = r.body["error"].to_string();
        assert!(msg.contains(needle), "{path}: {msg}");
    }
}

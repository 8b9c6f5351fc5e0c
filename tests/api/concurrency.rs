//! Concurrency invariants, proven by racing real HTTP requests against
//! DynamoDB Local.

use std::collections::HashMap;
use std::sync::Arc;

use allotment_tests::{Fault, TestApi};
use serde_json::Value;

use crate::packs::{list, namespace, pack, post_packs};

fn xids(n: usize, prefix: &str) -> Vec<Value> {
    (0..n).map(|i| pack(10, "2099-01-01", Some(format!("{prefix}{i}").as_str()))).collect()
}

/// Every pack of the table: its xid (or key) → namespace, asserting none twice.
async fn packs_by_xid(api: &TestApi) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for item in api.all_items().await {
        let pk = item["pk"].as_s().unwrap().clone();
        if !pk.starts_with("PACK#") {
            continue;
        }
        let ns = item["namespace_id"].as_n().unwrap().clone();
        let name = item.get("purchase_xid").and_then(|x| x.as_s().ok()).cloned().unwrap_or(pk);
        assert!(out.insert(name.clone(), ns).is_none(), "pack {name} exists twice");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_identical_posts_make_one_pack_per_xid_and_all_answer_the_same() {
    let api = Arc::new(TestApi::start().await);
    namespace(&api, 1, None, 7).await;
    let body = xids(120, "p");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (api, body) = (api.clone(), body.clone());
        set.spawn(async move { post_packs(&api, 1, body).await });
    }
    let mut bodies = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 201, "{r:?}");
        bodies.push(r.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every response has the same body");
    assert_eq!(bodies[0].as_array().unwrap().len(), 120);
    let stored = packs_by_xid(&api).await;
    assert_eq!(stored.len(), 120, "exactly one pack per xid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_xid_raced_to_two_namespaces_lands_in_exactly_one() {
    let api = Arc::new(TestApi::start().await);
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    for round in 0..10 {
        let xid = format!("race{round}");
        let body = vec![pack(1, "2099-01-01", Some(&xid)), pack(1, "2099-01-01", None)];
        let (a, b) = tokio::join!(post_packs(&api, 1, body.clone()), post_packs(&api, 2, body.clone()));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}: {a:?} / {b:?}");
        let loser = if a.status == 409 { &a } else { &b };
        assert!(loser.body["error"]["message"].as_str().unwrap().contains(&xid));
    }
    let stored = packs_by_xid(&api).await;
    let raced = stored.keys().filter(|k| k.starts_with("race")).count();
    assert_eq!(raced, 10, "one pack per raced xid");
    // The loser's pack without xid was undone with it: one per round survives.
    assert_eq!(stored.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_interrupted_midway_and_rerun_moves_every_pack_once() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    assert_eq!(post_packs(&api, 1, xids(350, "mv")).await.status, 201);
    // GIVEN DynamoDB fails every pack update after the first 100
    api.faults.fail_after("UpdateItem", 100, Fault::Throttle);
    let r = api.call("PATCH", "/namespaces/1/minutes/move/2", Some(&api.admin()), None).await;
    // THEN the move stops with 503 and Retry-After, partly done
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.headers.contains_key("retry-after"));
    let midway = packs_by_xid(&api).await;
    assert_eq!(midway.len(), 350, "no pack lost or duplicated midway");
    let moved = midway.values().filter(|ns| *ns == "2").count();
    // One conditional update per pack: exactly the 100 that got through moved.
    assert_eq!(moved, 100, "exactly the updates that landed moved their pack");
    // WHEN it is run again with DynamoDB healthy
    api.faults.clear();
    let r = api.call("PATCH", "/namespaces/1/minutes/move/2", Some(&api.admin()), None).await;
    assert_eq!(r.status, 202);
    // THEN every pack is in the target once, and xid uniqueness holds
    let done = packs_by_xid(&api).await;
    assert_eq!(done.len(), 350);
    assert!(done.values().all(|ns| ns == "2"));
    assert_eq!(list(&api, 2, false).await["packs"].as_array().unwrap().len(), 350);
    assert_eq!(post_packs(&api, 1, vec![pack(1, "2099-01-01", Some("mv7"))]).await.status, 409);
    let r = post_packs(&api, 2, vec![pack(1, "2099-01-01", Some("mv7"))]).await;
    assert_eq!((r.status, r.body[0]["number_of_minutes"].as_u64()), (201, Some(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn posts_racing_moves_lose_no_pack() {
    let api = Arc::new(TestApi::start().await);
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let poster = {
        let api = api.clone();
        tokio::spawn(async move {
            for batch in 0..8 {
                let body = xids(40, &format!("b{batch}-"));
                let r = post_packs(&api, 1, body).await;
                assert_eq!(r.status, 201, "{r:?}");
            }
        })
    };
    let mover = {
        let api = api.clone();
        tokio::spawn(async move {
            for _ in 0..12 {
                let r = api.call("PATCH", "/namespaces/1/minutes/move/2", Some(&api.admin()), None).await;
                assert_eq!(r.status, 202, "{r:?}");
            }
        })
    };
    poster.await.unwrap();
    mover.await.unwrap();
    let stored = packs_by_xid(&api).await;
    assert_eq!(stored.len(), 320, "every posted pack exists exactly once");
    let r = api.call("PATCH", "/namespaces/1/minutes/move/2", Some(&api.admin()), None).await;
    assert_eq!(r.status, 202);
    assert!(packs_by_xid(&api).await.values().all(|ns| ns == "2"));
}

//! Domain events from DynamoDB Local's stream: one per effective change of
//! every write path, none for re-syncs, replays and writes that changed
//! nothing, each valid against its schema in docs/events/.

use std::collections::BTreeMap;

use allotment::events::Event;
use allotment_dev::stream::Follower;
use allotment_tests::{dynamo_endpoint, Fault, TestApi};
use serde_json::{json, Value};

use crate::ferry::{customer, product, seed_item};
use crate::gifts::{create_gift, deposit, gift_body, project, user};
use crate::packs::namespace;

async fn follower(api: &TestApi, low_balance: u64) -> Follower {
    Follower::new(&api.app.db.client, &dynamo_endpoint(), &api.table, low_balance).await.expect("the table's stream")
}

fn kinds(events: &[Event]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(e.kind).or_default() += 1;
    }
    out
}

fn detail(e: &Event) -> Value {
    serde_json::from_str(&e.detail).expect("detail is JSON")
}

/// Every event against its schema, by the catalogue's own checker.
fn assert_valid(events: &[Event]) {
    let dir = std::env::temp_dir().join(format!("allotment-events-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.jsonl");
    let lines: Vec<String> = events.iter().map(|e| json!({"id": e.id, "detail-type": e.kind, "detail": detail(e)}).to_string()).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let python = format!("{root}/.venv/bin/python3");
    let out = std::process::Command::new(&python)
        .arg(format!("{root}/dev/check_events.py"))
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{python} (make test installs .venv): {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn every_effective_change_is_one_event_and_resyncs_replays_and_no_ops_are_none() {
    let api = TestApi::with_stream().await;
    let mut stream = follower(&api, 100).await;
    let admin = api.admin();

    // Packs: two namespaces, a pack, its re-sync and a keyed replay, a move.
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let packs = json!({"packs": [{"number_of_minutes": 100, "expires_at": "2031-01-01", "purchase_xid": "x-1"}]}).to_string();
    for _ in 0..2 {
        let r = api.call_with_key("POST", "/namespaces/1/minutes", &admin, "k-packs", packs.as_bytes()).await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let r = api.call("POST", "/namespaces/1/minutes", Some(&admin), Some(serde_json::from_str(&packs).unwrap())).await;
    assert_eq!(r.status, 201, "a re-sync: {r:?}");
    let r = api.call("PATCH", "/namespaces/1/minutes/move/2", Some(&admin), None).await;
    assert_eq!(r.status, 202, "{r:?}");
    let e = stream.drain().await.unwrap();
    assert_eq!(kinds(&e), BTreeMap::from([("NamespaceRegistered", 2), ("PackMoved", 1), ("PackProvisioned", 1)]), "{e:#?}");
    let moved = e.iter().find(|e| e.kind == "PackMoved").map(detail).unwrap();
    assert_eq!((moved["fromNamespaceId"].as_u64(), moved["toNamespaceId"].as_u64(), moved["purchaseXid"].as_str()), (Some(1), Some(2), Some("x-1")));
    let mut all = e;

    // A request that fails after one of its two packs landed undoes it:
    // provisioned, then withdrawn.
    api.faults.fail_after("PutItem", 1, Fault::Throttle);
    let two = json!({"packs": [{"number_of_minutes": 5, "expires_at": "2031-01-01", "purchase_xid": "x-2"}, {"number_of_minutes": 5, "expires_at": "2031-01-01", "purchase_xid": "x-3"}]});
    let r = api.call("POST", "/namespaces/2/minutes", Some(&admin), Some(two)).await;
    assert_eq!(r.status, 503, "{r:?}");
    api.faults.clear();
    let e = stream.drain().await.unwrap();
    assert_eq!(kinds(&e), BTreeMap::from([("PackProvisioned", 1), ("PackWithdrawn", 1)]), "{e:#?}");
    all.extend(e);

    // Payments: a work period (registered again unchanged: nothing), a
    // payment (its period's aggregates moving is not an event), a status
    // change, a re-stated status, a change of days.
    let wp = json!({"resourceBookingId": "rb-1", "userHandle": "alice", "startDate": "2026-01-05", "endDate": "2026-01-11", "daysWorked": 5, "memberRate": 250, "billingAccountId": 80000071});
    for _ in 0..2 {
        assert_eq!(api.call("PUT", "/work-periods/wp-1", Some(&admin), Some(wp.clone())).await.status, 200);
    }
    let r = api.call("POST", "/work-period-payments", Some(&admin), Some(json!({"workPeriodId": "wp-1", "days": 2}))).await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let processor = api.token("processor", "payments:process");
    for body in [json!({"status": "in-progress"}), json!({"status": "in-progress"})] {
        let r = api.call("PATCH", &format!("/work-period-payments/{id}"), Some(&processor), Some(body)).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = api.call("PATCH", &format!("/work-period-payments/{id}"), Some(&processor), Some(json!({"status": "failed"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = api.call("PATCH", &format!("/work-period-payments/{id}"), Some(&admin), Some(json!({"days": 1}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let e = stream.drain().await.unwrap();
    assert_eq!(kinds(&e), BTreeMap::from([("PaymentChanged", 1), ("PaymentCreated", 1), ("PaymentStatusChanged", 2), ("WorkPeriodChanged", 1)]), "{e:#?}");
    let created = e.iter().find(|e| e.kind == "PaymentCreated").unwrap();
    assert!(created.detail.contains(r#""amount":100.00"#), "money keeps its two places: {}", created.detail);
    all.extend(e);

    // Gifts: a project and a deposit, a gift, a claim (its debit and credit
    // on the event; the owner stays above the threshold), the gift deleted.
    project(&api, "p-1", &[("pi", "PI")]).await;
    assert_eq!(deposit(&api, "p-1", "cpu", 1000).await.status, 200);
    let pi = user("pi", None, None);
    let gift = create_gift(&api, &pi, gift_body("p-1", &[("cpu", 100)], json!([{"type": "anyone"}]), 0)).await;
    let alice = user("alice", None, None);
    let r = api.call("POST", "/gifts/claim", Some(&alice), Some(json!({"giftId": gift}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = api.call("DELETE", &format!("/gifts/{gift}"), Some(&pi), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let e = stream.drain().await.unwrap();
    assert_eq!(kinds(&e), BTreeMap::from([("GiftClaimed", 1), ("GiftCreated", 1), ("GiftDeleted", 1), ("WalletDeposited", 1)]), "{e:#?}");
    let claimed = e.iter().find(|e| e.kind == "GiftClaimed").map(detail).unwrap();
    assert_eq!(claimed["debitedProject"], "p-1");
    assert_eq!(claimed["creditedProject"], "personal:alice");
    assert_eq!(claimed["resources"], json!([{"category": "cpu", "provider": "ucloud", "amount": 100}]));
    all.extend(e);

    // Ferry: the seed's subscription, and its re-post (nothing new).
    product(&api, "domain-nl", "domain_extensions", &[(36, 12)]).await;
    customer(&api, "cust-1", "ref-1").await;
    let body = json!({"reference_customer_id": "ref-1", "subscriptions": {"domain_extensions": [seed_item()]}});
    for _ in 0..2 {
        let r = api.call("POST", "/ferry/customers/cust-1/subscriptions", Some(&admin), Some(body.clone())).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let e = stream.drain().await.unwrap();
    assert_eq!(kinds(&e), BTreeMap::from([("SubscriptionMigrated", 1)]), "{e:#?}");
    all.extend(e);

    assert!(stream.drain().await.unwrap().is_empty(), "nothing more: every change was read once");
    let ids: std::collections::HashSet<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "every event has its own id");
    assert_valid(&all);
}

#[tokio::test]
async fn a_low_balance_fires_once_per_crossing_and_is_rearmed_by_a_deposit() {
    let api = TestApi::with_stream().await;
    let mut stream = follower(&api, 100).await;
    project(&api, "p-1", &[("pi", "PI")]).await;
    assert_eq!(deposit(&api, "p-1", "cpu", 250).await.status, 200);
    let pi = user("pi", None, None);
    let gift = create_gift(&api, &pi, gift_body("p-1", &[("cpu", 60)], json!([{"type": "anyone"}]), 0)).await;
    let claim = |n: u32| {
        let token = user(&format!("user-{n}"), None, None);
        let api = &api;
        async move {
            let r = api.call("POST", "/gifts/claim", Some(&token), Some(json!({"giftId": gift}))).await;
            assert_eq!(r.status, 200, "{r:?}");
        }
    };
    let low = |events: &[Event]| events.iter().filter(|e| e.kind == "WalletLowBalance").map(detail).collect::<Vec<_>>();
    // 250 → 190 → 130 → 70: one crossing; → 10: still low, nothing.
    for n in 0..4 {
        claim(n).await;
    }
    let first = low(&stream.drain().await.unwrap());
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!((first[0]["project"].as_str(), first[0]["balance"].as_u64(), first[0]["threshold"].as_u64()), (Some("p-1"), Some(70), Some(100)));
    // A deposit lifts it to 210 (re-armed); 150 is above; 90 crosses again.
    assert_eq!(deposit(&api, "p-1", "cpu", 200).await.status, 200);
    claim(4).await;
    claim(5).await;
    let events = stream.drain().await.unwrap();
    let second = low(&events);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0]["balance"].as_u64(), Some(90));
    assert_valid(&events);
}

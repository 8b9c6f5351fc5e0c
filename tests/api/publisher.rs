//! The publisher: a stream batch's events to the bus, entries EventBridge
//! failed sent again, and what cannot be delivered — or read — reported as
//! the record to retry from, never skipped.

use allotment::events::publish::{publish, Sinks};
use allotment::events::Change;
use allotment_dev::eventbus::EventBus;
use allotment_dev::stream::Follower;
use allotment_tests::{dynamo_endpoint, TestApi};
use serde_json::{json, Value};

use crate::packs::namespace;

/// The changes of registering two namespaces and provisioning `packs` packs in the first.
async fn changes(packs: usize) -> (TestApi, Vec<Change>) {
    let api = TestApi::with_stream().await;
    let mut stream = Follower::new(&api.app.db.client, &dynamo_endpoint(), &api.table, 100).await.unwrap();
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let packs: Vec<Value> = (0..packs).map(|i| json!({"number_of_minutes": 10, "expires_at": "2031-01-01", "purchase_xid": format!("x-{i}")})).collect();
    let r = api.call("POST", "/namespaces/1/minutes", Some(&api.admin()), Some(json!({"packs": packs}))).await;
    assert_eq!(r.status, 201, "{r:?}");
    let changes = stream.changes().await.unwrap();
    (api, changes)
}

fn kinds(bus: &EventBus) -> Vec<String> {
    bus.accepted().iter().map(|e| e["DetailType"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn a_batch_goes_out_ten_entries_a_call_and_failed_entries_are_sent_again() {
    let (_api, changes) = changes(23).await;
    // Every third entry fails on its first send.
    let bus = EventBus::start(Box::new(|entry, before| before == 0 && entry["Detail"].as_str().is_some_and(|d| d.len() % 3 == 0))).await;
    let outcome = publish(&Sinks { events: &bus.client(), bus: "allotment-test", dead_letters: None }, changes, 100).await;
    assert_eq!(outcome.failed_from, None, "{outcome:?}");
    assert_eq!(outcome.published, 25, "2 namespaces and 23 packs: {outcome:?}");
    let accepted = bus.accepted();
    assert_eq!(accepted.len(), 25);
    let details: std::collections::HashSet<&str> = accepted.iter().filter_map(|e| e["Detail"].as_str()).collect();
    assert_eq!(details.len(), 25, "each event accepted once");
    assert!(accepted.iter().all(|e| e["Source"] == "allotment" && e["EventBusName"] == "allotment-test"));
    assert!(bus.calls() >= 3, "25 entries take at least 3 calls of 10");
    assert_eq!(outcome.calls, bus.calls());
}

#[tokio::test]
async fn an_event_the_bus_keeps_refusing_is_reported_as_the_record_to_retry_from() {
    let (_api, changes) = changes(3).await;
    // The second namespace's event never gets in.
    let bus = EventBus::start(Box::new(|entry, _| entry["Detail"].as_str().is_some_and(|d| d.contains("\"namespaceId\":2")))).await;
    let second = changes.iter().position(|c| c.new.as_ref().is_some_and(|i| i.get("pk") == Some(&serde_dynamo::AttributeValue::S("NS#2".into())))).unwrap();
    let sequence = changes[second].sequence.clone();
    let outcome = publish(&Sinks { events: &bus.client(), bus: "allotment-test", dead_letters: None }, changes, 100).await;
    assert_eq!(outcome.failed_from, Some(sequence), "{outcome:?}");
    assert_eq!(outcome.published, 4, "the other events are out: {outcome:?}");
    // Lambda retries from that record: what came before it is out, what follows is sent again then.
    assert!(kinds(&bus).contains(&"NamespaceRegistered".to_owned()));
}

#[tokio::test]
async fn a_record_that_cannot_be_read_goes_to_the_dead_letter_queue_and_never_blocks_the_shard() {
    let (_api, mut changes) = changes(2).await;
    // The second namespace's image, damaged: a poison record.
    let second = changes.iter().position(|c| c.new.as_ref().is_some_and(|i| i.get("pk") == Some(&serde_dynamo::AttributeValue::S("NS#2".into())))).unwrap();
    if let Some(image) = changes[second].new.as_mut() {
        image.remove("owner_id");
    }
    let bus = EventBus::start(Box::new(|_, _| false)).await;
    let sequence = changes[second].sequence.clone();
    // Without a dead-letter queue it stops the batch there, to be retried.
    let again: Vec<Change> = changes.iter().map(|c| Change { old: c.old.clone(), new: c.new.clone(), sequence: c.sequence.clone(), at: c.at.clone() }).collect();
    let outcome = publish(&Sinks { events: &bus.client(), bus: "allotment-test", dead_letters: None }, again, 100).await;
    assert_eq!(outcome.failed_from, Some(sequence.clone()));
    assert_eq!(kinds(&bus), ["NamespaceRegistered"], "only what came before the poison record is published");
    // With one, it goes there with its key, images and reason, and the shard goes on.
    let bus = EventBus::start(Box::new(|_, _| false)).await;
    let sqs = bus.sqs_client();
    let outcome = publish(&Sinks { events: &bus.client(), bus: "allotment-test", dead_letters: Some((&sqs, "http://queue")) }, changes, 100).await;
    assert_eq!((outcome.failed_from, outcome.dead_lettered, outcome.published), (None, 1, 3), "one namespace and two packs");
    let letters = bus.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0]["sequence"].as_str(), letters[0]["pk"].as_str()), (Some(sequence.as_str()), Some("NS#2")));
    assert!(letters[0]["reason"].as_str().is_some_and(|r| r.contains("owner_id")), "{}", letters[0]);
    assert!(letters[0]["newImage"].is_object(), "{}", letters[0]);
}

//! Scenario 12: the domain events' publisher. `records` packs provisioned
//! in a table with its stream (as `make run` makes it), the stream read back
//! with the local follower, then the publisher's mapping and `PutEvents`
//! (to a local stand-in bus, which answers at once) timed: records per
//! second through the publisher, and `PutEvents` calls per record.

use std::time::Instant;

use allotment::events::publish::{publish, Sinks};
use allotment_dev::eventbus::EventBus;
use allotment_dev::stream::Follower;

use crate::Env;

pub struct Publisher {
    pub records: usize,
    pub events: usize,
    /// Records read from DynamoDB Local's stream per second (the follower).
    pub read_per_s: f64,
    /// Records mapped and published per second.
    pub publish_per_s: f64,
    pub calls_per_record: f64,
}

pub async fn publisher(env: &Env, records: usize) -> Result<Publisher, String> {
    let table = format!("events{}", env.next());
    let client = env.app.db.client.clone();
    allotment_dev::template::ensure_table(&client, &table, true).await?;
    let db = allotment::db::Db::new(client.clone(), table.as_str());
    let ns = allotment::packs::Namespace { id: allotment::packs::NamespaceId(1), name: "bench".into(), parent_id: None, owner_id: 1 };
    allotment::packs::put_namespace(&db, &ns).await.map_err(|e| e.to_string())?;
    let expires = allotment::validate::parse_date("2031-01-01")?;
    for start in (0..records).step_by(1000) {
        let specs = (start..(start + 1000).min(records))
            .map(|i| allotment::packs::PackSpec { number_of_minutes: 10, expires_at: expires, purchase_xid: allotment::packs::PurchaseXid::parse(&format!("e{i}")).ok() })
            .collect();
        allotment::packs::create_packs(&db, ns.id, specs, &Default::default(), time::OffsetDateTime::now_utc()).await.map_err(|e| e.to_string())?;
    }
    let mut follower = Follower::new(&client, &env.endpoint, &table, allotment::events::DEFAULT_LOW_BALANCE).await?;
    let started = Instant::now();
    let changes = follower.changes().await?;
    let read = started.elapsed().as_secs_f64();
    let count = changes.len();
    let bus = EventBus::start(Box::new(|_, _| false)).await;
    let events = bus.client();
    let started = Instant::now();
    let outcome = publish(&Sinks { events: &events, bus: "bench", dead_letters: None }, changes, allotment::events::DEFAULT_LOW_BALANCE).await;
    let published = started.elapsed().as_secs_f64();
    if outcome.failed_from.is_some() {
        return Err(format!("the publisher left records undelivered: {outcome:?}"));
    }
    Ok(Publisher {
        records: count,
        events: outcome.published,
        read_per_s: count as f64 / read.max(1e-9),
        publish_per_s: count as f64 / published.max(1e-9),
        calls_per_record: outcome.calls as f64 / count.max(1) as f64,
    })
}

//! Data written straight to the table for tests and the bench, through the
//! store's own item mapping: volumes that would only be slow over HTTP.

use allotment::db::Db;
use allotment::gifts::{criterion_to_item, gift_to_item, listing_to_item, Criterion, Gift, Resource};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

/// Gifts `first_id .. first_id + n` of project `owner`, one criterion each
/// (`criterion(id)`), each asking 1 cpu/ucloud: the gift, its listing copy
/// and its criterion item, as `POST /gifts` writes them.
pub async fn seed_gifts(db: &Db, owner: &str, first_id: u64, n: u64, criterion: impl Fn(u64) -> Criterion) -> Result<(), String> {
    let mut writes = Vec::new();
    for id in first_id..first_id + n {
        let c = criterion(id);
        let gift = Gift {
            id,
            owner: owner.into(),
            title: "seeded".into(),
            description: "seeded".into(),
            resources: vec![Resource { category: "cpu".into(), provider: "ucloud".into(), balance_requested: 1 }],
            renew_every: 0,
            criteria: vec![c.clone()],
            created_at: "2026-01-01T00:00:00.000Z".into(),
            deleting: false,
        };
        for item in [gift_to_item(&gift), listing_to_item(&gift), criterion_to_item(id, &c)] {
            let put = PutRequest::builder().set_item(Some(item.map_err(|e| e.to_string())?)).build().map_err(|e| e.to_string())?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
    }
    db.batch_write(writes).await.map_err(|e| e.to_string())
}

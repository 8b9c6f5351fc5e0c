//! Domain events: what a consumer hears of every effective change, and how
//! each is named. Pure: the catalogue's types, the envelope, the
//! deterministic id. Which item change becomes which event is
//! [`super::stream`]'s.
//!
//! Every event is published as an EventBridge entry: `Source`
//! [`SOURCE`], `DetailType` the event's name (`PackProvisioned`, …), `Detail`
//! its JSON — `eventId` (deterministic: a redelivered or replayed stream
//! record gives the same id, so consumers de-duplicate on it), `version`
//! (of the detail's schema, `docs/events/<name>.json`), `occurredAt` (when
//! the change was committed), `sequence` (the stream record's: orders the
//! events of one item), and the event's own fields.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::money::Money;

/// The `source` of every event.
pub const SOURCE: &str = "allotment";
/// The version of every detail schema in `docs/events/`.
pub const VERSION: u32 = 1;

/// One domain event, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// `detail-type`: the event's name.
    pub kind: &'static str,
    /// `detail`, as JSON text (money keeps its two places).
    pub detail: String,
}

/// The envelope every detail shares, the event's own fields beside it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail<'a, T: Serialize> {
    event_id: &'a str,
    version: u32,
    occurred_at: &'a str,
    /// The stream record's sequence number: of two events of one item, the
    /// larger is the later change (the bus keeps no order).
    sequence: &'a str,
    #[serde(flatten)]
    fields: &'a T,
}

/// Where an event comes from: the item that changed and its stream record.
pub struct Origin<'a> {
    pub pk: &'a str,
    pub sk: &'a str,
    /// The stream record's sequence number: unique per change of a shard.
    pub sequence: &'a str,
    /// When the change was committed (RFC 3339).
    pub at: &'a str,
}

impl Origin<'_> {
    /// The event `kind` of this change, with `fields`: its id is a hash of
    /// the item's key, the record's sequence number and the kind, so the same
    /// record always gives the same event and one record's events differ.
    pub fn event<T: Serialize>(&self, kind: &'static str, fields: &T) -> Result<Event, serde_json::Error> {
        let mut hash = Sha256::new();
        for part in ["allotment-event", self.pk, self.sk, self.sequence, kind] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid().to_string();
        let detail = serde_json::to_string(&Detail { event_id: &id, version: VERSION, occurred_at: self.at, sequence: self.sequence, fields })?;
        Ok(Event { id, kind, detail })
    }
}

// ---------------------------------------------------------------- the catalogue

/// A pack's own fields, in every pack event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackFields {
    pub number_of_minutes: u64,
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_xid: Option<String>,
}

/// A pack of minutes now exists in a namespace.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackProvisioned {
    pub namespace_id: u64,
    #[serde(flatten)]
    pub pack: PackFields,
}

/// A pack left one namespace for another (a move).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackMoved {
    pub from_namespace_id: u64,
    pub to_namespace_id: u64,
    #[serde(flatten)]
    pub pack: PackFields,
}

/// A pack a failed request had written was taken back before its answer:
/// its [`PackProvisioned`] no longer holds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackWithdrawn {
    pub namespace_id: u64,
    #[serde(flatten)]
    pub pack: PackFields,
}

/// A payment as it now is: the detail of `PaymentCreated` (it was
/// scheduled against a work period) and of `PaymentChanged` (its days,
/// amount, rates or billing account changed; its status did not).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentNow {
    pub payment_id: String,
    pub work_period_id: String,
    pub status: String,
    pub days: u64,
    pub amount: Money,
    pub member_rate: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_rate: Option<Money>,
    pub billing_account_id: u64,
    pub by: String,
}

/// A payment's status changed (`from` → `to`), with its amounts now.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatusChanged {
    pub payment_id: String,
    pub work_period_id: String,
    pub from: String,
    pub to: String,
    pub days: u64,
    pub amount: Money,
    pub by: String,
}

/// A work period was registered, or its registration changed (its payment
/// aggregates moving is not a change of the period).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkPeriodChanged {
    pub work_period_id: String,
    pub created: bool,
    pub resource_booking_id: String,
    pub user_handle: String,
    pub start_date: String,
    pub end_date: String,
    pub days_worked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_rate: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_rate: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_account_id: Option<u64>,
}

/// Units were deposited into a project's wallet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletDeposited {
    pub project: String,
    pub category: String,
    pub provider: String,
    pub amount: u64,
    pub deposit_id: String,
}

/// A wallet's balance fell below the low-balance threshold. It fires once
/// per crossing: again only after the balance has been back at or above it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletLowBalance {
    pub project: String,
    pub category: String,
    pub provider: String,
    pub balance: u64,
    pub threshold: u64,
}

/// A resource of a gift, and the wallet it moves between.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Units {
    pub category: String,
    pub provider: String,
    pub amount: u64,
}

/// A gift was created by a project.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GiftCreated {
    pub gift_id: u64,
    pub owner: String,
    pub title: String,
    pub resources: Vec<Units>,
    pub renew_every: u32,
}

/// A gift and its claims were deleted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GiftDeleted {
    pub gift_id: u64,
    pub owner: String,
}

/// A user claimed a gift: `resources` left the owner's wallets (the debit)
/// and reached the user's personal ones (the credit), in one transaction.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GiftClaimed {
    pub gift_id: u64,
    pub claimant: String,
    pub debited_project: String,
    pub credited_project: String,
    pub resources: Vec<Units>,
}

/// A subscription of the acquired brand was migrated.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionMigrated {
    pub subscription_id: String,
    pub customer: String,
    pub group: String,
    pub slug: String,
    pub reference_subscription_id: String,
    pub reference_product_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// Every event's name, as its schema file is named (`docs/events/<name>.json`).
pub const KINDS: [&str; 14] = [
    "PackProvisioned",
    "PackMoved",
    "PackWithdrawn",
    "PaymentCreated",
    "PaymentStatusChanged",
    "PaymentChanged",
    "WorkPeriodChanged",
    "WalletDeposited",
    "WalletLowBalance",
    "GiftCreated",
    "GiftDeleted",
    "GiftClaimed",
    "SubscriptionMigrated",
    "NamespaceRegistered",
];

/// A namespace was registered or changed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRegistered {
    pub namespace_id: u64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
    pub owner_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_id_is_its_records_and_kinds_alone() {
        let origin = |sequence| Origin { pk: "PACK#X#a", sk: "PACK", sequence, at: "2026-12-02T10:00:00.000Z" };
        let fields = GiftDeleted { gift_id: 1, owner: "p".into() };
        let a = origin("100").event("GiftDeleted", &fields).unwrap();
        assert_eq!(a, origin("100").event("GiftDeleted", &fields).unwrap(), "a redelivered record is the same event");
        assert_ne!(a.id, origin("101").event("GiftDeleted", &fields).unwrap().id);
        assert_ne!(a.id, origin("100").event("GiftCreated", &fields).unwrap().id);
        let detail: serde_json::Value = serde_json::from_str(&a.detail).unwrap();
        assert_eq!(detail["eventId"], a.id.as_str());
        assert_eq!(detail["version"], 1);
        assert_eq!(detail["giftId"], 1);
    }
}

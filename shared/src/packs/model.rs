//! CI-minute packs: domain types, wire DTOs and item mapping.

//!
//! Key layout (one table, see template.yaml):
//! - namespace: `pk = NS#<id>`, `sk = NS`
//! - pack: `pk = PACK#X#<purchase_xid>` (or `PACK#U#<uuid>` without one), `sk = PACK`,
//!   `gsi1pk = NSPACKS#<namespace>`, `gsi1sk = <created_at>#<position>#<key>`.
//!
//! The pack's own key encodes the unique fact, so "a purchase_xid is provisioned
//! at most once, ever" is one `attribute_not_exists(pk)` condition, and moving a
//! pack is one conditional update of its namespace: a pack can never exist twice,
//! and a move interrupted anywhere is finished by running it again.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::db::{key, DbError, Item};
use crate::validate::{self, parse_date};

pub const MAX_MINUTES: i64 = 10_000_000;
pub const MAX_XID_CHARS: usize = 32;
pub const MAX_PACKS: usize = 1000;

// ---------------------------------------------------------------- domain types

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NamespaceId(pub u64);

/// A purchase's unique id: 1 to 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PurchaseXid(String);

impl PurchaseXid {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars == 0 || chars > MAX_XID_CHARS {
            return Err(format!(
                "must be 1 to {MAX_XID_CHARS} characters, got {chars}"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub id: NamespaceId,
    pub name: String,
    pub parent_id: Option<NamespaceId>,
    pub owner_id: u64,
}

impl Namespace {
    pub fn is_top_level(&self) -> bool {
        self.parent_id.is_none()
    }
}

/// A pack as asked for: validated, not yet stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSpec {
    pub number_of_minutes: u32,
    pub expires_at: Date,
    pub purchase_xid: Option<PurchaseXid>,
}

/// A stored pack. Also its wire shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pack {
    pub namespace_id: NamespaceId,
    #[serde(with = "validate::date_format")]
    pub expires_at: Date,
    pub number_of_minutes: u32,
    pub purchase_xid: Option<PurchaseXid>,
}

impl Pack {
    /// Still usable on `today`: a pack is good through its expiry date.
    pub fn is_current(&self, today: Date) -> bool {
        self.expires_at >= today
    }
}

// ---------------------------------------------------------------- wire DTOs

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceInput {
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<i64>,
    pub owner_id: i64,
}

#[derive(Debug, Serialize)]
pub struct NamespaceOut<'a> {
    pub id: u64,
    pub name: &'a str,
    pub parent_id: Option<u64>,
    pub owner_id: u64,
}

impl<'a> From<&'a Namespace> for NamespaceOut<'a> {
    fn from(ns: &'a Namespace) -> Self {
        Self {
            id: ns.id.0,
            name: &ns.name,
            parent_id: ns.parent_id.map(|p| p.0),
            owner_id: ns.owner_id,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePacksInput {
    pub packs: Vec<PackInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackInput {
    pub number_of_minutes: i64,
    pub expires_at: String,
    #[serde(default)]
    pub purchase_xid: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MinutesOut<'a> {
    pub namespace_id: NamespaceId,
    pub purchased_minutes: u64,
    pub packs: &'a [Pack],
}

// ---------------------------------------------------------------- item mapping

pub(crate) fn namespace_pk(id: NamespaceId) -> String {
    format!("NS#{}", id.0)
}

pub(super) fn namespace_key(id: NamespaceId) -> Item {
    key(namespace_pk(id), "NS")
}

pub(crate) fn packs_gsi_pk(id: NamespaceId) -> String {
    format!("NSPACKS#{}", id.0)
}

pub(crate) fn xid_pack_pk(xid: &PurchaseXid) -> String {
    format!("PACK#X#{}", xid.as_str())
}

pub(super) fn pack_key_of(pk: String) -> Item {
    key(pk, "PACK")
}

/// A namespace as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct NamespaceItem {
    pub(crate) pk: String,
    pub(super) sk: String,
    pub(crate) id: u64,
    pub(super) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent_id: Option<u64>,
    pub(super) owner_id: u64,
}

impl NamespaceItem {
    pub(super) fn from_domain(ns: &Namespace) -> Self {
        Self {
            pk: namespace_pk(ns.id),
            sk: "NS".into(),
            id: ns.id.0,
            name: ns.name.clone(),
            parent_id: ns.parent_id.map(|p| p.0),
            owner_id: ns.owner_id,
        }
    }

    pub(super) fn into_domain(self) -> Namespace {
        Namespace {
            id: NamespaceId(self.id),
            name: self.name,
            parent_id: self.parent_id.map(NamespaceId),
            owner_id: self.owner_id,
        }
    }
}

/// A pack as stored. `request_id` marks the request that created it, so that
/// request (and only it) can undo its own partial writes; another request
/// that reports the pack as stored first removes it (adoption), so a pack
/// somebody was told exists is never undone.
#[derive(Serialize, Deserialize)]
pub(crate) struct PackItem {
    pub(crate) pk: String,
    pub(super) sk: String,
    pub(crate) gsi1pk: String,
    pub(super) gsi1sk: String,
    pub(crate) namespace_id: u64,
    pub(super) number_of_minutes: u32,
    pub(super) expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) purchase_xid: Option<String>,
    pub(super) created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) request_id: Option<String>,
}

impl PackItem {
    pub(crate) fn into_domain(self) -> Result<Pack, DbError> {
        let expires_at =
            parse_date(&self.expires_at).map_err(|m| DbError::Other(format!("stored pack {}: expires_at {m}", self.pk)))?;
        let purchase_xid = self
            .purchase_xid
            .as_deref()
            .map(PurchaseXid::parse)
            .transpose()
            .map_err(|m| DbError::Other(format!("stored pack {}: purchase_xid {m}", self.pk)))?;
        Ok(Pack {
            namespace_id: NamespaceId(self.namespace_id),
            expires_at,
            number_of_minutes: self.number_of_minutes,
            purchase_xid,
        })
    }
}

pub(super) use crate::db::{from_item, to_item};

//! CI-minute packs: the domain's types and rules — what a namespace and a
//! pack are, what a request may ask for, when packs may be created or moved,
//! and why a request is refused. Pure: no DynamoDB, no HTTP.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::db::DbError;
use crate::error::{FieldError, Invalid};
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

// ---------------------------------------------------------------- validation

pub fn validate_namespace(id: NamespaceId, input: NamespaceInput) -> Result<Namespace, Invalid> {
    let mut errors = Vec::new();
    let name = crate::validate::check_text(&input.name, 255).unwrap_or_else(|m| {
        errors.push(FieldError::new("name", m));
        String::new()
    });
    let parent_id = match input.parent_id {
        None => None,
        Some(p) if p > 0 && p <= crate::validate::MAX_SAFE_INTEGER && p as u64 != id.0 => Some(NamespaceId(p as u64)),
        Some(p) if p > 0 && p <= crate::validate::MAX_SAFE_INTEGER => {
            errors.push(FieldError::new(
                "parent_id",
                "cannot be the namespace itself",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                "parent_id",
                "must be a positive integer or null",
            ));
            None
        }
    };
    if input.owner_id <= 0 || input.owner_id > crate::validate::MAX_SAFE_INTEGER {
        errors.push(FieldError::new("owner_id", "must be a positive integer, at most 2^53 - 1"));
    }
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    Ok(Namespace {
        id,
        name,
        parent_id,
        owner_id: input.owner_id as u64,
    })
}

/// Validates every pack, collecting every problem, before anything is written.
pub fn validate_packs(input: CreatePacksInput) -> Result<Vec<PackSpec>, Invalid> {
    let mut errors = Vec::new();
    let mut specs = Vec::with_capacity(input.packs.len());
    for (i, pack) in input.packs.into_iter().enumerate() {
        let field = |name: &str| format!("packs[{i}].{name}");
        let minutes = if (1..=MAX_MINUTES).contains(&pack.number_of_minutes) {
            Some(pack.number_of_minutes as u32)
        } else {
            errors.push(FieldError::new(
                field("number_of_minutes"),
                format!("must be an integer from 1 to {MAX_MINUTES}"),
            ));
            None
        };
        let expires = parse_date(&pack.expires_at)
            .map_err(|m| errors.push(FieldError::new(field("expires_at"), m)))
            .ok();
        let xid = match pack
            .purchase_xid
            .as_deref()
            .map(PurchaseXid::parse)
            .transpose()
        {
            Ok(x) => x,
            Err(m) => {
                errors.push(FieldError::new(field("purchase_xid"), m));
                None
            }
        };
        if let (Some(number_of_minutes), Some(expires_at)) = (minutes, expires) {
            specs.push(PackSpec {
                number_of_minutes,
                expires_at,
                purchase_xid: xid,
            });
        }
    }
    Invalid::check(errors)?;
    Ok(specs)
}

// ---------------------------------------------------------------- refusals

/// Why a packs request is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("Namespace Not Found")]
    NamespaceNotFound,
    #[error("Target namespace Not Found")]
    TargetNotFound,
    #[error("Namespace must be a top-level namespace")]
    NotTopLevel,
    #[error("Namespace and target namespace must differ")]
    SameNamespace,
    #[error("Both namespaces must be top-level namespaces")]
    NotBothTopLevel,
    #[error("Both namespaces must have the same owner")]
    DifferentOwners,
    /// Each named xid is a pack of another namespace; nothing was written.
    #[error("purchase_xid {} already provisioned to another namespace", quoted(.0))]
    XidTaken(Vec<String>),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] DbError),
}

impl Refused {
    /// A refusal of the request itself (4xx), not a failure to finish it.
    pub fn is_final(&self) -> bool {
        !matches!(self, Refused::Store(_))
    }
}

fn quoted(xids: &[String]) -> String {
    xids.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", ")
}

/// Packs are created only in a registered top-level namespace.
pub fn check_create_target(ns: Option<&Namespace>) -> Result<(), Refused> {
    match ns {
        None => Err(Refused::NamespaceNotFound),
        Some(n) if !n.is_top_level() => Err(Refused::NotTopLevel),
        Some(_) => Ok(()),
    }
}

/// Packs move only between two registered top-level namespaces of one owner.
pub fn check_move(from: NamespaceId, to: NamespaceId, source: Option<&Namespace>, target: Option<&Namespace>) -> Result<(), Refused> {
    if from == to {
        return Err(Refused::SameNamespace);
    }
    let source = source.ok_or(Refused::NamespaceNotFound)?;
    let target = target.ok_or(Refused::TargetNotFound)?;
    if !source.is_top_level() || !target.is_top_level() {
        return Err(Refused::NotBothTopLevel);
    }
    if source.owner_id != target.owner_id {
        return Err(Refused::DifferentOwners);
    }
    Ok(())
}

/// What `GET /namespaces/{id}/minutes` shows on `today`: the minutes of the
/// packs still current, and which packs (all of them, or the current ones).
pub fn minutes_on(mut packs: Vec<Pack>, today: Date, include_expired: bool) -> (u64, Vec<Pack>) {
    let purchased = packs.iter().filter(|p| p.is_current(today)).map(|p| u64::from(p.number_of_minutes)).sum();
    if !include_expired {
        packs.retain(|p| p.is_current(today));
    }
    (purchased, packs)
}

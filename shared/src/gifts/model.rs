//! Projects, wallets and gifts: domain types, wire DTOs and item mapping.
//!
//! Key layout (one table, see template.yaml):
//! - project: `pk = PROJECT#<id>`, `sk = PROJECT`, members as a map username → role.
//!   A user's personal project is `personal:<sub>`; registered ids cannot
//!   contain `:`, so the two never collide.
//! - wallet: `pk = PROJECT#<id>`, `sk = WALLET#<category>#<provider>`, `balance`.
//! - gift: `pk = GIFT#<id>`, `sk = GIFT`, the whole GiftWithCriteria; `deleting`
//!   set while a delete is under way (no claim succeeds from then on).
//! - the owner's listing of it: `pk = PROJECT#<owner>`, `sk = GIFT#<id, 16 digits>`,
//!   a copy (gifts never change), so browsing is one Query of the table —
//!   strongly consistent when asked, which an index could not be.
//! - one item per criterion: `pk = GIFT#<id>`, `sk = CRIT#<type>#<value>`,
//!   `gsi1pk = GIFTCRIT#anyone` | `GIFTCRIT#email#<domain>` | `GIFTCRIT#wayf#<org>`
//!   (lower case), so a caller's candidate gifts are at most three Queries.
//! - a claim: `pk = GIFT#<id>`, `sk = CLAIM#<sub>`, `claimed_at`;
//!   `gsi2pk = CLAIMS#<sub>`, so a caller's claims are one Query.
//! - the gift id counter: `pk = SEQ#gift`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::db::{from_item, keyed, to_item};
use crate::db::{key, DbError, Item};

/// Balances and amounts are whole units a JSON client reads exactly: 1 to 2^53 − 1.
pub const MAX_UNITS: u64 = (1 << 53) - 1;
pub const MAX_RESOURCES: usize = 20;
pub const MAX_CRITERIA: usize = 20;
pub const MAX_MEMBERS: usize = 500;
pub const MAX_TITLE_CHARS: usize = 128;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_NAME_CHARS: usize = 128;
/// 100 years.
pub const MAX_RENEW_MONTHS: i64 = 1200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Pi,
    Admin,
    User,
}

impl Role {
    /// PIs and admins manage the project's gifts.
    pub fn manages(self) -> bool {
        matches!(self, Self::Pi | Self::Admin)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub title: String,
    pub members: BTreeMap<String, Role>,
}

impl Project {
    pub fn role_of(&self, username: &str) -> Option<Role> {
        self.members.get(username).copied()
    }
}

/// The personal project of the user `sub`.
pub fn personal_project(sub: &str) -> String {
    format!("personal:{sub}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub category: String,
    pub provider: String,
    pub balance: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub category: String,
    pub provider: String,
    pub balance_requested: u64,
}

/// Who may claim a gift. Values are kept as given; matching is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Criterion {
    /// A struct variant, so that unknown fields beside `type` are refused too.
    Anyone {},
    Email {
        domain: String,
    },
    Wayf {
        org: String,
    },
}

impl Criterion {
    /// The index partition of this criterion (lower case).
    pub fn index_pk(&self) -> String {
        match self {
            Self::Anyone {} => "GIFTCRIT#anyone".to_owned(),
            Self::Email { domain } => format!("GIFTCRIT#email#{}", domain.to_lowercase()),
            Self::Wayf { org } => format!("GIFTCRIT#wayf#{}", org.to_lowercase()),
        }
    }
}

/// A user as gifts see them: id, and the email and organisation of their token.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub sub: String,
    pub email: Option<String>,
    pub org: Option<String>,
}

impl Claimant {
    /// The domain of the caller's email, lower case, without a trailing dot.
    pub fn email_domain(&self) -> Option<String> {
        let email = self.email.as_deref()?;
        let (local, domain) = email.trim().rsplit_once('@')?;
        let domain = domain.trim_end_matches('.').to_lowercase();
        (!local.is_empty() && !domain.is_empty()).then_some(domain)
    }

    pub fn org(&self) -> Option<String> {
        self.org
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_lowercase)
    }

    /// The index partitions of every criterion this caller matches.
    pub fn criteria_pks(&self) -> Vec<String> {
        let mut pks = vec![Criterion::Anyone {}.index_pk()];
        if let Some(domain) = self.email_domain() {
            pks.push(Criterion::Email { domain }.index_pk());
        }
        if let Some(org) = self.org() {
            pks.push(Criterion::Wayf { org }.index_pk());
        }
        pks
    }

    /// Any one criterion suffices.
    pub fn matches(&self, criteria: &[Criterion]) -> bool {
        let mine = self.criteria_pks();
        criteria.iter().any(|c| mine.contains(&c.index_pk()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gift {
    pub id: u64,
    pub owner: String,
    pub title: String,
    pub description: String,
    pub resources: Vec<Resource>,
    pub renew_every: u32,
    pub criteria: Vec<Criterion>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

// ---------------------------------------------------------------- wire DTOs

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    pub title: String,
    pub members: Vec<MemberInput>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    pub username: String,
    pub role: Role,
}

#[derive(Serialize)]
pub struct ProjectOut<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub members: Vec<MemberInput>,
}

impl<'a> From<&'a Project> for ProjectOut<'a> {
    fn from(p: &'a Project) -> Self {
        let members = p
            .members
            .iter()
            .map(|(username, role)| MemberInput {
                username: username.clone(),
                role: *role,
            })
            .collect();
        Self {
            id: &p.id,
            title: &p.title,
            members,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositInput {
    pub category: String,
    pub provider: String,
    pub amount: u64,
}

#[derive(Serialize)]
pub struct WalletsOut<'a> {
    pub wallets: &'a [Wallet],
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GiftInput {
    pub resources_owned_by: String,
    pub title: String,
    pub description: String,
    pub resources: Vec<ResourceInput>,
    pub renew_every: i64,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceInput {
    pub category: String,
    pub provider: String,
    pub balance_requested: u64,
}

/// UCloud's GiftWithCriteria.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GiftOut<'a> {
    pub id: u64,
    pub resources_owned_by: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub resources: &'a [Resource],
    pub renew_every: u32,
    pub criteria: &'a [Criterion],
}

impl<'a> From<&'a Gift> for GiftOut<'a> {
    fn from(g: &'a Gift) -> Self {
        Self {
            id: g.id,
            resources_owned_by: &g.owner,
            title: &g.title,
            description: &g.description,
            resources: &g.resources,
            renew_every: g.renew_every,
            criteria: &g.criteria,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimInput {
    pub gift_id: u64,
}

// ---------------------------------------------------------------- item mapping

pub fn project_pk(id: &str) -> String {
    format!("PROJECT#{id}")
}

pub fn project_key(id: &str) -> Item {
    key(project_pk(id), "PROJECT")
}

pub const WALLET_PREFIX: &str = "WALLET#";

pub fn wallet_key(project: &str, category: &str, provider: &str) -> Item {
    key(
        project_pk(project),
        format!("{WALLET_PREFIX}{category}#{provider}"),
    )
}

pub fn gift_pk(id: u64) -> String {
    format!("GIFT#{id}")
}

pub fn gift_key(id: u64) -> Item {
    key(gift_pk(id), "GIFT")
}

pub const LISTING_PREFIX: &str = "GIFT#";

/// Ids padded so that the listing's sort order is creation order.
pub fn listing_sk(id: u64) -> String {
    format!("{LISTING_PREFIX}{id:016}")
}

pub fn listing_key(owner: &str, id: u64) -> Item {
    key(project_pk(owner), listing_sk(id))
}

pub fn criterion_key(gift: u64, c: &Criterion) -> Item {
    let sk = match c {
        Criterion::Anyone {} => "CRIT#anyone".to_owned(),
        Criterion::Email { domain } => format!("CRIT#email#{}", domain.to_lowercase()),
        Criterion::Wayf { org } => format!("CRIT#wayf#{}", org.to_lowercase()),
    };
    key(gift_pk(gift), sk)
}

pub fn claim_key(gift: u64, sub: &str) -> Item {
    key(gift_pk(gift), format!("CLAIM#{sub}"))
}

pub fn claims_of_pk(sub: &str) -> String {
    format!("CLAIMS#{sub}")
}

pub fn project_to_item(p: &Project) -> Result<Item, DbError> {
    keyed(project_key(&p.id), p)
}

pub fn gift_to_item(g: &Gift) -> Result<Item, DbError> {
    keyed(gift_key(g.id), g)
}

pub fn listing_to_item(g: &Gift) -> Result<Item, DbError> {
    keyed(listing_key(&g.owner, g.id), g)
}

#[derive(Serialize, Deserialize)]
pub struct CriterionItem {
    pub gsi1pk: String,
    pub gsi1sk: String,
    pub gift_id: u64,
}

pub fn criterion_to_item(gift: u64, c: &Criterion) -> Result<Item, DbError> {
    keyed(
        criterion_key(gift, c),
        &CriterionItem {
            gsi1pk: c.index_pk(),
            gsi1sk: format!("{gift:016}"),
            gift_id: gift,
        },
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClaimItem {
    pub gsi2pk: String,
    pub gsi2sk: String,
    pub gift_id: u64,
    pub claimed_at: String,
    /// The claiming request's token: a claim whose answer was lost finds
    /// its own claim by it instead of answering "already claimed".
    #[serde(default)]
    pub token: Option<String>,
}

pub fn claim_to_item(gift: u64, sub: &str, claimed_at: &str, token: &str) -> Result<Item, DbError> {
    let claim = ClaimItem {
        gsi2pk: claims_of_pk(sub),
        gsi2sk: format!("{gift:016}"),
        gift_id: gift,
        claimed_at: claimed_at.to_owned(),
        token: Some(token.to_owned()),
    };
    keyed(claim_key(gift, sub), &claim)
}

pub const DEPOSIT_PREFIX: &str = "DEPOSIT#";

/// One deposit into a project's wallet, written in the deposit's
/// transaction: its key makes the deposit apply once, and the deposits are
/// the ledger `allotment verify` balances every wallet against.
#[derive(Debug, Serialize, Deserialize)]
pub struct DepositItem {
    pub category: String,
    pub provider: String,
    pub amount: u64,
    pub deposited_at: String,
}

pub fn deposit_key(project: &str, deposit_id: &str) -> Item {
    key(project_pk(project), format!("{DEPOSIT_PREFIX}{deposit_id}"))
}

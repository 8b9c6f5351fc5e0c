//! Projects, wallets and claimable credit gifts: the domain's types (UCloud's
//! wire shapes among them) and its rules — what a project, a deposit and a
//! gift must be, who manages a project, who matches a gift's criteria, when a
//! claim may renew — and [`Refused`], every reason a gifts request is
//! refused. Pure: no DynamoDB, no HTTP.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::months_before;
use crate::db::DbError;
use crate::error::{FieldError, Invalid};
use crate::validate::{check_text, domain_name, format_timestamp, is_blank_char, ID, NAME};

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
    /// The domain of the caller's email, in the one form domains are
    /// compared in ([`email_domain`]).
    pub fn email_domain(&self) -> Option<String> {
        let email = self.email.as_deref()?;
        let (local, domain) = email.trim().rsplit_once('@')?;
        if local.is_empty() {
            return None;
        }
        email_domain(domain)
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

// ---------------------------------------------------------------- validation

/// A wallet's category or provider: a [`NAME`].
fn check_name(errors: &mut Vec<FieldError>, field: String, raw: &str) {
    if let Err(rule) = NAME.check(raw) {
        errors.push(FieldError::new(field, rule));
    }
}

fn check_units(errors: &mut Vec<FieldError>, field: String, v: u64) {
    if !(1..=MAX_UNITS).contains(&v) {
        errors.push(FieldError::new(
            field,
            format!("must be a whole number from 1 to {MAX_UNITS}"),
        ));
    }
}

fn text(errors: &mut Vec<FieldError>, field: &str, raw: &str, max: usize) -> String {
    check_text(raw, max).unwrap_or_else(|m| {
        errors.push(FieldError::new(field, m));
        String::new()
    })
}

/// An email domain as criteria and claimants compare it: a domain name of
/// two or more labels, in the one normal form ([`domain_name`]: lower case,
/// IDNs as punycode, one trailing dot dropped).
pub fn email_domain(raw: &str) -> Option<String> {
    domain_name(raw).filter(|d| d.contains('.'))
}

pub fn validate_project(id: String, input: ProjectInput) -> Result<Project, Invalid> {
    let mut errors = Vec::new();
    let title = text(&mut errors, "title", &input.title, MAX_TITLE_CHARS);
    if input.members.is_empty() || input.members.len() > MAX_MEMBERS {
        errors.push(FieldError::new(
            "members",
            format!("must list 1 to {MAX_MEMBERS} members"),
        ));
    }
    let mut members = std::collections::BTreeMap::new();
    for (i, m) in input.members.iter().enumerate() {
        if errors.len() >= crate::error::MAX_DETAILS {
            break; // enough to fix first; the rest is not read
        }
        let field = format!("members[{i}].username");
        let username = m.username.as_str();
        if username.is_empty()
            || username.chars().count() > MAX_NAME_CHARS
            || username.chars().any(is_blank_char)
        {
            errors.push(FieldError::new(field, format!("must be 1 to {MAX_NAME_CHARS} characters without whitespace: the user's token sub")));
        } else if members.insert(username.to_owned(), m.role).is_some() {
            errors.push(FieldError::new(field, "is listed twice"));
        }
    }
    let pis = input.members.iter().filter(|m| m.role == Role::Pi).count();
    if !input.members.is_empty() && pis != 1 {
        errors.push(FieldError::new(
            "members",
            format!("must have exactly one PI, has {pis}"),
        ));
    }
    Invalid::check(errors)?;
    Ok(Project { id, title, members })
}

pub fn validate_deposit(input: &DepositInput) -> Result<(), Invalid> {
    let mut errors = Vec::new();
    check_name(&mut errors, "category".into(), &input.category);
    check_name(&mut errors, "provider".into(), &input.provider);
    check_units(&mut errors, "amount".into(), input.amount);
    Invalid::check(errors)
}

/// A new gift, checked on its own (roles and wallets are checked against the store).
pub fn validate_gift(input: GiftInput, created_at: String) -> Result<Gift, Invalid> {
    let mut errors = Vec::new();
    if let Err(rule) = ID.check(&input.resources_owned_by) {
        errors.push(FieldError::new("resourcesOwnedBy", format!("{rule}: a registered project")));
    }
    let title = text(&mut errors, "title", &input.title, MAX_TITLE_CHARS);
    let description = text(
        &mut errors,
        "description",
        &input.description,
        MAX_DESCRIPTION_CHARS,
    );
    if input.resources.is_empty() || input.resources.len() > MAX_RESOURCES {
        errors.push(FieldError::new(
            "resources",
            format!("must list 1 to {MAX_RESOURCES} resources"),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut resources = Vec::new();
    for (i, r) in input.resources.into_iter().enumerate() {
        if errors.len() >= crate::error::MAX_DETAILS {
            break; // enough to fix first; the rest is not read
        }
        check_name(&mut errors, format!("resources[{i}].category"), &r.category);
        check_name(&mut errors, format!("resources[{i}].provider"), &r.provider);
        check_units(
            &mut errors,
            format!("resources[{i}].balanceRequested"),
            r.balance_requested,
        );
        if !seen.insert((r.category.clone(), r.provider.clone())) {
            errors.push(FieldError::new(
                format!("resources[{i}]"),
                "names a wallet (category, provider) already listed",
            ));
        }
        resources.push(Resource {
            category: r.category,
            provider: r.provider,
            balance_requested: r.balance_requested,
        });
    }
    if !(0..=MAX_RENEW_MONTHS).contains(&input.renew_every) {
        errors.push(FieldError::new(
            "renewEvery",
            format!("must be a whole number of months from 0 (once ever) to {MAX_RENEW_MONTHS}"),
        ));
    }
    if input.criteria.is_empty() || input.criteria.len() > MAX_CRITERIA {
        errors.push(FieldError::new(
            "criteria",
            format!("must list 1 to {MAX_CRITERIA} criteria"),
        ));
    }
    let mut criteria = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, c) in input.criteria.into_iter().enumerate() {
        if errors.len() >= crate::error::MAX_DETAILS {
            break; // enough to fix first; the rest is not read
        }
        let c = match c {
            Criterion::Anyone {} => Criterion::Anyone {},
            Criterion::Email { domain } => match email_domain(&domain) {
                Some(d) => Criterion::Email { domain: d },
                None => {
                    errors.push(FieldError::new(
                        format!("criteria[{i}].domain"),
                        "must be an email domain such as example.org",
                    ));
                    continue;
                }
            },
            Criterion::Wayf { org } => Criterion::Wayf {
                org: text(
                    &mut errors,
                    &format!("criteria[{i}].org"),
                    &org,
                    MAX_NAME_CHARS,
                ),
            },
        };
        if !seen.insert(c.index_pk()) {
            errors.push(FieldError::new(
                format!("criteria[{i}]"),
                "repeats an earlier criterion",
            ));
        }
        criteria.push(c);
    }
    Invalid::check(errors)?;
    Ok(Gift {
        id: 0,
        owner: input.resources_owned_by,
        title,
        description,
        resources,
        renew_every: input.renew_every as u32,
        criteria,
        created_at,
        deleting: false,
    })
}

/// A gift id as a request gives it (`giftId`, the path's `id`).
pub fn gift_id(field: &str, raw: u64) -> Result<u64, Invalid> {
    if (1..=MAX_UNITS).contains(&raw) {
        Ok(raw)
    } else {
        Err(Invalid::field(field, format!("must be a gift id, a whole number from 1 to {MAX_UNITS}")))
    }
}

// ---------------------------------------------------------------- decisions

/// `project`, if `sub` is a PI or ADMIN of it. A missing project is the same
/// refusal: callers learn nothing of projects they do not manage.
pub fn managed_by(project: Option<Project>, id: &str, sub: &str) -> Result<Project, Refused> {
    match project {
        Some(p) if p.role_of(sub).is_some_and(Role::manages) => Ok(p),
        _ => Err(Refused::NotManager(id.to_owned())),
    }
}

/// The earliest a previous claim may have been made for a claim at `now` to
/// be allowed; `None` when any previous claim forbids it (renewEvery 0).
pub fn renewal_cutoff(now: OffsetDateTime, renew_every: u32) -> Option<String> {
    (renew_every > 0).then(|| format_timestamp(months_before(now, renew_every)))
}

/// Whether a gift renewing every `renew_every` months, last claimed at
/// `claimed_at` (if ever), may be claimed at `now`.
pub fn claimable(claimed_at: Option<&String>, now: OffsetDateTime, renew_every: u32) -> bool {
    match (claimed_at, renewal_cutoff(now, renew_every)) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(at), Some(cutoff)) => *at <= cutoff,
    }
}

// ---------------------------------------------------------------- refusals

/// Why a gifts request is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("Project {0} not found")]
    ProjectNotFound(String),
    #[error("Only a PI or ADMIN of project {0} can do this")]
    NotManager(String),
    #[error("Only members of project {0} can see its wallets")]
    NotMember(String),
    /// A new gift names resources its project has no wallet for.
    #[error("Project {project} has no wallet for {}", wallet_names(.wallets))]
    NoWallet { project: String, wallets: Vec<(String, String)> },
    #[error("Gift {0} not found")]
    GiftNotFound(u64),
    /// The gift went (or began to go) while it was being claimed.
    #[error("Gift not found")]
    ClaimedGiftGone,
    #[error("You do not meet any of this gift's criteria")]
    CriteriaNotMet,
    #[error("You have already claimed this gift in its current renewal period")]
    AlreadyClaimed,
    /// The owner's wallet is short of these (category, provider).
    #[error("The project giving this gift does not have enough {} left; the gift was not claimed", wallet_names(.0))]
    OwnerShort(Vec<(String, String)>),
    /// The claimant's wallet would pass [`MAX_UNITS`].
    #[error("Claiming this gift would take your wallet above {MAX_UNITS} units")]
    RecipientFull,
    /// The project's wallet would pass [`MAX_UNITS`].
    #[error("The deposit would take the wallet above {MAX_UNITS} units")]
    DepositTooLarge,
    #[error(transparent)]
    Store(#[from] DbError),
}

fn wallet_names(wallets: &[(String, String)]) -> String {
    wallets.iter().map(|(c, p)| format!("{c}/{p}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains_normalize_and_reject_non_domains() {
        assert_eq!(email_domain("Bücher.Example").as_deref(), Some("xn--bcher-kva.example"));
        assert_eq!(
            email_domain("Example.ORG.").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            email_domain("xn--bcher-kva.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        for bad in [
            "",
            "org",
            "-a.org",
            "a-.org",
            "a..org",
            "a_b.org",
            "exa mple.org",
            "@example.org",
            " example.org",
            "example.org..",
        ] {
            assert!(email_domain(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn claimants_match_any_one_criterion_case_insensitively() {
        let c = Claimant {
            sub: "u".into(),
            email: Some("Alice@Sub.Example.ORG".into()),
            org: Some("KU.dk".into()),
        };
        assert!(c.matches(&[Criterion::Email {
            domain: "sub.example.org".into()
        }]));
        assert!(
            !c.matches(&[Criterion::Email {
                domain: "example.org".into()
            }]),
            "exact domain only"
        );
        assert!(c.matches(&[
            Criterion::Email {
                domain: "x.org".into()
            },
            Criterion::Wayf {
                org: "ku.DK".into()
            }
        ]));
        let anonymous = Claimant {
            sub: "v".into(),
            email: None,
            org: None,
        };
        assert!(!anonymous.matches(&[Criterion::Email {
            domain: "example.org".into()
        }]));
        assert!(anonymous.matches(&[Criterion::Anyone {}]));
        // An IDN domain matches in either form: one normaliser for both sides.
        let idn = Claimant { sub: "x".into(), email: Some("anna@Bücher.Example".into()), org: None };
        let criterion = email_domain("bücher.example").map(|domain| Criterion::Email { domain });
        assert!(idn.matches(&criterion.into_iter().collect::<Vec<_>>()));
        assert!(idn.matches(&[Criterion::Email { domain: "xn--bcher-kva.example".into() }]));
        let no_at = Claimant {
            sub: "w".into(),
            email: Some("example.org".into()),
            org: None,
        };
        assert!(no_at.email_domain().is_none());
    }
}

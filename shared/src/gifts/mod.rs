//! Projects, wallets and claimable credit gifts (SPEC §5; UCloud's Gifts API):
//! rules and handlers. Layout: `model.rs` (domain, wire, items), `store.rs`
//! (DynamoDB), this file.

pub mod model;
pub mod store;

use std::collections::BTreeSet;

use lambda_http::Request;
use serde_json::json;

use self::model::*;
use self::store::*;
use crate::auth::{caller, Caller, SCOPE_ADMIN};
use crate::clock::months_before;
use crate::db::DbError;
use crate::error::{ApiError, FieldError};
use crate::http::{json_body, json_response, path_param, query_param, HandlerResult};
use crate::pagetoken::PageToken;
use crate::validate::{check_text, format_timestamp, is_blank_char};
use crate::App;

/// Browse page sizes (UCloud's PageV2); anything else is 50.
pub const PAGE_SIZES: [usize; 5] = [10, 25, 50, 100, 250];
pub const DEFAULT_PAGE_SIZE: usize = 50;

// ---------------------------------------------------------------- validation

/// A registered project id: 1–64 letters, digits, `-` or `_` (so never a
/// personal project's `personal:<sub>`).
pub fn valid_project_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const PROJECT_ID_RULE: &str = "must be 1 to 64 letters, digits, '-' or '_'";

/// A wallet's category or provider: 1–64 letters, digits, `.`, `-` or `_`.
fn valid_name(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

const NAME_RULE: &str = "must be 1 to 64 letters, digits, '.', '-' or '_'";

fn check_name(errors: &mut Vec<FieldError>, field: String, raw: &str) {
    if !valid_name(raw) {
        errors.push(FieldError::new(field, NAME_RULE));
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

/// A DNS domain as written after an email's `@`: two or more labels of
/// letters, digits and inner hyphens (IDNs in their `xn--` form); compared
/// in lower case, one trailing dot dropped.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let d = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(d)
}

pub fn validate_project(id: String, input: ProjectInput) -> Result<Project, ApiError> {
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
    if errors.is_empty() {
        Ok(Project { id, title, members })
    } else {
        Err(ApiError::invalid(errors))
    }
}

pub fn validate_deposit(input: &DepositInput) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    check_name(&mut errors, "category".into(), &input.category);
    check_name(&mut errors, "provider".into(), &input.provider);
    check_units(&mut errors, "amount".into(), input.amount);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// A new gift, checked on its own (roles and wallets are checked against the store).
pub fn validate_gift(input: GiftInput, created_at: String) -> Result<Gift, ApiError> {
    let mut errors = Vec::new();
    if !valid_project_id(&input.resources_owned_by) {
        errors.push(FieldError::new(
            "resourcesOwnedBy",
            format!("{PROJECT_ID_RULE}: a registered project"),
        ));
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
            Criterion::Email { domain } => match normalize_domain(&domain) {
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
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
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

fn project_param(req: &Request) -> Result<String, ApiError> {
    let id = path_param(req, "id")?;
    if valid_project_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::field("id", PROJECT_ID_RULE))
    }
}

fn gift_id(field: &str, raw: u64) -> Result<u64, ApiError> {
    if (1..=MAX_UNITS).contains(&raw) {
        Ok(raw)
    } else {
        Err(ApiError::field(
            field,
            format!("must be a gift id, a whole number from 1 to {MAX_UNITS}"),
        ))
    }
}

fn claimant(who: &Caller) -> Claimant {
    Claimant {
        sub: who.sub.clone(),
        email: who.email.clone(),
        org: who.org.clone(),
    }
}

/// 403 unless `who` is a PI or ADMIN of `project` (a missing project too:
/// callers learn nothing of projects they do not manage).
async fn require_manager(app: &App, who: &Caller, project: &str) -> Result<Project, ApiError> {
    let denied = || {
        ApiError::Forbidden(format!(
            "Only a PI or ADMIN of project {project} can do this"
        ))
    };
    let p = get_project(&app.db, project).await?.ok_or_else(denied)?;
    match p.role_of(&who.sub) {
        Some(role) if role.manages() => Ok(p),
        _ => Err(denied()),
    }
}

/// The earliest a previous claim may have been made for a claim now to be
/// allowed; `None` when any previous claim forbids it (renewEvery 0).
fn renewal_cutoff(app: &App, renew_every: u32) -> Option<String> {
    (renew_every > 0).then(|| format_timestamp(months_before(app.clock.now(), renew_every)))
}

// ---------------------------------------------------------------- handlers

/// `PUT /projects/{id}` (admin): creates or replaces a project and its members.
pub async fn put_project_handler(app: App, req: Request) -> HandlerResult {
    let id = project_param(&req)?;
    let project = validate_project(id, json_body(&req)?)?;
    put_project(&app.db, &project).await?;
    json_response(200, &ProjectOut::from(&project))
}

/// `POST /projects/{id}/wallets/deposit` (admin). Applied every time it is
/// sent, unless an Idempotency-Key makes a repeat a replay.
pub async fn deposit_handler(app: App, req: Request) -> HandlerResult {
    let id = project_param(&req)?;
    let input: DepositInput = json_body(&req)?;
    validate_deposit(&input)?;
    get_project(&app.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Project {id} not found")))?;
    let deposit_id = crate::idempotency::RequestIds::of(&req).id("deposit", 0);
    let at = format_timestamp(app.clock.now());
    let wallet = match deposit(
        &app.db,
        &id,
        &input.category,
        &input.provider,
        input.amount,
        &deposit_id,
        &at,
    )
    .await
    {
        Err(DbError::ConditionFailed(_)) => {
            return Err(ApiError::Conflict(format!(
                "The deposit would take the wallet above {MAX_UNITS} units"
            )))
        }
        other => other?,
    };
    tracing::info!(project = %id, category = %wallet.category, provider = %wallet.provider, amount = input.amount, "deposit");
    json_response(200, &wallet)
}

/// `GET /projects/{id}/wallets`: the project's members (and the provisioner).
pub async fn project_wallets_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let id = project_param(&req)?;
    let project = get_project(&app.db, &id).await?;
    let allowed = who.has_scope(SCOPE_ADMIN)
        || project
            .as_ref()
            .is_some_and(|p| p.role_of(&who.sub).is_some());
    if !allowed {
        return Err(ApiError::Forbidden(format!(
            "Only members of project {id} can see its wallets"
        )));
    }
    if project.is_none() {
        return Err(ApiError::NotFound(format!("Project {id} not found")));
    }
    let wallets = list_wallets(&app.db, &id).await?;
    json_response(200, &WalletsOut { wallets: &wallets })
}

/// `GET /me/wallets`: the caller's personal project (empty until a first credit).
pub async fn my_wallets_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let wallets = list_wallets(&app.db, &personal_project(&who.sub)).await?;
    json_response(200, &WalletsOut { wallets: &wallets })
}

/// `POST /gifts`: a PI or ADMIN of `resourcesOwnedBy` creates a gift.
pub async fn post_gift_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let mut gift = validate_gift(json_body(&req)?, format_timestamp(app.clock.now()))?;
    let pairs: BTreeSet<(String, String)> = gift
        .resources
        .iter()
        .map(|r| (r.category.clone(), r.provider.clone()))
        .collect();
    // Both reads at once; a caller who may not manage the project hears only that.
    let (manager, missing) = tokio::join!(
        require_manager(&app, &who, &gift.owner),
        missing_wallets(&app.db, &gift.owner, &pairs)
    );
    manager?;
    let missing = missing?;
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|(c, p)| format!("{c}/{p}")).collect();
        return Err(ApiError::PaymentRequired(format!(
            "Project {} has no wallet for {}",
            gift.owner,
            names.join(", ")
        )));
    }
    // A keyed request names its gift: a re-run answers with the one it made.
    let ids = crate::idempotency::RequestIds::of(&req);
    let request = ids.is_keyed().then(|| ids.id("gift", 0));
    if let Some(request) = &request {
        if let Some(id) = gift_of_request(&app.db, request).await? {
            return json_response(200, &json!({"id": id}));
        }
    }
    gift.id = app.db.next_sequence("gift").await?;
    let id = match create_gift(&app.db, &gift, request.as_deref()).await? {
        Created::Gift(id) => id,
        Created::ByEarlierRun(id) => id,
    };
    tracing::info!(gift_id = id, project = %gift.owner, "gift created");
    json_response(200, &json!({"id": id}))
}

/// `DELETE /gifts/{id}`: the gift and all its claims. Re-running it after a
/// crash finishes the job.
pub async fn delete_gift_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let raw = path_param(&req, "id")?;
    let id = crate::http::parse_positive_id(&raw)
        .ok_or_else(|| {
            ApiError::field(
                "id",
                format!("must be a gift id, a whole number from 1 to {MAX_UNITS}"),
            )
        })
        .and_then(|id| gift_id("id", id))?;
    let gift = get_gift(&app.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Gift {id} not found")))?;
    require_manager(&app, &who, &gift.owner).await?;
    let removed = delete_gift(&app.db, &gift).await?;
    tracing::info!(gift_id = id, removed, "gift deleted");
    json_response(200, &json!({}))
}

/// `GET /gifts?project=&itemsPerPage=&next=&consistency=&itemsToSkip=`
pub async fn browse_gifts_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let project =
        query_param(&req, "project").ok_or_else(|| ApiError::field("project", "is required"))?;
    if !valid_project_id(&project) {
        return Err(ApiError::field("project", PROJECT_ID_RULE));
    }
    let per_page = query_param(&req, "itemsPerPage")
        .and_then(|raw| raw.parse::<usize>().ok())
        .filter(|n| PAGE_SIZES.contains(n))
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let consistent = match query_param(&req, "consistency").as_deref() {
        None | Some("PREFER") => false,
        Some("REQUIRE") => true,
        Some(_) => return Err(ApiError::field("consistency", "must be PREFER or REQUIRE")),
    };
    let skip = match query_param(&req, "itemsToSkip") {
        None => 0,
        Some(raw) => raw
            .parse::<u64>()
            .map_err(|_| ApiError::field("itemsToSkip", "must be a whole number, 0 or more"))?,
    };
    let next = query_param(&req, "next")
        .map(|raw| PageToken::decode(&app.page_key, &raw, &project))
        .transpose()?;
    if next
        .as_ref()
        .is_some_and(|t| !t.key.starts_with(LISTING_PREFIX))
    {
        return Err(crate::pagetoken::foreign());
    }
    require_manager(&app, &who, &project).await?;
    // With a token, itemsToSkip was spent on the first page.
    let skip = if next.is_some() { 0 } else { skip };
    let (gifts, more) = browse_gifts(
        &app.db,
        &project,
        next.map(|t| t.key),
        skip,
        per_page,
        consistent,
    )
    .await?;
    let next = match (more, gifts.last()) {
        (true, Some(last)) => Some(
            PageToken {
                scope: project.clone(),
                key: listing_sk(last.id),
            }
            .encode(&app.page_key),
        ),
        _ => None,
    };
    let items: Vec<GiftOut> = gifts.iter().map(GiftOut::from).collect();
    json_response(
        200,
        &json!({"itemsPerPage": per_page, "items": items, "next": next}),
    )
}

/// `GET /gifts/available`: gifts the caller matches and may claim now. At
/// most three index Queries (anyone, their email domain, their org), one for
/// their claims, and a read of the matched gifts: nothing else is read. The
/// candidates match by construction: they are what those criteria index.
pub async fn available_gifts_handler(app: App, req: Request) -> HandlerResult {
    let who = claimant(&caller(&req)?);
    // The criterion partitions and the caller's claims are read at once: two
    // round trips in all (then the matched gifts), whatever the table holds.
    let criteria = who.criteria_pks();
    let (candidates, claims) = tokio::join!(
        candidate_gifts(&app.db, &criteria),
        claims_of(&app.db, &who.sub)
    );
    let (candidates, claims) = (candidates?, claims?);
    let gifts = live_gifts(&app.db, &candidates).await?;
    let ids: Vec<_> = gifts
        .iter()
        .filter(
            |g| match (claims.get(&g.id), renewal_cutoff(&app, g.renew_every)) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(at), Some(cutoff)) => *at <= cutoff,
            },
        )
        .map(|g| json!({"id": g.id}))
        .collect();
    json_response(200, &json!({"gifts": ids}))
}

/// `POST /gifts/claim`: one transaction moves every resource from the owner
/// to the caller's personal project and records the claim.
pub async fn claim_gift_handler(app: App, req: Request) -> HandlerResult {
    let who = caller(&req)?;
    let input: ClaimInput = json_body(&req)?;
    let id = gift_id("giftId", input.gift_id)?;
    // A keyed claim's re-run answers from its receipt, whatever became of
    // the gift since (deleted, criteria no longer met).
    let ids = crate::idempotency::RequestIds::of(&req);
    let token = ids.id("claim", 0);
    if ids.is_keyed() && claimed_by_request(&app.db, &who.sub, &token).await? {
        return json_response(200, &json!({}));
    }
    let gift = match get_gift(&app.db, id).await? {
        Some(g) if !g.deleting => g,
        _ => return Err(ApiError::NotFound(format!("Gift {id} not found"))),
    };
    if !claimant(&who).matches(&gift.criteria) {
        return Err(ApiError::Forbidden(
            "You do not meet any of this gift's criteria".into(),
        ));
    }
    let now = format_timestamp(app.clock.now());
    claim_gift(
        &app.db,
        &gift,
        &who.sub,
        &now,
        renewal_cutoff(&app, gift.renew_every).as_deref(),
        &token,
        ids.is_keyed(),
    )
    .await??;
    tracing::info!(gift_id = id, sub = %who.sub, "gift claimed");
    json_response(200, &json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains_normalize_and_reject_non_domains() {
        assert_eq!(
            normalize_domain("Example.ORG.").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").as_deref(),
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
            assert!(normalize_domain(bad).is_none(), "{bad:?}");
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
        let no_at = Claimant {
            sub: "w".into(),
            email: Some("example.org".into()),
            org: None,
        };
        assert!(no_at.email_domain().is_none());
    }
}

//! Gifts over HTTP: each handler parses its request, applies the rules,
//! calls the store and answers; [`From<Refused>`] is the one place a gifts
//! refusal becomes a status.

use std::collections::BTreeSet;

use serde_json::json;

use super::rules::*;
use super::store::*;
use crate::auth::SCOPE_ADMIN;
use crate::call::Call;
use crate::error::ApiError;
use crate::http::{json_response, parse_positive_id, HandlerResult};
use crate::pagetoken::PageToken;
use crate::validate::{format_timestamp, ID};
use crate::App;

/// Browse page sizes (UCloud's PageV2); anything else is 50.
pub const PAGE_SIZES: [usize; 5] = [10, 25, 50, 100, 250];
pub const DEFAULT_PAGE_SIZE: usize = 50;

impl From<Refused> for ApiError {
    fn from(err: Refused) -> Self {
        let message = err.to_string();
        match err {
            Refused::ProjectNotFound(_) | Refused::GiftNotFound(_) | Refused::ClaimedGiftGone => ApiError::NotFound(message),
            Refused::NotManager(_) | Refused::NotMember(_) | Refused::CriteriaNotMet => ApiError::Forbidden(message),
            Refused::NoWallet { .. } | Refused::OwnerShort(_) => ApiError::PaymentRequired(message),
            Refused::AlreadyClaimed | Refused::RecipientFull | Refused::DepositTooLarge => ApiError::Conflict(message),
            Refused::Invalid(invalid) => invalid.into(),
            Refused::Store(e) => e.into(),
        }
    }
}

/// The claimant a caller is: their sub, and the email and organisation of their token.
fn claimant(call: &Call) -> Claimant {
    Claimant { sub: call.caller.sub.clone(), email: call.caller.email.clone(), org: call.caller.org.clone() }
}

/// The project, if the caller manages it (403 otherwise, a missing project too).
async fn require_manager(app: &App, call: &Call, project: &str) -> Result<Project, Refused> {
    managed_by(get_project(&app.db, project).await?, project, &call.caller.sub)
}

/// `PUT /projects/{id}` (admin): creates or replaces a project and its members.
pub async fn put_project_handler(app: App, call: Call) -> HandlerResult {
    let id = call.path_identifier("id", &ID)?;
    let project = validate_project(id, call.body()?)?;
    put_project(&app.db, &project).await?;
    json_response(200, &ProjectOut::from(&project))
}

/// `POST /projects/{id}/wallets/deposit` (admin). Applied every time it is
/// sent, unless an Idempotency-Key makes a repeat a replay.
pub async fn deposit_handler(app: App, call: Call) -> HandlerResult {
    let id = call.path_identifier("id", &ID)?;
    let input: DepositInput = call.body()?;
    validate_deposit(&input)?;
    get_project(&app.db, &id).await?.ok_or_else(|| Refused::ProjectNotFound(id.clone()))?;
    let deposit_id = call.ids.id("deposit", 0);
    let at = format_timestamp(app.clock.now());
    let wallet = deposit(&app.db, &id, &input.category, &input.provider, input.amount, &deposit_id, &at).await?;
    tracing::info!(project = %id, category = %wallet.category, provider = %wallet.provider, amount = input.amount, "deposit");
    crate::telemetry::count(crate::telemetry::metric::DEPOSITS, 1);
    crate::telemetry::count(crate::telemetry::metric::DEPOSITED_UNITS, input.amount);
    json_response(200, &wallet)
}

/// `GET /projects/{id}/wallets`: the project's members (and the provisioner).
pub async fn project_wallets_handler(app: App, call: Call) -> HandlerResult {
    let id = call.path_identifier("id", &ID)?;
    let project = get_project(&app.db, &id).await?;
    let allowed = call.caller.has_scope(SCOPE_ADMIN) || project.as_ref().is_some_and(|p| p.role_of(&call.caller.sub).is_some());
    if !allowed {
        return Err(Refused::NotMember(id).into());
    }
    if project.is_none() {
        return Err(Refused::ProjectNotFound(id).into());
    }
    let wallets = list_wallets(&app.db, &id).await?;
    json_response(200, &WalletsOut { wallets: &wallets })
}

/// `GET /me/wallets`: the caller's personal project (empty until a first credit).
pub async fn my_wallets_handler(app: App, call: Call) -> HandlerResult {
    let wallets = list_wallets(&app.db, &personal_project(&call.caller.sub)).await?;
    json_response(200, &WalletsOut { wallets: &wallets })
}

/// `POST /gifts`: a PI or ADMIN of `resourcesOwnedBy` creates a gift.
pub async fn post_gift_handler(app: App, call: Call) -> HandlerResult {
    let mut gift = validate_gift(call.body()?, format_timestamp(app.clock.now()))?;
    let pairs: BTreeSet<(String, String)> = gift.resources.iter().map(|r| (r.category.clone(), r.provider.clone())).collect();
    // Both reads at once; a caller who may not manage the project hears only that.
    let (manager, missing) = tokio::join!(require_manager(&app, &call, &gift.owner), missing_wallets(&app.db, &gift.owner, &pairs));
    manager?;
    let missing = missing?;
    if !missing.is_empty() {
        return Err(Refused::NoWallet { project: gift.owner, wallets: missing }.into());
    }
    // A keyed request names its gift: a re-run answers with the one it made.
    let request = call.ids.is_keyed().then(|| call.ids.id("gift", 0));
    if let Some(request) = &request {
        if let Some(id) = gift_of_request(&app.db, request).await? {
            return json_response(200, &json!({"id": id}));
        }
    }
    gift.id = app.db.next_sequence("gift").await?;
    let id = match create_gift(&app.db, &gift, request.as_deref()).await? {
        Created::Gift(id) | Created::ByEarlierRun(id) => id,
    };
    tracing::info!(gift_id = id, project = %gift.owner, "gift created");
    json_response(200, &json!({"id": id}))
}

/// `DELETE /gifts/{id}`: the gift and all its claims. Re-running it after a
/// crash finishes the job.
pub async fn delete_gift_handler(app: App, call: Call) -> HandlerResult {
    let raw = call.path("id")?;
    let id = gift_id("id", parse_positive_id(&raw).unwrap_or(0))?;
    let gift = get_gift(&app.db, id).await?.ok_or(Refused::GiftNotFound(id))?;
    require_manager(&app, &call, &gift.owner).await?;
    let removed = delete_gift(&app.db, &gift).await?;
    tracing::info!(gift_id = id, removed, "gift deleted");
    json_response(200, &json!({}))
}

/// `GET /gifts?project=&itemsPerPage=&next=&consistency=&itemsToSkip=`
pub async fn browse_gifts_handler(app: App, call: Call) -> HandlerResult {
    let project = call.query("project").ok_or_else(|| ApiError::field("project", "is required"))?;
    ID.check(&project).map_err(|rule| ApiError::field("project", rule))?;
    let per_page = call
        .query("itemsPerPage")
        .and_then(|raw| raw.parse::<usize>().ok())
        .filter(|n| PAGE_SIZES.contains(n))
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let consistent = match call.query("consistency").as_deref() {
        None | Some("PREFER") => false,
        Some("REQUIRE") => true,
        Some(_) => return Err(ApiError::field("consistency", "must be PREFER or REQUIRE")),
    };
    let skip = match call.query("itemsToSkip") {
        None => 0,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= crate::validate::MAX_SAFE_INTEGER as u64)
            .ok_or_else(|| ApiError::field("itemsToSkip", "must be a whole number from 0 to 2^53 - 1"))?,
    };
    let next = call.query("next").map(|raw| PageToken::decode(&app.page_key, &raw, &project)).transpose()?;
    if next.as_ref().is_some_and(|t| !t.key.starts_with(LISTING_PREFIX)) {
        return Err(crate::pagetoken::foreign());
    }
    require_manager(&app, &call, &project).await?;
    // With a token, itemsToSkip was spent on the first page.
    let skip = if next.is_some() { 0 } else { skip };
    let (gifts, more) = browse_gifts(&app.db, &project, next.map(|t| t.key), skip, per_page, consistent).await?;
    let next = match (more, gifts.last()) {
        (true, Some(last)) => Some(PageToken { scope: project.clone(), key: listing_sk(last.id) }.encode(&app.page_key)),
        _ => None,
    };
    let items: Vec<GiftOut> = gifts.iter().map(GiftOut::from).collect();
    json_response(200, &json!({"itemsPerPage": per_page, "items": items, "next": next}))
}

/// `GET /gifts/available`: gifts the caller matches and may claim now. At
/// most three index Queries (anyone, their email domain, their org), one for
/// their claims, and a read of the matched gifts: nothing else is read. The
/// candidates match by construction: they are what those criteria index.
pub async fn available_gifts_handler(app: App, call: Call) -> HandlerResult {
    let who = claimant(&call);
    // The criterion partitions and the caller's claims are read at once: two
    // round trips in all (then the matched gifts), whatever the table holds.
    let criteria = who.criteria_pks();
    let (candidates, claims) = tokio::join!(candidate_gifts(&app.db, &criteria), claims_of(&app.db, &who.sub));
    let (candidates, claims) = (candidates?, claims?);
    let gifts = live_gifts(&app.db, &candidates).await?;
    let now = app.clock.now();
    let ids: Vec<_> = gifts
        .iter()
        .filter(|g| claimable(claims.get(&g.id), now, g.renew_every))
        .map(|g| json!({"id": g.id}))
        .collect();
    json_response(200, &json!({"gifts": ids}))
}

/// `POST /gifts/claim`: one transaction moves every resource from the owner
/// to the caller's personal project and records the claim.
pub async fn claim_gift_handler(app: App, call: Call) -> HandlerResult {
    let input: ClaimInput = call.body()?;
    let id = gift_id("giftId", input.gift_id)?;
    let who = claimant(&call);
    // A keyed claim's re-run answers from its receipt, whatever became of
    // the gift since (deleted, criteria no longer met).
    let token = call.ids.id("claim", 0);
    if call.ids.is_keyed() && claimed_by_request(&app.db, &who.sub, &token).await? {
        return json_response(200, &json!({}));
    }
    let gift = match get_gift(&app.db, id).await? {
        Some(g) if !g.deleting => g,
        _ => return Err(Refused::GiftNotFound(id).into()),
    };
    if !who.matches(&gift.criteria) {
        return Err(Refused::CriteriaNotMet.into());
    }
    let now = app.clock.now();
    let cutoff = renewal_cutoff(now, gift.renew_every);
    claim_gift(&app.db, &gift, &who.sub, &format_timestamp(now), cutoff.as_deref(), &token, call.ids.is_keyed()).await?;
    tracing::info!(gift_id = id, sub = %who.sub, "gift claimed");
    json_response(200, &json!({}))
}

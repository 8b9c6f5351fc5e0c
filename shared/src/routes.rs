//! Every endpoint: its API Gateway route, its Lambda binary, who may call it
//! and its handler. The local front routes with this table and enforces its
//! scopes as API Gateway does; `dispatch` enforces them again before anything
//! is written; a test checks the table against template.yaml (routes and
//! `AuthorizationScopes`) and openapi.json, so they cannot drift apart.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use crate::auth::{Caller, TokenPolicy, SCOPE_ADMIN};
use crate::call::Call;
use crate::error::ApiError;
use crate::http::{error_response, HandlerResult};
use crate::idempotency;
use crate::payments::{SCOPE_PAYMENTS, SCOPE_PROCESS};
use crate::{ferry, gifts, packs, payments, App};

pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;
pub type HandlerFn = fn(App, Call) -> HandlerFuture;

/// One endpoint: its API Gateway route and the library function behind it.
#[derive(Clone)]
pub struct Route {
    /// Logical id of the function in template.yaml (`PostMinutesFunction` → `PostMinutes`).
    pub name: &'static str,
    /// The Lambda binary's name (`post-minutes`), also the events/ sample's name.
    pub binary: &'static str,
    pub method: Method,
    /// API Gateway path template, e.g. `/namespaces/{id}/minutes`.
    pub path: &'static str,
    /// Who may call it: declared here once, enforced by API Gateway
    /// (`AuthorizationScopes`), the local front and [`dispatch`].
    pub access: Access,
    /// What body it takes: [`dispatch`] checks content type, size and kind
    /// before anything is written; the handler parses it once.
    pub body: Takes,
    /// The partition-key prefixes (of the table, or of the index a Query
    /// reads) this route's function may touch: its IAM policy allows only
    /// these (`dynamodb:LeadingKeys`, generated into template.yaml and
    /// drift-tested), and a test records what each route really reads and writes.
    pub keys: &'static [&'static str],
    pub handler: HandlerFn,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (the `$default` 404).
    Public,
    /// Any caller with a valid token; the handler decides the rest (project
    /// roles, gift criteria).
    SignedIn,
    /// A caller holding at least one of these scopes.
    Scopes(&'static [&'static str]),
}

impl Access {
    /// Why `caller` may not call a route with this access, if it may not
    /// (`tokens`: which kind of token is whose, see [`TokenPolicy`]).
    pub fn refuses(&self, caller: Option<&Caller>, tokens: &TokenPolicy) -> Option<ApiError> {
        match (self, caller) {
            (Access::Public, _) => None,
            (_, None) => Some(ApiError::Unauthorized),
            (Access::Scopes(scopes), Some(c)) => tokens.refuses_for_scopes(c).or_else(|| c.require_any(scopes).err()),
            (Access::SignedIn, Some(c)) => tokens.refuses_for_users(c),
        }
    }
}

/// The body a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// None (GET, DELETE): whatever is sent is not read.
    Nothing,
    /// One JSON object.
    Object,
    /// A JSON array of 1 to this many entries.
    Array(usize),
}

impl Route {
    /// 415 unless JSON, 413 over Lambda's payload limit; an object route
    /// sent something else is 400 (an array sent where a bulk route takes it
    /// is told so); an array route's body is read here, once: 400 unless an
    /// array of objects' text, 413 past its limit. Returns where its entries
    /// stand. Checked before anything is written, the Idempotency-Key record
    /// included; what only the handler can find (a field's value) is the
    /// key's answer.
    fn check_body(&self, req: &Request) -> Result<Vec<std::ops::Range<usize>>, ApiError> {
        match self.body {
            Takes::Nothing => Ok(Vec::new()),
            Takes::Array(max) => crate::http::entry_ranges(crate::http::json_bytes(req)?, max),
            Takes::Object => {
                let body = crate::http::json_bytes(req)?;
                if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                    // Only a refused body looks for the route that takes arrays.
                    let bulk = format!("{}/bulk", self.path);
                    if let Some(r) = ROUTES.iter().find(|r| r.method == self.method && r.path == bulk) {
                        return Err(ApiError::field("body", format!("must be one object; send arrays to {} {}", r.method, r.path)));
                    }
                }
                crate::http::require_object(body).map(|()| Vec::new())
            }
        }
    }
}

/// Runs `route`'s handler on `req` and never fails: every error becomes the
/// spec's JSON error. Settles, in order and before anything is written: the
/// claims (normalised once), a path another route owns (405), who may call
/// it ([`Access`]) and the body ([`Takes`]). POST and PATCH then go through
/// the Idempotency-Key layer. Logs one line per request: route, status,
/// latency and caller `sub`.
pub async fn dispatch(route: &Route, app: App, req: Request) -> Response<Body> {
    // The correlation id: API Gateway's request id (the local front makes one
    // the same way), on every log line of the request and in its answer.
    let request_id = request_id_of(&req);
    crate::telemetry::request_started(&request_id);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        otel.name = %format_args!("{} {}", route.method, route.path),
        otel.kind = "server",
        http.route = route.path,
        http.request.method = %route.method,
        http.response.status_code = tracing::field::Empty,
    );
    let mut response = tracing::Instrument::instrument(answer(route, app, req), span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    crate::http::stamp_request_id(&mut response, &request_id);
    response
}

pub use crate::http::REQUEST_ID_HEADER;

/// API Gateway's `requestContext.requestId`, or a fresh id where there is none.
fn request_id_of(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .filter(|id| !id.is_empty() && id.len() <= 128)
    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

async fn answer(route: &Route, app: App, mut req: Request) -> Response<Body> {
    let started = Instant::now();
    crate::auth::normalize_claims(&mut req, &app.scope_prefix, &app.org_claim);
    let caller = crate::auth::caller(&req).ok();
    let sub = caller.as_ref().map(|c| c.sub.clone()).unwrap_or_default();
    let route_key = format!("{} {}", req.method(), route.path);
    let entries = tracing::info_span!("authorize").in_scope(|| match shadowed(route, &req).or_else(|| route.access.refuses(caller.as_ref(), &app.tokens)) {
        Some(err) => Err(err),
        None => route.check_body(&req),
    });
    let response = match entries {
        Err(err) => error_response(&err),
        Ok(entries) => {
            let mut call = Call::new(req, caller.unwrap_or_default(), idempotency::RequestIds::default());
            call.entries = entries;
            run_idempotent(route, app, call).await.unwrap_or_else(|err| to_response(route, &err))
        }
    };
    let latency = started.elapsed();
    crate::telemetry::request_finished(route.name, response.status().as_u16(), latency);
    tracing::info!(
        route = %route_key,
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        sub = %sub,
        "request"
    );
    response
}

/// API Gateway hands `DELETE /gifts/available` to `DELETE /gifts/{id}`; the
/// path is the GET resource `/gifts/available`, so that is a 405. Only a
/// route with a `{param}` can be handed a path a literal route owns.
fn shadowed(route: &Route, req: &Request) -> Option<ApiError> {
    if !route.path.contains('{') {
        return None;
    }
    match match_route(ROUTES, req.method(), req.uri().path()) {
        Match::WrongMethod(allow) => Some(ApiError::MethodNotAllowed { allow: allow.join(", ") }),
        _ => None,
    }
}

fn to_response(route: &Route, err: &ApiError) -> Response<Body> {
    if let ApiError::Internal(cause) = err {
        tracing::error!(route = route.name, cause = %cause, "internal error");
    }
    error_response(err)
}

async fn run_idempotent(route: &Route, app: App, mut call: Call) -> HandlerResult {
    let writes = matches!(*call.req.method(), Method::POST | Method::PATCH);
    let key = if writes && !call.caller.sub.is_empty() { idempotency::key_of(&call.req)? } else { None };
    let handle = |app, call| tracing::Instrument::instrument((route.handler)(app, call), tracing::info_span!("handler", route = route.name));
    let Some(key) = key else {
        return handle(app, call).await;
    };
    let fingerprint = idempotency::fingerprint(&call.req);
    call.ids = idempotency::RequestIds::keyed(&call.caller.sub, route.name, &key, &fingerprint);
    let begun = idempotency::begin(&app.db, app.idempotency, &call.caller.sub, route.name, &key, &fingerprint);
    let begun = tracing::Instrument::instrument(begun, tracing::info_span!("idempotency.begin")).await;
    let outcome = match &begun {
        Ok(idempotency::Claim::Replay(_)) => "replayed",
        Ok(idempotency::Claim::Proceed(_)) => "ran",
        Err(ApiError::Conflict(_)) => "in_progress",
        Err(ApiError::Unprocessable(_)) => "mismatch",
        Err(_) => "failed",
    };
    crate::telemetry::count_by(crate::telemetry::metric::IDEMPOTENCY_KEYS, "Outcome", outcome, 1);
    let ticket = match begun? {
        idempotency::Claim::Replay(response) => return Ok(response),
        idempotency::Claim::Proceed(ticket) => ticket,
    };
    let db = app.db.clone();
    let response = handle(app, call).await.unwrap_or_else(|err| to_response(route, &err));
    let finished = tracing::Instrument::instrument(idempotency::finish(&db, ticket, &response), tracing::info_span!("idempotency.finish"));
    if let Err(e) = finished.await {
        tracing::error!(error = %e, "could not settle the idempotency record");
        // A final answer is given only once it is the key's answer: one that
        // could not be stored (DynamoDB busy, or another run took the key
        // over) is a 503, and the retry gets the answer that was stored —
        // never a first answer that a re-run later contradicts.
        if response.status().as_u16() < 500 {
            let busy = crate::db::DbError::Exhausted(format!("the answer could not be kept for its Idempotency-Key ({e}): send the request again"));
            return Ok(to_response(route, &ApiError::from(busy)));
        }
    }
    Ok(response)
}

pub static PUT_NAMESPACE: Route = Route {
    name: "PutNamespace",
    binary: "put-namespace",
    method: Method::PUT,
    path: "/namespaces/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["NS#"],
    handler: |app, call| Box::pin(packs::put_namespace_handler(app, call)),
};

pub static POST_MINUTES: Route = Route {
    name: "PostMinutes",
    binary: "post-minutes",
    method: Method::POST,
    path: "/namespaces/{id}/minutes",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["NS#", "PACK#", "PACKREQ#", "IDEM#"],
    handler: |app, call| Box::pin(packs::post_minutes_handler(app, call)),
};

pub static GET_MINUTES: Route = Route {
    name: "GetMinutes",
    binary: "get-minutes",
    method: Method::GET,
    path: "/namespaces/{id}/minutes",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Nothing,
    keys: &["NSPACKS#", "NS#"],
    handler: |app, call| Box::pin(packs::get_minutes_handler(app, call)),
};

pub static MOVE_MINUTES: Route = Route {
    name: "MoveMinutes",
    binary: "move-minutes",
    method: Method::PATCH,
    path: "/namespaces/{id}/minutes/move/{target_id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Nothing,
    keys: &["NS#", "NSPACKS#", "PACK#", "IDEM#"],
    handler: |app, call| Box::pin(packs::move_minutes_handler(app, call)),
};

pub static PUT_WORK_PERIOD: Route = Route {
    name: "PutWorkPeriod",
    binary: "put-work-period",
    method: Method::PUT,
    path: "/work-periods/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["WP#"],
    handler: |app, call| Box::pin(payments::put_work_period_handler(app, call)),
};

pub static GET_WORK_PERIOD: Route = Route {
    name: "GetWorkPeriod",
    binary: "get-work-period",
    method: Method::GET,
    path: "/work-periods/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    body: Takes::Nothing,
    keys: &["WP#"],
    handler: |app, call| Box::pin(payments::get_work_period_handler(app, call)),
};

pub static POST_PAYMENT: Route = Route {
    name: "PostPayment",
    binary: "post-payment",
    method: Method::POST,
    path: "/work-period-payments",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS]),
    body: Takes::Object,
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, call| Box::pin(payments::post_payment_handler(app, call)),
};

pub static POST_PAYMENTS_BULK: Route = Route {
    name: "PostPaymentsBulk",
    binary: "post-payments-bulk",
    method: Method::POST,
    path: "/work-period-payments/bulk",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS]),
    body: Takes::Array(payments::MAX_BULK),
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, call| Box::pin(payments::post_payments_bulk_handler(app, call)),
};

pub static PATCH_PAYMENT: Route = Route {
    name: "PatchPayment",
    binary: "patch-payment",
    method: Method::PATCH,
    path: "/work-period-payments/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    body: Takes::Object,
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, call| Box::pin(payments::patch_payment_handler(app, call)),
};

pub static PATCH_PAYMENTS_BULK: Route = Route {
    name: "PatchPaymentsBulk",
    binary: "patch-payments-bulk",
    method: Method::PATCH,
    path: "/work-period-payments/bulk",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    body: Takes::Array(payments::MAX_BULK),
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, call| Box::pin(payments::patch_payments_bulk_handler(app, call)),
};

pub static GET_PAYMENT: Route = Route {
    name: "GetPayment",
    binary: "get-payment",
    method: Method::GET,
    path: "/work-period-payments/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    body: Takes::Nothing,
    keys: &["PAY#"],
    handler: |app, call| Box::pin(payments::get_payment_handler(app, call)),
};

pub static LIST_PAYMENTS: Route = Route {
    name: "ListPayments",
    binary: "list-payments",
    method: Method::GET,
    path: "/work-period-payments",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    body: Takes::Nothing,
    keys: &["WPPAY#", "PAYSTATUS#"],
    handler: |app, call| Box::pin(payments::list_payments_handler(app, call)),
};

pub static PUT_PROJECT: Route = Route {
    name: "PutProject",
    binary: "put-project",
    method: Method::PUT,
    path: "/projects/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["PROJECT#"],
    handler: |app, call| Box::pin(gifts::put_project_handler(app, call)),
};

pub static DEPOSIT_WALLET: Route = Route {
    name: "DepositWallet",
    binary: "deposit-wallet",
    method: Method::POST,
    path: "/projects/{id}/wallets/deposit",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["PROJECT#", "IDEM#"],
    handler: |app, call| Box::pin(gifts::deposit_handler(app, call)),
};

pub static GET_PROJECT_WALLETS: Route = Route {
    name: "GetProjectWallets",
    binary: "get-project-wallets",
    method: Method::GET,
    path: "/projects/{id}/wallets",
    access: Access::SignedIn,
    body: Takes::Nothing,
    keys: &["PROJECT#"],
    handler: |app, call| Box::pin(gifts::project_wallets_handler(app, call)),
};

pub static GET_MY_WALLETS: Route = Route {
    name: "GetMyWallets",
    binary: "get-my-wallets",
    method: Method::GET,
    path: "/me/wallets",
    access: Access::SignedIn,
    body: Takes::Nothing,
    keys: &["PROJECT#"],
    handler: |app, call| Box::pin(gifts::my_wallets_handler(app, call)),
};

pub static POST_GIFT: Route = Route {
    name: "PostGift",
    binary: "post-gift",
    method: Method::POST,
    path: "/gifts",
    access: Access::SignedIn,
    body: Takes::Object,
    keys: &["PROJECT#", "SEQ#", "GIFT#", "GIFTREQ#", "IDEM#"],
    handler: |app, call| Box::pin(gifts::post_gift_handler(app, call)),
};

pub static DELETE_GIFT: Route = Route {
    name: "DeleteGift",
    binary: "delete-gift",
    method: Method::DELETE,
    path: "/gifts/{id}",
    access: Access::SignedIn,
    body: Takes::Nothing,
    keys: &["GIFT#", "PROJECT#"],
    handler: |app, call| Box::pin(gifts::delete_gift_handler(app, call)),
};

pub static BROWSE_GIFTS: Route = Route {
    name: "BrowseGifts",
    binary: "browse-gifts",
    method: Method::GET,
    path: "/gifts",
    access: Access::SignedIn,
    body: Takes::Nothing,
    keys: &["PROJECT#"],
    handler: |app, call| Box::pin(gifts::browse_gifts_handler(app, call)),
};

pub static AVAILABLE_GIFTS: Route = Route {
    name: "AvailableGifts",
    binary: "available-gifts",
    method: Method::GET,
    path: "/gifts/available",
    access: Access::SignedIn,
    body: Takes::Nothing,
    keys: &["GIFTCRIT#", "CLAIMS#", "GIFT#"],
    handler: |app, call| Box::pin(gifts::available_gifts_handler(app, call)),
};

pub static CLAIM_GIFT: Route = Route {
    name: "ClaimGift",
    binary: "claim-gift",
    method: Method::POST,
    path: "/gifts/claim",
    access: Access::SignedIn,
    body: Takes::Object,
    keys: &["GIFT#", "PROJECT#", "IDEM#"],
    handler: |app, call| Box::pin(gifts::claim_gift_handler(app, call)),
};

pub static PUT_FERRY_PRODUCT: Route = Route {
    name: "PutFerryProduct",
    binary: "put-ferry-product",
    method: Method::PUT,
    path: "/ferry/products/{slug}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["FERRY#"],
    handler: |app, call| Box::pin(ferry::put_product_handler(app, call)),
};

pub static PUT_FERRY_CUSTOMER: Route = Route {
    name: "PutFerryCustomer",
    binary: "put-ferry-customer",
    method: Method::PUT,
    path: "/ferry/customers/{customer}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["FERRY#"],
    handler: |app, call| Box::pin(ferry::put_customer_handler(app, call)),
};

pub static POST_FERRY_SUBSCRIPTIONS: Route = Route {
    name: "PostFerrySubscriptions",
    binary: "post-ferry-subscriptions",
    method: Method::POST,
    path: "/ferry/customers/{customer}/subscriptions",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Object,
    keys: &["FERRY#", "IDEM#"],
    handler: |app, call| Box::pin(ferry::post_subscriptions_handler(app, call)),
};

pub static LIST_FERRY_SUBSCRIPTIONS: Route = Route {
    name: "ListFerrySubscriptions",
    binary: "list-ferry-subscriptions",
    method: Method::GET,
    path: "/ferry/customers/{customer}/subscriptions",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    body: Takes::Nothing,
    keys: &["FERRYCUST#", "FERRY#"],
    handler: |app, call| Box::pin(ferry::list_subscriptions_handler(app, call)),
};

pub static ROUTES: &[&Route] = &[
    &PUT_NAMESPACE,
    &POST_MINUTES,
    &GET_MINUTES,
    &MOVE_MINUTES,
    &PUT_WORK_PERIOD,
    &GET_WORK_PERIOD,
    &POST_PAYMENT,
    &POST_PAYMENTS_BULK,
    &PATCH_PAYMENT,
    &PATCH_PAYMENTS_BULK,
    &GET_PAYMENT,
    &LIST_PAYMENTS,
    &PUT_PROJECT,
    &DEPOSIT_WALLET,
    &GET_PROJECT_WALLETS,
    &GET_MY_WALLETS,
    &POST_GIFT,
    &DELETE_GIFT,
    &BROWSE_GIFTS,
    &AVAILABLE_GIFTS,
    &CLAIM_GIFT,
    &PUT_FERRY_PRODUCT,
    &PUT_FERRY_CUSTOMER,
    &POST_FERRY_SUBSCRIPTIONS,
    &LIST_FERRY_SUBSCRIPTIONS,
];

/// API Gateway's `$default` route: whatever no route above matches. It answers
/// 404, or 405 where the path exists under another method, in the error shape.
pub static NOT_FOUND: Route = Route {
    name: "NotFound",
    binary: "not-found",
    method: Method::GET, // unused: `$default` takes every method
    path: "$default",
    access: Access::SignedIn,
    body: Takes::Nothing,
    keys: &[],
    handler: |_app, call| Box::pin(async move { Err(unmatched(call.req.method(), call.req.uri().path())) }),
};

/// The error for a request no route matches.
pub fn unmatched(method: &Method, path: &str) -> ApiError {
    match match_route(ROUTES, method, path) {
        Match::WrongMethod(allow) => ApiError::MethodNotAllowed { allow: allow.join(", ") },
        _ => ApiError::NotFound(format!("No route for {method} {path}")),
    }
}

/// What matching a method and path against [`ROUTES`] gives.
pub enum Match<'a> {
    Found(&'a Route, Vec<(String, String)>),
    /// The path exists, but only for these methods.
    WrongMethod(Vec<&'a str>),
    NotFound,
}

/// Matches like API Gateway HTTP APIs: literal segments before `{params}`
/// (the most specific route wins); a `{param}` matches one non-empty segment.
pub fn match_route<'a>(routes: &[&'a Route], method: &Method, path: &str) -> Match<'a> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(&'a Route, Vec<(String, String)>, usize)> = None;
    // `Allow` names the methods of the most specific templates the path
    // matches: `/gifts/available` is a GET resource, though API Gateway
    // would hand a DELETE of it to `DELETE /gifts/{id}` (which refuses the id).
    let mut allowed: Vec<&'a str> = Vec::new();
    let mut allowed_literals = 0;
    for &route in routes {
        let Some(params) = match_path(route.path, &segments) else { continue };
        let literals = route.path.split('/').filter(|s| !s.starts_with('{')).count();
        if literals > allowed_literals {
            allowed.clear();
            allowed_literals = literals;
        }
        if literals == allowed_literals && !allowed.contains(&route.method.as_str()) {
            allowed.push(route.method.as_str());
        }
        if route.method != *method {
            continue;
        }
        if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            best = Some((route, params, literals));
        }
    }
    match best {
        // A more specific template owns this path under other methods only.
        Some((_, _, literals)) if literals < allowed_literals => Match::WrongMethod(allowed),
        Some((route, params, _)) => Match::Found(route, params),
        None if !allowed.is_empty() => Match::WrongMethod(allowed),
        None => Match::NotFound,
    }
}

fn match_path(template: &str, segments: &[&str]) -> Option<Vec<(String, String)>> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(segments) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if seg.is_empty() {
                return None;
            }
            params.push((name.to_owned(), (*seg).to_owned()));
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_routes_like_api_gateway() {
        match match_route(ROUTES, &Method::PATCH, "/namespaces/1/minutes/move/2") {
            Match::Found(r, params) => {
                assert_eq!(r.name, "MoveMinutes");
                assert_eq!(params, vec![("id".into(), "1".into()), ("target_id".into(), "2".into())]);
            }
            _ => panic!("expected a match"),
        }
        assert!(matches!(match_route(ROUTES, &Method::DELETE, "/namespaces/1/minutes"), Match::WrongMethod(m) if m == ["POST", "GET"]));
        // A literal segment beats a parameter, as in API Gateway.
        assert!(matches!(match_route(ROUTES, &Method::PATCH, "/work-period-payments/bulk"), Match::Found(r, _) if r.name == "PatchPaymentsBulk"));
        assert!(matches!(match_route(ROUTES, &Method::PATCH, "/work-period-payments/abc"), Match::Found(r, _) if r.name == "PatchPayment"));
        assert!(matches!(match_route(ROUTES, &Method::GET, "/nope"), Match::NotFound));
        // `/gifts/available` is a GET resource, though `DELETE /gifts/{id}` matches it too.
        assert!(matches!(match_route(ROUTES, &Method::DELETE, "/gifts/available"), Match::WrongMethod(m) if m == ["GET"]));
        assert!(matches!(match_route(ROUTES, &Method::DELETE, "/gifts/7"), Match::Found(r, _) if r.name == "DeleteGift"));
        assert!(matches!(match_route(ROUTES, &Method::GET, "/namespaces//minutes"), Match::NotFound));
    }

    #[test]
    fn route_names_and_binaries_are_unique() {
        let mut names: Vec<_> = ROUTES.iter().map(|r| r.name).collect();
        let mut bins: Vec<_> = ROUTES.iter().map(|r| r.binary).collect();
        names.sort();
        names.dedup();
        bins.sort();
        bins.dedup();
        assert_eq!(names.len(), ROUTES.len());
        assert_eq!(bins.len(), ROUTES.len());
    }
}

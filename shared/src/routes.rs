//! Every endpoint: its API Gateway route, its Lambda binary, who may call it
//! and its handler. The local front routes with this table and enforces its
//! scopes as API Gateway does; `dispatch` enforces them again before anything
//! is written; a test checks the table against template.yaml (routes and
//! `AuthorizationScopes`) and openapi.json, so they cannot drift apart.

use lambda_http::http::Method;

use crate::auth::SCOPE_ADMIN;
use crate::error::ApiError;
use crate::http::{Access, Route};
use crate::payments::{SCOPE_PAYMENTS, SCOPE_PROCESS};
use crate::{ferry, gifts, packs, payments};

pub static PUT_NAMESPACE: Route = Route {
    name: "PutNamespace",
    binary: "put-namespace",
    method: Method::PUT,
    path: "/namespaces/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["NS#"],
    handler: |app, req| Box::pin(packs::put_namespace_handler(app, req)),
};

pub static POST_MINUTES: Route = Route {
    name: "PostMinutes",
    binary: "post-minutes",
    method: Method::POST,
    path: "/namespaces/{id}/minutes",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["NS#", "PACK#", "PACKREQ#", "IDEM#"],
    handler: |app, req| Box::pin(packs::post_minutes_handler(app, req)),
};

pub static GET_MINUTES: Route = Route {
    name: "GetMinutes",
    binary: "get-minutes",
    method: Method::GET,
    path: "/namespaces/{id}/minutes",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["NSPACKS#", "NS#"],
    handler: |app, req| Box::pin(packs::get_minutes_handler(app, req)),
};

pub static MOVE_MINUTES: Route = Route {
    name: "MoveMinutes",
    binary: "move-minutes",
    method: Method::PATCH,
    path: "/namespaces/{id}/minutes/move/{target_id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["NS#", "NSPACKS#", "PACK#", "IDEM#"],
    handler: |app, req| Box::pin(packs::move_minutes_handler(app, req)),
};

pub static PUT_WORK_PERIOD: Route = Route {
    name: "PutWorkPeriod",
    binary: "put-work-period",
    method: Method::PUT,
    path: "/work-periods/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["WP#"],
    handler: |app, req| Box::pin(payments::put_work_period_handler(app, req)),
};

pub static GET_WORK_PERIOD: Route = Route {
    name: "GetWorkPeriod",
    binary: "get-work-period",
    method: Method::GET,
    path: "/work-periods/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    keys: &["WP#"],
    handler: |app, req| Box::pin(payments::get_work_period_handler(app, req)),
};

pub static POST_PAYMENT: Route = Route {
    name: "PostPayment",
    binary: "post-payment",
    method: Method::POST,
    path: "/work-period-payments",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS]),
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, req| Box::pin(payments::post_payment_handler(app, req)),
};

pub static POST_PAYMENTS_BULK: Route = Route {
    name: "PostPaymentsBulk",
    binary: "post-payments-bulk",
    method: Method::POST,
    path: "/work-period-payments/bulk",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS]),
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, req| Box::pin(payments::post_payments_bulk_handler(app, req)),
};

pub static PATCH_PAYMENT: Route = Route {
    name: "PatchPayment",
    binary: "patch-payment",
    method: Method::PATCH,
    path: "/work-period-payments/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, req| Box::pin(payments::patch_payment_handler(app, req)),
};

pub static PATCH_PAYMENTS_BULK: Route = Route {
    name: "PatchPaymentsBulk",
    binary: "patch-payments-bulk",
    method: Method::PATCH,
    path: "/work-period-payments/bulk",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    keys: &["WP#", "PAY#", "IDEM#"],
    handler: |app, req| Box::pin(payments::patch_payments_bulk_handler(app, req)),
};

pub static GET_PAYMENT: Route = Route {
    name: "GetPayment",
    binary: "get-payment",
    method: Method::GET,
    path: "/work-period-payments/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    keys: &["PAY#"],
    handler: |app, req| Box::pin(payments::get_payment_handler(app, req)),
};

pub static LIST_PAYMENTS: Route = Route {
    name: "ListPayments",
    binary: "list-payments",
    method: Method::GET,
    path: "/work-period-payments",
    access: Access::Scopes(&[SCOPE_ADMIN, SCOPE_PAYMENTS, SCOPE_PROCESS]),
    keys: &["WPPAY#", "PAYSTATUS#"],
    handler: |app, req| Box::pin(payments::list_payments_handler(app, req)),
};

pub static PUT_PROJECT: Route = Route {
    name: "PutProject",
    binary: "put-project",
    method: Method::PUT,
    path: "/projects/{id}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["PROJECT#"],
    handler: |app, req| Box::pin(gifts::put_project_handler(app, req)),
};

pub static DEPOSIT_WALLET: Route = Route {
    name: "DepositWallet",
    binary: "deposit-wallet",
    method: Method::POST,
    path: "/projects/{id}/wallets/deposit",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["PROJECT#", "IDEM#"],
    handler: |app, req| Box::pin(gifts::deposit_handler(app, req)),
};

pub static GET_PROJECT_WALLETS: Route = Route {
    name: "GetProjectWallets",
    binary: "get-project-wallets",
    method: Method::GET,
    path: "/projects/{id}/wallets",
    access: Access::SignedIn,
    keys: &["PROJECT#"],
    handler: |app, req| Box::pin(gifts::project_wallets_handler(app, req)),
};

pub static GET_MY_WALLETS: Route = Route {
    name: "GetMyWallets",
    binary: "get-my-wallets",
    method: Method::GET,
    path: "/me/wallets",
    access: Access::SignedIn,
    keys: &["PROJECT#"],
    handler: |app, req| Box::pin(gifts::my_wallets_handler(app, req)),
};

pub static POST_GIFT: Route = Route {
    name: "PostGift",
    binary: "post-gift",
    method: Method::POST,
    path: "/gifts",
    access: Access::SignedIn,
    keys: &["PROJECT#", "SEQ#", "GIFT#", "GIFTREQ#", "IDEM#"],
    handler: |app, req| Box::pin(gifts::post_gift_handler(app, req)),
};

pub static DELETE_GIFT: Route = Route {
    name: "DeleteGift",
    binary: "delete-gift",
    method: Method::DELETE,
    path: "/gifts/{id}",
    access: Access::SignedIn,
    keys: &["GIFT#", "PROJECT#"],
    handler: |app, req| Box::pin(gifts::delete_gift_handler(app, req)),
};

pub static BROWSE_GIFTS: Route = Route {
    name: "BrowseGifts",
    binary: "browse-gifts",
    method: Method::GET,
    path: "/gifts",
    access: Access::SignedIn,
    keys: &["PROJECT#"],
    handler: |app, req| Box::pin(gifts::browse_gifts_handler(app, req)),
};

pub static AVAILABLE_GIFTS: Route = Route {
    name: "AvailableGifts",
    binary: "available-gifts",
    method: Method::GET,
    path: "/gifts/available",
    access: Access::SignedIn,
    keys: &["GIFTCRIT#", "CLAIMS#", "GIFT#"],
    handler: |app, req| Box::pin(gifts::available_gifts_handler(app, req)),
};

pub static CLAIM_GIFT: Route = Route {
    name: "ClaimGift",
    binary: "claim-gift",
    method: Method::POST,
    path: "/gifts/claim",
    access: Access::SignedIn,
    keys: &["GIFT#", "PROJECT#", "IDEM#"],
    handler: |app, req| Box::pin(gifts::claim_gift_handler(app, req)),
};

pub static PUT_FERRY_PRODUCT: Route = Route {
    name: "PutFerryProduct",
    binary: "put-ferry-product",
    method: Method::PUT,
    path: "/ferry/products/{slug}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["FERRY#"],
    handler: |app, req| Box::pin(ferry::put_product_handler(app, req)),
};

pub static PUT_FERRY_CUSTOMER: Route = Route {
    name: "PutFerryCustomer",
    binary: "put-ferry-customer",
    method: Method::PUT,
    path: "/ferry/customers/{customer}",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["FERRY#"],
    handler: |app, req| Box::pin(ferry::put_customer_handler(app, req)),
};

pub static POST_FERRY_SUBSCRIPTIONS: Route = Route {
    name: "PostFerrySubscriptions",
    binary: "post-ferry-subscriptions",
    method: Method::POST,
    path: "/ferry/customers/{customer}/subscriptions",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["FERRY#", "IDEM#"],
    handler: |app, req| Box::pin(ferry::post_subscriptions_handler(app, req)),
};

pub static LIST_FERRY_SUBSCRIPTIONS: Route = Route {
    name: "ListFerrySubscriptions",
    binary: "list-ferry-subscriptions",
    method: Method::GET,
    path: "/ferry/customers/{customer}/subscriptions",
    access: Access::Scopes(&[SCOPE_ADMIN]),
    keys: &["FERRYCUST#", "FERRY#"],
    handler: |app, req| Box::pin(ferry::list_subscriptions_handler(app, req)),
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
    access: Access::Public,
    keys: &[],
    handler: |_app, req| Box::pin(async move { Err(unmatched(req.method(), req.uri().path())) }),
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

//! Auth on every endpoint: no token, bad signature, expired → 401; no `admin`
//! scope → 403. And nothing is written by a refused request.

use allotment_dev::token;
use allotment_tests::TestApi;
use serde_json::json;

use crate::packs::namespace;

#[tokio::test]
async fn every_endpoint_refuses_callers_without_a_valid_admin_token() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    namespace(&api, 2, None, 7).await;
    let endpoints = [
        ("PUT", "/namespaces/3", Some(json!({"name": "c", "owner_id": 7}))),
        ("POST", "/namespaces/1/minutes", Some(json!({"packs": [{"number_of_minutes": 1, "expires_at": "2031-01-01"}]}))),
        ("GET", "/namespaces/1/minutes", None),
        ("PATCH", "/namespaces/1/minutes/move/2", None),
    ];
    let bad_signature = token::mint(b"another-secret", "billing", "admin", 3600, json!({}));
    let expired = token::mint(allotment_tests::SECRET, "billing", "admin", -3600, json!({}));
    let no_sub = token::mint(allotment_tests::SECRET, "", "admin", 3600, json!({}));
    let not_admin = api.token("someone", "payments read");
    for (method, path, body) in endpoints {
        let r = api.call(method, path, None, body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} without token: {r:?}");
        let r = api.call(method, path, Some("not.a.jwt"), body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} garbage token");
        let r = api.call(method, path, Some(&bad_signature), body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} bad signature");
        let r = api.call(method, path, Some(&expired), body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} expired");
        let r = api.call(method, path, Some(&no_sub), body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} without sub");
        let r = api.call(method, path, Some(&not_admin), body.clone()).await;
        assert_eq!(r.status, 403, "{method} {path} without admin scope: {r:?}");
        assert_eq!(r.body["error"]["code"], 403);
    }
    assert_eq!(api.count_prefix("PACK#").await, 0);
    assert_eq!(api.count_prefix("NS#").await, 2);
}

#[tokio::test]
async fn cognito_prefixed_scopes_count_when_the_stack_says_so() {
    // SCOPE_PREFIX=allotment/ (the template's default): a Cognito
    // client-credentials token's `allotment/admin` is scope admin.
    let api = TestApi::with_scope_prefix("allotment/").await;
    let cognito = api.token("client-id-123", "allotment/admin allotment/payments");
    let r = api.call("PUT", "/namespaces/1", Some(&cognito), Some(json!({"name": "acme", "owner_id": 7}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let bare = api.token("someone", "admin");
    assert_eq!(api.call("GET", "/namespaces/1/minutes", Some(&bare), None).await.status, 200, "bare scopes still count");
    let other = api.token("someone", "other/admin");
    assert_eq!(api.call("GET", "/namespaces/1/minutes", Some(&other), None).await.status, 403, "another resource server's admin is not ours");

    // Without a prefix (an issuer with bare scopes), a prefixed scope is just another scope.
    let plain = TestApi::start().await;
    let r = plain.call("PUT", "/namespaces/1", Some(&plain.token("client-id-123", "allotment/admin")), Some(json!({"name": "acme", "owner_id": 7}))).await;
    assert_eq!(r.status, 403, "{r:?}");
}

/// Every scoped route refuses an under-scoped caller before anything is
/// written — in the Lambda itself (`dispatch`, as when API Gateway's check
/// were missing), not only at the front: no item, not even the
/// Idempotency-Key record. And `scp` counts as `scope` does.
#[tokio::test]
async fn dispatch_refuses_an_underscoped_call_before_writing_anything() {
    use allotment::routes::{dispatch, Access};
    use allotment::routes::ROUTES;
    let api = TestApi::start().await;
    for route in ROUTES.iter().filter(|r| matches!(r.access, Access::Scopes(_))) {
        let event = json!({
            "version": "2.0", "routeKey": format!("{} {}", route.method, route.path), "rawPath": "/x", "rawQueryString": "",
            "headers": {"content-type": "application/json", "idempotency-key": "k-1"},
            "requestContext": {
                "accountId": "0", "apiId": "a", "domainName": "d", "domainPrefix": "d", "requestId": "r", "routeKey": "k",
                "stage": "$default", "time": "", "timeEpoch": 0,
                "http": {"method": route.method.as_str(), "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                "authorizer": {"jwt": {"claims": {"sub": "someone", "scp": "openid"}, "scopes": null}}
            },
            "body": "{}", "isBase64Encoded": false
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = dispatch(route, api.app.clone(), request).await;
        assert_eq!(response.status().as_u16(), 403, "{} {}", route.method, route.path);
    }
    assert_eq!(api.all_items().await.len(), 0, "nothing written, no Idempotency-Key record");
    // `scp` is read like `scope`: the same caller with scp admin passes.
    let event = json!({
        "version": "2.0", "routeKey": "GET /namespaces/{id}/minutes", "rawPath": "/namespaces/9/minutes", "rawQueryString": "",
        "headers": {}, "pathParameters": {"id": "9"},
        "requestContext": {
            "accountId": "0", "apiId": "a", "domainName": "d", "domainPrefix": "d", "requestId": "r", "routeKey": "k",
            "stage": "$default", "time": "", "timeEpoch": 0,
            "http": {"method": "GET", "path": "/namespaces/9/minutes", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "authorizer": {"jwt": {"claims": {"sub": "someone", "scp": "admin"}, "scopes": null}}
        },
        "isBase64Encoded": false
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = dispatch(&allotment::routes::GET_MINUTES, api.app.clone(), request).await;
    assert_eq!(response.status().as_u16(), 404, "past the scope check: the namespace is unknown");
}

/// The reference page's dev token is handed only to a page of this machine:
/// a request naming another host (a DNS-rebinding page) is refused.
#[tokio::test]
async fn the_docs_dev_token_is_only_for_a_page_of_this_machine() {
    let api = allotment_tests::TestApi::start().await;
    let page = api.raw("GET", "/docs/", &[], Vec::new()).await;
    assert_eq!(page.status, 200);
    let mine = api.raw("GET", "/docs/dev-token", &[], Vec::new()).await;
    assert_eq!(mine.status, 200);
    let token = String::from_utf8_lossy(&mine.bytes).into_owned();
    assert_eq!(api.call("GET", "/namespaces/1/minutes", Some(&token), None).await.status, 404, "a working admin token");
    let foreign = api.raw("GET", "/docs/dev-token", &[("host".to_owned(), "attacker.example:3000".to_owned())], Vec::new()).await;
    assert_eq!(foreign.status, 403, "{:?}", String::from_utf8_lossy(&foreign.bytes));
}

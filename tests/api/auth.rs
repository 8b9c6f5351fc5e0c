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

/// The API as the stack-made user pool configures it: end users' ID tokens
/// of the end-user client, the organisation in `custom:org`.
async fn stack_shaped() -> TestApi {
    TestApi::with_app(allotment_tests::quick_retry(), Default::default(), |app| {
        app.org_claim = token::LOCAL_ORG_CLAIM.into();
        app.tokens = std::sync::Arc::new(allotment::auth::TokenPolicy {
            end_user_token_use: Some("id".into()),
            end_user_client: Some(token::LOCAL_END_USER_CLIENT.into()),
        });
    })
    .await
}

/// Issue 30: the default stack's end users. An ID token of the end-user
/// client is what a signed-in route takes; an access token without the admin
/// scope, another client's ID token, or an ID token on a provisioning route
/// is 401; the organisation counts from `custom:org` (which no app client may
/// write), never from a claim a user could set.
#[tokio::test]
async fn end_users_call_with_the_end_user_clients_id_token_and_org_comes_from_custom_org() {
    let api = stack_shaped().await;
    let secret = allotment_tests::SECRET;
    let provisioner = token::provisioner(secret, "provisioner-client", "admin", 3600);
    let r = api.call("PUT", "/projects/lab", Some(&provisioner), Some(json!({"title": "Lab", "members": [{"username": "alice", "role": "PI"}]}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = api.call("POST", "/projects/lab/wallets/deposit", Some(&provisioner), Some(json!({"category": "cpu", "provider": "ucloud", "amount": 100}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let alice = token::end_user(secret, "alice", Some("alice@example.org"), None, 3600);
    let gift = json!({"resourcesOwnedBy": "lab", "title": "Welcome", "description": "d", "renewEvery": 0,
                      "resources": [{"category": "cpu", "provider": "ucloud", "balanceRequested": 10}],
                      "criteria": [{"type": "wayf", "org": "example-university"}]});
    let r = api.call("POST", "/gifts", Some(&alice), Some(gift)).await;
    assert_eq!(r.status, 200, "an end user's ID token creates a gift: {r:?}");

    // The organisation from custom:org; a self-set `org` claim counts for nothing.
    let member = token::end_user(secret, "bob", Some("bob@example.org"), Some("example-university"), 3600);
    let r = api.call("GET", "/gifts/available", Some(&member), None).await;
    assert_eq!((r.status, r.body["gifts"].as_array().map(Vec::len)), (200, Some(1)), "{r:?}");
    let self_set = token::mint(secret, "eve", "openid", 3600, json!({"token_use": "id", "aud": token::LOCAL_END_USER_CLIENT, "org": "example-university"}));
    let r = api.call("GET", "/gifts/available", Some(&self_set), None).await;
    assert_eq!((r.status, r.body["gifts"].as_array().map(Vec::len)), (200, Some(0)), "{r:?}");

    // Tokens of the wrong kind.
    let wrong_client = token::mint(secret, "alice", "openid", 3600, json!({"token_use": "id", "aud": "some-other-client"}));
    let access_no_admin = token::provisioner(secret, "clerk-client", "payments", 3600);
    let id_with_scope = token::mint(secret, "alice", "admin", 3600, json!({"token_use": "id", "aud": token::LOCAL_END_USER_CLIENT}));
    for (what, t) in [("another client's ID token", &wrong_client), ("an access token without admin", &access_no_admin)] {
        let r = api.call("GET", "/gifts/available", Some(t), None).await;
        assert_eq!(r.status, 401, "{what} on a signed-in route: {r:?}");
        assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{r:?}");
    }
    let r = api.call("PUT", "/namespaces/9", Some(&id_with_scope), Some(json!({"name": "n", "owner_id": 1}))).await;
    assert_eq!(r.status, 401, "an ID token on a provisioning route: {r:?}");
    assert_eq!(api.count_prefix("NS#").await, 0, "nothing written");
    // The provisioner's access token (admin) still reads a project's wallets.
    let r = api.call("GET", "/projects/lab/wallets", Some(&provisioner), None).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// `$default` is behind the authorizer: no valid token, 401; with one, 404.
#[tokio::test]
async fn an_unknown_path_needs_a_token_like_every_route() {
    let api = TestApi::start().await;
    let r = api.call("GET", "/no/such/path", None, None).await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = api.call("GET", "/no/such/path", Some(&api.admin()), None).await;
    assert_eq!(r.status, 404, "{r:?}");
}

/// Issue 30: the page-token key comes from the stack's generated secret,
/// read with GetSecretValue of PAGE_TOKEN_SECRET_ARN (here a stand-in
/// Secrets Manager that answers as the service does); a secret too short to
/// be a key is refused rather than used.
#[tokio::test]
async fn the_page_token_key_is_read_from_the_stacks_secret() {
    use http_body_util::{BodyExt, Full};
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>> = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                        let body: serde_json::Value = serde_json::from_slice(&req.into_body().collect().await.unwrap().to_bytes()).unwrap_or_default();
                        let id = body["SecretId"].as_str().unwrap_or("").to_owned();
                        log.lock().unwrap().push((target, body));
                        let secret = if id.ends_with("short") { "too-short" } else { "k3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3y" };
                        let answer = json!({"ARN": id, "Name": "stack-page-token-key", "SecretString": secret, "VersionId": "v1"});
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder().header("content-type", "application/x-amz-json-1.1").body(Full::new(bytes::Bytes::from(answer.to_string()))).unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
            });
        }
    });
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("k", "s", None, None, "test"))
        .endpoint_url(&endpoint)
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:allotment-dev-page-token-key-AbCdEf";
    let key = allotment::page_key_from_secret(&client, arn).await.unwrap();
    assert_eq!(key, b"k3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3y".to_vec());
    let (target, body) = seen.lock().unwrap()[0].clone();
    assert_eq!((target.as_str(), body["SecretId"].as_str()), ("secretsmanager.GetSecretValue", Some(arn)));
    assert!(allotment::page_key_from_secret(&client, "arn:…:short").await.is_err(), "a short secret is no key");
}

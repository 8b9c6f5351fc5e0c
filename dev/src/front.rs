//! The local HTTP front: does what API Gateway's HTTP API does in AWS, in the
//! same order — match the route (404/405), check the JWT (401), build the
//! HTTP API v2 event (claims and scopes in `requestContext.authorizer.jwt`) —
//! and hands the event to the same handler the Lambda binary runs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use allotment::error::ApiError;
use allotment::http::{error_response, MAX_BODY_BYTES};
use allotment::routes::{dispatch, match_route, unmatched, Match, ROUTES};
use allotment::App;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use crate::token;

pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

pub struct Front {
    pub app: App,
    pub secret: Vec<u8>,
}

type HttpResponse = hyper::Response<Full<Bytes>>;

/// Serves `front` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, front: Arc<Front>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let front = front.clone();
                async move { Ok::<_, Infallible>(front.handle(req, peer).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
}

impl Front {
    pub async fn handle(&self, req: hyper::Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        if parts.method == hyper::Method::GET && path == "/openapi.json" {
            let mut resp = hyper::Response::new(Full::new(Bytes::from_static(OPENAPI_JSON.as_bytes())));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return resp;
        }
        if parts.method == hyper::Method::GET && (path == "/docs" || path.starts_with("/docs/")) {
            // Only a page of this front's own origin gets a dev token: a
            // foreign Host (DNS rebinding) gets the page without one.
            let host = parts.headers.get(hyper::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            let local = host.split(':').next().is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]");
            if path == "/docs/dev-token" && !local {
                return front_error(&ApiError::Forbidden("The dev token is for a page of this machine".into()), &parts.method, &path, started);
            }
            return self.docs(&path);
        }
        let matched = match_route(ROUTES, &parts.method, &path);
        let bearer_ok = || {
            parts
                .headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .is_some_and(|t| token::verify(&self.secret, t.trim()).is_ok())
        };
        let (route, params) = match matched {
            Match::Found(route, params) => (route, params),
            // `$default` is behind the authorizer, as in the stack: no valid token, 401.
            Match::WrongMethod(_) | Match::NotFound if !bearer_ok() => return front_error(&ApiError::Unauthorized, &parts.method, &path, started),
            Match::WrongMethod(_) | Match::NotFound => return front_error(&unmatched(&parts.method, &path), &parts.method, &path, started),
        };
        let too_large = || ApiError::PayloadTooLarge(format!("Request body is over {MAX_BODY_BYTES} bytes"));
        let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return front_error(&too_large(), &parts.method, &path, started);
        }
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return front_error(&too_large(), &parts.method, &path, started),
        };
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let claims = match bearer.map(|t| token::verify(&self.secret, t.trim())) {
            Some(Ok(claims)) => claims,
            _ => return front_error(&ApiError::Unauthorized, &parts.method, &path, started),
        };
        // As API Gateway does with the route's AuthorizationScopes (the same
        // table): a scope of the route, bare or with the stack's prefix.
        if let allotment::routes::Access::Scopes(wanted) = route.access {
            let held: Vec<String> = claims
                .get("scope")
                .or_else(|| claims.get("scp"))
                .map(|s| claim_string(s).split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            let prefix = &*self.app.scope_prefix;
            let allowed = wanted.iter().any(|w| held.iter().any(|h| h == w || (h.strip_prefix(prefix) == Some(*w) && !prefix.is_empty())));
            if !allowed {
                let refused = ApiError::Forbidden(format!("This needs scope {}", wanted.join(" or ")));
                return front_error(&refused, &parts.method, &path, started);
            }
        }
        let event = http_api_event(&parts, route.method.as_str(), route.path, &params, &claims, &body, peer);
        let request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => return front_error(&ApiError::Internal(format!("event: {e}")), &parts.method, &path, started),
        };
        // As in AWS, where API Gateway's invocation runs to its end whether or
        // not the client is still there: a caller that hangs up (a killed
        // import) must not cancel a handler halfway, holding its
        // Idempotency-Key "in progress" until the lock expires.
        let app = self.app.clone();
        let response = match tokio::spawn(async move { dispatch(route, app, request).await }).await {
            Ok(r) => r,
            Err(e) => return front_error(&ApiError::Internal(format!("handler task: {e}")), &parts.method, &path, started),
        };
        let (rparts, rbody) = response.into_parts();
        let bytes = match rbody {
            lambda_http::Body::Empty => Bytes::new(),
            lambda_http::Body::Text(t) => Bytes::from(t),
            lambda_http::Body::Binary(b) => Bytes::from(b),
            _ => Bytes::new(),
        };
        hyper::Response::from_parts(rparts, Full::new(bytes))
    }
}

/// The API reference page (docs/api/index.html) and what it loads: Swagger
/// UI's files from npm's `swagger-ui-dist` (installed by `make run`/`make
/// test`), the served document, and a dev token so "Try it out" works at once.
pub const DOCS_PAGE: &str = include_str!("../../docs/api/index.html");
const DOCS_ASSETS: [(&str, &str); 4] = [
    ("swagger-ui.css", "text/css"),
    ("swagger-ui-bundle.js", "text/javascript"),
    ("swagger-ui-standalone-preset.js", "text/javascript"),
    ("favicon-32x32.png", "image/png"),
];

impl Front {
    fn docs(&self, path: &str) -> HttpResponse {
        let answer = |status: u16, kind: &'static str, bytes: Bytes| {
            let mut resp = hyper::Response::new(Full::new(bytes));
            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
            resp
        };
        match path {
            // Relative links need the trailing slash.
            "/docs" => {
                let mut resp = answer(308, "text/plain", Bytes::new());
                resp.headers_mut().insert(hyper::header::LOCATION, HeaderValue::from_static("/docs/"));
                resp
            }
            "/docs/" | "/docs/index.html" => answer(200, "text/html; charset=utf-8", Bytes::from_static(DOCS_PAGE.as_bytes())),
            "/docs/openapi.json" => answer(200, "application/json", Bytes::from_static(OPENAPI_JSON.as_bytes())),
            "/docs/dev-token" => {
                let claims = json!({"email": "docs@example.org", "email_verified": "true", "token_use": "access", "client_id": "docs"});
                answer(200, "text/plain", Bytes::from(token::mint(&self.secret, "docs", "admin payments payments:process", 8 * 3600, claims)))
            }
            other => {
                let name = other.trim_start_matches("/docs/");
                let dir = std::env::var_os("SWAGGER_UI_DIR")
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/swagger-ui-dist"));
                match DOCS_ASSETS.iter().find(|(file, _)| *file == name) {
                    Some((file, kind)) => match std::fs::read(dir.join(file)) {
                        Ok(bytes) => answer(200, kind, Bytes::from(bytes)),
                        Err(e) => answer(500, "text/plain", Bytes::from(format!("{}: {e} (npm ci installs swagger-ui-dist)", dir.join(file).display()))),
                    },
                    None => answer(404, "text/plain", Bytes::from_static(b"not found")),
                }
            }
        }
    }
}

/// An answer the front gives itself, as API Gateway does before any function
/// runs (404, 405, 401, 403, 413): with its own request id, as the gateway's.
fn front_error(err: &ApiError, method: &hyper::Method, path: &str, started: Instant) -> HttpResponse {
    let mut response = error_response(err);
    let request_id = uuid::Uuid::new_v4().to_string();
    allotment::http::stamp_request_id(&mut response, &request_id);
    let (parts, body) = response.into_parts();
    tracing::info!(
        route = "-",
        method = %method,
        path,
        status = parts.status.as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    let bytes = match body {
        lambda_http::Body::Binary(b) => Bytes::from(b),
        lambda_http::Body::Text(t) => Bytes::from(t),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

/// API Gateway passes every claim as a string.
fn claim_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The HTTP API (payload 2.0) event API Gateway would send for this request.
pub fn http_api_event(
    parts: &hyper::http::request::Parts,
    method: &str,
    route_path: &str,
    params: &[(String, String)],
    claims: &Map<String, Value>,
    body: &[u8],
    peer: SocketAddr,
) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                if let Value::String(s) = v {
                    s.push(',');
                    s.push_str(&value);
                }
            })
            .or_insert(Value::String(value));
    }
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push(',');
                    s.push_str(&v);
                }
            })
            .or_insert(Value::String(v.clone().into_owned()));
    }
    let path_params: Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())))
        .collect();
    let jwt_claims: Map<String, Value> = claims.iter().map(|(k, v)| (k.clone(), Value::String(claim_string(v)))).collect();
    let scopes: Option<Vec<String>> = claims
        .get("scope")
        .or_else(|| claims.get("scp"))
        .map(|s| claim_string(s).split_whitespace().map(str::to_owned).collect());
    let route_key = format!("{method} {route_path}");
    let (body_field, is_b64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "pathParameters": path_params,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": {"jwt": {"claims": jwt_claims, "scopes": scopes}},
            "domainName": parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or_default(),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": now.as_millis() as i64,
        },
        "isBase64Encoded": is_b64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body_field);
    }
    event
}

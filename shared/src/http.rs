//! Request parsing and response building shared by every handler, and the one
//! wrapper ([`dispatch`]) that turns a handler's `Result` into an HTTP response
//! and logs one structured line per request.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::idempotency;
use crate::App;

/// Lambda's synchronous payload limit; API Gateway would never deliver more.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

pub type HandlerResult = Result<Response<Body>, ApiError>;
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;
pub type HandlerFn = fn(App, Request) -> HandlerFuture;

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
    /// Why `caller` may not call a route with this access, if it may not.
    pub fn refuses(&self, caller: Option<&crate::auth::Caller>) -> Option<ApiError> {
        match (self, caller) {
            (Access::Public, _) => None,
            (_, None) => Some(ApiError::Unauthorized),
            (Access::Scopes(scopes), Some(c)) => c.require_any(scopes).err(),
            (Access::SignedIn, Some(_)) => None,
        }
    }
}

/// Runs `route`'s handler on `req` and never fails: every error becomes the
/// spec's JSON error. POST and PATCH go through the Idempotency-Key layer.
/// Logs one line per request: route, status, latency and caller `sub`.
pub async fn dispatch(route: &Route, app: App, mut req: Request) -> Response<Body> {
    let started = Instant::now();
    crate::auth::normalize_claims(&mut req, &app.scope_prefix, &app.org_claim);
    let caller = crate::auth::caller(&req).ok();
    let sub = caller.as_ref().map(|c| c.sub.clone()).unwrap_or_default();
    let route_key = format!("{} {}", req.method(), route.path);
    // API Gateway hands `DELETE /gifts/available` to `DELETE /gifts/{id}`;
    // the path is the GET resource `/gifts/available`, so that is a 405. Only
    // a route with a `{param}` can be handed a path a literal route owns.
    let shadowed = if !route.path.contains('{') {
        None
    } else if let crate::routes::Match::WrongMethod(allow) =
        crate::routes::match_route(crate::routes::ROUTES, req.method(), req.uri().path())
    {
        Some(ApiError::MethodNotAllowed {
            allow: allow.join(", "),
        })
    } else {
        None
    };
    // Who may call it is settled before anything is written: an
    // under-scoped call leaves no trace, not even an Idempotency-Key record.
    let refused = shadowed.or_else(|| route.access.refuses(caller.as_ref()));
    let response = match refused {
        Some(err) => error_response(&err),
        None => run_idempotent(route, app, req, caller).await.unwrap_or_else(|err| to_response(route, &err)),
    };
    tracing::info!(
        route = %route_key,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        sub = %sub,
        "request"
    );
    response
}

fn to_response(route: &Route, err: &ApiError) -> Response<Body> {
    if let ApiError::Internal(cause) = err {
        tracing::error!(route = route.name, cause = %cause, "internal error");
    }
    error_response(err)
}

async fn run_idempotent(
    route: &Route,
    app: App,
    mut req: Request,
    caller: Option<crate::auth::Caller>,
) -> HandlerResult {
    let writes = matches!(*req.method(), Method::POST | Method::PATCH);
    // An unauthenticated request goes straight to its handler (and its 401).
    let caller = match caller {
        Some(caller) if writes => caller,
        _ => return (route.handler)(app, req).await,
    };
    let Some(key) = idempotency::key_of(&req)? else {
        return (route.handler)(app, req).await;
    };
    let fingerprint = idempotency::fingerprint(&req);
    req.extensions_mut().insert(idempotency::RequestIds::keyed(&caller.sub, route.name, &key, &fingerprint));
    let ticket = match idempotency::begin(
        &app.db,
        app.idempotency,
        &caller.sub,
        route.name,
        &key,
        &fingerprint,
    )
    .await?
    {
        idempotency::Claim::Replay(response) => return Ok(response),
        idempotency::Claim::Proceed(ticket) => ticket,
    };
    let db = app.db.clone();
    let response = (route.handler)(app, req)
        .await
        .unwrap_or_else(|err| to_response(route, &err));
    if let Err(e) = idempotency::finish(&db, ticket, &response).await {
        // The answer stands; the key is released when its lock expires.
        tracing::error!(error = %e, "could not settle the idempotency record");
    }
    Ok(response)
}

pub fn json_response<T: Serialize + ?Sized>(status: u16, body: &T) -> HandlerResult {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::Internal(format!("serialize response: {e}")))?;
    Ok(raw_json_response(status, bytes))
}

/// A JSON answer. The body goes to Lambda as text: as `Binary` it would be
/// base64-encoded, a third larger against Lambda's 6 MB response limit.
pub fn raw_json_response(status: u16, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(text_body(bytes));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    // The error body only holds strings and numbers: it always serializes.
    let bytes =
        serde_json::to_vec(&err.body()).unwrap_or_else(|_| b"{\"error\":{\"code\":500}}".to_vec());
    let mut resp = raw_json_response(err.status(), bytes);
    match err {
        ApiError::Unavailable { retry_after_secs } => {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        ApiError::MethodNotAllowed { allow } => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
        _ => {}
    }
    resp
}

/// Parses the JSON body into `T`, after checking content type and size.
/// Syntax errors name line and column; schema errors name the field's path.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let body = json_bytes(req)?;
    require_object(body)?;
    parse_json(body)
}

/// The raw body of a JSON request: 415 unless the content type is JSON, 413
/// over the Lambda payload limit.
pub fn json_bytes(req: &Request) -> Result<&[u8], ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5
                    && mime[..mime.len() - 5].contains('/')
                    && mime.to_ascii_lowercase().ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "Request body is over {MAX_BODY_BYTES} bytes"
        )));
    }
    Ok(body)
}

/// A body that must be one JSON object: an array, string or number is 400
/// with that said plainly (serde would read an array as a tuple-struct).
fn require_object(body: &[u8]) -> Result<(), ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | None) {
        return Ok(());
    }
    // Checked whole without building it (an array of millions of numbers
    // would take ~16× its size as a `Value`), then named by its first byte.
    let _: serde::de::IgnoredAny = parse_json(body)?;
    let kind = match first {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    Err(ApiError::field("body", format!("must be a JSON object, got {kind}")))
}

/// A body that must be a JSON array of 1 to `max` entries, each kept as its
/// raw text. At most `max` + 1 entries are ever read — a longer array is 413
/// as soon as the extra one is seen, whatever the body's size — and no entry
/// is re-serialised, so each reaches validation exactly as sent
/// (`0.1000000000000000001` stays what it is).
pub fn bounded_array<'a>(body: &'a [u8], max: usize) -> Result<Vec<&'a serde_json::value::RawValue>, ApiError> {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    const TOO_MANY: &str = "\u{0}too many entries";
    struct Bounded(usize);
    impl<'de> Visitor<'de> for Bounded {
        type Value = Vec<&'de serde_json::value::RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = seq.next_element::<&'de serde_json::value::RawValue>()? {
                if out.len() == self.0 {
                    return Err(serde::de::Error::custom(TOO_MANY));
                }
                out.push(entry);
            }
            Ok(out)
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Request body is empty; a JSON document is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let entries = de.deserialize_seq(Bounded(max)).and_then(|v| de.end().map(|()| v)).map_err(|err| {
        if err.to_string().starts_with(TOO_MANY) {
            ApiError::PayloadTooLarge(format!("body has more than {max} items; at most {max} are accepted in one request"))
        } else if err.is_syntax() || err.is_eof() {
            malformed(&err)
        } else {
            ApiError::field("body", "must be a JSON array of objects")
        }
    })?;
    crate::validate::BulkLimit::new("body", max).check(entries.len())?;
    Ok(entries)
}

/// [`json_body`] without the header checks: for bodies already known to be JSON.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "Request body is empty; a JSON document is required",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            malformed(&inner)
        } else {
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::invalid(vec![FieldError::new(field, inner.to_string())])
        }
    })?;
    // Characters after the document make it malformed too.
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> ApiError {
    // serde_json's message ends with "at line L column C".
    ApiError::bad_request(format!("Malformed JSON: {err}"))
}

/// A path parameter that API Gateway matched (always present for its route).
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::field(name, "is required in the path"))
}

/// A path parameter that must be a positive integer (at most 2^53 − 1).
pub fn path_id(req: &Request, name: &str) -> Result<u64, ApiError> {
    let raw = path_param(req, name)?;
    parse_positive_id(&raw)
        .ok_or_else(|| ApiError::field(name, format!("must be a positive integer, got {raw:?}")))
}

pub fn parse_positive_id(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<u64>().ok().filter(|&n| n > 0 && n <= crate::validate::MAX_SAFE_INTEGER as u64)
}

/// A query-string parameter, if given.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// `bytes` as a text body when they are UTF-8 (JSON always is), else binary.
pub fn text_body(bytes: Vec<u8>) -> Body {
    match String::from_utf8(bytes) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    }
}

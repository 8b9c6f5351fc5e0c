//! Request parsing and response building: JSON bodies (checked, bounded,
//! parsed with the field's path in every error), path and query parameters,
//! and the spec's JSON answers. No handler, route or store is known here.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, FieldError};

/// Lambda's synchronous payload limit; API Gateway would never deliver more.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

pub type HandlerResult = Result<Response<Body>, ApiError>;

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

/// The answer header naming the request's correlation id (a replayed answer
/// names the replay's own request).
pub const REQUEST_ID_HEADER: &str = "allotment-request-id";

/// Names the request an answer is for: the `Allotment-Request-Id` header
/// and, in an error answer (`{"error": …}`), `error.request_id`, the id a
/// caller quotes to support. A replayed error names the replay's request.
pub fn stamp_request_id(resp: &mut Response<Body>, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if resp.status().as_u16() < 400 {
        return;
    }
    let text = match resp.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b.as_slice(),
        _ => return,
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(text) else { return };
    let Some(error) = value.get_mut("error").and_then(serde_json::Value::as_object_mut) else { return };
    error.insert("request_id".into(), request_id.into());
    if let Ok(bytes) = serde_json::to_vec(&value) {
        *resp.body_mut() = text_body(bytes);
    }
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
pub fn require_object(body: &[u8]) -> Result<(), ApiError> {
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
    crate::error::TooMany::check("body", entries.len(), max)?;
    Ok(entries)
}

/// Where each entry of a bulk body (see [`bounded_array`]) stands in it: its
/// byte range, so the entries can be handed on without parsing the body again.
pub fn entry_ranges(body: &[u8], max: usize) -> Result<Vec<std::ops::Range<usize>>, ApiError> {
    let start = body.as_ptr() as usize;
    Ok(bounded_array(body, max)?
        .into_iter()
        .map(|entry| {
            let at = entry.get().as_ptr() as usize - start;
            at..at + entry.get().len()
        })
        .collect())
}

/// A JSON document as `T`. Syntax errors name line and column; schema
/// errors name the field's path.
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

//! `Idempotency-Key` for every POST and PATCH (SPEC §2), written once and
//! applied in [`crate::routes::dispatch`], so no handler knows about it.
//!
//! One conditional put claims the key —
//! `attribute_not_exists(pk) OR ttl < now OR (in progress AND lock expired)` —
//! and on failure returns the record that won (`ALL_OLD`), so a repeat costs one
//! call. The fingerprint (method, path, query, canonical JSON body) is checked
//! before anything else, even on a stored result: a reused key with another
//! body is 422. The first request's status and body are stored (compressed)
//! for 24 h; a 5xx is not stored, so a retry runs again. A record whose owner
//! crashed stays "in progress" only until its lock expires.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};

use crate::db::{key, n, s, Db, DbError, Item};
use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const IN_PROGRESS: &str = "IN_PROGRESS";
pub const COMPLETED: &str = "COMPLETED";

#[derive(Debug, Clone, Copy)]
pub struct IdempotencyConfig {
    /// How long a result is replayed (the table's TTL attribute deletes it later).
    pub retention: Duration,
    /// How long a request may hold its key "in progress" before a retry may
    /// take over (longer than the Lambda timeout).
    pub lock: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            lock: Duration::from_secs(60),
        }
    }
}

/// The validated key of a request, if it sent one.
pub fn key_of(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))?;
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 characters",
        ));
    }
    // Visible ASCII, spaces only inside: exactly the document's pattern.
    let visible = |b: &u8| (b'!'..=b'~').contains(b);
    let bytes = key.as_bytes();
    if !bytes.iter().all(|b| visible(b) || *b == b' ')
        || !bytes.first().is_some_and(visible)
        || !bytes.last().is_some_and(visible)
    {
        return Err(ApiError::field(
            "Idempotency-Key",
            "must be visible ASCII, spaces only inside",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// What the request is, whitespace and key order aside: method, path, query
/// and the body as canonical JSON (the raw bytes if it is not JSON, so the
/// handler's own 400 is what gets stored).
pub fn fingerprint(req: &Request) -> String {
    fingerprint_of(
        req.method().as_str(),
        req.uri().path(),
        req.uri().query().unwrap_or_default(),
        req.body().as_ref(),
    )
}

pub fn fingerprint_of(method: &str, path: &str, query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method);
    hash.update(b"\n");
    hash.update(path);
    hash.update(b"\n");
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    params.sort_unstable();
    hash.update(params.join("&"));
    hash.update(b"\n");
    match canonical(body) {
        Some(text) => hash.update(text),
        None => hash.update(body),
    }
    hex::encode(hash.finalize())
}

/// The record's key: a hash, so no caller's id or key can collide with another's.
fn record_pk(sub: &str, route: &str, idem_key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [sub, route, idem_key] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    format!("IDEM#{}", hex::encode(hash.finalize()))
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Ids a handler gives what it creates. With an Idempotency-Key they are
/// derived from (caller, route, key, purpose, position), so every run of the
/// same logical request — a retry after a lost answer, a re-run after the
/// function was cut off and the key's lock expired, two overlapping sends —
/// names the same records, and the conditional write that creates each one
/// finds it instead of creating it twice. Without a key they are random: each
/// request is then a new one, as the caller asked.
#[derive(Debug, Clone, Default)]
pub struct RequestIds {
    seed: Option<[u8; 32]>,
}

impl RequestIds {
    /// `fingerprint` (the request itself: method, path, query, body) is part
    /// of the seed, so a key reused for another request — allowed once the
    /// first one's record is gone — never names the first one's records.
    pub fn keyed(sub: &str, route: &str, idem_key: &str, fingerprint: &str) -> Self {
        let mut hash = Sha256::new();
        for part in ["allotment-request-ids", sub, route, idem_key, fingerprint] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Self {
            seed: Some(hash.finalize().into()),
        }
    }

    /// Whether the ids are derived from an Idempotency-Key (records named by
    /// them may already exist from an earlier run of this request).
    pub fn is_keyed(&self) -> bool {
        self.seed.is_some()
    }

    /// The id of the `position`th record of kind `purpose`, as a UUID.
    pub fn id(&self, purpose: &str, position: usize) -> String {
        let Some(seed) = self.seed else {
            return uuid::Uuid::new_v4().to_string();
        };
        let mut hash = Sha256::new();
        hash.update(seed);
        hash.update((purpose.len() as u64).to_be_bytes());
        hash.update(purpose);
        hash.update((position as u64).to_be_bytes());
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

/// The largest compressed answer kept for replay (an item holds 400 KB).
pub const MAX_STORED_BODY_BYTES: usize = 350 * 1024;

/// Set on a response (an extension) whose request is not finished although
/// its status is below 500 — a bulk answer with 5xx entries: like a 5xx, it
/// is not kept as the key's answer, so a retry with the key runs again.
#[derive(Debug, Clone, Copy)]
pub struct Unfinished;

/// A claimed key, to be settled with [`finish`] once the handler answered.
pub struct Ticket {
    pk: String,
    lock_id: String,
    retention: Duration,
}

pub enum Claim {
    /// The key is ours: run the handler.
    Proceed(Ticket),
    /// The key was used before with this request: here is its answer.
    Replay(Response<Body>),
}

pub async fn begin(
    db: &Db,
    config: IdempotencyConfig,
    sub: &str,
    route: &str,
    idem_key: &str,
    fingerprint: &str,
) -> Result<Claim, ApiError> {
    let pk = record_pk(sub, route, idem_key);
    let lock_id = uuid::Uuid::new_v4().to_string();
    let now = now();
    let mut item = key(pk.clone(), "IDEM");
    item.insert("state".into(), s(IN_PROGRESS));
    item.insert("fingerprint".into(), s(fingerprint));
    item.insert("lock_id".into(), s(&lock_id));
    item.insert("locked_until_ms".into(), n((now + config.lock).as_millis()));
    item.insert("ttl".into(), n((now + config.retention).as_secs()));
    // A record whose lock expired is taken over only by the same request: a
    // different body under the key is 422 even then.
    let condition = "attribute_not_exists(pk) OR #ttl < :now_s OR (#state = :in_progress AND locked_until_ms < :now_ms AND fingerprint = :fp)";
    let values = [
        (":now_s", n(now.as_secs())),
        (":now_ms", n(now.as_millis())),
        (":in_progress", s(IN_PROGRESS)),
        (":fp", s(fingerprint)),
    ];
    let names = [("#ttl", "ttl"), ("#state", "state")];
    let old = match db.put_if(item, condition, &names, &values, "lock_id").await {
        Ok(None) => return Ok(Claim::Proceed(Ticket { pk, lock_id, retention: config.retention })),
        Ok(Some(old)) => old,
        Err(e) => {
            // The put may have been applied with its answer lost: release
            // what may be ours, so retries are not "still being processed"
            // for a minute for a request that never ran.
            let _ = db.delete_if(key(pk, "IDEM"), "lock_id = :lock", &[(":lock", s(&lock_id))]).await;
            return Err(e.into());
        }
    };
    // The payload check comes first, whatever state the record is in.
    if str_attr(&old, "fingerprint") != Some(fingerprint) {
        return Err(ApiError::Unprocessable(
            "This Idempotency-Key was already used with a different request body".into(),
        ));
    }
    if str_attr(&old, "state") != Some(COMPLETED) {
        return Err(ApiError::Conflict(
            "A request with this Idempotency-Key is still being processed".into(),
        ));
    }
    replay(&old).map(Claim::Replay)
}

fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn replay(record: &Item) -> Result<Response<Body>, ApiError> {
    let corrupt = |what: &str| ApiError::Internal(format!("idempotency record without {what}"));
    let status = match record.get("status") {
        Some(AttributeValue::N(v)) => v.parse::<u16>().map_err(|_| corrupt("status"))?,
        _ => return Err(corrupt("status")),
    };
    let compressed = match record.get("body") {
        Some(AttributeValue::B(b)) => b.as_ref().to_vec(),
        _ => return Err(corrupt("body")),
    };
    let body = inflate(&compressed).map_err(|_| corrupt("a readable body"))?;
    let mut resp = Response::new(crate::http::text_body(body));
    *resp.status_mut() = StatusCode::from_u16(status).map_err(|_| corrupt("a valid status"))?;
    if let Some(ct) = str_attr(record, "content_type").and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Some(ra) = str_attr(record, "retry_after")
        .filter(|v| !v.is_empty())
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, ra);
    }
    for line in str_attr(record, "own_headers").unwrap_or_default().lines() {
        if let Some((name, value)) = line.split_once(": ") {
            if let (Ok(name), Ok(value)) = (header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                resp.headers_mut().insert(name, value);
            }
        }
    }
    resp.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(resp)
}

/// Stores the answer for replay, or — for a 5xx (a transient refusal is a
/// 503 with Retry-After) — releases the key so a retry runs again. Only the
/// holder of the lock can do either.
pub async fn finish(db: &Db, ticket: Ticket, response: &Response<Body>) -> Result<(), DbError> {
    let status = response.status().as_u16();
    let values = [(":lock", s(&ticket.lock_id))];
    let release = status >= 500 || response.extensions().get::<Unfinished>().is_some();
    let compressed = if release { Vec::new() } else { deflate(response.body().as_ref()) };
    // An answer too large for one item (400 KB) cannot be kept for replay:
    // like a 5xx, the key is released and a retry runs again (and finds its
    // records by their derived ids).
    let too_large = compressed.len() > MAX_STORED_BODY_BYTES;
    if too_large {
        tracing::warn!(bytes = compressed.len(), "answer too large to keep for replay; key released");
    }
    if release || too_large {
        return db
            .delete_if(key(ticket.pk, "IDEM"), "lock_id = :lock", &values)
            .await;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    // Only the headers the first answer had are replayed: no empty Retry-After.
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let mut values = vec![
        (":lock", s(&ticket.lock_id)),
        (":completed", s(COMPLETED)),
        (":status", n(status)),
        (":body", AttributeValue::B(Blob::new(compressed))),
        (":ct", s(content_type)),
        (":ttl", n((now() + ticket.retention).as_secs())),
    ];
    let mut set =
        "SET #state = :completed, #status = :status, body = :body, content_type = :ct, #ttl = :ttl"
            .to_owned();
    if let Some(ra) = retry_after {
        values.push((":ra", s(ra)));
        set.push_str(", retry_after = :ra");
    }
    // The API's own headers (Allotment-Created) are part of the answer too.
    let own: Vec<String> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("allotment-"))
        .filter_map(|(name, v)| v.to_str().ok().map(|v| format!("{name}: {v}")))
        .collect();
    if !own.is_empty() {
        values.push((":own", s(own.join("\n"))));
        set.push_str(", own_headers = :own");
    }
    db.update_if(
        key(ticket.pk, "IDEM"),
        &set,
        "lock_id = :lock",
        &[("#state", "state"), ("#status", "status"), ("#ttl", "ttl")],
        &values,
    )
    .await
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn inflate(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// `body` as canonical JSON — exactly what `serde_json::Value::to_string`
/// gives for it (keys sorted, the last of duplicate keys kept, numbers and
/// strings as serde_json writes them) — built without a `Value` tree: an
/// array of millions of small values costs its text, not ~16× its size.
/// `None` if it is not one JSON document.
pub fn canonical(body: &[u8]) -> Option<Vec<u8>> {
    use serde::de::DeserializeSeed;
    let mut out = Vec::with_capacity(body.len());
    let mut de = serde_json::Deserializer::from_slice(body);
    Canon(&mut out).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(out)
}

struct Canon<'a>(&'a mut Vec<u8>);

impl Canon<'_> {
    fn put<T: serde::Serialize + ?Sized, E: serde::de::Error>(self, v: &T) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, v).map_err(E::custom)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Canon<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Canon<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.put(&v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.put(&v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.put(&v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.put(&serde_json::Number::from_f64(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.put(v)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Canon(&mut *self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut entries = std::collections::BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let mut value = Vec::new();
            map.next_value_seed(Canon(&mut value))?;
            entries.insert(key, value);
        }
        self.0.push(b'{');
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            serde_json::to_writer(&mut *self.0, key).map_err(serde::de::Error::custom)?;
            self.0.push(b':');
            self.0.extend_from_slice(value);
        }
        self.0.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_json_is_what_a_value_tree_would_print() {
        for body in [
            r#"{"b": 1, "a": [1, 2.50, -3, 1e3, 0.1000000000000000001, 18446744073709551615, -9223372036854775808]}"#,
            r#"{"a": 1, "a": 2, "z": {"y": null, "x": true, "w": "\u00e9\n\"q\""}}"#,
            r#"[{"k": []}, {}, "s", false, null, 12345678901234567890123]"#,
            "  3.0  ",
            r#""only a string""#,
        ] {
            let expected = serde_json::from_str::<serde_json::Value>(body).unwrap().to_string();
            assert_eq!(String::from_utf8(canonical(body.as_bytes()).unwrap()).unwrap(), expected, "{body}");
        }
        assert!(canonical(b"{\"a\": 1} x").is_none());
        assert!(canonical(b"not json").is_none());
    }
}

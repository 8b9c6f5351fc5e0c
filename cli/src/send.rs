//! Sending one chunk: the HTTP call with its Idempotency-Key, bounded retries
//! that honour `Retry-After`, and reading the answer back onto the chunk's
//! records.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use serde_json::Value;

use crate::records::{Chunk, Kind, Record};

pub type Http = Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

pub fn client() -> Result<Http, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

pub struct Api {
    pub http: Http,
    pub base: String,
    pub token: String,
    /// Attempts per request for network errors, 5xx, 429 and a key still in progress.
    pub attempts: u32,
    pub base_delay: Duration,
}

/// How long a key "still being processed" is waited for: past the API's 60 s lock.
const IN_PROGRESS_PATIENCE: Duration = Duration::from_secs(120);

pub struct Answer {
    pub status: u16,
    pub replayed: bool,
    pub body: Value,
    /// `Allotment-Created`: how many packs of the request were new.
    pub created: Option<usize>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Present,
    Failed { reason: String, error: Value },
}

impl Api {
    async fn once(&self, path: &str, key: &str, body: &[u8]) -> Result<(u16, Option<u64>, bool, Option<usize>, Bytes), String> {
        let req = hyper::Request::post(format!("{}{path}", self.base.trim_end_matches('/')))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .header("idempotency-key", key)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(60), self.http.request(req))
            .await
            .map_err(|_| "timed out after 60 s".to_owned())?
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let created = resp.headers().get("allotment-created").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, retry_after, replayed, created, bytes))
    }

    /// POSTs `body` with `key` until it is answered for good: network
    /// errors, 5xx, 429 and "still being processed" (409 of a key whose first
    /// request still runs) are retried with jittered backoff, honouring
    /// `Retry-After`; any other 4xx is final.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Result<Answer, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let mut attempt = 0;
        let started = std::time::Instant::now();
        loop {
            attempt += 1;
            let (wait_hint, why, in_progress) = match self.once(path, key, &bytes).await {
                Ok((status, retry_after, replayed, created, raw)) => {
                    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                    let in_progress = status == 409 && body["error"]["message"].as_str().is_some_and(|m| m.contains("still being processed"));
                    // A refusal of the caller, not of the records: stop, and
                    // record nothing as done, so the same command resumes
                    // with a good token.
                    if status == 401 || status == 403 {
                        let message = body["error"]["message"].as_str().unwrap_or("refused");
                        return Err(format!("HTTP {status} {message}: the token is refused (expired, or without the scope); nothing of this chunk is recorded as done"));
                    }
                    if status < 500 && status != 429 && !in_progress {
                        return Ok(Answer { status, replayed, body, created, retry_after });
                    }
                    (retry_after, format!("HTTP {status}"), in_progress)
                }
                Err(e) => (None, e, false),
            };
            // A key still in progress belongs to a request an earlier run left
            // in flight: it is answered, or its lock (60 s) expires, so wait
            // for up to two minutes whatever the attempt count.
            let waited_enough = if in_progress { started.elapsed() > IN_PROGRESS_PATIENCE } else { attempt >= self.attempts };
            if waited_enough {
                return Err(format!("gave up after {attempt} attempts: {why}"));
            }
            let backoff = self.base_delay.saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(10));
            let delay = match wait_hint {
                Some(secs) => Duration::from_secs(secs) + backoff.mul_f64(fastrand::f64() * 0.5),
                None => backoff.mul_f64(fastrand::f64()),
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// Whether a 200 bulk answer left entries for the same key to finish: a
/// payment entry whose error is a 5xx, a Ferry subscription not started for
/// lack of time.
fn unfinished(kind: Kind, body: &Value) -> bool {
    match kind {
        Kind::Payments => body.as_array().into_iter().flatten().any(|e| e["error"]["code"].as_u64().is_some_and(|c| c >= 500)),
        Kind::Ferry => body["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["message"].as_str().is_some_and(|m| m.contains("time budget was spent"))),
        Kind::Packs => false,
    }
}

fn error_reason(status: u16, body: &Value) -> String {
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    match body["error"]["details"].as_array().and_then(|d| d.first()) {
        Some(d) => format!("{status} {}", d["message"].as_str().unwrap_or(message)),
        None => format!("{status} {message}"),
    }
}

fn failed(status: u16, body: &Value) -> Outcome {
    Outcome::Failed { reason: error_reason(status, body), error: body.get("error").cloned().unwrap_or(Value::Null) }
}

/// Which records of a 4xx pack request were the cause, if the answer says:
/// `packs[i]…` fields, or the purchase_xid a 409 names.
fn culprits(records: &[Record], body: &Value) -> Vec<usize> {
    let mut out: Vec<usize> = body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["field"].as_str()?.strip_prefix("packs[")?.split(']').next()?.parse().ok())
        .collect();
    // A 409 names each xid quoted: `purchase_xid "a", "b" already provisioned …`.
    if let Some(message) = body["error"]["message"].as_str() {
        let named = |r: &Record| r.entry["purchase_xid"].as_str().is_some_and(|x| message.contains(&format!("{x:?}")));
        out.extend(records.iter().enumerate().filter(|(_, r)| named(r)).map(|(i, _)| i));
    }
    out.sort_unstable();
    out.dedup();
    out.retain(|i| *i < records.len());
    out
}

/// Sends a chunk and says what became of each record, in order. A pack
/// request refused because of some of its records is sent again without
/// them (with a key of its own), so one bad record does not sink its chunk.
pub async fn send_chunk(api: &Api, kind: Kind, chunk: &Chunk, file_key: &str) -> Result<Vec<Outcome>, String> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; chunk.records.len()];
    let mut remaining: Vec<usize> = (0..chunk.records.len()).collect();
    let mut round = 0;
    while !remaining.is_empty() {
        let part = Chunk { index: chunk.index, target: chunk.target.clone(), records: remaining.iter().map(|&i| chunk.records[i].clone()).collect() };
        let key = if round == 0 { format!("{file_key}-{}", chunk.index) } else { format!("{file_key}-{}-r{round}", chunk.index) };
        let (path, body) = crate::records::request(kind, &part);
        let mut answer = api.post(&path, &key, &body).await?;
        // A bulk answer with 5xx entries (busy, out of time) is not final:
        // the API did not keep it as the key's answer, so the same key sent
        // again finishes those entries and finds the rest done.
        let mut sends = 1;
        while answer.status == 200 && unfinished(kind, &answer.body) {
            if sends >= api.attempts {
                return Err(format!("entries still unfinished (5xx) after {sends} sends with key {key}"));
            }
            let backoff = api.base_delay.saturating_mul(1 << sends.min(6)).min(Duration::from_secs(10));
            let wait = match answer.retry_after {
                Some(secs) => Duration::from_secs(secs) + backoff.mul_f64(fastrand::f64() * 0.5),
                None => backoff.mul_f64(fastrand::f64()),
            };
            tokio::time::sleep(wait).await;
            answer = api.post(&path, &key, &body).await?;
            sends += 1;
        }
        let fresh = if answer.replayed { Outcome::Present } else { Outcome::Created };
        match (kind, answer.status) {
            (Kind::Packs, 200..=299) => {
                // The answer says how many packs were new, not which: the rest
                // were there already (a re-sync, a resumed run). A replay is
                // an earlier run's answer: all already present now.
                let mut new = if answer.replayed { 0 } else { answer.created.unwrap_or(remaining.len()) };
                for &i in &remaining {
                    outcomes[i] = Some(if new > 0 { Outcome::Created } else { Outcome::Present });
                    new = new.saturating_sub(1);
                }
                remaining.clear();
            }
            (Kind::Packs, 400 | 409) => {
                let bad = culprits(&part.records, &answer.body);
                if bad.is_empty() || round >= 3 {
                    for &i in &remaining {
                        outcomes[i] = Some(failed(answer.status, &answer.body));
                    }
                    remaining.clear();
                } else {
                    for &b in &bad {
                        outcomes[remaining[b]] = Some(failed(answer.status, &answer.body));
                    }
                    let bad: Vec<usize> = bad.iter().map(|&b| remaining[b]).collect();
                    remaining.retain(|i| !bad.contains(i));
                }
            }
            (Kind::Payments, 200) => {
                let entries = answer.body.as_array().cloned().unwrap_or_default();
                for (n, &i) in remaining.iter().enumerate() {
                    outcomes[i] = Some(match entries.get(n) {
                        Some(e) if e.get("error").is_some() => {
                            let code = e["error"]["code"].as_u64().unwrap_or(0) as u16;
                            Outcome::Failed { reason: error_reason(code, e), error: e["error"].clone() }
                        }
                        Some(_) => fresh.clone(),
                        None => Outcome::Failed { reason: "no answer for this entry".into(), error: Value::Null },
                    });
                }
                remaining.clear();
            }
            (Kind::Ferry, 200) => {
                let find = |list: &str, pair: &(String, String)| -> Option<Value> {
                    answer.body[list].as_array()?.iter().find(|m| {
                        let p = |k: &str| m["parameters"].as_array().and_then(|ps| ps.iter().find(|x| x["key"] == k)).and_then(|x| x["value"].as_str()).map(str::to_owned);
                        p("reference_subscription_id").as_deref() == Some(pair.0.as_str()) && p("reference_product_id").as_deref() == Some(pair.1.as_str())
                    }).cloned()
                };
                for &i in &remaining {
                    let pair = chunk.records[i].pair.clone().unwrap_or_default();
                    outcomes[i] = Some(if find("success", &pair).is_some() {
                        fresh.clone()
                    } else if let Some(m) = find("failures", &pair) {
                        let message = m["message"].as_str().unwrap_or_default().to_owned();
                        if message.contains("already migrated") || message.contains("concurrent request") {
                            Outcome::Present
                        } else {
                            Outcome::Failed { reason: message.split(';').next().unwrap_or_default().to_owned(), error: m }
                        }
                    } else {
                        Outcome::Failed { reason: "not mentioned in the answer".into(), error: Value::Null }
                    });
                }
                remaining.clear();
            }
            (_, status) => {
                for &i in &remaining {
                    outcomes[i] = Some(failed(status, &answer.body));
                }
                remaining.clear();
            }
        }
        round += 1;
    }
    Ok(outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Failed { reason: "unanswered".into(), error: Value::Null })).collect())
}

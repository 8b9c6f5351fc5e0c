//! Scale lines: the requests that touch everything one customer owns, as
//! that grows — a namespace's packs listed and moved at 10, 1,000 and 10,000
//! packs, a work period with 1,000 payments read and listed, a Ferry
//! customer with 5,000 subscriptions listed and re-posted — each with its
//! time, DynamoDB requests and capacity. (Available gifts at 10 and 10,000
//! unrelated gifts come from scenario 8.)

use std::time::Instant;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::{Env, Run};

pub struct ScaleLine {
    pub what: String,
    /// Items the request(s) covered: packs, payments, subscriptions.
    pub n: usize,
    pub run: Run,
    /// API requests it took (pages of a listing), and the slowest one, s.
    pub requests: usize,
    pub slowest_s: f64,
}

/// One API call, timed, expecting `want`.
async fn call(env: &Env, method: &str, path: &str, body: Vec<u8>, want: u16) -> Result<(Value, f64), String> {
    let t = Instant::now();
    let (status, bytes) = env.call(method, path, body).await?;
    let s = t.elapsed().as_secs_f64();
    if status != want {
        return Err(format!("{method} {path}: {status} {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])));
    }
    Ok((serde_json::from_slice(&bytes).unwrap_or(Value::Null), s))
}

/// A namespace holding `n` packs: listed, then moved whole to another.
pub async fn namespace_of(env: &Env, n: usize) -> Result<Vec<ScaleLine>, String> {
    let (from, to) = (70_000 + env.next(), 70_000 + env.next());
    for ns in [from, to] {
        env.expect("PUT", &format!("/namespaces/{ns}"), json!({"name": "scale", "owner_id": 9}).to_string().into_bytes(), 200).await?;
    }
    for start in (0..n).step_by(1000) {
        let packs: Vec<Value> = (start..(start + 1000).min(n))
            .map(|i| json!({"number_of_minutes": 10, "expires_at": "2031-01-01", "purchase_xid": format!("s{from}-{i}")}))
            .collect();
        env.expect("POST", &format!("/namespaces/{from}/minutes"), json!({"packs": packs}).to_string().into_bytes(), 201).await?;
    }
    env.start_counting();
    let started = Instant::now();
    let (listed, list_s) = call(env, "GET", &format!("/namespaces/{from}/minutes?include_expired=true"), Vec::new(), 200).await?;
    let list = env.counted(n, started);
    let shown = listed["packs"].as_array().map_or(0, Vec::len);
    if shown != n {
        return Err(format!("listing showed {shown} of {n} packs"));
    }
    // A move answers what remains past its 20 s budget; the caller sends it again.
    env.start_counting();
    let started = Instant::now();
    let (mut move_requests, mut move_s) = (0, 0.0f64);
    loop {
        let (answer, s) = call(env, "PATCH", &format!("/namespaces/{from}/minutes/move/{to}"), Vec::new(), 202).await?;
        move_requests += 1;
        move_s = move_s.max(s);
        if answer["remaining"] == 0 || move_requests > 20 {
            break;
        }
    }
    let moved = env.counted(n, started);
    Ok(vec![
        ScaleLine { what: format!("GET /namespaces/{{id}}/minutes, {n} packs"), n, run: list, requests: 1, slowest_s: list_s },
        ScaleLine { what: format!("PATCH …/minutes/move/{{target}}, {n} packs"), n, run: moved, requests: move_requests, slowest_s: move_s },
    ])
}

/// Follows a listing's `next` from `first` to the end; the pages' items.
async fn all_pages(env: &Env, first: &str, items_key: &str) -> Result<(usize, usize, f64), String> {
    let (mut items, mut pages, mut slowest) = (0, 0, 0.0f64);
    let mut path = first.to_owned();
    loop {
        let (page, s) = call(env, "GET", &path, Vec::new(), 200).await?;
        pages += 1;
        slowest = slowest.max(s);
        items += page[items_key].as_array().map_or(0, Vec::len);
        match page["next"].as_str() {
            Some(next) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                path = format!("{first}{sep}next={}", utf8_percent_encode(next, NON_ALPHANUMERIC));
            }
            None => return Ok((items, pages, slowest)),
        }
    }
}

/// A work period with `n` payments (amount-only, days 0): read, and listed 100 a page.
pub async fn work_period_with(env: &Env, n: usize) -> Result<Vec<ScaleLine>, String> {
    let id = format!("scale-{}", env.next());
    let wp = json!({"resourceBookingId": "rb", "userHandle": "u", "startDate": "2026-01-05", "endDate": "2026-01-11",
        "daysWorked": 5, "memberRate": 250.00, "customerRate": 300.00, "billingAccountId": 7});
    env.expect("PUT", &format!("/work-periods/{id}"), wp.to_string().into_bytes(), 200).await?;
    for start in (0..n).step_by(1000) {
        let body: Vec<Value> = (start..(start + 1000).min(n)).map(|_| json!({"workPeriodId": id, "days": 0, "amount": 1.25})).collect();
        let (answer, _) = call(env, "POST", "/work-period-payments/bulk", Value::Array(body).to_string().into_bytes(), 200).await?;
        let failed = answer.as_array().map_or(0, |a| a.iter().filter(|r| r.get("error").is_some()).count());
        if failed > 0 {
            return Err(format!("{failed} payments of the scale work period failed: {}", answer[0]));
        }
    }
    env.start_counting();
    let started = Instant::now();
    let (read, read_s) = call(env, "GET", &format!("/work-periods/{id}"), Vec::new(), 200).await?;
    let read_run = env.counted(1, started);
    if read.get("id").is_none() {
        return Err(format!("work period read: {read}"));
    }
    env.start_counting();
    let started = Instant::now();
    let (items, pages, slowest) = all_pages(env, &format!("/work-period-payments?workPeriodId={id}&perPage=100"), "items").await?;
    let list = env.counted(n, started);
    if items != n {
        return Err(format!("payment listing showed {items} of {n}"));
    }
    Ok(vec![
        ScaleLine { what: format!("GET /work-periods/{{id}}, {n} payments"), n: 1, run: read_run, requests: 1, slowest_s: read_s },
        ScaleLine { what: format!("GET /work-period-payments?workPeriodId=, {n} payments, 100 a page"), n, run: list, requests: pages, slowest_s: slowest },
    ])
}

/// A Ferry customer with `n` subscriptions (posted 1000 a request): listed
/// page by page, and its last 1000 posted again (write-free).
pub async fn ferry_customer_with(env: &Env, n: usize) -> Result<Vec<ScaleLine>, String> {
    let reqs = crate::ferry::requests_for_one(env, n).await?;
    for (path, body) in &reqs {
        env.expect("POST", path, body.clone(), 200).await?;
    }
    let (post_path, body) = reqs.last().cloned().ok_or("no Ferry request")?;
    let last = n - 1000 * (reqs.len() - 1);
    env.start_counting();
    let started = Instant::now();
    let (items, pages, slowest) = all_pages(env, &post_path, "items").await?;
    let list = env.counted(n, started);
    if items != n {
        return Err(format!("Ferry listing showed {items} of {n}"));
    }
    env.start_counting();
    let started = Instant::now();
    let (_, repost_s) = call(env, "POST", &post_path, body, 200).await?;
    let repost = env.counted(last, started);
    Ok(vec![
        ScaleLine {
            what: format!("GET /ferry/customers/{{customer}}/subscriptions, {n} subscriptions, every page"),
            n,
            run: list,
            requests: pages,
            slowest_s: slowest,
        },
        ScaleLine {
            what: format!("POST …/subscriptions again (re-post of {last}) on a customer with {n}"),
            n: last,
            run: repost,
            requests: 1,
            slowest_s: repost_s,
        },
    ])
}

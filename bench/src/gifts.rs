//! Scenario 8: gifts. Claims of distinct users on one gift (every claim a
//! transaction debiting the same owner wallet), and the DynamoDB requests of
//! one caller's `GET /gifts/available` with 10 and with 10,000 unrelated gifts.

use std::sync::Arc;
use std::time::Instant;

use allotment::gifts::Criterion;
use allotment_dev::fixtures::seed_gifts;
use allotment_dev::token;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::{Env, Run, SECRET};

pub struct GiftResults {
    pub claims: Run,
    /// One available-gifts call with 10 and with 10,000 unrelated gifts in the table.
    pub available: Vec<Available>,
}

pub struct Available {
    pub unrelated: usize,
    /// The call's DynamoDB requests, capacity and time.
    pub run: Run,
    /// Gifts it showed (the caller's matches).
    pub shown: usize,
}

fn user(sub: &str) -> String {
    token::mint(SECRET, sub, "openid", 3600, json!({"email": format!("{sub}@bench.example.org"), "email_verified": true}))
}

/// Claims of `users` distinct users on one gift funded for all of them, `concurrency` at once.
async fn claims(env: &Arc<Env>, users: usize, concurrency: usize) -> Result<Run, String> {
    let project = format!("bench-{}", env.next());
    let members = json!({"title": "bench", "members": [{"username": "bench", "role": "PI"}]});
    env.expect("PUT", &format!("/projects/{project}"), members.to_string().into_bytes(), 200).await?;
    let deposit = json!({"category": "cpu", "provider": "ucloud", "amount": users * 10});
    env.expect("POST", &format!("/projects/{project}/wallets/deposit"), deposit.to_string().into_bytes(), 200).await?;
    let gift = json!({"resourcesOwnedBy": project, "title": "bench", "description": "bench", "renewEvery": 0,
        "resources": [{"category": "cpu", "provider": "ucloud", "balanceRequested": 10}], "criteria": [{"type": "anyone"}]});
    let created = env.expect("POST", "/gifts", gift.to_string().into_bytes(), 200).await?;
    let id = serde_json::from_slice::<serde_json::Value>(&created).map_err(|e| e.to_string())?["id"].as_u64().ok_or("no gift id")?;
    let tokens: Vec<String> = (0..users).map(|i| user(&format!("claimer-{id}-{i}"))).collect();
    let body = json!({"giftId": id}).to_string().into_bytes();
    env.start_counting();
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    for t in tokens {
        let (env, body, permits) = (env.clone(), body.clone(), permits.clone());
        set.spawn(async move {
            let _p = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            let (status, bytes) = env.call_as(&t, "POST", "/gifts/claim", body).await?;
            if status != 200 {
                return Err(format!("claim: {status} {}", String::from_utf8_lossy(&bytes)));
            }
            Ok::<_, String>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(env.counted(users, started))
}

pub async fn measure(env: &Arc<Env>, users: usize, unrelated: &[usize]) -> Result<GiftResults, String> {
    let claims = claims(env, users, 8).await?;
    let caller = user("available-caller");
    let mut available = Vec::new();
    let mut written = 0usize;
    for (i, &total) in unrelated.iter().enumerate() {
        let unrelated = |id: u64| Criterion::Email { domain: format!("d{}.unrelated.example", id % 1000) };
        seed_gifts(&env.app.db, "unrelated", 1_000_000_000 * (i as u64 + 1), (total - written) as u64, unrelated).await?;
        written = total;
        env.start_counting();
        let started = Instant::now();
        let (status, bytes) = env.call_as(&caller, "GET", "/gifts/available", Vec::new()).await?;
        if status != 200 {
            return Err(format!("available gifts: {status} {}", String::from_utf8_lossy(&bytes)));
        }
        let run = env.counted(1, started);
        let shown = serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string())?["gifts"].as_array().map_or(0, Vec::len);
        available.push(Available { unrelated: total, run, shown });
    }
    Ok(GiftResults { claims, available })
}

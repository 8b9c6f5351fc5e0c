//! Scenario 9: Ferry. Migrations of `batch` subscriptions per request (ssl
//! products, each one conditional PutItem of an item keyed by its reference
//! pair with its placeholder inside) through the local front, and the same
//! per batch size for the scaling table.

use serde_json::{json, Value};

use crate::{timed, Env, Run};

/// Registers the product once, and a customer per request; returns the requests.
async fn requests(env: &Env, batch: usize, count: usize) -> Result<Vec<(String, Vec<u8>)>, String> {
    let product = json!({"group": "ssl", "name": "SSL DV", "prices": [{"contract_period": 12, "billing_period": 12, "price": 49.00}]});
    env.expect("PUT", "/ferry/products/ssl-dv", product.to_string().into_bytes(), 200).await?;
    let mut out = Vec::new();
    for _ in 0..count {
        let n = env.next();
        let customer = format!("bench-{n}");
        let body = json!({"reference_customer_id": format!("ref-{n}")});
        env.expect("PUT", &format!("/ferry/customers/{customer}"), body.to_string().into_bytes(), 200).await?;
        let ssl: Vec<Value> = (0..batch).map(|i| subscription(&format!("s{n}-{i}"))).collect();
        let body = json!({"reference_customer_id": format!("ref-{n}"), "subscriptions": {"ssl": ssl}});
        out.push((format!("/ferry/customers/{customer}/subscriptions"), body.to_string().into_bytes()));
    }
    Ok(out)
}

/// One customer's `n` subscriptions, as requests of up to 1000.
pub async fn requests_for_one(env: &Env, n: usize) -> Result<Vec<(String, Vec<u8>)>, String> {
    let product = json!({"group": "ssl", "name": "SSL DV", "prices": [{"contract_period": 12, "billing_period": 12, "price": 49.00}]});
    env.expect("PUT", "/ferry/products/ssl-dv", product.to_string().into_bytes(), 200).await?;
    let c = env.next();
    let customer = format!("scale-{c}");
    env.expect("PUT", &format!("/ferry/customers/{customer}"), json!({"reference_customer_id": format!("ref-{c}")}).to_string().into_bytes(), 200)
        .await?;
    Ok((0..n)
        .step_by(1000)
        .map(|start| {
            let ssl: Vec<Value> = (start..(start + 1000).min(n)).map(|i| subscription(&format!("s{c}-{i}"))).collect();
            let body = json!({"reference_customer_id": format!("ref-{c}"), "subscriptions": {"ssl": ssl}});
            (format!("/ferry/customers/{customer}/subscriptions"), body.to_string().into_bytes())
        })
        .collect())
}

fn subscription(reference: &str) -> Value {
    json!({"slug": "ssl-dv", "contract_period": 12, "billing_period": 12, "start_date": "2023-01-01",
           "next_contract_date": "2024-01-01", "next_billing_date": "2024-01-01",
           "reference_subscription_id": reference, "reference_product_id": "ssl"})
}

/// `count` requests of `batch` subscriptions each, timed.
pub async fn migrate(env: &Env, batch: usize, count: usize) -> Result<Run, String> {
    let reqs = requests(env, batch, count).await?;
    timed(env, "POST", &reqs, 200, batch * count).await
}

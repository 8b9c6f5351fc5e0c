//! Where a function's cold start goes: times the phases `run_lambda` goes
//! through (logging, the DynamoDB client as a Lambda builds it, then a first
//! and a second DynamoDB call) with the environment a Lambda has. Run it with
//! AWS_LAMBDA_FUNCTION_NAME, TABLE_NAME, AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION
//! and credentials in the environment.

use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::main]
async fn main() {
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    let t0 = Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let t1 = Instant::now();
    let client = match allotment::aws_client().await {
        Ok(client) => client,
        Err(e) => return eprintln!("client: {e}"),
    };
    let t2 = Instant::now();
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    let get = || {
        client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S("x".into()))
            .key("sk", AttributeValue::S("x".into()))
            .send()
    };
    let first = get().await;
    let t3 = Instant::now();
    let second = get().await;
    let t4 = Instant::now();
    let outcome = |r: &Result<_, _>| if r.is_ok() { "ok" } else { "error" };
    println!(
        "logging {:.2} ms | config and client {:.2} ms | first GetItem {:.2} ms ({}) | second GetItem {:.2} ms ({})",
        ms(t0, t1),
        ms(t1, t2),
        ms(t2, t3),
        outcome(&first),
        ms(t3, t4),
        outcome(&second),
    );
}

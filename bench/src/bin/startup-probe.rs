//! Where a function's cold start goes: times the phases `run_lambda` goes
//! through (config and client, then a first and a second DynamoDB call) with
//! the environment a Lambda has. Run it with TABLE_NAME,
//! AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION and credentials in the environment.

use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::main]
async fn main() {
    let t0 = Instant::now();
    let http = allotment::aws_https_client().expect("https client");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let t1 = Instant::now();
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    let get = || client.get_item().table_name(&table).key("pk", AttributeValue::S("x".into())).key("sk", AttributeValue::S("x".into())).send();
    let first = get().await;
    let t2 = Instant::now();
    let second = get().await;
    let t3 = Instant::now();
    println!(
        "config {:.2} ms | first GetItem {:.2} ms ({}) | second GetItem {:.2} ms ({})",
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        if first.is_ok() { "ok" } else { "error" },
        (t3 - t2).as_secs_f64() * 1e3,
        if second.is_ok() { "ok" } else { "error" },
    );
}

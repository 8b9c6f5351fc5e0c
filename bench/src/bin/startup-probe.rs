//! Where a function's cold start goes: times each phase `run_lambda` goes
//! through (config, client, first DynamoDB call), with the environment a
//! Lambda has. `make bench` prints it under the cold-start table.

use std::time::Instant;

#[tokio::main]
async fn main() {
    let t0 = Instant::now();
    // As the functions load it (see allotment::App::from_env); set
    // ALLOTMENT_TLS_NATIVE_ROOTS=1 to see the SDK's default client instead.
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("ALLOTMENT_TLS_NATIVE_ROOTS").is_none() {
        loader = loader.http_client(allotment::aws_https_client().expect("https client"));
    }
    let config = loader.load().await;
    let t1 = Instant::now();
    let client = aws_sdk_dynamodb::Client::new(&config);
    let t2 = Instant::now();
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    let first = client.describe_table().table_name(&table).send().await;
    let t3 = Instant::now();
    let second = client.describe_table().table_name(&table).send().await;
    let t4 = Instant::now();
    println!(
        "load_defaults {:.1} ms | Client::new {:.1} ms | first call {:.1} ms ({}) | second call {:.1} ms ({})",
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        (t3 - t2).as_secs_f64() * 1e3,
        if first.is_ok() { "ok" } else { "error" },
        (t4 - t3).as_secs_f64() * 1e3,
        if second.is_ok() { "ok" } else { "error" },
    );
}

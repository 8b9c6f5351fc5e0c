//! The cold-start baseline a user would recognise: a minimal `lambda_runtime`
//! function written the ordinary way — `aws_config::load_defaults`, the SDK's
//! default HTTPS client, `Client::new` — answering every event with one
//! DynamoDB `GetItem`. Built with the workspace's features for the AWS crates
//! (what Cargo's feature unification gives it beside Allotment's functions).

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("TABLE_NAME")?;
    let client = &client;
    let table = &table;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let out = client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("NS#123".into()))
            .key("sk", AttributeValue::S("NS".into()))
            .send()
            .await?;
        let found = out.item.is_some();
        Ok::<_, Error>(json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json!({"found": found}).to_string()}))
    }))
    .await
}

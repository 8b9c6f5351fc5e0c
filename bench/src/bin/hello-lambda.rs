//! The cold-start baseline: the smallest `lambda_runtime` function, built with
//! the same profile as Allotment's functions, answering the same kind of event.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}))
    }))
    .await
}

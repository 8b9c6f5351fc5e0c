//! Lambda for `GET /ferry/customers/{customer}/subscriptions`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::LIST_FERRY_SUBSCRIPTIONS).await
}

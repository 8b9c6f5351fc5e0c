//! Lambda for `PUT /ferry/customers/{customer}`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::PUT_FERRY_CUSTOMER).await
}

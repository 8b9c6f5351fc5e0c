//! Lambda for `PUT /ferry/products/{slug}`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::PUT_FERRY_PRODUCT).await
}

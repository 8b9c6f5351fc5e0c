//! Lambda for `GET /projects/{id}/wallets`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::GET_PROJECT_WALLETS).await
}

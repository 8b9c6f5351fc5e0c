//! Lambda for `GET /me/wallets`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::GET_MY_WALLETS).await
}

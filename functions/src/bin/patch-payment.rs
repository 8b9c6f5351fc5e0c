//! Lambda for `PATCH /work-period-payments/{id}`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::PATCH_PAYMENT).await
}

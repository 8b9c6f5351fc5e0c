//! Lambda for `PATCH /namespaces/{id}/minutes/move/{target_id}`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::MOVE_MINUTES).await
}

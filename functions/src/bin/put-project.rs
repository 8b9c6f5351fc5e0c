//! Lambda for `PUT /projects/{id}`. Wiring only: the handler lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::run_lambda(&allotment::routes::PUT_PROJECT).await
}

//! Lambda for the table's stream: every committed change's domain events to
//! the EventBridge bus. Wiring only: the publisher lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    allotment::events::publish::run_publisher().await
}

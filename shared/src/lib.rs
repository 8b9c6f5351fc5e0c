//! Allotment's common crate: domain types, validation, the DynamoDB store and
//! bulk-write engine, auth, HTTP helpers. Each Lambda binary in `functions/`
//! and the local front call the same handlers from here.

pub mod auth;
pub mod db;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod money;
pub mod packs;
pub mod payments;
pub mod routes;
pub mod validate;

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;

use crate::db::Db;

/// What every handler gets: the store and the idempotency settings. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub idempotency: idempotency::IdempotencyConfig,
}

impl App {
    pub fn new(db: Db) -> Self {
        Self { db, idempotency: idempotency::IdempotencyConfig::default() }
    }

    /// From the Lambda environment: `TABLE_NAME` (required) and, for local
    /// runs, `DYNAMODB_ENDPOINT` (then static dummy credentials are used).
    pub async fn from_env() -> Result<Self, String> {
        let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set".to_owned())?;
        let client = match std::env::var("DYNAMODB_ENDPOINT").ok().filter(|e| !e.is_empty()) {
            Some(endpoint) => local_client(&endpoint),
            None => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Client::from_conf(
                    aws_sdk_dynamodb::config::Builder::from(&config)
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
                        .build(),
                )
            }
        };
        Ok(Self::new(Db::new(client, table)))
    }
}

/// The SDK config for a DynamoDB at `endpoint` (DynamoDB Local): dummy
/// credentials, a fixed region, and the SDK's own retries off (ours bound them).
pub fn local_config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "allotment-local"))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
}

pub fn local_client(endpoint: &str) -> Client {
    Client::from_conf(local_config(endpoint).build())
}

/// The body of every function's `main`: logging, config, client, then serve
/// `route` under the Lambda runtime.
pub async fn run_lambda(route: &'static http::Route) -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = App::from_env().await?;
    lambda_http::run(lambda_http::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(http::dispatch(route, app, req).await) }
    }))
    .await
}

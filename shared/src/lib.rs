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
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if std::env::var_os("ALLOTMENT_TLS_NATIVE_ROOTS").is_none() {
                    loader = loader.http_client(aws_https_client()?);
                }
                let config = loader.load().await;
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

/// The roots AWS service endpoints chain to (Amazon Trust Services, and the
/// Starfield root that cross-signs them).
const AWS_ROOTS_PEM: &str = include_str!("../certs/aws-roots.pem");

/// The SDK's HTTPS client, trusting only AWS's roots. The default client reads
/// and parses every certificate of the system store at start-up (146 files
/// here), a cost paid on every cold start for a function that only ever
/// talks to DynamoDB. `ALLOTMENT_TLS_NATIVE_ROOTS=1` restores the system store
/// (for partitions whose endpoints chain elsewhere, such as aws-cn).
pub fn aws_https_client() -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, String> {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM.as_bytes());
    let context = tls::TlsContext::builder().with_trust_store(trust).build().map_err(|e| format!("TLS context: {e}"))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
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

//! Allotment's common crate: domain types, validation, the DynamoDB store and
//! bulk-write engine, auth, HTTP helpers. Each Lambda binary in `functions/`
//! and the local front call the same handlers from here.

pub mod auth;
pub mod call;
pub mod clock;
pub mod db;
pub mod error;
pub mod events;
pub mod ferry;
pub mod gifts;
pub mod http;
pub mod idempotency;
pub mod money;
pub mod packs;
pub mod pagetoken;
pub mod payments;
pub mod routes;
pub mod telemetry;
pub mod validate;

#[cfg(test)]
mod parser_props;
pub mod verify;

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;

use crate::db::Db;

/// What every handler gets: the store and the idempotency settings. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub idempotency: idempotency::IdempotencyConfig,
    /// What "now" is for rules that depend on elapsed time (tests set it).
    pub clock: clock::Clock,
    /// Signs page tokens (`next`) so a tampered one is refused.
    pub page_key: std::sync::Arc<[u8]>,
    /// `SCOPE_PREFIX`: scopes `<prefix><scope>` (Cognito's) count as `<scope>`.
    pub scope_prefix: std::sync::Arc<str>,
    /// `ORG_CLAIM`: the token claim (one an administrator controls) that
    /// names the caller's organisation for WAYF criteria; default `org`.
    pub org_claim: std::sync::Arc<str>,
    /// `END_USER_TOKEN_USE`, `END_USER_CLIENT_ID`: which token is whose.
    pub tokens: std::sync::Arc<auth::TokenPolicy>,
    /// How long one request keeps starting new work before it answers with
    /// what remains — a move's packs, bulk payments' rounds, Ferry's
    /// subscriptions (API Gateway gives up at 29 s; tests shorten it).
    pub work_budget: std::time::Duration,
}

impl App {
    pub fn new(db: Db) -> Self {
        // `PAGE_TOKEN_KEY` signs page tokens; without it the table name does,
        // which still binds a token to its listing (see README: page tokens).
        let page_key = std::env::var("PAGE_TOKEN_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| format!("allotment-page-token:{}", db.table));
        Self {
            db,
            idempotency: idempotency::IdempotencyConfig::default(),
            clock: clock::Clock::default(),
            page_key: page_key.into_bytes().into(),
            scope_prefix: std::env::var("SCOPE_PREFIX").unwrap_or_default().into(),
            org_claim: std::env::var("ORG_CLAIM").ok().filter(|c| !c.is_empty() && !c.starts_with('{')).unwrap_or_else(|| "org".into()).into(),
            tokens: std::sync::Arc::new(auth::TokenPolicy::from_env()),
            work_budget: packs::MOVE_BUDGET,
        }
    }

    /// From the Lambda environment: `TABLE_NAME` (required) and, for local
    /// runs, `DYNAMODB_ENDPOINT` (then static dummy credentials are used).
    pub async fn from_env() -> Result<Self, String> {
        let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set".to_owned())?;
        let client = match std::env::var("DYNAMODB_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        {
            Some(endpoint) => Client::from_conf(telemetry::with_dynamo_metrics(local_config(&endpoint)).build()),
            None => aws_client().await?,
        };
        let mut app = Self::new(Db::new(client, table));
        // The stack's generated key, when the function has one and no key was
        // given by hand: read once, here, per cold start.
        let given = std::env::var("PAGE_TOKEN_KEY").is_ok_and(|k| !k.is_empty());
        // Locally (DynamoDB Local, `sam local invoke`) there is no secret to read: the derived key serves.
        let local = std::env::var("DYNAMODB_ENDPOINT").is_ok_and(|e| !e.is_empty());
        if let Some(arn) = std::env::var("PAGE_TOKEN_SECRET_ARN").ok().filter(|a| a.starts_with("arn:") && !given && !local) {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if std::env::var_os("ALLOTMENT_TLS_NATIVE_ROOTS").is_none() {
                loader = loader.http_client(aws_https_client()?);
            }
            let secrets = aws_sdk_secretsmanager::Client::new(&loader.load().await);
            app.page_key = page_key_from_secret(&secrets, &arn).await?.into();
        }
        Ok(app)
    }
}

/// The page-token key held in Secrets Manager (`PAGE_TOKEN_SECRET_ARN`, the
/// stack's generated `PageTokenSecret`): its `SecretString`, at least 32
/// characters. Rotation: put a new value and the functions take it at their
/// next cold start; tokens signed with the old one are then refused (400),
/// and the caller lists again from the first page (docs/deploy.md).
pub async fn page_key_from_secret(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<Vec<u8>, String> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| format!("page-token key {arn}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)))?;
    out.secret_string()
        .filter(|key| key.len() >= 32)
        .map(|key| key.as_bytes().to_vec())
        .ok_or_else(|| format!("page-token key {arn}: no SecretString of 32 characters or more"))
}

/// The DynamoDB client for AWS: from the Lambda environment when that is all
/// there is (see `lambda_env_config`), else from `aws_config`'s default chain.
/// Our bounded retries replace the SDK's.
pub async fn aws_client() -> Result<Client, String> {
    let http = if std::env::var_os("ALLOTMENT_TLS_NATIVE_ROOTS").is_some() {
        None
    } else {
        Some(aws_https_client()?)
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let config = match lambda_env_config(env, http.clone()) {
        Some(config) => config,
        None => {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(http) = http {
                loader = loader.http_client(http);
            }
            aws_sdk_dynamodb::config::Builder::from(&loader.load().await)
        }
    };
    Ok(Client::from_conf(
        telemetry::with_dynamo_metrics(config)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .timeout_config(timeouts())
            .build(),
    ))
}

/// How long one DynamoDB call may take before it counts as failed (and is
/// retried by `db.rs`, which treats it as possibly applied): a hung
/// connection costs seconds, not the function's whole 29 s.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn timeouts() -> aws_sdk_dynamodb::config::timeout::TimeoutConfig {
    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// Inside Lambda, the runtime hands a function its region and credentials in
/// the environment; this reads them there and nowhere else. `aws_config`'s
/// default chain would also look for profile files (two reads on the blocking
/// pool) and set up providers a Lambda never uses (SSO, web identity with its
/// STS client, ECS, IMDS): about 0.5 ms of every cold start (bench scenario 7).
/// `None` (use the full chain) outside Lambda or when the environment names
/// anything this does not read: a profile, a config file, FIPS or dual-stack
/// endpoints, a container credentials endpoint, or a generic endpoint URL.
fn lambda_env_config(
    var: impl Fn(&str) -> Option<String>,
    http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
) -> Option<aws_sdk_dynamodb::config::Builder> {
    const FULL_CHAIN_ONLY: [&str; 8] = [
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_ENDPOINT_URL",
    ];
    if var("AWS_LAMBDA_FUNCTION_NAME").is_none()
        || FULL_CHAIN_ONLY.iter().any(|name| var(name).is_some())
    {
        return None;
    }
    let region = var("AWS_REGION")?;
    var("AWS_ACCESS_KEY_ID")?;
    var("AWS_SECRET_ACCESS_KEY")?;
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    if let Some(http) = http {
        config = config.http_client(http);
    }
    if let Some(endpoint) = var("AWS_ENDPOINT_URL_DYNAMODB") {
        config = config.endpoint_url(endpoint);
    }
    Some(config)
}

/// The roots AWS service endpoints chain to (Amazon Trust Services, and the
/// Starfield root that cross-signs them).
const AWS_ROOTS_PEM: &str = include_str!("../certs/aws-roots.pem");

/// The SDK's HTTPS client, trusting only AWS's roots. The default client reads
/// and parses every certificate of the system store at start-up (146 files
/// here), a cost paid on every cold start for a function that only ever
/// talks to DynamoDB. `ALLOTMENT_TLS_NATIVE_ROOTS=1` restores the system store
/// (for partitions whose endpoints chain elsewhere, such as aws-cn).
pub fn aws_https_client() -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, String>
{
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_ROOTS_PEM.as_bytes());
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| format!("TLS context: {e}"))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https())
}

/// The SDK config for a DynamoDB at `endpoint` (DynamoDB Local): dummy
/// credentials, a fixed region, and the SDK's own retries off (ours bound them).
pub fn local_config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "allotment-local",
        ))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .timeout_config(timeouts())
}

pub fn local_client(endpoint: &str) -> Client {
    Client::from_conf(local_config(endpoint).build())
}

/// The body of every function's `main`: logging, config, client, then serve
/// `route` under the Lambda runtime.
pub async fn run_lambda(route: &'static routes::Route) -> Result<(), lambda_http::Error> {
    let telemetry = telemetry::Telemetry::start(route.name);
    let app = App::from_env().await?;
    let handler = lambda_http::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::dispatch(route, app, req).await) }
    });
    telemetry.serve(lambda_http::Adapter::from(handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda_env(extra: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let mut vars = vec![
            ("AWS_LAMBDA_FUNCTION_NAME", "get-minutes"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ];
        vars.extend_from_slice(extra);
        move |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .filter(|v| !v.is_empty())
        }
    }

    #[test]
    fn lambda_environment_builds_the_client_config_without_the_default_chain() {
        let config = lambda_env_config(lambda_env(&[]), None).map(|b| b.build());
        assert_eq!(
            config
                .and_then(|c| c.region().map(|r| r.to_string()))
                .as_deref(),
            Some("eu-west-1")
        );
    }

    #[test]
    fn anything_the_fast_path_does_not_read_sends_the_client_to_the_default_chain() {
        assert!(
            lambda_env_config(lambda_env(&[("AWS_LAMBDA_FUNCTION_NAME", "")]), None).is_none(),
            "outside Lambda"
        );
        assert!(
            lambda_env_config(lambda_env(&[("AWS_ACCESS_KEY_ID", "")]), None).is_none(),
            "no credentials"
        );
        assert!(
            lambda_env_config(lambda_env(&[("AWS_REGION", "")]), None).is_none(),
            "no region"
        );
        for name in [
            "AWS_PROFILE",
            "AWS_USE_FIPS_ENDPOINT",
            "AWS_ENDPOINT_URL",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            assert!(
                lambda_env_config(lambda_env(&[(name, "x")]), None).is_none(),
                "{name} set"
            );
        }
    }
}

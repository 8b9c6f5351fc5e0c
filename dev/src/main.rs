//! `allotment-local`: the whole API on one machine. Starts DynamoDB Local (in
//! memory) unless `DYNAMODB_ENDPOINT` names one, creates the table from
//! template.yaml if missing, and serves every route on `PORT` like API Gateway.

use std::sync::Arc;

use allotment::{local_client, App};
use allotment_dev::dynamo_local::DynamoLocal;
use allotment_dev::front::{serve, Front};
use allotment_dev::{template, token};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let port: u16 = env_or("PORT", "3000").parse().map_err(|e| format!("PORT: {e}"))?;
    let table = env_or("TABLE_NAME", "allotment");
    let secret = token::secret_from_env();

    // Kept alive for the whole run; dropping it stops DynamoDB Local.
    let mut dynamo = None;
    let endpoint = match std::env::var("DYNAMODB_ENDPOINT").ok().filter(|e| !e.is_empty()) {
        Some(endpoint) => endpoint,
        None => {
            let ddb_port: u16 = env_or("DYNAMODB_PORT", "8000").parse().map_err(|e| format!("DYNAMODB_PORT: {e}"))?;
            let local = tokio::task::spawn_blocking(move || DynamoLocal::start(Some(ddb_port)))
                .await
                .map_err(|e| e.to_string())??;
            let endpoint = local.endpoint.clone();
            dynamo = Some(local);
            endpoint
        }
    };
    let client = local_client(&endpoint);
    template::ensure_table(&client, &table).await?;
    let app = App::new(allotment::db::Db::new(client, table.as_str()));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("bind {port}: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let admin = token::mint(&secret, "dev-admin", "admin payments payments:process", 30 * 24 * 3600, serde_json::json!({}));
    println!("Allotment is listening on {url} (DynamoDB at {endpoint}, table {table})");
    println!("Dev admin token (30 days):\nexport TOKEN={admin}");
    // Two end users for the gifts walkthrough (README): their sub, email and org claims.
    let alice = token::mint(&secret, "alice", "openid", 30 * 24 * 3600, serde_json::json!({"email": "alice@example.org", "email_verified": true, "org": "example-university"}));
    let carol = token::mint(&secret, "carol", "openid", 30 * 24 * 3600, serde_json::json!({"email": "carol@example.org", "email_verified": true}));
    println!("Dev user tokens (30 days), alice@example.org and carol@example.org:\nexport ALICE={alice}\nexport CAROL={carol}");

    let server = serve(listener, Arc::new(Front { app, secret }));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        res = server => res.map_err(|e| e.to_string())?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(dynamo);
    println!("stopped");
    Ok(())
}

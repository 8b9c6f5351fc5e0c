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

/// `allotment-local token SCOPE [SUB] [EMAIL] [ORG]` (`make token`): a dev
/// token for the local front, signed with `ALLOTMENT_JWT_SECRET`, valid 30
/// days; an EMAIL is marked verified.
fn print_token(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).filter(|a| !a.is_empty());
    let scope = arg(0).unwrap_or("");
    let sub = arg(1).unwrap_or("dev-admin");
    let mut claims = serde_json::Map::new();
    if let Some(email) = arg(2) {
        claims.insert("email".into(), email.into());
        claims.insert("email_verified".into(), true.into());
    }
    if let Some(org) = arg(3) {
        claims.insert("org".into(), org.into());
    }
    println!("{}", token::mint(&token::secret_from_env(), sub, scope, 30 * 24 * 3600, serde_json::Value::Object(claims)));
    Ok(())
}

/// Shows every domain event the table's stream yields, as the publisher
/// function would send it: a log line each, and one JSON line each in `file`
/// (`{"id", "source", "detail-type", "detail"}`) for a consumer to read.
async fn follow(mut follower: allotment_dev::stream::Follower, file: String) {
    use std::io::Write;
    loop {
        match follower.drain().await {
            Ok(events) => {
                let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&file);
                for e in events {
                    tracing::info!(event = e.kind, id = %e.id, detail = %e.detail, "domain event");
                    let line = format!(
                        "{{\"id\":{},\"source\":{},\"detail-type\":{},\"detail\":{}}}",
                        serde_json::Value::from(e.id.as_str()),
                        serde_json::Value::from(allotment::events::SOURCE),
                        serde_json::Value::from(e.kind),
                        e.detail
                    );
                    if let Ok(f) = out.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the table's stream"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("token") {
        return print_token(&args[1..]);
    }
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
            // A free port unless DYNAMODB_PORT names one: two `make run`s never share a database.
            let ddb_port = match std::env::var("DYNAMODB_PORT").ok().filter(|p| !p.is_empty()) {
                Some(p) => Some(p.parse::<u16>().map_err(|e| format!("DYNAMODB_PORT: {e}"))?),
                None => None,
            };
            let local = tokio::task::spawn_blocking(move || DynamoLocal::start(ddb_port))
                .await
                .map_err(|e| e.to_string())??;
            let endpoint = local.endpoint.clone();
            dynamo = Some(local);
            endpoint
        }
    };
    let client = local_client(&endpoint);
    template::ensure_table(&client, &table, true).await?;
    let app = App::new(allotment::db::Db::new(client.clone(), table.as_str()));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("port {port} is taken ({e}): another `make run` may be using it; set PORT to a free port"))?;
    let url = format!("http://127.0.0.1:{port}");
    let admin = token::mint(&secret, "dev-admin", "admin payments payments:process", 30 * 24 * 3600, serde_json::json!({}));
    println!("Allotment is listening on {url} (DynamoDB at {endpoint}, table {table}); API reference: {url}/docs/");
    println!("Dev admin token (30 days):\nexport TOKEN={admin}");
    // Two end users for the gifts walkthrough (README): their sub, email and org claims.
    let alice = token::mint(&secret, "alice", "openid", 30 * 24 * 3600, serde_json::json!({"email": "alice@example.org", "email_verified": true, "org": "example-university"}));
    let carol = token::mint(&secret, "carol", "openid", 30 * 24 * 3600, serde_json::json!({"email": "carol@example.org", "email_verified": true}));
    println!("Dev user tokens (30 days), alice@example.org and carol@example.org:\nexport ALICE={alice}\nexport CAROL={carol}");

    let events_file = env_or("EVENTS_FILE", "target/local-events.jsonl");
    match allotment_dev::stream::Follower::new(&client, &endpoint, &table, allotment::events::low_balance_threshold()).await {
        Ok(follower) => {
            println!("Domain events: one log line each, and appended to {events_file}");
            tokio::spawn(follow(follower, events_file));
        }
        // A table made before it had a stream (DYNAMODB_ENDPOINT): the API runs, without events.
        Err(e) => println!("Domain events are off: {e}"),
    }

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

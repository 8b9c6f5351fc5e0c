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
/// days, shaped as the stack's user pool issues them: with provisioning
/// scopes, an access token; without (or `openid`), an end user's ID token
/// (an EMAIL is marked verified; ORG goes in `custom:org`).
fn print_token(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).filter(|a| !a.is_empty());
    let scope = arg(0).unwrap_or("");
    let secret = token::secret_from_env();
    let ttl = 30 * 24 * 3600;
    let end_user = scope.split_whitespace().all(|s| s == "openid");
    let minted = if end_user {
        token::end_user(&secret, arg(1).unwrap_or("dev-user"), arg(2), arg(3), ttl)
    } else {
        token::provisioner(&secret, arg(1).unwrap_or("dev-admin"), scope, ttl)
    };
    println!("{minted}");
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
    let mut app = App::new(allotment::db::Db::new(client.clone(), table.as_str()));
    // As the stack-made user pool: end users call with ID tokens of the
    // end-user client, the organisation in custom:org (ORG_CLAIM and
    // END_USER_* in the environment win, as in a function).
    if std::env::var("ORG_CLAIM").map_or(true, |v| v.is_empty()) {
        app.org_claim = token::LOCAL_ORG_CLAIM.into();
    }
    if app.tokens.end_user_token_use.is_none() {
        app.tokens = std::sync::Arc::new(allotment::auth::TokenPolicy { end_user_token_use: Some("id".into()), end_user_client: Some(token::LOCAL_END_USER_CLIENT.into()) });
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("port {port} is taken ({e}): another `make run` may be using it; set PORT to a free port"))?;
    let url = format!("http://127.0.0.1:{port}");
    let admin = token::provisioner(&secret, "dev-admin", "admin payments payments:process", 30 * 24 * 3600);
    println!("Allotment is listening on {url} (DynamoDB at {endpoint}, table {table}); API reference: {url}/docs/");
    println!("Dev admin token (30 days):\nexport TOKEN={admin}");
    // Two end users for the gifts walkthrough (README): their sub, email and org claims.
    let alice = token::end_user(&secret, "alice", Some("alice@example.org"), Some("example-university"), 30 * 24 * 3600);
    let carol = token::end_user(&secret, "carol", Some("carol@example.org"), None, 30 * 24 * 3600);
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

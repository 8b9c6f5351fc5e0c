//! Scenario 10: `allotment import` of packs over 50 namespaces, the command
//! run as a process against the local front, to compare with scenario 2
//! (the same kind of requests sent directly).

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::{Env, Run};

pub async fn import_packs(env: &Env, bin_dir: &Path, records: usize) -> Result<Run, String> {
    let namespaces = 50;
    let first = 500_000 + env.next() * 100;
    for ns in first..first + namespaces {
        env.namespace(ns).await?;
    }
    let dir = std::env::temp_dir().join(format!("allotment-bench-import-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("packs.jsonl");
    let mut lines = String::new();
    for i in 0..records {
        let ns = first + (i as u64 % namespaces);
        lines.push_str(&json!({"namespace_id": ns, "number_of_minutes": 1000, "expires_at": "2031-01-01", "purchase_xid": format!("imp{ns}-{i}")}).to_string());
        lines.push('\n');
    }
    std::fs::write(&file, lines).map_err(|e| e.to_string())?;
    let bin = bin_dir.join("allotment");
    let (api, token) = (env.base.clone(), env.token.clone());
    env.start_counting();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&bin)
            .args(["import", "packs"])
            .arg(&file)
            .args(["--api", &api, "--token", &token, "--progress", "lines"])
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))
    })
    .await
    .map_err(|e| e.to_string())??;
    let run = env.counted(records, started);
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!("import failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(run)
}

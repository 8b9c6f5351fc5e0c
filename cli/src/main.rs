//! `allotment import`: gets every record of a file into Allotment exactly
//! once, however often it is interrupted.
//!
//! The file is checked locally, cut into the bulk endpoint's chunks, and
//! each chunk is sent with an Idempotency-Key made of the file's SHA-256 and
//! the chunk's position. A checkpoint beside the file records each chunk
//! answered; the same command after Ctrl-C or a crash resends only the
//! chunks that were in flight, and the API replays those instead of writing
//! again. Failed records go to `<file>.failures.jsonl` with the API's error.

mod records;
mod send;
mod verify;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};

use records::Kind;
use send::{Api, Outcome};

#[derive(Parser)]
#[command(name = "allotment", version, about = "Allotment's command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import a file of records through the API's bulk endpoints, exactly once, resumable.
    ///
    /// packs: JSON Lines {"namespace_id", "number_of_minutes", "expires_at", "purchase_xid"?}, up to
    /// 1000 a request per namespace. payments: CSV with the header workPeriodId,days,amount (empty
    /// cells are absent), up to 1000 a request. ferry: JSON Lines {"customer", "reference_customer_id",
    /// "group", "subscription": {the seed's subscription}}, up to 1000 a request per customer.
    ///
    /// Writes <file>.checkpoint.json (chunks done; the same command resumes) and
    /// <file>.failures.jsonl (each failed record with its line and error). Exit status: 0 all
    /// imported, 1 some records failed, 2 refused (bad arguments, a changed file, records invalid
    /// with --dry-run), 3 some chunks could not be sent at all (run the same command again), 130
    /// interrupted.
    Import {
        /// What the file holds.
        #[arg(value_enum)]
        kind: Kind,
        /// The input file.
        file: PathBuf,
        /// Base URL of the API (the stack's ApiUrl, or http://127.0.0.1:3000 for make run).
        #[arg(long, env = "ALLOTMENT_API")]
        api: String,
        /// Bearer token with the scope the endpoint needs (admin; payments for payments).
        #[arg(long, env = "ALLOTMENT_TOKEN", hide_env_values = true)]
        token: String,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
        concurrency: u32,
        /// Records per request (the endpoints take at most 1000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
        chunk_size: u32,
        /// Attempts per request on network errors, 5xx and 429; a 409 for a key still being
        /// processed is waited out (up to two minutes); any other 4xx is final.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
        attempts: u32,
        /// Check the file and report bad lines, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Forget the checkpoint (needed when the file changed since it was written).
        #[arg(long)]
        restart: bool,
        /// Progress: a bar on a terminal, log lines otherwise; `--progress lines` forces lines.
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
    },
    /// Check a table's invariants: read-only, a parallel strongly consistent Scan of every item.
    ///
    /// Packs under their own keys and in a top-level namespace; each work period's days_paid,
    /// payment_total and status counters equal to its payments; wallets never negative and, per
    /// (category, provider), adding up to the deposits; claims of existing gifts; Ferry
    /// subscriptions under their reference pair with unique ids and an existing customer;
    /// completed idempotency records with their answer; every item readable. Exit status: 0
    /// clean, 1 violations found, 2 error (bad arguments, no such table, DynamoDB unreachable).
    Verify {
        /// The DynamoDB table.
        #[arg(long)]
        table: String,
        /// A DynamoDB endpoint (DynamoDB Local) instead of AWS's, with dummy credentials.
        #[arg(long)]
        endpoint: Option<String>,
        /// Scan segments read at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
        segments: u32,
        /// The report as JSON on stdout instead of the summary.
        #[arg(long)]
        json: bool,
        /// Progress on stderr: a bar on a terminal (auto), a line every 2 s, or none.
        #[arg(long, value_enum, default_value_t = verify::ProgressMode::Auto)]
        progress: verify::ProgressMode,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProgressMode {
    Auto,
    Bar,
    Lines,
}

/// Per chunk: what became of its records.
#[derive(Default, Clone, Serialize, Deserialize)]
struct Tally {
    created: u64,
    present: u64,
    failed: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.created += other.created;
        self.present += other.present;
        for (k, v) in &other.failed {
            *self.failed.entry(k.clone()).or_default() += v;
        }
    }

    fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    version: u32,
    kind: String,
    file_sha256: String,
    chunk_size: u32,
    chunks: usize,
    /// Records refused locally (already written to the failures file).
    invalid: u64,
    done: BTreeMap<usize, Tally>,
}

fn sidecar(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    file.with_file_name(name)
}

/// Written to a temporary file and renamed: a kill never leaves half a checkpoint.
fn save(path: &Path, cp: &Checkpoint) -> Result<(), String> {
    let tmp = sidecar(path, ".tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(cp).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn append_failures(path: &Path, lines: &[Value]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.to_string());
        text.push('\n');
    }
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

enum Progress {
    Bar(indicatif::ProgressBar),
    Lines {
        last: Instant,
        started: Instant,
        total: u64,
    },
}

impl Progress {
    fn new(mode: ProgressMode, total: u64, done: u64) -> Self {
        let bar = match mode {
            ProgressMode::Bar => true,
            ProgressMode::Lines => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        if bar {
            let pb = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} records  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            pb.set_style(style);
            pb.set_position(done);
            pb.set_message("failures: 0");
            pb.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(pb)
        } else {
            Progress::Lines {
                last: Instant::now(),
                started: Instant::now(),
                total,
            }
        }
    }

    fn update(&mut self, done: u64, fresh: u64, failures: u64, force: bool) {
        match self {
            Progress::Bar(pb) => {
                pb.set_position(done);
                pb.set_message(format!("failures: {failures}"));
            }
            Progress::Lines {
                last,
                started,
                total,
            } => {
                if force || last.elapsed() >= Duration::from_secs(2) {
                    *last = Instant::now();
                    let rate = fresh as f64 / started.elapsed().as_secs_f64().max(0.001);
                    eprintln!(
                        "import: {done}/{total} records, {rate:.0} records/s, {failures} failures"
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(pb) = self {
            pb.finish();
        }
    }
}

fn summary(total: &Tally, invalid: u64) -> String {
    let mut t = String::new();
    let failed = total.failures() + invalid;
    t.push_str("| outcome | records |\n|---|---:|\n");
    t.push_str(&format!(
        "| created | {} |\n| already present | {} |\n| failed | {failed} |\n",
        total.created, total.present
    ));
    if invalid > 0 {
        t.push_str(&format!("| · invalid in the file | {invalid} |\n"));
    }
    for (reason, n) in &total.failed {
        t.push_str(&format!("| · {} | {n} |\n", reason.replace('|', "/")));
    }
    t
}

async fn import(
    kind: Kind,
    file: PathBuf,
    api: Api,
    concurrency: u32,
    chunk_size: u32,
    dry_run: bool,
    restart: bool,
    progress: ProgressMode,
) -> Result<i32, String> {
    let content = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let sha = hex::encode(Sha256::digest(&content));
    let text =
        String::from_utf8(content).map_err(|_| format!("{} is not UTF-8 text", file.display()))?;
    let (good, bad) = records::parse(kind, &text);
    for b in &bad {
        eprintln!("line {}: {}", b.line, b.message);
    }
    if dry_run {
        println!(
            "{}: {} records valid, {} invalid; nothing sent (--dry-run)",
            file.display(),
            good.len(),
            bad.len()
        );
        return Ok(if bad.is_empty() { 0 } else { 2 });
    }
    let checkpoint_path = sidecar(&file, ".checkpoint.json");
    let failures_path = sidecar(&file, ".failures.jsonl");
    let chunks = records::chunks(good, chunk_size as usize);
    let mut cp = match std::fs::read(&checkpoint_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).ok())
    {
        Some(cp) if restart => {
            let _ = cp;
            None
        }
        Some(cp)
            if cp.file_sha256 != sha || cp.kind != kind.name() || cp.chunk_size != chunk_size =>
        {
            eprintln!(
                "{} has changed since {} was written (or the kind or chunk size differs); \
                 run with --restart to import it from the start (records already imported come back as already present)",
                file.display(),
                checkpoint_path.display()
            );
            return Ok(2);
        }
        other => other,
    };
    if cp.is_none() {
        let _ = std::fs::remove_file(&failures_path);
        let lines: Vec<Value> = bad.iter().map(|b| json!({"line": b.line, "record": b.raw, "error": {"message": b.message, "code": null}})).collect();
        append_failures(&failures_path, &lines)?;
        let fresh = Checkpoint {
            version: 1,
            kind: kind.name().into(),
            file_sha256: sha.clone(),
            chunk_size,
            chunks: chunks.len(),
            invalid: bad.len() as u64,
            done: BTreeMap::new(),
        };
        save(&checkpoint_path, &fresh)?;
        cp = Some(fresh);
    }
    let mut cp = cp.ok_or("no checkpoint")?;
    let total_records: u64 = chunks.iter().map(|c| c.records.len() as u64).sum();
    let mut total = Tally::default();
    let mut done_records = 0;
    for (idx, tally) in &cp.done {
        total.add(tally);
        done_records += chunks.get(*idx).map_or(0, |c| c.records.len() as u64);
    }
    let resumed = cp.done.len();
    if resumed > 0 {
        eprintln!(
            "resuming: {resumed} of {} chunks already done",
            chunks.len()
        );
    }
    let mut bar = Progress::new(progress, total_records, done_records);
    let file_key = format!("import-{}-{}", kind.name(), &sha[..16]);
    let api = Arc::new(api);
    let permits = Arc::new(Semaphore::new(concurrency as usize));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut in_flight = 0;
    for chunk in chunks
        .iter()
        .filter(|c| !cp.done.contains_key(&c.index))
        .cloned()
    {
        let (api, permits, tx, file_key) =
            (api.clone(), permits.clone(), tx.clone(), file_key.clone());
        in_flight += 1;
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let result = send::send_chunk(&api, kind, &chunk, &file_key).await;
            let _ = tx.send((chunk, result));
        });
    }
    drop(tx);
    let started = Instant::now();
    let mut fresh_records = 0;
    let mut gave_up = Vec::new();
    let interrupted = drain(&mut rx, in_flight, tokio::signal::ctrl_c(), |(chunk, result): (records::Chunk, Result<Vec<Outcome>, String>)| {
        match result {
                Ok(outcomes) => {
                    let mut tally = Tally::default();
                    let mut failures = Vec::new();
                    for (record, outcome) in chunk.records.iter().zip(outcomes) {
                        match outcome {
                            Outcome::Created => tally.created += 1,
                            Outcome::Present => tally.present += 1,
                            Outcome::Failed { reason, error } => {
                                *tally.failed.entry(reason).or_default() += 1;
                                failures.push(
                                    json!({"line": record.line, "record": record.raw, "error": error}),
                                );
                            }
                        }
                    }
                    append_failures(&failures_path, &failures)?;
                    total.add(&tally);
                    cp.done.insert(chunk.index, tally);
                    save(&checkpoint_path, &cp)?;
                    done_records += chunk.records.len() as u64;
                    fresh_records += chunk.records.len() as u64;
                }
                Err(e) => gave_up.push((chunk.index, e)),
            }
            bar.update(
                done_records,
                fresh_records,
                total.failures() + cp.invalid,
                false,
            );
        Ok(())
    })
    .await?;
    bar.update(
        done_records,
        fresh_records,
        total.failures() + cp.invalid,
        true,
    );
    bar.finish();
    if interrupted {
        eprintln!(
            "interrupted: {} of {} chunks done; run the same command to resume (chunks in flight are sent again, and replayed)",
            cp.done.len(),
            chunks.len()
        );
        return Ok(130);
    }
    for (idx, e) in &gave_up {
        eprintln!("chunk {idx}: {e}; run the same command again to retry it");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{}", summary(&total, cp.invalid));
    println!(
        "{} records in {} chunks; {fresh_records} sent in this run in {seconds:.1} s ({:.0} records/s){}",
        total_records + cp.invalid,
        chunks.len(),
        fresh_records as f64 / seconds.max(0.001),
        if total.failures() + cp.invalid > 0 { format!("; failed records are in {}", failures_path.display()) } else { String::new() }
    );
    Ok(if !gave_up.is_empty() {
        3
    } else if total.failures() + cp.invalid > 0 {
        1
    } else {
        0
    })
}

/// Hands each result to `save` until none are in flight or `interrupt`
/// fires (true: interrupted). `interrupt` is one future for the whole run,
/// polled first at every turn: one that fires while a result is being saved
/// is seen at the next turn, never lost between two listeners.
async fn drain<T, I, S>(rx: &mut mpsc::UnboundedReceiver<T>, mut in_flight: usize, interrupt: I, mut save: S) -> Result<bool, String>
where
    I: std::future::Future,
    S: FnMut(T) -> Result<(), String>,
{
    tokio::pin!(interrupt);
    loop {
        if in_flight == 0 {
            return Ok(false);
        }
        let next = tokio::select! {
            biased;
            _ = &mut interrupt => return Ok(true),
            next = rx.recv() => next,
        };
        let Some(item) = next else { return Ok(false) };
        in_flight -= 1;
        save(item)?;
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Import {
            kind,
            file,
            api,
            token,
            concurrency,
            chunk_size,
            attempts,
            dry_run,
            restart,
            progress,
        } => {
            let http = match send::client() {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            };
            let api = Api {
                http,
                base: api,
                token,
                attempts,
                base_delay: Duration::from_millis(200),
            };
            import(
                kind,
                file,
                api,
                concurrency,
                chunk_size,
                dry_run,
                restart,
                progress,
            )
            .await
            .unwrap_or_else(|e| {
                eprintln!("error: {e}");
                2
            })
        }
        Command::Verify { table, endpoint, segments, json, progress } => verify::run(table, endpoint, segments, json, progress).await,
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interrupt that arrives while a result is being saved stops the run
    /// at the next turn, though more results are waiting (a new listener per
    /// turn, as before, lost it and ran to the end).
    #[tokio::test]
    async fn an_interrupt_during_a_save_is_not_lost() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        let (fire, fired) = tokio::sync::oneshot::channel::<()>();
        let mut fire = Some(fire);
        let mut saved = Vec::new();
        let interrupted = drain(&mut rx, 5, fired, |i| {
            saved.push(i);
            if let Some(f) = fire.take() {
                let _ = f.send(()); // Ctrl-C while the first result is saved
            }
            Ok(())
        })
        .await
        .unwrap();
        assert!(interrupted);
        assert_eq!(saved, vec![0], "stopped at the next turn, with results still waiting");
    }
}

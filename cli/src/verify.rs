//! `allotment verify`: checks a table's invariants (see `allotment::verify`)
//! and reports what breaks them. Exit status: 0 clean, 1 violations, 2 error.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use allotment::db::Db;
use allotment::verify::Report;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal (stderr), nothing otherwise.
    Auto,
    /// A line on stderr every 2 s.
    Lines,
    /// Nothing.
    None,
}

pub async fn run(table: String, endpoint: Option<String>, segments: u32, json: bool, progress: ProgressMode) -> i32 {
    let client = match endpoint {
        Some(endpoint) => allotment::local_client(&endpoint),
        None => match allotment::aws_client().await {
            Ok(client) => client,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
    };
    let db = Db::new(client, table.as_str());
    let started = Instant::now();
    let bar = (progress == ProgressMode::Auto && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} items scanned  {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    });
    let last_line = Mutex::new(Instant::now());
    let report = {
        let bar = bar.clone();
        allotment::verify::verify(&db, segments, move |scanned| match (&bar, progress) {
            (Some(pb), _) => pb.set_position(scanned.max(pb.position())),
            (None, ProgressMode::Lines) => {
                let mut last = last_line.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= Duration::from_secs(2) {
                    *last = Instant::now();
                    eprintln!("verify: {scanned} items scanned");
                }
            }
            _ => {}
        })
        .await
    };
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: verifying table {table}: {e}");
            return 2;
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        print!("{}", summary(&table, &report, started.elapsed()));
    }
    if report.is_clean() {
        0
    } else {
        1
    }
}

fn summary(table: &str, report: &Report, took: Duration) -> String {
    let mut t = format!("{}: {} items scanned in {:.1} s\n\n| kind | items |\n|---|---:|\n", table, report.items_scanned, took.as_secs_f64());
    for (kind, count) in &report.checked {
        t.push_str(&format!("| {kind} | {count} |\n"));
    }
    if report.is_clean() {
        t.push_str("\nNo violations.\n");
        return t;
    }
    t.push_str(&format!("\n{} violations:\n", report.violations.len()));
    for v in &report.violations {
        t.push_str(&format!("\n{}: {}\n", v.kind, v.message));
        for key in &v.keys {
            t.push_str(&format!("    {key}\n"));
        }
    }
    t
}

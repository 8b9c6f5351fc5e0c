//! `allotment import` (the CLI, a real process) against the local front and
//! DynamoDB Local: resumes after SIGINT without re-creating anything, rides
//! out injected 503s, reports bad lines, and draws its bar on a terminal.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use allotment_tests::{Fault, TestApi};
use serde_json::{json, Value};

use crate::packs::namespace;

pub fn cli() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join("allotment");
    assert!(path.is_file(), "{} is not built: cargo build -p allotment-cli (make test does)", path.display());
    path
}

fn workdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("allotment-import-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(api: &TestApi, kind: &str, file: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new(cli());
    c.args(["import", kind]).arg(file).args(["--api", &api.base, "--token", &api.admin(), "--progress", "lines"]).args(extra);
    c
}

async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("run allotment")).await.unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The summary table's count for `outcome`.
fn count(o: &Output, outcome: &str) -> u64 {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with(&format!("| {outcome} |")))
        .and_then(|l| l.trim_end_matches(" |").rsplit("| ").next().map(str::to_owned))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {outcome:?} in the summary:\n{}", text(o)))
}

/// `per_ns` packs in each of `namespaces` namespaces; one in ten without a
/// purchase_xid, so a chunk sent twice without its key's replay would create
/// those twice.
fn packs_file(dir: &std::path::Path, namespaces: u64, per_ns: usize) -> PathBuf {
    let mut lines = String::new();
    for i in 0..per_ns {
        for ns in 1..=namespaces {
            let xid = if i % 10 == 0 { Value::Null } else { json!(format!("n{ns}-{i}")) };
            lines.push_str(&json!({"namespace_id": ns, "number_of_minutes": 100, "expires_at": "2031-01-01", "purchase_xid": xid}).to_string());
            lines.push('\n');
        }
    }
    let path = dir.join("packs.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

fn chunks_done(file: &std::path::Path) -> usize {
    let cp = file.with_file_name(format!("{}.checkpoint.json", file.file_name().unwrap().to_string_lossy()));
    std::fs::read(cp).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()).and_then(|v| v["done"].as_object().map(|d| d.len())).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_packs_survive_sigint_and_resume_with_every_pack_once() {
    let api = TestApi::start().await;
    for ns in 1..=50 {
        namespace(&api, ns, None, 7).await;
    }
    let dir = workdir();
    let file = packs_file(&dir, 50, 400);
    // 50 namespaces × 400 packs, 100 a request: 200 chunks. Stop at a random one.
    let stop_after = fastrand::usize(20..150);
    let mut first = command(&api, "packs", &file, &["--chunk-size", "100"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while chunks_done(&file) < stop_after {
        assert!(Instant::now() < deadline, "the import stalled");
        assert!(first.try_wait().unwrap().is_none(), "finished before it could be interrupted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: kill(2) on a child we own, which has not been reaped.
    unsafe { libc::kill(first.id() as i32, libc::SIGINT) };
    let first = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", text(&first));
    assert!(text(&first).contains("run the same command to resume"));
    let done_at_stop = chunks_done(&file);
    assert!(done_at_stop >= stop_after && done_at_stop < 200, "stopped at {done_at_stop}");
    let stored_at_stop = api.count_prefix("PACK#").await;

    let second = run(command(&api, "packs", &file, &["--chunk-size", "100"])).await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(text(&second).contains(&format!("resuming: {done_at_stop} of 200 chunks already done")), "{}", text(&second));
    assert_eq!(count(&second, "created") + count(&second, "already present"), 20_000, "the summary adds up");
    assert_eq!(count(&second, "failed"), 0);
    let items = api.all_items().await;
    let packs: Vec<_> = items.iter().filter(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with("PACK#"))).collect();
    assert_eq!(packs.len(), 20_000, "every pack exactly once, the 2,000 without an xid included");
    for ns in [1, 25, 50] {
        let n = packs.iter().filter(|p| p["namespace_id"].as_n().is_ok_and(|v| v == &ns.to_string())).count();
        assert_eq!(n, 400, "namespace {ns}");
    }
    println!("stopped after {done_at_stop} of 200 chunks ({stored_at_stop} packs stored); the resumed run sent the rest: {}", text(&second).lines().last().unwrap_or_default());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_503s_are_waited_out_and_every_record_arrives_once() {
    let api = TestApi::start().await;
    for ns in 1..=4 {
        namespace(&api, ns, None, 7).await;
    }
    let dir = workdir();
    let file = packs_file(&dir, 4, 250);
    // Twelve throttles in a row: a request's six attempts at its first write
    // (the Idempotency-Key record) all fail, so the API answers 503 with
    // Retry-After — twice.
    api.faults.inject("PutItem", Fault::Throttle, 12);
    let out = run(command(&api, "packs", &file, &["--concurrency", "1"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(api.faults.faults_injected(), 12);
    assert_eq!(count(&out, "created"), 1000);
    assert_eq!(api.count_prefix("PACK#").await, 1000, "every record once, though a request was answered 503 twice");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_lines_are_reported_by_line_dry_run_sends_nothing_and_the_good_ones_import() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let dir = workdir();
    let file = dir.join("packs.jsonl");
    let lines = [
        r#"{"namespace_id": 1, "number_of_minutes": 10, "expires_at": "2031-01-01", "purchase_xid": "a"}"#,
        r#"{"namespace_id": 1, "number_of_minutes": 10, "expires_at": "2031-02-30", "purchase_xid": "b"}"#,
        r#"{"namespace_id": 1, "number_of_minutes": 10, "expires_at": "#,
        r#"{"namespace_id": 1, "number_of_minutes": 10, "expires_at": "2031-01-01", "purchase_xid": "c"}"#,
        r#"{"namespace_id": 99, "number_of_minutes": 10, "expires_at": "2031-01-01", "purchase_xid": "d"}"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    api.faults.reset_counts();
    let dry = run(command(&api, "packs", &file, &["--dry-run"])).await;
    assert_eq!(dry.status.code(), Some(2), "{}", text(&dry));
    assert!(text(&dry).contains("line 2: expires_at"), "{}", text(&dry));
    assert!(text(&dry).contains("line 3: not JSON"), "{}", text(&dry));
    assert!(text(&dry).contains("3 records valid, 2 invalid; nothing sent"));
    assert_eq!(api.faults.write_calls() + api.faults.calls("BatchGetItem"), 0, "--dry-run sends nothing");

    let out = run(command(&api, "packs", &file, &[])).await;
    assert_eq!(out.status.code(), Some(1), "some records failed: {}", text(&out));
    assert_eq!((count(&out, "created"), count(&out, "failed")), (2, 3));
    assert!(text(&out).contains("404 Namespace Not Found"), "{}", text(&out));
    assert_eq!(api.count_prefix("PACK#").await, 2);
    let failures: Vec<Value> = std::fs::read_to_string(dir.join("packs.jsonl.failures.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut failed_lines: Vec<u64> = failures.iter().map(|f| f["line"].as_u64().unwrap()).collect();
    failed_lines.sort();
    assert_eq!(failed_lines, vec![2, 3, 5]);
    assert_eq!(failures.iter().find(|f| f["line"] == 5).unwrap()["error"]["code"], 404, "the API's own error");

    // A changed file is refused unless --restart.
    std::fs::write(&file, lines[..2].join("\n")).unwrap();
    let refused = run(command(&api, "packs", &file, &[])).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).contains("has changed"), "{}", text(&refused));
    let restarted = run(command(&api, "packs", &file, &["--restart"])).await;
    assert_eq!(restarted.status.code(), Some(1), "{}", text(&restarted));
    // Pack a again: the API says (Allotment-Created) it was there already.
    assert_eq!((count(&restarted, "created"), count(&restarted, "already present")), (0, 1), "{}", text(&restarted));
    assert_eq!(api.count_prefix("PACK#").await, 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn payments_and_ferry_files_import_and_a_rerun_finds_them_present() {
    let api = TestApi::start().await;
    let dir = workdir();
    let wp = json!({"resourceBookingId": "rb", "userHandle": "u", "startDate": "2026-01-05", "endDate": "2026-01-11", "daysWorked": 5,
                    "memberRate": 250.00, "customerRate": 300.00, "billingAccountId": 7});
    assert_eq!(api.call("PUT", "/work-periods/wp-1", Some(&api.admin()), Some(wp)).await.status, 200);
    let csv = dir.join("payments.csv");
    std::fs::write(&csv, "workPeriodId,days,amount\nwp-1,2,\nwp-1,0,40.50\nwp-1,9,\nwp-nope,1,\n").unwrap();
    let out = run(command(&api, "payments", &csv, &[])).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!((count(&out, "created"), count(&out, "failed")), (2, 2), "{}", text(&out));
    assert!(text(&out).contains("404 Work period wp-nope not found"), "{}", text(&out));
    let again = run(command(&api, "payments", &csv, &[])).await;
    assert_eq!(count(&again, "created"), 2, "a finished import is not sent again: {}", text(&again));
    assert_eq!(api.count_prefix("PAY#").await, 2);

    crate::ferry::product(&api, "ssl-dv", "ssl", &[(12, 1)]).await;
    crate::ferry::customer(&api, "c1", "r1").await;
    let sub = |r: &str| json!({"slug": "ssl-dv", "contract_period": 12, "billing_period": 1, "start_date": "2023-01-01",
                               "next_contract_date": "2024-01-01", "next_billing_date": "2023-02-01", "reference_subscription_id": r, "reference_product_id": "p"});
    let lines: Vec<String> = ["s1", "s2", "s3"].iter().map(|r| json!({"customer": "c1", "reference_customer_id": "r1", "group": "ssl", "subscription": sub(r)}).to_string()).collect();
    let jsonl = dir.join("ferry.jsonl");
    std::fs::write(&jsonl, lines[..2].join("\n")).unwrap();
    let out = run(command(&api, "ferry", &jsonl, &[])).await;
    assert_eq!((out.status.code(), count(&out, "created")), (Some(0), 2), "{}", text(&out));
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let out = run(command(&api, "ferry", &jsonl, &["--restart"])).await;
    assert_eq!((count(&out, "created"), count(&out, "already present")), (1, 2), "{}", text(&out));
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_bar_and_summary_are_drawn_on_a_terminal() {
    let api = TestApi::start().await;
    for ns in 1..=3 {
        namespace(&api, ns, None, 7).await;
    }
    let dir = workdir();
    let file = packs_file(&dir, 3, 1000);
    // `script` gives the command a pseudo-terminal; vt100 renders what it drew.
    let cmd = format!(
        "stty cols 120 rows 30; {} import packs {} --api {} --token {} --chunk-size 100 --concurrency 1",
        cli().display(),
        file.display(),
        api.base,
        api.admin()
    );
    let out = run({
        let mut c = Command::new("script");
        c.args(["-qfec", &cmd, "/dev/null"]);
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut screen = vt100::Parser::new(30, 120, 0);
    screen.process(&out.stdout);
    let rendered = screen.screen().contents();
    let bar = rendered.lines().find(|l| l.contains("records") && l.contains('[')).unwrap_or_else(|| panic!("no bar on the screen:\n{rendered}"));
    assert!(bar.contains("3000/3000 records"), "{bar}");
    assert!(bar.contains("failures: 0"), "{bar}");
    assert!(bar.contains("[=============================="), "a full bar: {bar}");
    assert!(rendered.contains("| created | 3000 |"), "{rendered}");
    assert!(rendered.contains("| already present | 0 |"), "{rendered}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The command's own help says what the README says: every exit status, and
/// which answers are retried.
#[test]
fn the_help_text_and_the_readme_agree() {
    let help = std::process::Command::new(cli()).args(["import", "--help"]).output().unwrap();
    // (Wrapped to the terminal's width: compared with its lines joined.)
    let help = String::from_utf8_lossy(&help.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for code in ["0 all imported", "1 some records failed", "2 refused", "3 some chunks", "130 interrupted"] {
        assert!(help.contains(code), "--help lacks {code:?}");
    }
    for code in ["0 all imported", "1 some records failed", "2 refused", "3 ", "130 interrupted"] {
        assert!(readme.contains(code), "README lacks {code:?}");
    }
    assert!(help.contains("429") && help.contains("still being") && readme.contains("429"), "retries described alike");
}

/// Issue 29, finding 3: under a throttling storm a payments chunk is
/// answered 200 with 503 entries; the import sends the chunk again with the
/// same key until every entry is final, so every record is created once and
/// nothing is recorded as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_answer_with_5xx_entries_is_sent_again_with_its_key() {
    let api = TestApi::start().await;
    let dir = workdir();
    for w in 1..=8 {
        let wp = json!({"resourceBookingId": "rb", "userHandle": "u", "startDate": "2026-01-05", "endDate": "2026-01-11", "daysWorked": 5,
                        "memberRate": 250.00, "customerRate": 300.00, "billingAccountId": 7});
        assert_eq!(api.call("PUT", &format!("/work-periods/wp-{w}"), Some(&api.admin()), Some(wp)).await.status, 200);
    }
    let csv = dir.join("payments.csv");
    let mut lines = String::from("workPeriodId,days,amount\n");
    for i in 0..40 {
        lines.push_str(&format!("wp-{},1,\n", 1 + i % 8));
    }
    std::fs::write(&csv, lines).unwrap();
    // Enough throttles that some transactions outlast the API's retries.
    api.faults.inject("TransactWriteItems", Fault::Throttle, 40);
    let out = run(command(&api, "payments", &csv, &[])).await;
    assert!(api.faults.faults_injected() >= 6, "the storm happened");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!((count(&out, "created"), count(&out, "failed")), (40, 0), "{}", text(&out));
    assert_eq!(api.count_prefix("PAY#").await, 40);
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 29, finding 5: a refused token is about the caller, not the
/// records: the chunk is not recorded as done, and the same command with a
/// good token sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_checkpoints_nothing_and_the_same_command_resumes() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let dir = workdir();
    let file = dir.join("packs.jsonl");
    std::fs::write(&file, json!({"namespace_id": 1, "number_of_minutes": 100, "expires_at": "2031-01-01", "purchase_xid": "tok-1"}).to_string() + "\n").unwrap();
    let mut bad = Command::new(cli());
    bad.args(["import", "packs"]).arg(&file).args(["--api", &api.base, "--token", "not-a-token", "--progress", "lines"]);
    let out = run(bad).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(chunks_done(&file), 0, "nothing recorded as done: {}", text(&out));
    let out = run(command(&api, "packs", &file, &[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count(&out, "created"), 1, "{}", text(&out));
    let _ = std::fs::remove_dir_all(dir);
}

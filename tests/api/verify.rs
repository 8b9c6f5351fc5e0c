//! `allotment verify`: a table written through the API verifies clean; each
//! kind of violation planted directly in the table is reported with its kind
//! and keys, by the library and by the command (a real process, JSON out,
//! exit 0 / 1 / 2).

use std::collections::HashMap;
use std::process::Command;

use allotment::db::{n, s, Item};
use allotment::ferry::subscription_pk;
use allotment::verify::{kind, verify, Report};
use allotment_tests::TestApi;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use crate::gifts::{create_gift, deposit, gift_body, project, user};
use crate::packs::{namespace, pack, post_packs};

fn key_of(pk: &str, sk: &str) -> String {
    format!("{pk} / {sk}")
}

async fn put(api: &TestApi, item: Item) {
    api.app.db.client.put_item().table_name(&api.table).set_item(Some(item)).send().await.expect("put");
}

/// One stored item, read back (tests only).
async fn get(api: &TestApi, pk: &str, sk: &str) -> Item {
    api.app.db.get(allotment::db::key(pk, sk)).await.expect("get").unwrap_or_else(|| panic!("no item {pk} / {sk}"))
}

/// `SET name = value, …` on one item.
async fn set(api: &TestApi, pk: &str, sk: &str, values: &[(&str, AttributeValue)]) {
    let mut update = api.app.db.client.update_item().table_name(&api.table).key("pk", s(pk)).key("sk", s(sk));
    let mut sets = Vec::new();
    for (i, (name, value)) in values.iter().enumerate() {
        sets.push(format!("#n{i} = :v{i}"));
        update = update.expression_attribute_names(format!("#n{i}"), *name).expression_attribute_values(format!(":v{i}"), value.clone());
    }
    update.update_expression(format!("SET {}", sets.join(", "))).send().await.expect("update");
}

/// A deposit record in the new layout: `PROJECT#<project>` / `DEPOSIT#<id>`.
fn deposit_item(project: &str, id: &str, category: &str, amount: u64) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("PROJECT#{project}"))),
        ("sk".into(), s(format!("DEPOSIT#{id}"))),
        ("category".into(), s(category)),
        ("provider".into(), s("ucloud")),
        ("amount".into(), n(amount)),
        ("token".into(), s(format!("token-{id}"))),
    ])
}

async fn call_ok(api: &TestApi, method: &str, path: &str, token: &str, body: Value) -> Value {
    let r = api.call(method, path, Some(token), Some(body)).await;
    assert!(r.status == 200 || r.status == 201, "{method} {path}: {r:?}");
    r.body
}

/// A payment of `days` on `wp`, and its id.
async fn pay(api: &TestApi, wp: &str, days: u64) -> String {
    let body = call_ok(api, "POST", "/work-period-payments", &api.token("clerk", "payments"), json!({"workPeriodId": wp, "days": days})).await;
    body["id"].as_str().expect("payment id").to_owned()
}

async fn set_status(api: &TestApi, token: &str, payment: &str, status: &str) {
    call_ok(api, "PATCH", &format!("/work-period-payments/{payment}"), token, json!({"status": status})).await;
}

/// Every kind of item, written through the API (deposit records directly,
/// in the new layout, matching the wallets): a clean table.
async fn clean_table(api: &TestApi) {
    let admin = api.admin();
    let worker = api.token("payout-worker", "payments:process");
    namespace(api, 1, None, 7).await;
    namespace(api, 2, Some(1), 7).await;
    let r = post_packs(api, 1, vec![pack(100, "2031-01-01", Some("x1")), pack(50, "2031-01-01", None)]).await;
    assert_eq!(r.status, 201, "{r:?}");

    for wp in ["wp-a", "wp-b", "wp-c"] {
        let body = json!({"resourceBookingId": "rb-1", "userHandle": "alice", "startDate": "2026-01-05", "endDate": "2026-01-11",
                          "daysWorked": 5, "memberRate": 250, "customerRate": 310.5, "billingAccountId": 80000071});
        call_ok(api, "PUT", &format!("/work-periods/{wp}"), &admin, body).await;
    }
    let r = api.call_with_key("POST", "/work-period-payments", &api.token("clerk", "payments"), "verify-1", br#"{"workPeriodId": "wp-a", "days": 2}"#).await;
    assert_eq!(r.status, 201, "{r:?}");
    let done = pay(api, "wp-a", 1).await;
    set_status(api, &worker, &done, "in-progress").await;
    set_status(api, &worker, &done, "completed").await;
    pay(api, "wp-b", 3).await;
    let cancelled = pay(api, "wp-b", 1).await;
    set_status(api, &admin, &cancelled, "cancelled").await;
    let failed = pay(api, "wp-c", 2).await;
    set_status(api, &worker, &failed, "failed").await;
    pay(api, "wp-c", 1).await;

    crate::ferry::product(api, "hosting-basic", "hosting", &[(12, 1)]).await;
    crate::ferry::customer(api, "c1", "r1").await;
    let sub = |reference: &str| {
        json!({"slug": "hosting-basic", "contract_period": 12, "billing_period": 1, "start_date": "2023-01-01",
               "next_contract_date": "2024-01-01", "next_billing_date": "2023-02-01",
               "reference_subscription_id": reference, "reference_product_id": "ref-hosting"})
    };
    let body = json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [sub("h-1"), sub("h-2")]}});
    let r = call_ok(api, "POST", "/ferry/customers/c1/subscriptions", &admin, body).await;
    assert_eq!(r["success"].as_array().map(Vec::len), Some(2), "{r}");

    project(api, "sandbox", &[("pi", "PI")]).await;
    assert_eq!(deposit(api, "sandbox", "cpu", 1000).await.status, 200);
    let gift = create_gift(api, &user("pi", None, None), gift_body("sandbox", &[("cpu", 100)], json!([{"type": "anyone"}]), 0)).await;
    call_ok(api, "POST", "/gifts/claim", &user("carol", None, None), json!({"giftId": gift})).await;
}

async fn report(api: &TestApi) -> Report {
    verify(&api.app.db, 3, |_| {}).await.expect("verify")
}

#[tokio::test]
async fn a_table_written_through_the_api_verifies_clean() {
    let api = TestApi::start().await;
    clean_table(&api).await;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = seen.clone();
    let r = verify(&api.app.db, 4, move |n| progress.store(n, std::sync::atomic::Ordering::Relaxed)).await.expect("verify");
    assert_eq!(r.violations, vec![], "{:#?}", r.violations);
    assert_eq!(r.items_scanned as usize, api.all_items().await.len());
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), r.items_scanned, "progress reaches every item");
    let count = |kind: &str| r.checked.get(kind).copied().unwrap_or(0);
    assert_eq!((count("namespace"), count("pack"), count("work_period"), count("payment")), (2, 2, 3, 6));
    assert_eq!((count("wallet"), count("deposit"), count("gift"), count("gift_claim")), (2, 1, 1, 1));
    assert_eq!((count("ferry_customer"), count("ferry_subscription"), count("idempotency")), (1, 2, 1));
    assert_eq!(count("other"), 0, "{:?}", r.checked);
}

/// Plants one of each violation in a clean table; returns what must be reported.
async fn plant_violations(api: &TestApi) -> Vec<(&'static str, String)> {
    let mut expected = Vec::new();
    // An xid pack under another pk.
    let mut moved = get(api, "PACK#X#x1", "PACK").await;
    moved.insert("pk".into(), s("PACK#X#wrong"));
    put(api, moved.clone()).await;
    expected.push((kind::PACK_KEY, key_of("PACK#X#wrong", "PACK")));
    // Packs of a missing namespace and of a child namespace.
    for (pk, ns) in [("PACK#U#orphan", 999), ("PACK#U#child", 2)] {
        let mut p = moved.clone();
        p.remove("purchase_xid");
        p.extend([("pk".into(), s(pk)), ("namespace_id".into(), n(ns)), ("gsi1pk".into(), s(format!("NSPACKS#{ns}")))]);
        put(api, p).await;
    }
    expected.push((kind::PACK_NAMESPACE_MISSING, key_of("PACK#U#orphan", "PACK")));
    expected.push((kind::PACK_NAMESPACE_NOT_TOP_LEVEL, key_of("PACK#U#child", "PACK")));
    // Work periods whose aggregates disagree with their payments.
    set(api, "WP#wp-a", "WP", &[("days_paid", n(4)), ("days_unpaid", n(1))]).await;
    expected.push((kind::WP_DAYS_PAID, key_of("WP#wp-a", "WP")));
    set(api, "WP#wp-b", "WP", &[("payment_total", n("1.23"))]).await;
    expected.push((kind::WP_PAYMENT_TOTAL, key_of("WP#wp-b", "WP")));
    set(api, "WP#wp-c", "WP", &[("n_cancelled", n(2))]).await;
    expected.push((kind::WP_STATUS_COUNT, key_of("WP#wp-c", "WP")));
    // A payment whose work period is gone, and one listed under the wrong status.
    let payments: Vec<Item> = api.all_items().await.into_iter().filter(|i| i.get("work_period_id") == Some(&s("wp-c"))).collect();
    let pk_of = |i: &Item| i.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let mut orphan = payments[0].clone();
    orphan.extend([("pk".into(), s("PAY#orphan")), ("id".into(), s("orphan")), ("work_period_id".into(), s("wp-gone")), ("gsi1pk".into(), s("WPPAY#wp-gone"))]);
    put(api, orphan).await;
    expected.push((kind::PAYMENT_WORK_PERIOD_MISSING, key_of("PAY#orphan", "PAY")));
    set(api, &pk_of(&payments[1]), "PAY", &[("gsi2pk", s("PAYSTATUS#cancelled"))]).await;
    expected.push((kind::PAYMENT_INDEX, key_of(&pk_of(&payments[1]), "PAY")));
    // A negative wallet (the other wallet of its pair makes up for it: conservation holds).
    set(api, "PROJECT#personal:carol", "WALLET#cpu#ucloud", &[("balance", n(-5))]).await;
    set(api, "PROJECT#sandbox", "WALLET#cpu#ucloud", &[("balance", n(1005))]).await;
    expected.push((kind::WALLET_NEGATIVE, key_of("PROJECT#personal:carol", "WALLET#cpu#ucloud")));
    // A deposit no wallet holds.
    put(api, deposit_item("sandbox", "d2", "storage", 100)).await;
    expected.push((kind::WALLET_CONSERVATION, key_of("PROJECT#sandbox", "DEPOSIT#d2")));
    // A claim of a gift that does not exist.
    put(
        api,
        HashMap::from([
            ("pk".into(), s("GIFT#777")),
            ("sk".into(), s("CLAIM#mallory")),
            ("gsi2pk".into(), s("CLAIMS#mallory")),
            ("gsi2sk".into(), s("0000000000000777")),
            ("gift_id".into(), n(777)),
            ("claimed_at".into(), s("2026-01-01T00:00:00Z")),
        ]),
    )
    .await;
    expected.push((kind::CLAIM_GIFT_MISSING, key_of("GIFT#777", "CLAIM#mallory")));
    // Ferry: a subscription under another pair's pk, one reusing an id, one of a missing customer.
    let h1 = get(api, &subscription_pk("h-1", "ref-hosting"), "SUB").await;
    let h2 = get(api, &subscription_pk("h-2", "ref-hosting"), "SUB").await;
    let mut elsewhere = h1.clone();
    elsewhere.extend([("pk".into(), s(subscription_pk("elsewhere", "ref-hosting"))), ("id".into(), s("sub-moved"))]);
    put(api, elsewhere).await;
    expected.push((kind::FERRY_SUBSCRIPTION_KEY, key_of(&subscription_pk("elsewhere", "ref-hosting"), "SUB")));
    let mut dup = h2.clone();
    dup.extend([("pk".into(), s(subscription_pk("h-dup", "ref-hosting"))), ("reference_subscription_id".into(), s("h-dup"))]);
    put(api, dup).await;
    expected.push((kind::FERRY_DUPLICATE_ID, key_of(&subscription_pk("h-dup", "ref-hosting"), "SUB")));
    expected.push((kind::FERRY_DUPLICATE_ID, key_of(&subscription_pk("h-2", "ref-hosting"), "SUB")));
    let mut ghost = h1.clone();
    ghost.extend([
        ("pk".into(), s(subscription_pk("h-ghost", "ref-hosting"))),
        ("reference_subscription_id".into(), s("h-ghost")),
        ("id".into(), s("sub-ghost")),
        ("customer".into(), s("ghost")),
    ]);
    put(api, ghost).await;
    expected.push((kind::FERRY_CUSTOMER_MISSING, key_of(&subscription_pk("h-ghost", "ref-hosting"), "SUB")));
    // A completed idempotency record without its body.
    put(api, HashMap::from([("pk".into(), s("IDEM#planted")), ("sk".into(), s("IDEM")), ("state".into(), s("COMPLETED")), ("status".into(), n(201))]))
        .await;
    expected.push((kind::IDEMPOTENCY_INCOMPLETE, key_of("IDEM#planted", "IDEM")));
    // An item that does not parse.
    let mut broken = get(api, "WP#wp-a", "WP").await;
    broken.extend([("pk".into(), s("WP#broken")), ("id".into(), s("broken")), ("days_worked".into(), s("five"))]);
    put(api, broken).await;
    expected.push((kind::UNREADABLE, key_of("WP#broken", "WP")));
    expected
}

#[tokio::test]
async fn every_planted_violation_is_reported_with_its_kind_and_keys_and_nothing_else() {
    let api = TestApi::start().await;
    clean_table(&api).await;
    let expected = plant_violations(&api).await;
    let r = report(&api).await;
    for (kind, key) in &expected {
        assert!(
            r.violations.iter().any(|v| v.kind == *kind && v.keys.contains(key)),
            "{kind} on {key} not reported; got {:#?}",
            r.violations
        );
    }
    // The duplicated id is one violation naming both items.
    assert_eq!(r.violations.len(), expected.len() - 1, "exactly the planted ones: {:#?}", r.violations);
    let conservation = r.violations.iter().find(|v| v.kind == kind::WALLET_CONSERVATION).unwrap();
    assert!(conservation.message.contains("(storage, ucloud)") && conservation.message.contains("100"), "{conservation:?}");
    let days = r.violations.iter().find(|v| v.kind == kind::WP_DAYS_PAID).unwrap();
    assert!(days.message.contains("days_paid is 4") && days.message.contains("days add up to 3"), "{days:?}");
}

#[tokio::test]
async fn wallets_without_any_deposit_records_break_conservation() {
    let api = TestApi::start().await;
    project(&api, "sandbox", &[("pi", "PI")]).await;
    assert_eq!(deposit(&api, "sandbox", "cpu", 40).await.status, 200);
    // A table from before deposits kept records: the wallet without its record.
    for item in api.all_items().await {
        if matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with("DEPOSIT#")) {
            let key: Item = item.into_iter().filter(|(k, _)| k == "pk" || k == "sk").collect();
            api.app.db.client.delete_item().table_name(&api.table).set_key(Some(key)).send().await.unwrap();
        }
    }
    let r = report(&api).await;
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].kind, kind::WALLET_CONSERVATION);
    assert_eq!(r.violations[0].keys, vec![key_of("PROJECT#sandbox", "WALLET#cpu#ucloud")]);
}

/// `allotment verify` against the test's DynamoDB Local.
fn verify_command(table: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(crate::import::cli());
    c.args(["verify", "--table", table, "--endpoint", &allotment_tests::dynamo_endpoint()]).args(extra);
    c
}

/// Exit code, stdout, stderr.
async fn run(mut c: Command) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || c.output().expect("run allotment")).await.unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn run_json(table: &str) -> (i32, Value, String) {
    let (code, stdout, stderr) = run(verify_command(table, &["--json", "--segments", "2"])).await;
    (code, serde_json::from_str(&stdout).unwrap_or(Value::Null), stderr)
}

#[tokio::test]
async fn the_command_exits_0_on_a_clean_table_1_on_violations_and_2_on_errors() {
    let api = TestApi::start().await;
    clean_table(&api).await;
    let (code, report, stderr) = run_json(&api.table).await;
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["violations"], json!([]));
    assert_eq!(report["items_scanned"].as_u64(), Some(api.all_items().await.len() as u64));
    assert_eq!(report["checked"]["payment"], 6);
    assert!(stderr.is_empty(), "no bar off a terminal: {stderr}");

    set(&api, "PROJECT#personal:carol", "WALLET#cpu#ucloud", &[("balance", n(-100))]).await;
    let (code, report, stderr) = run_json(&api.table).await;
    assert_eq!(code, 1, "{stderr}\n{report}");
    let found: Vec<(&str, &str)> =
        report["violations"].as_array().unwrap().iter().map(|v| (v["kind"].as_str().unwrap(), v["keys"][0].as_str().unwrap())).collect();
    let carol = key_of("PROJECT#personal:carol", "WALLET#cpu#ucloud");
    assert_eq!(found, vec![(kind::WALLET_CONSERVATION, carol.as_str()), (kind::WALLET_NEGATIVE, carol.as_str())]);
    let message = report["violations"][0]["message"].as_str().unwrap();
    assert!(message.contains("wallets hold 800") && message.contains("deposits add up to 1000"), "{message}");

    let (code, stdout, stderr) = run(verify_command("no-such-table", &["--json"])).await;
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(stderr.contains("no-such-table"), "{stderr}");
    assert_eq!(run(verify_command(&api.table, &["--segments", "0"])).await.0, 2, "bad arguments");
}

#[tokio::test]
async fn the_summary_names_each_violation_and_its_keys() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    assert_eq!(post_packs(&api, 1, vec![pack(100, "2031-01-01", Some("x1"))]).await.status, 201);
    let (code, text, stderr) = run(verify_command(&api.table, &["--progress", "lines"])).await;
    assert_eq!(code, 0, "{text}{stderr}");
    assert!(text.contains("| pack | 1 |") && text.contains("No violations."), "{text}");
    set(&api, "PACK#X#x1", "PACK", &[("gsi1pk", s("NSPACKS#2"))]).await;
    let (code, text, stderr) = run(verify_command(&api.table, &["--progress", "none"])).await;
    assert_eq!(code, 1, "{text}{stderr}");
    assert!(text.contains("1 violations:"), "{text}");
    assert!(text.contains("pack_index: pack of namespace 1 has gsi1pk NSPACKS#2, not NSPACKS#1\n    PACK#X#x1 / PACK\n"), "{text}");
}

/// Issue 29: a pack its run left marked past the undo window, with no commit
/// marker (the run was killed before answering), is reported as an orphan;
/// the same pack with its run's marker, or still young enough to be undone,
/// or adopted (no mark), is not.
#[tokio::test]
async fn a_pack_left_by_a_killed_run_is_reported_as_an_orphan() {
    let api = TestApi::start().await;
    namespace(&api, 1, None, 7).await;
    let at = |ago_secs: i64| allotment::validate::format_timestamp(time::OffsetDateTime::now_utc() - time::Duration::seconds(ago_secs));
    let marked = |id: &str, created_at: String, run: Option<&str>| {
        let mut item: Item = HashMap::from([
            ("pk".into(), s(format!("PACK#U#{id}"))),
            ("sk".into(), s("PACK")),
            ("gsi1pk".into(), s("NSPACKS#1")),
            ("gsi1sk".into(), s(format!("{created_at}#0000#PACK#U#{id}"))),
            ("namespace_id".into(), n(1)),
            ("number_of_minutes".into(), n(5)),
            ("expires_at".into(), s("2099-01-01")),
            ("created_at".into(), s(created_at)),
        ]);
        if let Some(run) = run {
            item.insert("request_id".into(), s(run));
        }
        item
    };
    put(&api, marked("orphan", at(300), Some("killed-run"))).await;
    put(&api, marked("committed", at(300), Some("done-run"))).await;
    put(&api, HashMap::from([("pk".into(), s("PACKREQ#done-run")), ("sk".into(), s("PACKREQ"))])).await;
    put(&api, marked("young", at(5), Some("running-run"))).await;
    put(&api, marked("adopted", at(300), None)).await;
    let report = verify(&api.app.db, 2, |_| {}).await.unwrap();
    let orphans: Vec<&Vec<String>> = report.violations.iter().filter(|v| v.kind == kind::PACK_ORPHAN).map(|v| &v.keys).collect();
    assert_eq!(orphans, vec![&vec![key_of("PACK#U#orphan", "PACK")]], "{report:?}");
}

//! Ferry (SPEC §6): the seed's request and response contract, whole-request
//! checks, each subscription's rules, exactly-once creation under re-posts,
//! concurrency and injected faults, 1000 subscriptions in one request, and
//! the paginated listing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use allotment_tests::{Fault, Resp, TestApi};
use serde_json::{json, Value};

/// The seed's own example subscription, as it stands.
pub fn seed_item() -> Value {
    json!({
        "domain": "customer-domain.co.uk",
        "extension": "co.uk",
        "slug": "domain-nl",
        "contract_period": 36,
        "billing_period": 12,
        "start_date": "2023-01-01",
        "next_contract_date": "2026-01-01",
        "next_billing_date": "2024-01-01",
        "reference_subscription_id": "domain-1234",
        "reference_product_id": ".nl-domain",
        "internal_comment": "2023-02-01: Customer called about incorrect invoice\n2023-02-02: Special discount applied to invoice for this domain"
    })
}

fn placeholder(slug: &str, reference: &str) -> Value {
    json!({
        "slug": slug,
        "contract_period": 12,
        "billing_period": 1,
        "start_date": "2023-01-01",
        "next_contract_date": "2024-01-01",
        "next_billing_date": "2023-02-01",
        "reference_subscription_id": reference,
        "reference_product_id": format!("ref-{slug}"),
    })
}

pub async fn product(api: &TestApi, slug: &str, group: &str, prices: &[(u32, u32)]) {
    let prices: Vec<Value> = prices.iter().map(|(c, b)| json!({"contract_period": c, "billing_period": b, "price": 9.95})).collect();
    let r = api.call("PUT", &format!("/ferry/products/{slug}"), Some(&api.admin()), Some(json!({"group": group, "name": slug, "prices": prices}))).await;
    assert_eq!(r.status, 200, "{r:?}");
}

pub async fn customer(api: &TestApi, id: &str, reference: &str) {
    let r = api.call("PUT", &format!("/ferry/customers/{id}"), Some(&api.admin()), Some(json!({"reference_customer_id": reference}))).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// The products every test here uses.
async fn catalogue(api: &TestApi) {
    product(api, "domain-nl", "domain_extensions", &[(36, 12), (12, 12)]).await;
    product(api, "hosting-basic", "hosting", &[(12, 1), (12, 12)]).await;
    product(api, "ssl-dv", "ssl", &[(12, 1)]).await;
    product(api, "dns-plus", "dns", &[(12, 1)]).await;
}

async fn migrate(api: &TestApi, customer: &str, body: Value) -> Resp {
    api.call("POST", &format!("/ferry/customers/{customer}/subscriptions"), Some(&api.admin()), Some(body)).await
}

fn param<'a>(message: &'a Value, key: &str) -> Option<&'a str> {
    message["parameters"].as_array()?.iter().find(|p| p["key"] == key)?["value"].as_str()
}

async fn list_all(api: &TestApi, customer: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(n) => format!("/ferry/customers/{customer}/subscriptions?next={n}"),
            None => format!("/ferry/customers/{customer}/subscriptions"),
        };
        let r = api.call("GET", &path, Some(&api.admin()), None).await;
        assert_eq!(r.status, 200, "{r:?}");
        out.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(n) => next = Some(n.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn the_seeds_example_migrates_once_with_its_link_and_placeholder_and_a_repost_creates_nothing() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "cust-42", "yh-1542").await;
    let body = json!({"reference_customer_id": "yh-1542", "subscriptions": {
        "domain_extensions": [seed_item()],
        "hosting": [placeholder("hosting-basic", "h-1")],
        "dns": [placeholder("dns-plus", "d-1")],
    }});
    let r = migrate(&api, "cust-42", body.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["failures"], json!([]));
    let success = r.body["success"].as_array().unwrap();
    assert_eq!(success.len(), 3);
    assert_eq!(param(&success[0], "reference_subscription_id"), Some("domain-1234"));
    assert_eq!(param(&success[0], "reference_product_id"), Some(".nl-domain"));
    let id = param(&success[0], "subscription_id").unwrap().to_owned();
    assert!(success[0]["message"].as_str().unwrap().contains(&id));
    assert_eq!(success[0]["baseParameters"], json!([{"key": "customer", "value": "cust-42"}, {"key": "reference_customer_id", "value": "yh-1542"}]));

    let items = list_all(&api, "cust-42").await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["technical_status"], "ACTIVE");
    assert_eq!(items[0]["technical_subscription"], json!({"type": "domain", "provider": "placeholder", "domain": "customer-domain.co.uk"}));
    assert_eq!(items[0]["internal_comment"], seed_item()["internal_comment"]);
    assert_eq!(items[1]["technical_status"], "OK");
    assert_eq!(items[1]["technical_subscription"]["type"], "hosting");
    assert_eq!(items[2]["technical_subscription"], Value::Null, "dns products get no placeholder");
    // One item per subscription, keyed by its reference pair, placeholder inside.
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 3);

    api.faults.reset_counts();
    let again = migrate(&api, "cust-42", body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["success"], json!([]));
    let failures = again.body["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 3);
    assert!(failures[0]["message"].as_str().unwrap().contains("already migrated"), "{again:?}");
    assert_eq!(param(&failures[0], "subscription_id"), Some(id.as_str()), "names the subscription it became");
    assert_eq!(api.faults.write_calls(), 0, "a re-post writes nothing");
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 3);
}

#[tokio::test]
async fn each_subscription_is_checked_on_its_own_and_failures_say_what_to_fix() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    let ext = |domain: &str, extension: &str, reference: &str| {
        let mut i = seed_item();
        i["domain"] = json!(domain);
        i["extension"] = json!(extension);
        i["reference_subscription_id"] = json!(reference);
        i
    };
    let with = |mut i: Value, field: &str, v: Value| {
        i[field] = v;
        i
    };
    let cases: Vec<(Value, &str)> = vec![
        (ext("EXAMPLE.co.uk.", "CO.UK", "ok-1"), ""),
        (ext("пример.рф", "xn--p1ai", "ok-idn"), ""),
        (ext("bar.foo.ck", "foo.ck", "ok-wild"), ""),
        (ext("www.example.co.uk", "co.uk", "e1"), "subdomain of example.co.uk"),
        (ext("co.uk", "co.uk", "e2"), "itself a public suffix"),
        (ext("someone.github.io", "github.io", "e3"), "privately run"),
        (ext("example.nl", "co.uk", "e4"), "does not match"),
        (ext("example.notatld", "notatld", "e5"), "not a public suffix"),
        (with(ext("a.nl", "nl", "e6"), "slug", json!("no-such")), "No product with slug"),
        (with(ext("b.nl", "nl", "e7"), "slug", json!("hosting-basic")), "is in group hosting"),
        (with(ext("c.nl", "nl", "e8"), "contract_period", json!(24)), "no prolongation price"),
        (with(with(ext("d.nl", "nl", "e9"), "contract_period", json!(6)), "billing_period", json!(12)), "exceeds contract_period"),
        (with(ext("e.nl", "nl", "e10"), "start_date", json!("2023-02-30")), "start_date"),
        (ext("ok2.nl", "nl", "ok-1"), "appears earlier in this request"),
    ];
    let body = json!({"reference_customer_id": "r1", "subscriptions": {"domain_extensions": cases.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>()}});
    let r = migrate(&api, "c1", body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let success: Vec<&str> = r.body["success"].as_array().unwrap().iter().map(|m| param(m, "reference_subscription_id").unwrap()).collect();
    assert_eq!(success, vec!["ok-1", "ok-idn", "ok-wild"]);
    let failures = r.body["failures"].as_array().unwrap();
    let expected: Vec<&(Value, &str)> = cases.iter().filter(|(_, why)| !why.is_empty()).collect();
    assert_eq!(failures.len(), expected.len());
    for (f, (item, why)) in failures.iter().zip(expected) {
        assert_eq!(param(f, "reference_subscription_id"), item["reference_subscription_id"].as_str(), "in request order");
        assert!(f["message"].as_str().unwrap().contains(why), "{why}: {f}");
    }
    let items = list_all(&api, "c1").await;
    assert_eq!(items[0]["domain"], "example.co.uk", "stored normalized");
    assert_eq!(items[1]["domain"], "xn--e1afmkfd.xn--p1ai");
    assert_eq!(items[1]["extension"], "xn--p1ai");
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 3, "failed items wrote nothing");
}

#[tokio::test]
async fn whole_request_checks_come_first_and_write_nothing() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    let good = json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [placeholder("hosting-basic", "h-1")]}});
    let r = migrate(&api, "c1", json!({"reference_customer_id": "other", "subscriptions": good["subscriptions"].clone()})).await;
    assert_eq!(r.status, 409, "a foreign reference_customer_id: {r:?}");
    assert_eq!(migrate(&api, "nobody", good.clone()).await.status, 404, "an unregistered customer");

    let mut hosting: Vec<Value> = (0..4).map(|i| placeholder("hosting-basic", &format!("h{i}"))).collect();
    hosting[3]["billing_period"] = json!("monthly");
    let r = migrate(&api, "c1", json!({"reference_customer_id": "r1", "subscriptions": {"hosting": hosting}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"][0]["field"], "subscriptions.hosting[3].billing_period", "{r:?}");

    let mut missing = placeholder("hosting-basic", "h9");
    missing.as_object_mut().unwrap().remove("start_date");
    let mut ext_without_domain = seed_item();
    ext_without_domain.as_object_mut().unwrap().remove("domain");
    let mut unknown_field = placeholder("hosting-basic", "h10");
    unknown_field["colour"] = json!("red");
    for (body, field) in [
        (json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [missing]}}), "subscriptions.hosting[0]"),
        (json!({"reference_customer_id": "r1", "subscriptions": {"domain_extensions": [ext_without_domain]}}), "subscriptions.domain_extensions[0]"),
        (json!({"reference_customer_id": "r1", "subscriptions": {"mail": []}}), "subscriptions"),
        (json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [unknown_field]}}), "subscriptions.hosting[0]"),
        (json!({"reference_customer_id": "r1", "subscriptions": {}, "extra": 1}), "extra"),
        (json!({"subscriptions": {}}), "body"),
        (json!({"reference_customer_id": "", "subscriptions": {}}), "reference_customer_id"),
        (json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [placeholder("hosting-basic", "")]}}), "subscriptions.hosting[0].reference_subscription_id"),
        (json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [with_period(0)]}}), "subscriptions.hosting[0].contract_period"),
        // Found by the contract test: null where the seed has a string.
        (json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [with_null("internal_comment")]}}), "subscriptions.hosting[0].internal_comment"),
        (json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [with_null("domain")]}}), "subscriptions.hosting[0].domain"),
    ] {
        let r = migrate(&api, "c1", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        let named = r.body["error"]["details"].as_array().map(|d| d.iter().any(|e| e["field"].as_str().unwrap_or_default().starts_with(field)));
        assert_eq!(named, Some(true), "{field}: {r:?}");
    }
    let r = api
        .raw("POST", "/ferry/customers/c1/subscriptions", &[("content-type".into(), "application/json".into()), ("authorization".into(), format!("Bearer {}", api.admin()))], b"{\"reference_customer_id\": ".to_vec())
        .await;
    assert_eq!(r.status, 400, "malformed JSON: {r:?}");
    let many: Vec<Value> = (0..501).map(|i| placeholder("hosting-basic", &format!("m{i}"))).collect();
    let r = migrate(&api, "c1", json!({"reference_customer_id": "r1", "subscriptions": {"hosting": many.clone(), "ssl": many}})).await;
    assert_eq!(r.status, 413, "1002 across groups: {r:?}");
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 0);
}

fn with_null(field: &str) -> Value {
    let mut p = placeholder("hosting-basic", "p0");
    p[field] = Value::Null;
    p
}

fn with_period(months: i64) -> Value {
    let mut p = placeholder("hosting-basic", "p0");
    p["contract_period"] = json!(months);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_body_posted_ten_times_at_once_creates_each_subscription_once() {
    let api = Arc::new(TestApi::start().await);
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    customer(&api, "c2", "r2").await;
    let hosting: Vec<Value> = (0..60).map(|i| placeholder("hosting-basic", &format!("h{i}"))).collect();
    let body = json!({"reference_customer_id": "r1", "subscriptions": {"hosting": hosting, "domain_extensions": [seed_item()]}});
    let other: Vec<Value> = (0..60).map(|i| placeholder("ssl-dv", &format!("s{i}"))).collect();
    let other = json!({"reference_customer_id": "r2", "subscriptions": {"ssl": other}});
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (api, body, other) = (api.clone(), body.clone(), other.clone());
        set.spawn(async move {
            if i % 3 == 0 {
                let r = migrate(&api, "c2", other).await;
                assert_eq!(r.status, 200, "{r:?}");
            }
            migrate(&api, "c1", body).await
        });
    }
    let mut successes: HashMap<String, usize> = HashMap::new();
    let mut created: HashMap<String, String> = HashMap::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut answered = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        for m in r.body["success"].as_array().unwrap() {
            let reference = param(m, "reference_subscription_id").unwrap().to_owned();
            *successes.entry(reference.clone()).or_default() += 1;
            created.insert(reference, param(m, "subscription_id").unwrap().to_owned());
        }
        for m in r.body["failures"].as_array().unwrap() {
            assert!(m["message"].as_str().unwrap().contains("migrated"), "{m}");
            skipped.push((param(m, "reference_subscription_id").unwrap().to_owned(), param(m, "subscription_id").unwrap_or("").to_owned()));
        }
        answered += r.body["success"].as_array().unwrap().len() + r.body["failures"].as_array().unwrap().len();
    }
    assert_eq!(answered, 10 * 61, "one message per subscription per response");
    for (reference, id) in &skipped {
        assert_eq!(created.get(reference), Some(id), "a skipped pair names the subscription it became ({reference})");
    }
    assert_eq!(successes.len(), 61, "every subscription succeeded in some response");
    assert!(successes.values().all(|n| *n == 1), "and in exactly one: {successes:?}");
    let c1 = list_all(&api, "c1").await;
    let c2 = list_all(&api, "c2").await;
    assert_eq!((c1.len(), c2.len()), (61, 60), "two customers migrated in parallel do not interfere");
    let ids: HashSet<&str> = c1.iter().chain(&c2).map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 121);
}

#[tokio::test]
async fn faults_are_retried_and_when_retries_run_out_nothing_unwritten_is_reported_and_a_retry_converges() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    let hosting: Vec<Value> = (0..200).map(|i| placeholder("hosting-basic", &format!("h{i}"))).collect();
    let body = json!({"reference_customer_id": "r1", "subscriptions": {"hosting": hosting}});
    api.faults
        .inject("BatchGetItem", Fault::Throttle, 1)
        .inject("BatchGetItem", Fault::Unprocessed, 2)
        .inject("PutItem", Fault::Throttle, 3);
    let r = migrate(&api, "c1", body.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["success"].as_array().unwrap().len(), 200);
    assert_eq!(api.faults.faults_injected(), 6);

    let more: Vec<Value> = (0..200).map(|i| placeholder("hosting-basic", &format!("x{i}"))).collect();
    let body = json!({"reference_customer_id": "r1", "subscriptions": {"hosting": more}});
    api.faults.fail_after("PutItem", 60, Fault::Throttle);
    let r = migrate(&api, "c1", body.clone()).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.body.get("success").is_none(), "a 503 reports nothing as created");
    let written = api.count_prefix("FERRY#SUB#").await - 200;
    assert_eq!(written, 60, "stopped partway: the 60 puts that got through");

    api.faults.clear();
    let r = migrate(&api, "c1", body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let (ok, failed) = (r.body["success"].as_array().unwrap().len(), r.body["failures"].as_array().unwrap().len());
    assert_eq!((ok + written, failed), (200, written), "the retry creates the rest and reports the earlier ones as migrated");
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 400, "every subscription once");
    assert_eq!(list_all(&api, "c1").await.len(), 400);
}

#[tokio::test]
async fn a_thousand_subscriptions_in_one_request_go_through_the_batch_apis() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    let ssl: Vec<Value> = (0..500).map(|i| placeholder("ssl-dv", &format!("s{i}"))).collect();
    let dns: Vec<Value> = (0..500).map(|i| placeholder("dns-plus", &format!("d{i}"))).collect();
    api.faults.reset_counts();
    let started = Instant::now();
    let r = migrate(&api, "c1", json!({"reference_customer_id": "r1", "subscriptions": {"ssl": ssl, "dns": dns}})).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.body["success"].as_array().unwrap().len(), 1000);
    println!("1000 subscriptions in one request: {took:?} (debug build)");
    // One conditional PutItem per subscription (its placeholder inside), no transaction.
    assert_eq!(api.faults.calls("PutItem"), 1000);
    assert_eq!(api.faults.calls("TransactWriteItems"), 0);
    assert!(api.faults.calls("BatchGetItem") <= 12, "products and reference pairs read 100 keys a call");
    assert_eq!(api.faults.calls("GetItem"), 1, "the customer");
    let all = list_all(&api, "c1").await;
    assert_eq!(all.len(), 1000);
    let refs: Vec<&str> = all.iter().map(|s| s["reference_subscription_id"].as_str().unwrap()).collect();
    let mut want: Vec<String> = (0..500).map(|i| format!("s{i}")).collect();
    want.extend((0..500).map(|i| format!("d{i}")));
    assert_eq!(refs, want, "listed in creation (request) order");
}

#[tokio::test]
async fn listing_pages_are_signed_and_unknown_customers_are_404() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    customer(&api, "c2", "r2").await;
    let dns: Vec<Value> = (0..150).map(|i| placeholder("dns-plus", &format!("d{i}"))).collect();
    migrate(&api, "c1", json!({"reference_customer_id": "r1", "subscriptions": {"dns": dns}})).await;
    let first = api.call("GET", "/ferry/customers/c1/subscriptions", Some(&api.admin()), None).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 100);
    let token = first.body["next"].as_str().unwrap().to_owned();
    let second = api.call("GET", &format!("/ferry/customers/c1/subscriptions?next={token}"), Some(&api.admin()), None).await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 50);
    assert_eq!(second.body["next"], Value::Null);
    assert_eq!(api.call("GET", &format!("/ferry/customers/c2/subscriptions?next={token}"), Some(&api.admin()), None).await.status, 400);
    assert_eq!(api.call("GET", &format!("/ferry/customers/c1/subscriptions?next={token}x"), Some(&api.admin()), None).await.status, 400);
    assert_eq!(api.call("GET", "/ferry/customers/nobody/subscriptions", Some(&api.admin()), None).await.status, 404);
}

#[tokio::test]
async fn products_and_customers_are_validated() {
    let api = TestApi::start().await;
    let put = |slug: &str, body: Value| {
        let path = format!("/ferry/products/{slug}");
        let api = &api;
        async move { api.call("PUT", &path, Some(&api.admin()), Some(body)).await }
    };
    for (slug, body, field) in [
        ("p1", json!({"group": "mail", "name": "x", "prices": []}), "group"),
        ("p1", json!({"group": "dns", "name": " ", "prices": []}), "name"),
        ("p1", json!({"group": "dns", "name": "x", "prices": [{"contract_period": 1, "billing_period": 12, "price": 1}]}), "prices[0].billing_period"),
        ("p1", json!({"group": "dns", "name": "x", "prices": [{"contract_period": 0, "billing_period": 0, "price": 1}]}), "prices[0].contract_period"),
        ("p1", json!({"group": "dns", "name": "x", "prices": [{"contract_period": 12, "billing_period": 1, "price": 1.001}]}), "prices[0].price"),
        ("p1", json!({"group": "dns", "name": "x", "prices": [{"contract_period": 12, "billing_period": 1, "price": 1}, {"contract_period": 12, "billing_period": 1, "price": 2}]}), "prices[1]"),
        ("p1", json!({"group": "dns", "name": "x", "prices": [], "extra": 1}), "extra"),
        // Found by the contract test: unknown fields in a price were ignored.
        ("p1", json!({"group": "dns", "name": "x", "prices": [{"contract_period": 12, "billing_period": 1, "price": 1, "currency": "EUR"}]}), "prices[0]"),
        ("p%201", json!({"group": "dns", "name": "x", "prices": []}), "slug"),
    ] {
        let r = put(slug, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.body["error"]["details"].as_array().unwrap().iter().any(|d| d["field"].as_str().unwrap().starts_with(field)), "{field}: {r:?}");
    }
    for body in [json!({"reference_customer_id": ""}), json!({}), json!({"reference_customer_id": 5}), json!({"reference_customer_id": "a", "b": 1})] {
        let r = api.call("PUT", "/ferry/customers/c1", Some(&api.admin()), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
    }
    assert_eq!(api.count_prefix("FERRY#").await, 0);
    let r = put("p1", json!({"group": "dns", "name": "DNS", "prices": [{"contract_period": 12, "billing_period": 1, "price": 1.5}]})).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.bytes).contains("\"price\":1.50"), "money keeps two places: {r:?}");
}

#[tokio::test]
async fn every_ferry_route_needs_a_valid_admin_token() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    let routes = [
        ("PUT", "/ferry/products/p9", Some(json!({"group": "dns", "name": "x", "prices": []}))),
        ("PUT", "/ferry/customers/c9", Some(json!({"reference_customer_id": "r9"}))),
        ("POST", "/ferry/customers/c1/subscriptions", Some(json!({"reference_customer_id": "r1", "subscriptions": {"dns": [placeholder("dns-plus", "d1")]}}))),
        ("GET", "/ferry/customers/c1/subscriptions", None),
    ];
    let bad_signature = allotment_dev::token::mint(b"another-secret", "tool", "admin", 3600, json!({}));
    let expired = allotment_dev::token::mint(allotment_tests::SECRET, "tool", "admin", -3600, json!({}));
    let not_admin = api.token("tool", "payments");
    for (method, path, body) in &routes {
        for (tok, want) in [(None, 401), (Some(bad_signature.as_str()), 401), (Some(expired.as_str()), 401), (Some(not_admin.as_str()), 403)] {
            let r = api.call(method, path, tok, body.clone()).await;
            assert_eq!(r.status, want, "{method} {path}: {r:?}");
        }
    }
    assert_eq!(api.count_prefix("FERRY#SUB#").await, 0);
    assert_eq!(api.count_prefix("FERRY#PRODUCT#p9").await, 0);
}

/// Both reference ids go into one partition key (at most 2048 bytes): 255
/// four-byte characters each pass the character bound but are 400 on bytes,
/// never a 500 from DynamoDB; at the byte limit both are accepted.
#[tokio::test]
async fn reference_ids_are_bounded_in_bytes_as_key_parts() {
    let api = TestApi::start().await;
    catalogue(&api).await;
    customer(&api, "c1", "r1").await;
    let wide = "𝄞".repeat(255);
    let mut sub = placeholder("hosting-basic", &wide);
    sub["reference_product_id"] = json!(wide);
    let r = migrate(&api, "c1", json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [sub]}})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body["error"]["details"][0]["message"].as_str().unwrap_or_default().contains("bytes"), "{r:?}");
    let mut sub = placeholder("hosting-basic", &"x".repeat(255));
    sub["reference_product_id"] = json!("€".repeat(255)); // 765 bytes
    let r = migrate(&api, "c1", json!({"reference_customer_id": "r1", "subscriptions": {"hosting": [sub]}})).await;
    assert_eq!((r.status, r.body["success"].as_array().map(Vec::len)), (200, Some(1)), "{r:?}");
    // A token whose sub could not be a key part is no caller.
    let long_sub = allotment_dev::token::mint(allotment_tests::SECRET, &"s".repeat(300), "admin", 3600, json!({}));
    assert_eq!(api.call("GET", "/me/wallets", Some(&long_sub), None).await.status, 401);
}

/// A page token signed with a guessed key still names only keys DynamoDB
/// takes: one over the key limits is 400, never a 500 from the Query.
#[tokio::test]
async fn a_forged_page_token_with_an_oversized_key_is_400() {
    let api = TestApi::start().await;
    customer(&api, "c1", "r1").await;
    let forged = allotment::pagetoken::PageToken { scope: "ferry:c1".into(), key: format!("x|{}", "P".repeat(3000)) }.encode(&api.app.page_key);
    let r = api.call("GET", &format!("/ferry/customers/c1/subscriptions?next={forged}"), Some(&api.admin()), None).await;
    assert_eq!(r.status, 400, "{r:?}");
}

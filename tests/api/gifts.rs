//! Gifts (SPEC §5): projects, wallets, gifts and claims, through the local
//! front against DynamoDB Local — every rule, the auth matrix, and the
//! invariants under races: no wallet below zero, credit neither created nor
//! lost, one claim per user per renewal period.

use std::collections::HashMap;
use std::sync::Arc;

use allotment::gifts::Criterion;
use allotment_dev::token;
use allotment_tests::{Fault, Resp, TestApi};
use serde_json::{json, Value};
use time::macros::datetime;

/// A user's token: `sub`, and optionally a verified `email` and the `org` claim.
pub fn user(sub: &str, email: Option<&str>, org: Option<&str>) -> String {
    let mut extra = serde_json::Map::new();
    if let Some(e) = email {
        extra.insert("email".into(), json!(e));
        extra.insert("email_verified".into(), json!(true));
    }
    if let Some(o) = org {
        extra.insert("org".into(), json!(o));
    }
    token::mint(allotment_tests::SECRET, sub, "openid", 3600, Value::Object(extra))
}

pub async fn project(api: &TestApi, id: &str, members: &[(&str, &str)]) {
    let members: Vec<Value> = members.iter().map(|(u, r)| json!({"username": u, "role": r})).collect();
    let r = api.call("PUT", &format!("/projects/{id}"), Some(&api.admin()), Some(json!({"title": format!("Project {id}"), "members": members}))).await;
    assert_eq!(r.status, 200, "{r:?}");
}

pub async fn deposit(api: &TestApi, id: &str, category: &str, amount: u64) -> Resp {
    api.call(
        "POST",
        &format!("/projects/{id}/wallets/deposit"),
        Some(&api.admin()),
        Some(json!({"category": category, "provider": "ucloud", "amount": amount})),
    )
    .await
}

pub fn gift_body(owner: &str, resources: &[(&str, u64)], criteria: Value, renew_every: u32) -> Value {
    let resources: Vec<Value> =
        resources.iter().map(|(c, n)| json!({"category": c, "provider": "ucloud", "balanceRequested": n})).collect();
    json!({
        "resourcesOwnedBy": owner,
        "title": "Welcome credits",
        "description": "For new users",
        "resources": resources,
        "renewEvery": renew_every,
        "criteria": criteria,
    })
}

pub async fn create_gift(api: &TestApi, token: &str, body: Value) -> u64 {
    let r = api.call("POST", "/gifts", Some(token), Some(body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["id"].as_u64().expect("gift id")
}

async fn claim(api: &TestApi, token: &str, gift: u64) -> Resp {
    api.call("POST", "/gifts/claim", Some(token), Some(json!({"giftId": gift}))).await
}

/// Balance of (category, ucloud) in a project's wallets, read by the admin (0 if none).
async fn balance(api: &TestApi, project: &str, category: &str) -> u64 {
    let path = if let Some(sub) = project.strip_prefix("personal:") {
        let r = api.call("GET", "/me/wallets", Some(&user(sub, None, None)), None).await;
        return wallet_balance(&r.body, category);
    } else {
        format!("/projects/{project}/wallets")
    };
    let r = api.call("GET", &path, Some(&api.admin()), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    wallet_balance(&r.body, category)
}

fn wallet_balance(body: &Value, category: &str) -> u64 {
    body["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["category"] == category && w["provider"] == "ucloud")
        .map(|w| w["balance"].as_u64().unwrap())
        .unwrap_or(0)
}

async fn available(api: &TestApi, token: &str) -> Vec<u64> {
    let r = api.call("GET", "/gifts/available", Some(token), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["gifts"].as_array().unwrap().iter().map(|g| g["id"].as_u64().unwrap()).collect()
}

/// GIVEN a project with a PI and a funded wallet.
async fn funded(api: &TestApi, cpu: u64) -> String {
    project(api, "sandbox", &[("pi", "PI"), ("adm", "ADMIN"), ("usr", "USER")]).await;
    assert_eq!(deposit(api, "sandbox", "cpu", cpu).await.status, 200);
    user("pi", None, None)
}

#[tokio::test]
async fn a_gift_is_created_found_available_claimed_once_and_its_credit_moves() {
    let api = TestApi::start().await;
    let pi = funded(&api, 1000).await;
    assert_eq!(deposit(&api, "sandbox", "gpu", 50).await.body["balance"], 50);
    let id = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 100), ("gpu", 5)], json!([{"type": "anyone"}]), 0)).await;

    let carol = user("carol", Some("carol@example.org"), None);
    assert_eq!(available(&api, &carol).await, vec![id]);
    let r = api.call("GET", "/me/wallets", Some(&carol), None).await;
    assert_eq!(r.body, json!({"wallets": []}), "no personal wallet before the first credit");

    let r = claim(&api, &carol, id).await;
    assert_eq!((r.status, &r.body), (200, &json!({})));
    assert_eq!(balance(&api, "sandbox", "cpu").await, 900);
    assert_eq!(balance(&api, "sandbox", "gpu").await, 45);
    assert_eq!(balance(&api, "personal:carol", "cpu").await, 100);
    assert_eq!(balance(&api, "personal:carol", "gpu").await, 5);
    assert!(available(&api, &carol).await.is_empty(), "claimed gifts are no longer available");

    let again = claim(&api, &carol, id).await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(balance(&api, "sandbox", "cpu").await, 900, "a refused claim moves nothing");

    let browse = api.call("GET", "/gifts?project=sandbox", Some(&pi), None).await;
    assert_eq!(browse.status, 200, "{browse:?}");
    assert_eq!(browse.body["itemsPerPage"], 50);
    assert_eq!(browse.body["next"], Value::Null);
    assert_eq!(
        browse.body["items"][0],
        json!({"id": id, "resourcesOwnedBy": "sandbox", "title": "Welcome credits", "description": "For new users",
               "resources": [{"category": "cpu", "provider": "ucloud", "balanceRequested": 100},
                             {"category": "gpu", "provider": "ucloud", "balanceRequested": 5}],
               "renewEvery": 0, "criteria": [{"type": "anyone"}]})
    );
    let members_view = api.call("GET", "/projects/sandbox/wallets", Some(&user("usr", None, None)), None).await;
    assert_eq!(members_view.status, 200, "a USER member sees the wallets");
}

#[tokio::test]
async fn claims_are_refused_for_unknown_gifts_non_matching_callers_and_short_owners() {
    let api = TestApi::start().await;
    let pi = funded(&api, 150).await;
    deposit(&api, "sandbox", "gpu", 1).await;
    let carol = user("carol", Some("carol@example.org"), Some("KU.dk"));
    assert_eq!(claim(&api, &carol, 999).await.status, 404);

    let ku_only = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 10)], json!([{"type": "wayf", "org": "au.dk"}]), 0)).await;
    let r = claim(&api, &carol, ku_only).await;
    assert_eq!(r.status, 403, "{r:?}");

    // Owner has enough cpu for one claim but gpu for none: the whole claim fails.
    let both = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 100), ("gpu", 2)], json!([{"type": "anyone"}]), 0)).await;
    let r = claim(&api, &carol, both).await;
    assert_eq!(r.status, 402, "{r:?}");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("gpu/ucloud"), "{r:?}");
    assert_eq!(balance(&api, "sandbox", "cpu").await, 150, "nothing debited");
    assert_eq!(balance(&api, "personal:carol", "cpu").await, 0, "nothing credited");
    assert_eq!(available(&api, &carol).await, vec![both], "not marked claimed");

    for bad in [json!({"giftId": 0}), json!({"giftId": 1.5}), json!({"giftId": "1"}), json!({"giftId": 9007199254740992u64}),
                json!({}), json!({"giftId": 1, "extra": true}), json!([1])] {
        let r = api.call("POST", "/gifts/claim", Some(&carol), Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert_eq!(r.body["error"]["code"], 400);
    }
    assert_eq!(api.count_prefix("GIFT#").await, 2 + 2, "two gifts, one criterion each, no claim");
}

#[tokio::test]
async fn criteria_match_email_domains_and_orgs_case_insensitively_and_exactly() {
    let api = TestApi::start().await;
    let pi = funded(&api, 10_000).await;
    let by_email = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 1)], json!([{"type": "email", "domain": "Example.ORG"}]), 0)).await;
    let by_org = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 1)], json!([{"type": "wayf", "org": "KU.dk"}]), 0)).await;
    let either = create_gift(
        &api,
        &pi,
        gift_body("sandbox", &[("cpu", 1)], json!([{"type": "email", "domain": "nowhere.test"}, {"type": "wayf", "org": "ku.dk"}]), 0),
    )
    .await;
    let cases = [
        (user("a", Some("a@EXAMPLE.org"), None), vec![by_email]),
        (user("b", Some("b@sub.example.org"), None), vec![]),
        (user("c", None, Some("ku.DK")), vec![by_org, either]),
        (user("d", Some("d@example.org"), Some("ku.dk")), vec![by_email, by_org, either]),
        (user("e", None, None), vec![]),
        (user("f", Some("example.org"), None), vec![]),
    ];
    for (who, want) in &cases {
        assert_eq!(&available(&api, who).await, want);
    }
    assert_eq!(claim(&api, &cases[1].0, by_email).await.status, 403, "a subdomain is another domain");
    assert_eq!(claim(&api, &cases[4].0, by_email).await.status, 403, "no email never matches an email criterion");
    assert_eq!(claim(&api, &cases[3].0, either).await.status, 200, "any one criterion suffices");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_users_race_for_a_gift_funded_for_ten_claims() {
    let api = Arc::new(TestApi::start().await);
    let pi = funded(&api, 70).await;
    let id = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 7)], json!([{"type": "anyone"}]), 0)).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let api = api.clone();
        set.spawn(async move { (i, claim(&api, &user(&format!("u{i}"), None, None), id).await) });
    }
    let mut statuses = HashMap::new();
    let mut winners = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.unwrap();
        *statuses.entry(r.status).or_insert(0) += 1;
        if r.status == 200 {
            winners.push(i);
        }
    }
    assert_eq!(statuses, HashMap::from([(200, 10), (402, 40)]));
    assert_eq!(balance(&api, "sandbox", "cpu").await, 0, "the owner wallet ends at exactly 0");
    let mut credited = 0;
    for i in 0..50 {
        let got = balance(&api, &format!("personal:u{i}"), "cpu").await;
        assert_eq!(got, if winners.contains(&i) { 7 } else { 0 });
        credited += got;
    }
    assert_eq!(credited, 70, "credited = debited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_firing_twenty_claims_at_once_gets_exactly_one() {
    let api = Arc::new(TestApi::start().await);
    let pi = funded(&api, 1000).await;
    let id = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 10)], json!([{"type": "anyone"}]), 0)).await;
    let dave = user("dave", None, None);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (api, dave) = (api.clone(), dave.clone());
        set.spawn(async move { claim(&api, &dave, id).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert_eq!(balance(&api, "sandbox", "cpu").await, 990);
    assert_eq!(balance(&api, "personal:dave", "cpu").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_racing_a_delete_complete_before_it_or_answer_404_and_no_credit_is_lost() {
    let api = Arc::new(TestApi::start().await);
    let pi = funded(&api, 100_000).await;
    for round in 0..5 {
        let id = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 10)], json!([{"type": "anyone"}]), 0)).await;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..12 {
            let api = api.clone();
            set.spawn(async move { claim(&api, &user(&format!("r{round}u{i}"), None, None), id).await.status });
        }
        let deleted = {
            let (api, pi) = (api.clone(), pi.clone());
            tokio::spawn(async move { api.call("DELETE", &format!("/gifts/{id}"), Some(&pi), None).await })
        };
        let mut ok = 0;
        while let Some(s) = set.join_next().await {
            let s = s.unwrap();
            assert!(s == 200 || s == 404, "claim answered {s}");
            ok += u64::from(s == 200);
        }
        assert_eq!(deleted.await.unwrap().status, 200);
        let mut credited = 0;
        for i in 0..12 {
            credited += balance(&api, &format!("personal:r{round}u{i}"), "cpu").await;
        }
        assert_eq!(credited, ok * 10, "each 200 credited once, each 404 nothing");
        assert_eq!(api.count_prefix(&format!("GIFT#{id}")).await, 0, "the gift and its claims are gone");
        assert_eq!(claim(&api, &user("late", None, None), id).await.status, 404);
    }
    let total: u64 = {
        let mut t = balance(&api, "sandbox", "cpu").await;
        for round in 0..5 {
            for i in 0..12 {
                t += balance(&api, &format!("personal:r{round}u{i}"), "cpu").await;
            }
        }
        t
    };
    assert_eq!(total, 100_000, "credit is neither created nor lost");
}

#[tokio::test]
async fn renew_every_makes_a_gift_claimable_again_after_that_many_calendar_months() {
    let api = TestApi::start().await;
    let pi = funded(&api, 1000).await;
    let monthly = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 10)], json!([{"type": "anyone"}]), 1)).await;
    let once = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 10)], json!([{"type": "anyone"}]), 0)).await;
    let erin = user("erin", None, None);

    api.app.clock.set(Some(datetime!(2026-01-31 10:00 UTC)));
    assert_eq!(claim(&api, &erin, monthly).await.status, 200);
    assert_eq!(claim(&api, &erin, once).await.status, 200);

    api.app.clock.set(Some(datetime!(2026-02-28 10:00 UTC)));
    assert!(available(&api, &erin).await.is_empty(), "one calendar month has not passed");
    assert_eq!(claim(&api, &erin, monthly).await.status, 409);

    api.app.clock.set(Some(datetime!(2026-03-01 10:00 UTC)));
    assert_eq!(available(&api, &erin).await, vec![monthly], "renewable again; the once-ever gift is not");
    assert_eq!(claim(&api, &erin, monthly).await.status, 200);
    assert_eq!(claim(&api, &erin, monthly).await.status, 409, "the new claim starts a new period");
    assert_eq!(claim(&api, &erin, once).await.status, 409);

    api.app.clock.set(Some(datetime!(2036-03-01 10:00 UTC)));
    assert_eq!(claim(&api, &erin, once).await.status, 409, "renewEvery 0 is once ever");
    assert_eq!(balance(&api, "personal:erin", "cpu").await, 30);
}

async fn seed_gifts(api: &TestApi, owner: &str, first_id: u64, n: u64, criterion: impl Fn(u64) -> Criterion) {
    allotment_dev::fixtures::seed_gifts(&api.app.db, owner, first_id, n, criterion).await.expect("seed gifts");
}

#[tokio::test]
async fn available_gifts_reads_the_same_whether_there_are_10_or_10000_unrelated_gifts() {
    let api = TestApi::start().await;
    let pi = funded(&api, 1000).await;
    let mine = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 1)], json!([{"type": "email", "domain": "example.org"}]), 0)).await;
    let grace = user("grace", Some("grace@example.org"), Some("ku.dk"));
    let calls = |api: &TestApi| {
        ["Query", "BatchGetItem", "GetItem", "Scan"].map(|op| (op, api.faults.calls(op)))
    };
    let mut seen = Vec::new();
    for (first, n) in [(1_000_000, 10), (2_000_000, 9_990)] {
        seed_gifts(&api, "other", first, n, |id| Criterion::Email { domain: format!("d{}.example.com", id % 500) }).await;
        api.faults.reset_counts();
        assert_eq!(available(&api, &grace).await, vec![mine]);
        seen.push(calls(&api));
    }
    assert_eq!(seen[0], seen[1], "DynamoDB calls with 10 and with 10,000 unrelated gifts");
    assert_eq!(seen[0][3], ("Scan", 0));
    assert!(seen[0][0].1 <= 4, "at most anyone + email + org + own claims: {:?}", seen[0]);
}

#[tokio::test]
async fn browsing_600_gifts_returns_each_once_in_creation_order() {
    let api = TestApi::start().await;
    let pi = funded(&api, 1000).await;
    seed_gifts(&api, "sandbox", 1, 600, |_| Criterion::Anyone {}).await;
    for (per_page, consistency) in [(250, "REQUIRE"), (25, "PREFER"), (100, "REQUIRE")] {
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/gifts?project=sandbox&itemsPerPage={per_page}&consistency={consistency}");
            if let Some(n) = &next {
                path.push_str(&format!("&next={n}"));
            }
            let r = api.call("GET", &path, Some(&pi), None).await;
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(r.body["itemsPerPage"], per_page);
            ids.extend(r.body["items"].as_array().unwrap().iter().map(|g| g["id"].as_u64().unwrap()));
            pages += 1;
            match r.body["next"].as_str() {
                Some(n) => next = Some(n.to_owned()),
                None => break,
            }
        }
        assert_eq!(ids, (1..=600).collect::<Vec<u64>>(), "{per_page} per page");
        assert_eq!(pages, 600usize.div_ceil(per_page));
    }
    // Any other page size is 50; itemsToSkip skips from the start.
    let r = api.call("GET", "/gifts?project=sandbox&itemsPerPage=7&itemsToSkip=590", Some(&pi), None).await;
    assert_eq!(r.body["itemsPerPage"], 50);
    let ids: Vec<u64> = r.body["items"].as_array().unwrap().iter().map(|g| g["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (591..=600).collect::<Vec<u64>>());
    assert_eq!(r.body["next"], Value::Null);

    let first = api.call("GET", "/gifts?project=sandbox&itemsPerPage=10", Some(&pi), None).await;
    let token = first.body["next"].as_str().unwrap().to_owned();
    project(&api, "other", &[("pi", "PI")]).await;
    for (path, why) in [
        (format!("/gifts?project=other&next={token}"), "a token of another project"),
        (format!("/gifts?project=sandbox&next={}x", token), "a tampered token"),
        ("/gifts?project=sandbox&next=eyJwIjoic2FuZGJveCIsImsiOiJHSUZUIzAwMDAwMDAwMDAwMDAwMDUifQ.AAAAAAAAAAAAAAAAAAAAAA".to_owned(), "a forged token"),
        ("/gifts?project=sandbox&consistency=ALWAYS".to_owned(), "an unknown consistency"),
        ("/gifts?project=sandbox&itemsToSkip=-1".to_owned(), "a negative skip"),
        ("/gifts".to_owned(), "no project"),
        ("/gifts?project=a:b".to_owned(), "a malformed project id"),
    ] {
        let r = api.call("GET", &path, Some(&pi), None).await;
        assert_eq!(r.status, 400, "{why}: {r:?}");
    }
    for who in ["usr", "stranger"] {
        let r = api.call("GET", "/gifts?project=sandbox", Some(&user(who, None, None)), None).await;
        assert_eq!(r.status, 403, "{who}: {r:?}");
    }
    let r = api.call("GET", "/gifts?project=sandbox", Some(&user("adm", None, None)), None).await;
    assert_eq!(r.status, 200, "an ADMIN browses");
}

#[tokio::test]
async fn an_interrupted_delete_is_finished_by_running_it_again_and_blocks_claims_meanwhile() {
    let api = TestApi::start().await;
    let pi = funded(&api, 100_000).await;
    let id = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 1)], json!([{"type": "anyone"}, {"type": "wayf", "org": "ku.dk"}]), 0)).await;
    for i in 0..60 {
        assert_eq!(claim(&api, &user(&format!("c{i}"), None, None), id).await.status, 200);
    }
    api.faults.fail_after("BatchWriteItem", 1, Fault::Throttle);
    let r = api.call("DELETE", &format!("/gifts/{id}"), Some(&pi), None).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.headers.contains_key("retry-after"));
    let left = api.count_prefix(&format!("GIFT#{id}")).await;
    assert!(left > 1 && left < 63, "stopped midway: {left} items left");

    // In between: no claim succeeds, and nobody sees it available or listed.
    let newcomer = user("newcomer", None, Some("ku.dk"));
    assert_eq!(claim(&api, &newcomer, id).await.status, 404);
    assert!(available(&api, &newcomer).await.is_empty());
    let listed = api.call("GET", "/gifts?project=sandbox", Some(&pi), None).await;
    assert_eq!(listed.body["items"], json!([]));

    api.faults.clear();
    let r = api.call("DELETE", &format!("/gifts/{id}"), Some(&pi), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(api.count_prefix(&format!("GIFT#{id}")).await, 0);
    assert_eq!(api.call("DELETE", &format!("/gifts/{id}"), Some(&pi), None).await.status, 404);
    assert_eq!(balance(&api, "sandbox", "cpu").await, 100_000 - 60, "claims made before the delete keep their credit");
    assert_eq!(balance(&api, "personal:c59", "cpu").await, 1);
}

#[tokio::test]
async fn only_pis_and_admins_of_the_owner_create_and_delete_gifts() {
    let api = TestApi::start().await;
    let pi = funded(&api, 100).await;
    let body = gift_body("sandbox", &[("cpu", 1)], json!([{"type": "anyone"}]), 0);
    for who in ["usr", "stranger"] {
        let r = api.call("POST", "/gifts", Some(&user(who, None, None)), Some(body.clone())).await;
        assert_eq!(r.status, 403, "{who}: {r:?}");
    }
    let r = api.call("POST", "/gifts", Some(&pi), Some(gift_body("nosuch", &[("cpu", 1)], json!([{"type": "anyone"}]), 0))).await;
    assert_eq!(r.status, 403, "{r:?}");
    let by_admin = create_gift(&api, &user("adm", None, None), body.clone()).await;
    for who in ["usr", "stranger"] {
        let r = api.call("DELETE", &format!("/gifts/{by_admin}"), Some(&user(who, None, None)), None).await;
        assert_eq!(r.status, 403, "{who}: {r:?}");
    }
    assert_eq!(api.call("DELETE", &format!("/gifts/{by_admin}"), Some(&pi), None).await.status, 200);
    for bad in ["0", "abc", "9007199254740992", "-1", "1.0"] {
        assert_eq!(api.call("DELETE", &format!("/gifts/{bad}"), Some(&pi), None).await.status, 400, "{bad}");
    }
    let r = api.call("GET", "/projects/sandbox/wallets", Some(&user("stranger", None, None)), None).await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = api.call("GET", "/projects/nosuch/wallets", Some(&api.admin()), None).await;
    assert_eq!(r.status, 404, "{r:?}");
}

#[tokio::test]
async fn bad_gift_bodies_are_400_or_402_and_write_nothing() {
    let api = TestApi::start().await;
    let pi = funded(&api, 100).await;
    let good = gift_body("sandbox", &[("cpu", 1)], json!([{"type": "anyone"}]), 0);
    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let long = "x".repeat(129);
    let twenty_one: Vec<Value> = (0..21).map(|i| json!({"type": "email", "domain": format!("d{i}.org")})).collect();
    let cases: Vec<(Value, &str)> = vec![
        (with("title", json!("")), "title"),
        (with("title", json!("   ")), "title"),
        (with("title", json!(long)), "title"),
        (with("description", json!("")), "description"),
        (with("resources", json!([])), "resources"),
        (with("criteria", json!([])), "criteria"),
        (with("criteria", json!(twenty_one)), "criteria"),
        (with("criteria", json!([{"type": "everyone"}])), "criteria[0]"),
        (with("criteria", json!([{"type": "email"}])), "criteria[0]"),
        (with("criteria", json!([{"type": "email", "domain": "not a domain"}])), "criteria[0].domain"),
        (with("criteria", json!([{"type": "wayf", "org": ""}])), "criteria[0].org"),
        (with("criteria", json!([{"type": "anyone"}, {"type": "anyone"}])), "criteria[1]"),
        // Found by the contract test: fields beside `type` were ignored.
        (with("criteria", json!([{"type": "anyone", "domain": "example.org"}])), "criteria[0]"),
        (with("criteria", json!([{"type": "email", "domain": " example.org"}])), "criteria[0].domain"),
        (with("title", json!(format!(" {}", "x".repeat(128)))), "title"),
        (with("renewEvery", json!(-1)), "renewEvery"),
        (with("renewEvery", json!(1.5)), "renewEvery"),
        (with("resourcesOwnedBy", json!("")), "resourcesOwnedBy"),
        (with("resourcesOwnedBy", json!("personal:pi")), "resourcesOwnedBy"),
        (with("resources", json!([{"category": "cpu", "provider": "ucloud", "balanceRequested": 0}])), "resources[0].balanceRequested"),
        (with("resources", json!([{"category": "cpu", "provider": "ucloud", "balanceRequested": 2.5}])), "resources[0].balanceRequested"),
        (with("resources", json!([{"category": "cpu", "provider": "ucloud", "balanceRequested": 9007199254740992u64}])), "resources[0].balanceRequested"),
        (with("resources", json!([{"category": "cpu", "provider": "ucloud", "balanceRequested": "1"}])), "resources[0].balanceRequested"),
        (with("resources", json!([{"category": "c#1", "provider": "ucloud", "balanceRequested": 1}])), "resources[0].category"),
        (with("resources", json!([{"category": "cpu", "provider": "ucloud", "balanceRequested": 1}, {"category": "cpu", "provider": "ucloud", "balanceRequested": 2}])), "resources[1]"),
        (with("id", json!(5)), "id"),
        (with("colour", json!("red")), "colour"),
    ];
    for (body, field) in cases {
        let r = api.call("POST", "/gifts", Some(&pi), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        let details = r.body["error"]["details"].as_array().cloned().unwrap_or_default();
        assert!(details.iter().any(|d| d["field"].as_str().unwrap_or_default().starts_with(field)), "{field}: {r:?}");
    }
    let r = api.raw("POST", "/gifts", &[("content-type".into(), "application/json".into()), ("authorization".into(), format!("Bearer {pi}"))], b"{\"title\": ".to_vec()).await;
    assert_eq!(r.status, 400, "malformed JSON: {r:?}");
    let r = api.raw("POST", "/gifts", &[("content-type".into(), "text/plain".into()), ("authorization".into(), format!("Bearer {pi}"))], good.to_string().into_bytes()).await;
    assert_eq!(r.status, 415);
    let r = api.call("POST", "/gifts", Some(&pi), Some(gift_body("sandbox", &[("cpu", 1), ("tape", 1)], json!([{"type": "anyone"}]), 0))).await;
    assert_eq!(r.status, 402, "a resource without a wallet: {r:?}");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("tape/ucloud"));
    assert_eq!(api.count_prefix("GIFT#").await, 0, "nothing written");
    assert_eq!(api.count_prefix("SEQ#").await, 0, "not even an id taken");
}

#[tokio::test]
async fn bad_projects_and_deposits_are_400_and_write_nothing() {
    let api = TestApi::start().await;
    let admin = api.admin();
    let put = |id: &str, body: Value| {
        let (api, admin, id) = (&api, admin.clone(), id.to_owned());
        async move { api.call("PUT", &format!("/projects/{id}"), Some(&admin), Some(body)).await }
    };
    let members = json!([{"username": "pi", "role": "PI"}]);
    for (id, body, field) in [
        ("p1", json!({"title": "", "members": members}), "title"),
        ("p1", json!({"title": "t", "members": []}), "members"),
        ("p1", json!({"title": "t", "members": [{"username": "a", "role": "USER"}]}), "members"),
        ("p1", json!({"title": "t", "members": [{"username": "a", "role": "PI"}, {"username": "b", "role": "PI"}]}), "members"),
        ("p1", json!({"title": "t", "members": [{"username": "a", "role": "OWNER"}]}), "members[0].role"),
        ("p1", json!({"title": "t", "members": [{"username": "", "role": "PI"}]}), "members[0].username"),
        ("p1", json!({"title": "t", "members": [{"username": "a", "role": "PI"}, {"username": "a", "role": "USER"}]}), "members[1].username"),
        ("p1", json!({"title": "t", "members": members, "extra": 1}), "extra"),
        ("p:1", json!({"title": "t", "members": members}), "id"),
    ] {
        let r = put(id, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.body["error"]["details"].as_array().unwrap().iter().any(|d| d["field"].as_str().unwrap().starts_with(field)), "{field}: {r:?}");
    }
    assert_eq!(api.count_prefix("PROJECT#").await, 0);
    assert_eq!(deposit(&api, "p1", "cpu", 5).await.status, 404, "deposit into an unknown project");
    project(&api, "p1", &[("pi", "PI")]).await;
    for body in [
        json!({"category": "cpu", "provider": "ucloud", "amount": 0}),
        json!({"category": "cpu", "provider": "ucloud", "amount": -5}),
        json!({"category": "cpu", "provider": "ucloud", "amount": 1.5}),
        json!({"category": "cpu", "provider": "ucloud", "amount": 9007199254740992u64}),
        json!({"category": "", "provider": "ucloud", "amount": 1}),
        json!({"category": "cpu", "amount": 1}),
        json!({"category": "cpu", "provider": "ucloud", "amount": 1, "note": "x"}),
    ] {
        let r = api.call("POST", "/projects/p1/wallets/deposit", Some(&admin), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
    }
    assert_eq!(api.count_prefix("PROJECT#").await, 1, "only the project, no wallet");
    // Up to 2^53 − 1, never past it.
    assert_eq!(deposit(&api, "p1", "cpu", 9007199254740990).await.status, 200);
    assert_eq!(deposit(&api, "p1", "cpu", 1).await.body["balance"], 9007199254740991u64);
    assert_eq!(deposit(&api, "p1", "cpu", 1).await.status, 409);
    assert_eq!(balance(&api, "p1", "cpu").await, 9007199254740991);
}

#[tokio::test]
async fn deposits_apply_every_time_unless_an_idempotency_key_makes_a_repeat_a_replay() {
    let api = TestApi::start().await;
    project(&api, "p1", &[("pi", "PI")]).await;
    deposit(&api, "p1", "cpu", 10).await;
    deposit(&api, "p1", "cpu", 10).await;
    assert_eq!(balance(&api, "p1", "cpu").await, 20, "no key: applied twice");
    let body = br#"{"category": "cpu", "provider": "ucloud", "amount": 5}"#;
    let first = api.call_with_key("POST", "/projects/p1/wallets/deposit", &api.admin(), "dep-1", body).await;
    let again = api.call_with_key("POST", "/projects/p1/wallets/deposit", &api.admin(), "dep-1", body).await;
    assert_eq!(first.status, 200);
    assert_eq!(again.bytes, first.bytes);
    assert_eq!(again.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(balance(&api, "p1", "cpu").await, 25, "the repeat was a replay");
}

#[tokio::test]
async fn every_gift_route_refuses_bad_tokens_and_the_wrong_scope() {
    let api = TestApi::start().await;
    let pi = funded(&api, 100).await;
    let id = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 1)], json!([{"type": "anyone"}]), 0)).await;
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("PUT", "/projects/p9".into(), Some(json!({"title": "t", "members": [{"username": "a", "role": "PI"}]}))),
        ("POST", "/projects/sandbox/wallets/deposit".into(), Some(json!({"category": "cpu", "provider": "ucloud", "amount": 1}))),
        ("GET", "/projects/sandbox/wallets".into(), None),
        ("GET", "/me/wallets".into(), None),
        ("POST", "/gifts".into(), Some(gift_body("sandbox", &[("cpu", 1)], json!([{"type": "anyone"}]), 0))),
        ("DELETE", format!("/gifts/{id}"), None),
        ("GET", "/gifts?project=sandbox".into(), None),
        ("GET", "/gifts/available".into(), None),
        ("POST", "/gifts/claim".into(), Some(json!({"giftId": id}))),
    ];
    let bad_signature = token::mint(b"another-secret", "pi", "admin", 3600, json!({}));
    let expired = token::mint(allotment_tests::SECRET, "pi", "admin", -3600, json!({}));
    let no_sub = token::mint(allotment_tests::SECRET, "", "admin", 3600, json!({}));
    for (method, path, body) in &routes {
        for (tok, why) in [(None, "no token"), (Some("x.y.z"), "garbage"), (Some(bad_signature.as_str()), "bad signature"),
                           (Some(expired.as_str()), "expired"), (Some(no_sub.as_str()), "no sub")] {
            let r = api.call(method, path, tok, body.clone()).await;
            assert_eq!(r.status, 401, "{method} {path} {why}: {r:?}");
            assert_eq!(r.body["error"]["code"], 401);
        }
    }
    // 403: the provisioner's routes without `admin`; role-checked routes with a USER.
    let usr = user("usr", None, None);
    for (method, path, body) in &routes[..2] {
        let r = api.call(method, path, Some(&pi), body.clone()).await;
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
    }
    for (method, path, body) in [&routes[4], &routes[5], &routes[6]] {
        let r = api.call(method, path, Some(&usr), body.clone()).await;
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
    }
    assert_eq!(api.call("GET", "/projects/sandbox/wallets", Some(&user("nobody", None, None)), None).await.status, 403);
    assert_eq!(api.count_prefix("PROJECT#p9").await, 0);
    assert_eq!(balance(&api, "sandbox", "cpu").await, 100, "nothing deposited or claimed");
    assert_eq!(api.count_prefix("GIFT#").await, 2, "the one gift and its criterion");
}

/// Only claims the caller cannot set count: an email without
/// `email_verified` (true, or Cognito's string "true") matches no email
/// criterion, and the organisation comes only from the claim the stack names.
#[tokio::test]
async fn criteria_trust_only_verified_emails_and_the_administrators_org_claim() {
    let api = TestApi::with_app(allotment_tests::quick_retry(), Default::default(), |app| app.org_claim = "custom:org".into()).await;
    let pi = funded(&api, 100).await;
    let by_email = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 1)], json!([{"type": "email", "domain": "example.org"}]), 0)).await;
    let by_org = create_gift(&api, &pi, gift_body("sandbox", &[("cpu", 1)], json!([{"type": "wayf", "org": "ku.dk"}]), 0)).await;
    let token = |sub: &str, extra: Value| token::mint(allotment_tests::SECRET, sub, "openid", 3600, extra);
    let unverified = token("u1", json!({"email": "u1@example.org"}));
    let said_false = token("u2", json!({"email": "u2@example.org", "email_verified": false}));
    let as_string = token("u3", json!({"email": "u3@example.org", "email_verified": "true"}));
    let self_set_org = token("u4", json!({"org": "ku.dk"}));
    let admins_org = token("u5", json!({"custom:org": "ku.dk"}));
    assert_eq!(available(&api, &unverified).await, Vec::<u64>::new());
    assert_eq!(available(&api, &said_false).await, Vec::<u64>::new());
    assert_eq!(available(&api, &as_string).await, vec![by_email]);
    assert_eq!(available(&api, &self_set_org).await, Vec::<u64>::new());
    assert_eq!(available(&api, &admins_org).await, vec![by_org]);
    assert_eq!(claim(&api, &unverified, by_email).await.status, 403);
    assert_eq!(claim(&api, &self_set_org, by_org).await.status, 403);
    assert_eq!(claim(&api, &as_string, by_email).await.status, 200);
    assert_eq!(claim(&api, &admins_org, by_org).await.status, 200);
}

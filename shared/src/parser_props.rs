//! Property tests over the request parsers, bounded (proptest's 256 cases a
//! property; `PROPTEST_CASES` raises it): whatever bytes a caller sends —
//! JSON shaped like our inputs, numbers past 2^53, deep nesting, invalid
//! UTF-8, duplicate keys — each parser and validator answers a 4xx or a
//! value, never a panic and never a 5xx; the Idempotency-Key fingerprint's
//! canonical text is exactly a `Value` tree's; bulk bodies never yield more
//! entries than the limit.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::{bounded_array, parse_json};

const FIELDS: &[&str] = &[
    "packs", "number_of_minutes", "expires_at", "purchase_xid", "name", "parent_id", "owner_id", "workPeriodId", "days",
    "amount", "status", "memberRate", "customerRate", "billingAccountId", "resourceBookingId", "userHandle", "startDate",
    "endDate", "daysWorked", "category", "provider", "balanceRequested", "resourcesOwnedBy", "title", "description",
    "resources", "renewEvery", "criteria", "type", "domain", "org", "giftId", "members", "username", "role", "group",
    "prices", "contract_period", "billing_period", "price", "reference_customer_id", "subscriptions", "slug",
    "reference_subscription_id", "reference_product_id", "id",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(Value::from(9_007_199_254_740_993u64)),
        (-1e12f64..1e12).prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u32..100).prop_map(Value::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9._-]{0,12}", "\\PC{0,8}", Just("2026-02-30".to_owned()), Just("2026-01-05".to_owned()), Just(" ".to_owned())]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())),
        ]
    })
}

/// A body: JSON, JSON with a byte changed, or JSON cut short.
fn body() -> impl Strategy<Value = Vec<u8>> {
    (json(), any::<u8>(), any::<prop::sample::Index>(), 0u8..4).prop_map(|(v, byte, at, how)| {
        let mut bytes = v.to_string().into_bytes();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            match how {
                1 => bytes[i] = byte,
                2 => bytes.truncate(i),
                _ => {}
            }
        }
        bytes
    })
}

fn client_error(e: &ApiError) -> bool {
    (400..500).contains(&e.status())
}

/// Parses and validates `bytes` as every input the API takes.
fn every_parser(bytes: &[u8]) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut check = |what: &str, r: Result<(), ApiError>| {
        if let Err(e) = r {
            if !client_error(&e) {
                errors.push(format!("{what}: {} {e:?}", e.status()));
            }
        }
    };
    check("packs", parse_json(bytes).and_then(|i| crate::packs::validate_packs(i).map(drop).map_err(ApiError::from)));
    check("namespace", parse_json(bytes).and_then(|i| crate::packs::validate_namespace(crate::packs::NamespaceId(1), i).map(drop).map_err(ApiError::from)));
    check("work period", parse_json(bytes).and_then(|i| crate::payments::validate_work_period("w".into(), i).map(drop).map_err(ApiError::from)));
    check("payment", parse_json(bytes).and_then(|i| crate::payments::validate_new_payment(i).map(drop).map_err(ApiError::from)));
    check("patch", parse_json(bytes).and_then(|i| crate::payments::validate_change(crate::payments::Powers { edit: true, process: true }, i).map(drop).map_err(ApiError::from)));
    check("project", parse_json(bytes).and_then(|i| crate::gifts::validate_project("p".into(), i).map(drop).map_err(ApiError::from)));
    check("deposit", parse_json::<crate::gifts::DepositInput>(bytes).and_then(|i| crate::gifts::validate_deposit(&i).map_err(ApiError::from)));
    check("gift", parse_json(bytes).and_then(|i| crate::gifts::validate_gift(i, "t".into()).map(drop).map_err(ApiError::from)));
    check("claim", parse_json::<crate::gifts::ClaimInput>(bytes).map(drop));
    check("product", parse_json(bytes).and_then(|i| crate::ferry::validate_product("s".into(), i).map(drop).map_err(ApiError::from)));
    check("migration", parse_json::<crate::ferry::MigrationRequest>(bytes).map(drop));
    check("bulk", bounded_array(bytes, 1000).map(drop));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

proptest! {
    #[test]
    fn every_parser_answers_a_value_or_a_client_error(bytes in body()) {
        prop_assert_eq!(every_parser(&bytes), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_are_client_errors_too(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(every_parser(&bytes), Ok(()));
    }

    #[test]
    fn the_fingerprints_canonical_text_is_a_value_trees(v in json()) {
        let text = v.to_string();
        let canonical = crate::idempotency::canonical(text.as_bytes()).map(|c| String::from_utf8_lossy(&c).into_owned());
        let tree = serde_json::from_str::<Value>(&text).map(|v| v.to_string()).ok();
        prop_assert_eq!(canonical, tree);
    }

    #[test]
    fn bulk_bodies_never_yield_more_than_the_limit(n in 0usize..40, max in 1usize..20) {
        let body = format!("[{}]", vec!["{}"; n].join(","));
        match bounded_array(body.as_bytes(), max) {
            Ok(entries) => prop_assert!(!entries.is_empty() && entries.len() <= max && entries.len() == n),
            Err(e) => {
                let expected = if n == 0 { 400 } else { 413 };
                prop_assert_eq!(e.status(), expected);
            }
        }
    }
}

#[test]
fn the_hostile_classics_are_client_errors() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        b"{\"packs\": [{\"number_of_minutes\": 1, \"number_of_minutes\": 2, \"expires_at\": \"2030-01-01\"}]}".to_vec(),
        vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
        b"{\"workPeriodId\": \"w\", \"days\": 0, \"amount\": 1e400}".to_vec(),
        b"{\"workPeriodId\": \"w\", \"days\": 18446744073709551616}".to_vec(),
        b"{\"giftId\": 9007199254740993}".to_vec(),
        b"{\"number_of_minutes\": -0}".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
    ];
    for bytes in cases {
        assert_eq!(every_parser(&bytes), Ok(()), "{:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(60)]));
    }
}

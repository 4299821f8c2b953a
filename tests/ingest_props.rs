//! Property tests over the uplink handlers: valid payloads, mutated at a
//! random place into arbitrary JSON, truncated or replaced by random bytes,
//! are posted through the real router. Whatever arrives, the answer is 201
//! or a 4xx JSON error, never a 5xx, and a rejected request writes nothing.
mod common;

use axum::http::StatusCode;
use common::{payload, Backend, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value as Json};

const SEEDS: [&str; 6] = [
    "single__test_temperature_3303_0_5700.json",
    "single__observe_fw_state_5_0_3.json",
    "single__registered_10240_0.json",
    "single__registration_update_10240_2.json",
    "single__unregistered_10240_1.json",
    "composite__onboarding_read_object3.json",
];

fn leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        Just(json!("1e400")),
        Just(json!("NaN")),
        Just(json!("-0")),
        Just(json!("0x1F")),
        Just(json!("a\u{0}b")),
        Just(json!("/3/0/7/1")),
        Just(json!("obj")),
        Just(json!("multiResource")),
        Just(json!("resourceInstance")),
        Just(json!("OBJLNK")),
        Just(json!("NONE")),
        Just(json!("3:4")),
        ".{0,12}".prop_map(Json::String),
        "[0-9a-fA-F]{0,9}".prop_map(Json::String),
        Just(Json::String("é".repeat(300))),
    ]
}

fn any_json() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("[a-z_/0-9]{0,6}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the node at the n-th position of a depth-first walk.
    Replace(usize, Json),
    /// Remove the n-th object key met in a depth-first walk.
    RemoveKey(usize),
    /// Keep only the first n bytes of the body.
    Truncate(usize),
    /// Random bytes instead of the body.
    Bytes(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (0usize..200, any_json()).prop_map(|(n, v)| Mutation::Replace(n, v)),
        2 => (0usize..200).prop_map(Mutation::RemoveKey),
        1 => (0usize..2000).prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Bytes),
    ]
}

/// Walks depth-first; applies `f` to the n-th node. Returns whether it did.
fn at_node(v: &mut Json, n: &mut usize, f: &mut dyn FnMut(&mut Json)) -> bool {
    if *n == 0 {
        f(v);
        return true;
    }
    *n -= 1;
    match v {
        Json::Array(items) => items.iter_mut().any(|c| at_node(c, n, f)),
        Json::Object(map) => map.values_mut().any(|c| at_node(c, n, f)),
        _ => false,
    }
}

fn remove_key(v: &mut Json, n: &mut usize) -> bool {
    match v {
        Json::Object(map) => {
            if *n < map.len() {
                let key = map.keys().nth(*n).cloned().unwrap();
                map.remove(&key);
                return true;
            }
            *n -= map.len();
            map.values_mut().any(|c| remove_key(c, n))
        }
        Json::Array(items) => items.iter_mut().any(|c| remove_key(c, n)),
        _ => false,
    }
}

fn mutate(seed: &str, m: &Mutation) -> Vec<u8> {
    let mut v: Json = serde_json::from_str(seed).unwrap();
    match m {
        Mutation::Replace(n, new) => {
            let mut n = *n % 120;
            at_node(&mut v, &mut n, &mut |node| *node = new.clone());
        }
        Mutation::RemoveKey(n) => {
            remove_key(&mut v, &mut n.clone());
        }
        Mutation::Truncate(n) => {
            let bytes = seed.as_bytes();
            return bytes[..(*n).min(bytes.len())].to_vec();
        }
        Mutation::Bytes(b) => return b.clone(),
    }
    serde_json::to_vec(&v).unwrap()
}

fn run(backend: Backend, cases: u32) {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(TestApp::new(backend));
    let seeds: Vec<String> = SEEDS.iter().map(|s| payload(s)).collect();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..SEEDS.len(), mutation());
    runner
        .run(&strategy, |(seed, m)| {
            let body = mutate(&seeds[seed], &m);
            let path = if SEEDS[seed].starts_with("composite") {
                "/leshan_api/resource/composite"
            } else {
                "/leshan_api/resource/single"
            };
            rt.block_on(async {
                let before = app.count("resource").await;
                let events_before = app.count("event").await;
                let (status, answer) = app.ingest(path, body.clone()).await;
                let after = app.count("resource").await;
                let text = String::from_utf8_lossy(&body);
                prop_assert!(
                    status == StatusCode::CREATED || status.is_client_error(),
                    "{status} for {text}: {answer}"
                );
                if status == StatusCode::CREATED {
                    prop_assert_eq!(after - before, answer["stored"].as_i64().unwrap());
                } else {
                    prop_assert!(answer["error"].is_string(), "{answer}");
                    prop_assert_eq!(after, before, "a rejected request wrote values: {}", text);
                    prop_assert_eq!(app.count("event").await, events_before);
                }
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
}

#[test]
fn sqlite_mutated_payloads_never_fail_the_server() {
    run(Backend::Sqlite, 300);
}

#[test]
fn postgres_mutated_payloads_never_fail_the_server() {
    run(Backend::Postgres, 300);
}

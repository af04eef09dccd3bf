//! Property tests over hostile input (proptest, since `cargo fuzz` needs a nightly compiler):
//! the request-body parser, the prompt analyser, the cache-key canonicaliser and the SSE/NDJSON
//! framing checks get arbitrary bytes and arbitrary JSON, and must neither panic nor break
//! their invariants. The budget is fixed ([`CASES`] per property, a few seconds in all), so CI
//! runs them every time; `PROPTEST_CASES` raises it for a longer local run.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::api::prompt::PromptView;
use crate::api::{request, Forwarded};
use crate::cache::key::{plan, CachePolicy, Replay, RoutedRequest};
use crate::cache::storage::complete;
use crate::routing::analysis::analyse;

const CASES: u32 = 2000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig::with_cases(cases)
}

const ENDPOINTS: [Forwarded; 8] = [
    Forwarded::ChatCompletions,
    Forwarded::Completions,
    Forwarded::Embeddings,
    Forwarded::OllamaChat,
    Forwarded::OllamaGenerate,
    Forwarded::OllamaEmbed,
    Forwarded::OllamaEmbeddings,
    Forwarded::OllamaShow,
];

/// Arbitrary JSON, biased towards the fields the router reads.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "\\PC{0,200}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![
            Just("model".to_string()),
            Just("messages".to_string()),
            Just("role".to_string()),
            Just("content".to_string()),
            Just("prompt".to_string()),
            Just("stream".to_string()),
            Just("temperature".to_string()),
            Just("seed".to_string()),
            Just("images".to_string()),
            Just("tools".to_string()),
            Just("options".to_string()),
            Just("input".to_string()),
            Just("keep_alive".to_string()),
            "[a-z_]{1,12}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body_object() -> impl Strategy<Value = Map<String, Value>> {
    json_value().prop_map(|v| match v {
        Value::Object(map) => map,
        other => {
            let mut map = Map::new();
            map.insert("messages".to_string(), other);
            map
        }
    })
}

fn reversed(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .rev()
        .map(|(k, v)| {
            let v = match v {
                Value::Object(inner) => Value::Object(reversed(inner)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes: the parser answers Ok or an error, and what it accepts re-serialises to a JSON
    /// object naming the routed model.
    #[test]
    fn the_body_parser_takes_any_bytes(
        raw in proptest::collection::vec(any::<u8>(), 0..512),
        endpoint in 0usize..ENDPOINTS.len(),
    ) {
        if let Ok(parsed) = request::parse(ENDPOINTS[endpoint], &raw) {
            let upstream = parsed.into_upstream_body("m:1b").unwrap();
            let value: Value = serde_json::from_slice(&upstream).unwrap();
            prop_assert_eq!(&value["model"], "m:1b");
        }
    }

    /// Any JSON body: parse, view and analyse without a panic; the scores stay in 0..1.
    #[test]
    fn the_parser_and_analyser_take_any_json(
        body in body_object(),
        endpoint in 0usize..ENDPOINTS.len(),
    ) {
        let raw = serde_json::to_vec(&body).unwrap();
        if let Ok(parsed) = request::parse(ENDPOINTS[endpoint], &raw) {
            let analysis = analyse(&PromptView::from_body(&parsed.body));
            for score in analysis.scores {
                prop_assert!((0.0..=1.0).contains(&score), "{:?}", analysis.scores);
            }
            prop_assert!(analysis.complexity.is_finite());
            prop_assert!(analysis.scanned_bytes <= analysis.total_bytes.max(analysis.scanned_bytes));
        }
    }

    /// Any prompt text, however long or strange: both analysers never panic, and the learned
    /// one's probabilities are finite and sum to 1.
    #[test]
    fn the_analyser_takes_any_text(text in "\\PC{0,3000}", raw in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let learned = crate::routing::classifier::SHIPPED.as_ref().unwrap();
        for content in [text, String::from_utf8_lossy(&raw).into_owned()] {
            let body: Map<String, Value> = serde_json::from_value(serde_json::json!({
                "messages": [{"role": "user", "content": content}]
            })).unwrap();
            let analysis = analyse(&PromptView::from_body(&body));
            prop_assert!(analysis.scores.iter().all(|s| s.is_finite()));
            let p = crate::routing::analysis::analyse_with(&PromptView::from_body(&body), Some(learned)).scores;
            prop_assert!(p.iter().all(|s| s.is_finite() && *s >= 0.0));
            prop_assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-3, "{:?}", p);
        }
    }

    /// Any body: the cache key is defined, and the same for the same request with its object
    /// keys in another order.
    #[test]
    fn the_cache_key_ignores_key_order(
        body in body_object(),
        endpoint in 0usize..ENDPOINTS.len(),
        identity in proptest::option::of("[ -~]{0,30}"),
        stream in any::<bool>(),
    ) {
        let policy = CachePolicy { enabled: true, skip_random_sampling: false };
        let request = |body| RoutedRequest {
            endpoint: ENDPOINTS[endpoint],
            body,
            stream,
            load_only: false,
            model: "m:1b",
            cache_control: None,
            identity: identity.as_deref(),
            query: "",
        };
        let other = reversed(&body);
        let a = plan(policy, request(&body));
        let b = plan(policy, request(&other));
        match (a, b) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.hash, b.hash),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a.map(|r| r.hash), b.map(|r| r.hash)),
        }
    }

    /// Any bytes as a stored answer: the completeness check of each framing says yes or no;
    /// a valid stream with any text in its frames says yes.
    #[test]
    fn the_framing_checks_take_any_bytes(
        raw in proptest::collection::vec(any::<u8>(), 0..2048),
        texts in proptest::collection::vec("\\PC{0,40}", 1..6),
    ) {
        for replay in [Replay::Json, Replay::Sse, Replay::Ndjson] {
            let _ = complete(replay, &raw);
        }
        let mut sse = String::new();
        let mut ndjson = String::new();
        for (i, text) in texts.iter().enumerate() {
            let frame = serde_json::json!({"choices": [{"delta": {"content": text}}]});
            sse.push_str(&format!("data: {frame}\n\n"));
            let done = i + 1 == texts.len();
            let line = serde_json::json!({"message": {"content": text}, "done": done});
            ndjson.push_str(&format!("{line}\n"));
        }
        sse.push_str("data: [DONE]\n\n");
        prop_assert!(complete(Replay::Sse, sse.as_bytes()));
        prop_assert!(complete(Replay::Ndjson, ndjson.as_bytes()));
        // Cut short, a stream is never complete.
        prop_assert!(!complete(Replay::Sse, &sse.as_bytes()[..sse.len() - 8]));
    }
}

//! What the dashboard reads, usable without it: `/admin/decisions` (the newest decisions, one
//! with its breakdown), `/admin/activity` (per-bucket counts of requests, models, categories,
//! cache hits, 429s and errors), and the page itself (`/admin/ui`, `/` for a browser on the
//! admin port) with its access rules and Content-Security-Policy. The page in a real browser is
//! tests/python/test_dashboard.py.

use serde_json::{json, Value};

use crate::harness::*;

async fn ask(router: &RouterProcess, content: &str, id: &str, model: &str) -> reqwest::Response {
    client()
        .post(format!("{}/api/chat", router.url()))
        .header("x-request-id", id)
        .json(
            &json!({"model": model, "stream": false, "options": {"temperature": 0},
            "messages": [{"role": "user", "content": content}]}),
        )
        .send()
        .await
        .unwrap()
}

async fn status_of(url: String) -> u16 {
    client().get(url).send().await.unwrap().status().as_u16()
}

fn summed(activity: &Value, field: &str) -> u64 {
    activity["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[field].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_and_activity_tell_what_the_router_did() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  default_model: llama3.2:1b\n".into(),
        env: vec![
            ("ROUTER_RATE_LIMIT_ENABLED".into(), "true".into()),
            ("ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE".into(), "4".into()),
        ],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let code = "Write a Python function that parses a CSV file and sums a column.";
    assert_eq!(ask(&router, code, "d-1", "auto").await.status(), 200);
    let poem = ask(&router, "Write a poem about the sea.", "d:2+", "auto").await;
    assert_eq!(poem.status(), 200);
    let again = ask(&router, code, "d-3", "auto").await;
    assert_eq!(again.headers()["x-smarterrouter-cache"], "HIT");
    assert_eq!(
        ask(&router, "hi", "d-4", "nope:1b").await.status(),
        404,
        "an unknown model: an error, no decision"
    );
    assert_eq!(ask(&router, "hi", "d-5", "auto").await.status(), 429);

    let admin = router.admin_url();
    // Recorded in the logging phase, which may end just after the client has its answer.
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = get_json(format!("{admin}/admin/decisions")).await;
        let activity = get_json(format!("{admin}/admin/activity")).await;
        if listed["decisions"].as_array().unwrap().len() == 3
            && summed(&activity, "rate_limited") == 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let decisions = listed["decisions"].as_array().unwrap();
    let ids: Vec<&str> = decisions
        .iter()
        .map(|d| d["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d-3", "d:2+", "d-1"], "newest first, decisions only");
    let first = &decisions[2];
    assert_eq!(first["endpoint"], "/api/chat");
    assert_eq!(first["chosen_by"], "router");
    assert_eq!(first["category"], "coding");
    assert_eq!(first["cache"], "MISS");
    assert_eq!(first["status"], 200);
    assert_eq!(first["node"], mock.url());
    assert!(first["latency_ms"].as_f64().unwrap() > 0.0);
    let served = mock.state.requests_to("/api/chat")[0].json()["model"].clone();
    assert_eq!(first["model"], served, "the model the node received");
    assert_eq!(decisions[0]["cache"], "HIT");
    assert_eq!(decisions[1]["category"], "creativity");

    let one = get_json(format!("{admin}/admin/decisions/d-1")).await;
    assert_eq!(one["request_id"], "d-1");
    let breakdown = &one["breakdown"];
    assert_eq!(
        breakdown["analysis"]["categories"]
            .as_object()
            .unwrap()
            .len(),
        4
    );
    assert!(
        breakdown["analysis"]["categories"]["coding"]
            .as_f64()
            .unwrap()
            > 0.5
    );
    let candidates = breakdown["scoring"]["candidates"].as_array().unwrap();
    let chosen = candidates.iter().find(|c| c["model"] == served).unwrap();
    assert!(chosen["terms"]["quality_by_category"]["coding"]["prior"].is_number());
    assert!(chosen["total"].is_number());

    // The page sends the id URL-encoded (encodeURIComponent).
    let encoded = get_json(format!("{admin}/admin/decisions/d%3A2%2B")).await;
    assert_eq!(encoded["request_id"], "d:2+");
    let literal = get_json(format!("{admin}/admin/decisions/d:2+")).await;
    assert_eq!(literal["request_id"], "d:2+", "a + in a path is a +");

    let limited = get_json(format!("{admin}/admin/decisions?limit=1")).await;
    assert_eq!(limited["decisions"].as_array().unwrap().len(), 1);
    let bad = client()
        .get(format!("{admin}/admin/decisions?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let why: Value = bad.json().await.unwrap();
    assert!(
        why["error"]["message"].as_str().unwrap().contains("limit"),
        "{why}"
    );
    assert_eq!(
        status_of(format!("{admin}/admin/decisions/no-such-id")).await,
        404
    );

    let activity = get_json(format!("{admin}/admin/activity?minutes=5")).await;
    assert_eq!(activity["minutes"], 5);
    assert_eq!(summed(&activity, "requests"), 4, "{activity}");
    assert_eq!(summed(&activity, "errors"), 1);
    assert_eq!(summed(&activity, "rate_limited"), 1);
    assert_eq!(summed(&activity, "cache_lookups"), 3);
    assert_eq!(summed(&activity, "cache_hits"), 1);
    let per_model: u64 = activity["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["per_model"].as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(per_model, 3);
    let coding: u64 = activity["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["per_category"]["coding"].as_u64().unwrap())
        .sum();
    assert_eq!(coding, 2);
    assert_eq!(
        status_of(format!("{admin}/admin/activity?minutes=61")).await,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_served_like_admin_and_its_data_needs_the_key() {
    let mock = default_mock().await;
    let open = RouterProcess::start_default(&mock).await;
    let page = client()
        .get(format!("{}/admin/ui", open.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>SmarterRouter dashboard</title>"));
    assert!(!html.contains(&mock.url()), "the page carries no data");

    let browser_root = client()
        .get(format!("{}/", open.admin_url()))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert!(browser_root
        .text()
        .await
        .unwrap()
        .contains("SmarterRouter dashboard"));
    let plain_root = get_text(format!("{}/", open.admin_url())).await;
    assert_eq!(
        plain_root, "SmarterRouter is running",
        "curl still gets the root"
    );
    assert_eq!(
        status_of(format!("{}/admin/ui", open.url())).await,
        403,
        "no key: the admin port only"
    );

    let keyed = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_ADMIN_API_KEY".into(), "k-dash-admin".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    for base in [keyed.url(), keyed.admin_url()] {
        assert_eq!(
            status_of(format!("{base}/admin/ui")).await,
            200,
            "the page asks for the key itself"
        );
        assert_eq!(status_of(format!("{base}/admin/decisions")).await, 401);
        let data = client()
            .get(format!("{base}/admin/activity"))
            .bearer_auth("k-dash-admin")
            .send()
            .await
            .unwrap();
        assert_eq!(data.status(), 200);
    }
}

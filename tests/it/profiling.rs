//! `smarterrouter profile` against a mock scripted to answer the suites right (one model) or
//! wrong (another): measured, differing scores; saved durably (SIGKILL right after a profile is
//! reported saved loses nothing); served by /admin/profiles; used by routing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use smarterrouter_plugin::profile::suites;

use crate::harness::*;

fn scripted_mock_config() -> MockConfig {
    let mut scripted = Vec::new();
    for suite in suites::all().unwrap() {
        for prompt in &suite.prompts {
            scripted.push(mock_ollama::Script {
                model: "smart:7b".into(),
                prompt_contains: prompt.prompt.clone(),
                reply: prompt.grader.passing_reply(),
            });
            scripted.push(mock_ollama::Script {
                model: "dumb:7b".into(),
                prompt_contains: prompt.prompt.clone(),
                reply: "I do not know.".into(),
            });
        }
    }
    MockConfig {
        // The first model is reported loaded; keep the two chat models equal otherwise.
        models: vec![
            MockModel::embedding("nomic-embed-text:latest"),
            MockModel::with("smart:7b", "7B", &[]),
            MockModel::with("dumb:7b", "7B", &[]),
        ],
        latency: Duration::from_millis(30),
        scripted,
        ..MockConfig::default()
    }
}

fn config(dir: &std::path::Path, mock: &MockOllama) -> std::path::PathBuf {
    config_with(dir, mock, 3)
}

fn config_with(dir: &std::path::Path, mock: &MockOllama, prompts: usize) -> std::path::PathBuf {
    let path = dir.join("profile.yaml");
    std::fs::write(
        &path,
        format!(
            "pid_file: {d}/p.pid\nupgrade_sock: {d}/p.sock\nrouter:\n  data_dir: {d}/data\n  log: {{level: warn}}\n\
             \x20 profiling: {{prompts_per_category: {prompts}, timeout_secs: 10}}\n  pools:\n    - name: lab\n      nodes:\n        - url: {url}\n",
            d = dir.display(),
            url = mock.url()
        ),
    )
    .unwrap();
    path
}

fn profile_command(conf: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command.arg("profile").arg("-c").arg(conf);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("ROUTER_")) {
        command.env_remove(name);
    }
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_reported_saved_survives_sigkill() {
    let mock = mock(scripted_mock_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &mock);
    let mut child = profile_command(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let first_saved = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("profile saved"))
    })
    .await
    .unwrap()
    .expect("a profile is reported saved");
    child.kill().unwrap();
    child.wait().unwrap();
    let saved_model = if first_saved.contains("[smart:7b]") {
        "smart:7b"
    } else {
        "dumb:7b"
    };

    let router = RouterProcess::start(RouterOptions {
        extra: String::new(),
        data_dir: Some(dir.path().join("data").display().to_string()),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let profiles: Value = get_json(format!("{}/admin/profiles", router.admin_url())).await;
    let names: Vec<&str> = profiles["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["model"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&saved_model),
        "{saved_model} was reported saved before SIGKILL: {profiles}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_measure_differing_quality_and_steer_routing() {
    let mock = mock(scripted_mock_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &mock);
    let output = tokio::task::spawn_blocking(move || profile_command(&conf).output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let row = |model: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(model))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("smart:7b").contains("3/3 1.00"), "{stdout}");
    assert!(row("dumb:7b").contains("0/3 0.00"), "{stdout}");
    assert!(
        !stdout.contains("nomic-embed-text"),
        "embedding models are not profiled"
    );
    let asked = mock.state.requests_to("/v1/chat/completions");
    assert_eq!(
        asked.len(),
        2 * 6 * 3,
        "2 models x 6 categories x 3 prompts"
    );
    assert!(asked
        .iter()
        .all(|r| r.json()["stream"] == true && r.json()["temperature"] == 0));
    assert!(mock.state.count("/api/ps") > 0, "VRAM read from /api/ps");

    let router = RouterProcess::start(RouterOptions {
        extra: String::new(),
        data_dir: Some(dir.path().join("data").display().to_string()),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let profiles: Value = get_json(format!("{}/admin/profiles", router.admin_url())).await;
    let find = |model: &str| {
        profiles["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["model"] == model)
            .unwrap()
            .clone()
    };
    let smart = find("smart:7b");
    let dumb = find("dumb:7b");
    assert_eq!(smart["categories"]["coding"]["score"], 1.0);
    assert_eq!(dumb["categories"]["coding"]["score"], 0.0);
    assert!(smart["categories"]["coding"]["ci_low"].as_f64().unwrap() > 0.3);
    assert_eq!(smart["categories"]["coding"]["total"], 3);
    assert!(smart["tokens_per_sec"].as_f64().is_some(), "{smart}");
    assert!(
        smart["ttft_ms"].as_f64().unwrap() >= 25.0,
        "the mock waits 30 ms before answering: {smart}"
    );
    assert!(smart["vram_bytes"].is_u64() || smart["vram_bytes"].is_null());

    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body(
            "auto",
            "Write a Python function that parses JSON",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-smarterrouter-model"], "smart:7b");
    let explain: Value = get_json(format!(
        "{}/admin/explain?prompt=Write%20a%20Python%20function",
        router.admin_url()
    ))
    .await;
    let smart_terms = explain["scoring"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "smart:7b")
        .unwrap()
        .clone();
    assert_eq!(
        smart_terms["terms"]["quality_source"], "posterior",
        "{smart_terms}"
    );
    let coding = &smart_terms["terms"]["quality_by_category"]["coding"];
    assert_eq!(coding["evidence"]["passed"], 3.0, "{coding}");
    assert_eq!(coding["evidence"]["of"], 3.0, "{coding}");
    let (prior, posterior) = (
        coding["prior"].as_f64().unwrap(),
        coding["posterior"].as_f64().unwrap(),
    );
    assert!(
        (posterior - (4.0 * prior + 3.0) / 7.0).abs() < 1e-4,
        "the Beta posterior of the prior and 3/3: {coding}"
    );
    let known = explain["models_known"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "dumb:7b")
        .unwrap()
        .clone();
    assert_eq!(
        known["profile"]["coding"], 0.0,
        "explain shows the profile numbers used: {known}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_router_profiles_new_models_itself_and_reprofiles_on_request() {
    let mock = mock(scripted_mock_config()).await;
    let router = RouterProcess::start(RouterOptions {
        extra: String::new(),
        auto_profile: true,
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    // Automatic: both chat models get a profile without anyone asking.
    let mut profiles = Value::Null;
    for _ in 0..200 {
        profiles = get_json(format!("{}/admin/profiles", router.admin_url())).await;
        if profiles["profiles"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let models: Vec<&str> = profiles["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["dumb:7b", "smart:7b"], "{profiles}");

    // On request: a job id at once, then progress until done.
    let before = mock.state.count("/v1/chat/completions");
    let response = client()
        .post(format!(
            "{}/admin/reprofile?model=smart:7b&force=true",
            router.admin_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("job-"));
    let mut status = Value::Null;
    for _ in 0..200 {
        status = get_json(format!("{}/admin/reprofile/{id}", router.admin_url())).await;
        if status["state"] == "done" || status["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["finished_models"], serde_json::json!(["smart:7b"]));
    assert_eq!(status["prompts_done"], status["prompts_total"]);
    assert_eq!(
        mock.state.count("/v1/chat/completions") - before,
        6,
        "one prompt per category"
    );
    let missing = client()
        .get(format!("{}/admin/reprofile/job-nope", router.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_judge_grades_creativity_and_retries_after_429() {
    let lab = mock(scripted_mock_config()).await;
    // The judge is another OpenAI-compatible server; it refuses the first two calls with 429.
    let judge = mock(MockConfig {
        models: vec![MockModel::with("judge-model", "70B", &[])],
        scripted: vec![mock_ollama::Script {
            model: "judge-model".into(),
            prompt_contains: "Answer:".into(),
            reply: r#"{"score": 8, "reason": "vivid"}"#.into(),
        }],
        fail_first_chat: 2,
        ..MockConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &lab);
    let mut command = profile_command(&conf);
    command
        .arg("--model")
        .arg("smart:7b")
        .env("ROUTER_JUDGE_ENABLED", "true")
        .env("ROUTER_JUDGE_MODEL", "judge-model")
        .env("ROUTER_JUDGE_BASE_URL", format!("{}/v1", judge.url()))
        .env("ROUTER_JUDGE_API_KEY", "secret-key");
    // Short backoff so the test is quick: the base delay comes from the file.
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "timeout_secs: 10}",
        "timeout_secs: 10, judge: {retry_base_delay_ms: 10}}",
    );
    std::fs::write(&conf, text).unwrap();
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("smart:7b") && l.contains("3/3 0.80")),
        "judged creativity: mean grade 0.8\n{stdout}"
    );
    let calls = judge.state.requests_to("/v1/chat/completions");
    assert_eq!(calls.len(), 3 + 2, "three grades, two of them after 429s");
    assert_eq!(calls[0].headers["authorization"], "Bearer secret-key");
    assert!(
        calls[0].json()["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("haiku"),
        "the task is sent"
    );
}

/// The six models of a typical Ollama box, with llava loaded (the first model is), and answers
/// that fail every checked suite except where `passing` scripts a model to pass a suite.
fn six_models(passing: &[(&str, &str)]) -> MockConfig {
    let mut scripted = Vec::new();
    for suite in suites::all().unwrap() {
        for prompt in &suite.prompts {
            for (model, category) in passing {
                if suite.category.as_str() == *category {
                    scripted.push(mock_ollama::Script {
                        model: model.to_string(),
                        prompt_contains: prompt.prompt.clone(),
                        reply: prompt.grader.passing_reply(),
                    });
                }
            }
        }
    }
    MockConfig {
        models: vec![
            MockModel::with("llava:7b", "7B", &["vision"]),
            MockModel::with("qwen2.5-coder:7b", "7B", &[]),
            MockModel::with("deepseek-r1:7b", "7B", &["thinking"]),
            MockModel::with("llama3.2:3b", "3.2B", &[]),
            MockModel::with("qwen2.5:1.5b", "1.5B", &[]),
            MockModel::embedding("nomic-embed-text:latest"),
        ],
        scripted,
        ..MockConfig::default()
    }
}

async fn profile_then_route(config: MockConfig, prompts: usize, asks: &[Value]) -> Vec<String> {
    let mock = mock(config).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = config_with(dir.path(), &mock, prompts);
    let output = tokio::task::spawn_blocking(move || profile_command(&conf).output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let router = RouterProcess::start(RouterOptions {
        data_dir: Some(dir.path().join("data").display().to_string()),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let profiles: Value = get_json(format!("{}/admin/profiles", router.admin_url())).await;
    assert_eq!(
        profiles["profiles"].as_array().unwrap().len(),
        5,
        "{profiles}"
    );
    let mut chosen = Vec::new();
    for body in asks {
        let response = client()
            .post(format!("{}/v1/chat/completions", router.url()))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        chosen.push(
            response.headers()["x-smarterrouter-model"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    chosen
}

const CODING: &str = "Write a Python function that merges two sorted lists, with unit tests.";
const CREATIVE: &str = "Write a short poem about the sea at night.";

/// Every model fails every suite (0/3): thin, equal evidence, so the size and specialist priors
/// keep their order. The coder gets coding; the loaded vision model gets no text prompt.
#[tokio::test(flavor = "multi_thread")]
async fn equal_thin_evidence_keeps_the_priors_and_the_vision_model_gets_no_text_prompt() {
    let image = serde_json::json!({"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    let asks = [
        chat_body("auto", CODING),
        chat_body("auto", CREATIVE),
        image,
    ];
    let chosen = profile_then_route(six_models(&[]), 3, &asks).await;
    assert_eq!(chosen[0], "qwen2.5-coder:7b", "{chosen:?}");
    assert_ne!(chosen[1], "llava:7b", "{chosen:?}");
    assert_eq!(
        chosen[2], "llava:7b",
        "an image still goes to the vision model: {chosen:?}"
    );
}

/// Strong evidence overrides the prior: the small general model passes the coding suite 5/5
/// and the coder fails it 0/5, so coding goes to the small model.
#[tokio::test(flavor = "multi_thread")]
async fn strong_evidence_overrides_the_prior() {
    let asks = [chat_body("auto", CODING)];
    let chosen = profile_then_route(six_models(&[("qwen2.5:1.5b", "coding")]), 5, &asks).await;
    assert_eq!(chosen[0], "qwen2.5:1.5b", "{chosen:?}");
}

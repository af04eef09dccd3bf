//! Running as a service, as the systemd unit runs it: daemon mode (`-d`) keeps the store working;
//! the unit's reload sequence (its own ExecReload lines) under load loses no request and no
//! acknowledged feedback, and answers given beyond the store's decision cap can be rated after a
//! reload and are stored at a stop; SIGTERM lets an open stream finish and flushes the store; the profile
//! CLI drives a running router; the original's environment variables; `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use smarterrouter_plugin::store::{SledStore, Store};

use crate::harness::*;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/smarterrouter.service");
const UNIT_BIN: &str = "/usr/local/bin/smarterrouter";
const UNIT_CONF: &str = "/etc/smarterrouter/smarterrouter.yaml";

/// The unit's `key=` command lines, with its binary and config replaced by the test's.
fn unit_commands(key: &str, conf: &Path) -> Vec<Vec<String>> {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    unit.lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(|command| {
            command
                .trim_start_matches(['-', '@', '+', '!', ':'])
                .split_whitespace()
                .map(|word| match word {
                    UNIT_BIN => BIN.to_string(),
                    UNIT_CONF => conf.display().to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// Runs one unit command line as systemd would (no shell), with `$MAINPID` filled in.
fn run_unit_command(args: &[String], main_pid: u32, router: &RouterProcess) {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("$MAINPID", &main_pid.to_string()))
        .collect();
    let mut command = if args[0] == BIN {
        let mut c = router.bare_command(&[]);
        c.args(&args[1..]);
        c
    } else {
        let mut c = Command::new(&args[0]);
        c.args(&args[1..]);
        c
    };
    let status = command.status().unwrap();
    assert!(
        status.success(),
        "{args:?} failed: {status}; log:\n{}",
        router.logs()
    );
}

/// The router config the unit expects (conf/examples/systemd.yaml), moved into the test's own
/// directory and ports, against `mock`.
fn unit_config(router_dir: &Path, mock: &MockOllama, port: u16, admin_port: u16) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/examples/systemd.yaml");
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let d = router_dir.display();
    doc["pid_file"] = format!("{d}/sr.pid").into();
    doc["upgrade_sock"] = format!("{d}/sr.sock").into();
    doc["grace_period_seconds"] = 2.into();
    doc["graceful_shutdown_timeout_seconds"] = 2.into();
    let router = &mut doc["router"];
    router["host"] = "127.0.0.1".into();
    router["port"] = port.into();
    router["data_dir"] = format!("{d}/data").into();
    router["admin"]["listen"] = format!("127.0.0.1:{admin_port}").into();
    router["log"]["format"] = "text".into();
    router["pools"][0]["nodes"][0]["url"] = mock.url().into();
    router["discovery"] = serde_yaml::from_str("{interval_secs: 1, timeout_ms: 1000}").unwrap();
    router["profiling"] = serde_yaml::from_str("{auto: false}").unwrap();
    router["default_model"] = "llama3.2:1b".into();
    serde_yaml::to_string(&doc).unwrap()
}

/// One request, checked complete: OpenAI or Ollama dialect, streaming or not.
async fn chat(
    client: &reqwest::Client,
    base: &str,
    request_id: &str,
    stream: bool,
    ollama: bool,
) -> Result<(), String> {
    let messages = json!([{"role": "user", "content": "What is the capital of France?"}]);
    let path = if ollama {
        "/api/chat"
    } else {
        "/v1/chat/completions"
    };
    // One-object answers at temperature 0 are cacheable: the reload also moves the cache's hits
    // and misses (streams without a temperature go past it).
    let body = if stream {
        json!({"model": "smarterrouter/main", "stream": true, "messages": messages})
    } else {
        json!({"model": "smarterrouter/main", "stream": false, "temperature": 0, "messages": messages})
    };
    let response = client
        .post(format!("{base}{path}"))
        .header("x-request-id", request_id)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{request_id}: {e:?}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{request_id}: body cut off: {e:?}"))?;
    if status != 200 {
        return Err(format!("{request_id}: HTTP {status}: {text}"));
    }
    let complete = match (stream, ollama) {
        (true, true) => text
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"done\":true")),
        (true, false) => text.trim_end().ends_with("data: [DONE]"),
        (false, _) => serde_json::from_str::<Value>(&text).is_ok(),
    };
    if complete {
        Ok(())
    } else {
        Err(format!("{request_id}: incomplete answer: {text}"))
    }
}

async fn post_feedback(
    client: &reqwest::Client,
    base: &str,
    response_id: &str,
) -> Result<(), String> {
    let response = client
        .post(format!("{base}/v1/feedback"))
        .json(&json!({"response_id": response_id, "score": 0.5}))
        .send()
        .await
        .map_err(|e| format!("feedback {response_id}: {e:?}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status == 200 {
        Ok(())
    } else {
        Err(format!("feedback {response_id}: HTTP {status}: {text}"))
    }
}

/// Requests (cache hits after the first, so fast) from 16 clients, named `{prefix}-{n}`, until
/// the store's per-second cap has kept some decisions in memory only; their ids.
async fn burst_over_the_decision_cap(base: &str, admin: &str, prefix: &str) -> Vec<String> {
    let before = decisions_over_the_cap(admin).await;
    let mut ids = Vec::new();
    for round in 0..10 {
        let sent = (0..16).map(|w| {
            let base = base.to_string();
            let ids: Vec<String> = (0..25)
                .map(|i| format!("{prefix}-{round}-{w}-{i}"))
                .collect();
            tokio::spawn(async move {
                let client = client();
                for id in &ids {
                    chat(&client, &base, id, false, false).await.unwrap();
                }
                ids
            })
        });
        for done in futures_util::future::join_all(sent).await {
            ids.extend(done.unwrap());
        }
        if decisions_over_the_cap(admin).await > before {
            return ids;
        }
    }
    panic!(
        "{} requests never went over the store's decision cap",
        ids.len()
    );
}

#[derive(Default)]
struct Load {
    sent: AtomicUsize,
    streams: AtomicUsize,
    failures: Mutex<Vec<String>>,
    acknowledged: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A bounded load: `workers` keep-alive clients sending streaming and non-streaming requests in
/// both dialects until `stop` (or 60 s), each fifth answer rated with feedback.
async fn run_load(load: Arc<Load>, base: String, workers: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let tasks = (0..workers).map(|w| {
        let (load, base) = (Arc::clone(&load), base.clone());
        tokio::spawn(async move {
            let client = client();
            let mut i = 0usize;
            while !load.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                i += 1;
                let id = format!("load-{w}-{i}");
                let (stream, ollama) = (i.is_multiple_of(2), i % 4 < 2);
                load.sent.fetch_add(1, Ordering::Relaxed);
                if stream {
                    load.streams.fetch_add(1, Ordering::Relaxed);
                }
                match chat(&client, &base, &id, stream, ollama).await {
                    Ok(()) if i.is_multiple_of(5) => match post_feedback(&client, &base, &id).await
                    {
                        Ok(()) => load.acknowledged.lock().unwrap().push(id),
                        Err(e) => load.failures.lock().unwrap().push(e),
                    },
                    Ok(()) => {}
                    Err(e) => load.failures.lock().unwrap().push(e),
                }
            }
        })
    });
    futures_util::future::join_all(tasks).await;
}

fn stored_feedback_ids(data_dir: &Path) -> Vec<String> {
    let store = SledStore::open(data_dir).unwrap();
    store
        .feedback()
        .unwrap()
        .into_iter()
        .filter_map(|f| f.response_id)
        .collect()
}

fn slow_stream_mock() -> MockConfig {
    MockConfig {
        tokens: 5,
        token_interval: Duration::from_millis(20),
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_units_reload_under_load_loses_no_request_and_no_feedback() {
    let mock = mock(slow_stream_mock()).await;
    // The unit's own config example and its ExecStartPre/ExecStart lines.
    let mut router = RouterProcess::prepare(&RouterOptions::new(vec![node(&mock.url(), "ollama")]));
    let (port, admin_port) = (router.port, router.admin_port);
    std::fs::write(
        &router.conf,
        unit_config(router.dir(), &mock, port, admin_port),
    )
    .unwrap();
    let data_dir = router.dir().join("data");
    for line in unit_commands("ExecStartPre", &router.conf)
        .iter()
        .chain(unit_commands("ExecStart", &router.conf).iter())
    {
        run_unit_command(line, 0, &router);
    }
    let old_pid = router
        .daemon_pid()
        .expect("pid file written before the parent returned");
    router.adopt_daemon(old_pid);
    assert!(pid_alive(old_pid));
    let base = router.url();
    let c = client();
    // The parent returned once the daemon listens.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the daemon does not listen; log:\n{}",
        router.logs()
    );
    chat(&c, &base, "before-reload", false, false)
        .await
        .unwrap();
    post_feedback(&c, &base, "before-reload").await.unwrap();
    // More answers a second than the store persists: the surplus is in memory only until the
    // reload hands the store over.
    let admin = format!("http://127.0.0.1:{admin_port}");
    let burst = burst_over_the_decision_cap(&base, &admin, "burst").await;
    let over_the_cap = decisions_over_the_cap(&admin).await;

    let load = Arc::new(Load::default());
    let running = tokio::spawn(run_load(Arc::clone(&load), base.clone(), 4));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent_before = load.sent.load(Ordering::Relaxed);
    for line in unit_commands("ExecReload", &router.conf) {
        run_unit_command(&line, old_pid, &router);
    }
    let new_pid = router.daemon_pid().unwrap();
    router.adopt_daemon(new_pid);
    assert_ne!(
        new_pid, old_pid,
        "the pid file names the new process after the reload"
    );
    // Every answer of the burst before the reload can be rated at once, while the old process
    // drains: the release stored the decisions the cap had kept in memory.
    let rated = futures_util::future::join_all(burst.chunks(burst.len().div_ceil(16)).map(|ids| {
        let (base, ids) = (base.clone(), ids.to_vec());
        async move {
            let client = client();
            for id in &ids {
                post_feedback(&client, &base, id).await?;
            }
            Ok::<_, String>(ids.len())
        }
    }))
    .await;
    let rated: usize = rated.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(rated, burst.len());
    // The old process stored them itself, as it let go of the store (the log says how many).
    let logs = router.logs();
    let from_memory: u64 = logs
        .lines()
        .find(|l| l.contains("store flushed and released"))
        .and_then(|l| l.split("decisions_from_memory=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no release line with decisions_from_memory in:\n{logs}"));
    assert!(
        from_memory >= over_the_cap,
        "{over_the_cap} decisions over the cap before the reload, {from_memory} stored at the release"
    );
    // The old process serves for 5 s after SIGQUIT, then finishes in flight within the grace period.
    assert!(
        wait_exit(old_pid, 30).await,
        "the old process did not exit; log:\n{}",
        router.logs()
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    load.stop.store(true, Ordering::Relaxed);
    running.await.unwrap();

    let sent = load.sent.load(Ordering::Relaxed);
    let failures = load.failures.lock().unwrap().clone();
    let acknowledged = load.acknowledged.lock().unwrap().clone();
    eprintln!(
        "reload under load: {sent} requests sent ({} streaming), {} failed, {} feedback acknowledged",
        load.streams.load(Ordering::Relaxed),
        failures.len(),
        acknowledged.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {:#?}\nlog:\n{}",
        failures.len(),
        &failures[..failures.len().min(10)],
        router.logs()
    );
    assert!(
        sent > sent_before + 40,
        "the load ran through the reload ({sent_before} -> {sent})"
    );
    assert!(!acknowledged.is_empty());
    // The new process serves, and it is the only one left.
    assert!(pid_alive(new_pid));
    chat(&c, &base, "after-reload", true, true).await.unwrap();
    let logs = router.logs();
    assert!(logs.contains("store flushed and released"), "{logs}");

    // A burst on the new process too, then a stop: what the cap kept in memory is stored at exit.
    let burst_at_stop = burst_over_the_decision_cap(&base, &admin, "stop").await;

    // Stop it as the unit does (SIGTERM); then every acknowledged feedback is in the store.
    signal(new_pid, "TERM");
    assert!(wait_exit(new_pid, 20).await);
    {
        let store = SledStore::open(&data_dir).unwrap();
        let missing: Vec<&String> = burst_at_stop
            .iter()
            .filter(|id| store.decision(id).unwrap().is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} decisions made before the stop are not stored, e.g. {:?}",
            missing.len(),
            burst_at_stop.len(),
            &missing[..missing.len().min(5)]
        );
    }
    let stored = stored_feedback_ids(&data_dir);
    for id in acknowledged
        .iter()
        .chain(["before-reload".to_string()].iter())
    {
        assert!(
            stored.contains(id),
            "acknowledged feedback {id} is not in the store"
        );
    }
}

/// Whether `/admin/profiles` lists a profile within 10 s.
async fn profiles_listed(admin: &str) -> bool {
    let c = client();
    for _ in 0..100 {
        if let Ok(r) = c.get(format!("{admin}/admin/profiles")).send().await {
            let v: Value = r.json().await.unwrap_or_default();
            if v["profiles"].as_array().is_some_and(|p| !p.is_empty()) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `THP_enabled` of a process (Linux 6.x's /proc/PID/status); `None` where the kernel lacks it.
fn thp_enabled(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    Some(line.split_whitespace().nth(1)? != "0")
}

/// The router turns transparent huge pages off for itself (mimalloc's arena otherwise made
/// each thread heap a 2 MiB page: 71 MiB idle instead of 24), in the foreground and, inherited,
/// in the daemon the systemd unit starts.
#[tokio::test(flavor = "multi_thread")]
async fn transparent_huge_pages_are_off_in_the_foreground_and_the_daemon() {
    // Where the kernel does not report it, or this test already runs with THP off (inherited),
    // the router's own setting cannot be told apart.
    if thp_enabled(std::process::id()) != Some(true) {
        eprintln!("THP_enabled is not reported as on for this test; nothing to check");
        return;
    }
    let mock = default_mock().await;
    let foreground = RouterProcess::start_default(&mock).await;
    assert_eq!(thp_enabled(foreground.pid().unwrap()), Some(false));
    let daemon = RouterProcess::start(RouterOptions {
        daemon: true,
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    assert_eq!(thp_enabled(daemon.daemon_pid().unwrap()), Some(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_mode_stores_feedback_and_profiles() {
    let mock = default_mock().await;
    // A relative data_dir means the directory the daemon was started in (Pingora's own
    // daemon mode would have moved it to /).
    let mut router = RouterProcess::start(RouterOptions {
        daemon: true,
        auto_profile: true,
        data_dir: Some("./relative-data".to_string()),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let pid = router.daemon_pid().unwrap();
    let c = client();
    chat(&c, &router.url(), "daemon-1", false, false)
        .await
        .unwrap();
    let started = Instant::now();
    post_feedback(&c, &router.url(), "daemon-1").await.unwrap();
    assert!(
        // Far below the 5 s it would wait for a store that is not open: it did not wait for one.
        started.elapsed() < Duration::from_secs(4),
        "feedback took {:?}",
        started.elapsed()
    );
    // The background profiler saves a profile in the daemon too.
    let admin = router.admin_url();
    let profiled = profiles_listed(&admin).await;
    // The dashboard's page and data are served by the daemon as in the foreground.
    let decisions = get_json(format!("{admin}/admin/decisions")).await;
    assert!(
        decisions["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["request_id"] == "daemon-1"),
        "{decisions}"
    );
    assert!(get_text(format!("{admin}/admin/ui"))
        .await
        .contains("SmarterRouter dashboard"));
    assert!(
        profiled,
        "no profile saved in daemon mode; log:\n{}",
        router.logs()
    );
    signal(pid, "TERM");
    assert!(wait_exit(pid, 20).await);
    // After a restart, the feedback and the profile are there.
    let data_dir = router.dir().join("relative-data");
    assert!(stored_feedback_ids(&data_dir).contains(&"daemon-1".to_string()));
    let mut again = router.command(&[]);
    again.arg("-d");
    assert!(again.status().unwrap().success());
    let pid = router.daemon_pid().unwrap();
    router.adopt_daemon(pid);
    let listed = profiles_listed(&admin).await;
    assert!(
        listed,
        "the profile did not load after a restart; log:\n{}",
        router.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_open_stream_finish_and_flushes_the_store() {
    let mock = mock(MockConfig {
        tokens: 6,
        token_interval: Duration::from_millis(300),
        ..MockConfig::default()
    })
    .await;
    // Discovery is slow here, so nothing but the requests below writes to the store: the last
    // decisions reach the disk only through the flush at exit.
    let router = RouterProcess::start(RouterOptions {
        daemon: true,
        grace_secs: 4,
        discovery_secs: 60,
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let pid = router.daemon_pid().unwrap();
    let c = client();
    for id in ["flushed-by-the-writer", "written-not-flushed"] {
        let answer = c
            .post(format!("{}/v1/chat/completions", router.url()))
            .header("x-request-id", id)
            .json(&chat_body("llama3.2:1b", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let response = c
        .post(format!("{}/api/chat", router.url()))
        .header("x-request-id", "last-before-stop")
        .json(&json!({"model": "llama3.2:1b", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let stopped_at = Instant::now();
    signal(pid, "TERM");
    let mut body = first.to_vec();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.expect("the stream was cut"));
    }
    let text = String::from_utf8(body).unwrap();
    let frames: Vec<&str> = text.lines().collect();
    assert_eq!(frames.len(), 7, "{text}");
    assert!(frames[6].contains("\"done\":true"), "{text}");
    assert!(stopped_at.elapsed() > Duration::from_millis(1000));
    assert!(wait_exit(pid, 20).await);
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(4),
        "exited before the grace period"
    );
    // The routing decisions of the last requests reached the disk before exit.
    let store = SledStore::open(&router.dir().join("data")).unwrap();
    for id in ["written-not-flushed", "last-before-stop"] {
        let decision = store.decision(id).unwrap();
        assert_eq!(
            decision.map(|d| d.model).as_deref(),
            Some("llama3.2:1b"),
            "{id}"
        );
    }
    assert!(
        router.logs().contains("store flushed at exit"),
        "{}",
        router.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_profile_cli_drives_a_running_router() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions::new(vec![node(&mock.url(), "ollama")])).await;
    let chats_before = mock.state.count("/v1/chat/completions");
    let cli = tokio::task::spawn_blocking({
        let mut command = router.command(&[]);
        command.args(["profile", "--model", "llama3.2:1b"]);
        command.stdout(std::process::Stdio::piped());
        command.stderr(std::process::Stdio::piped());
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&cli.stdout);
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(cli.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("asking the router to profile through"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[llama3.2:1b] ["),
        "no progress lines: {stderr}"
    );
    assert!(!stderr.contains("lock"), "{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("llama3.2:1b"))
        .unwrap_or_else(|| panic!("no summary row: {stdout}"));
    assert!(row.contains("/1"), "{row}");
    // The router ran the prompts and keeps the profile.
    assert!(mock.state.count("/v1/chat/completions") > chats_before);
    let profiles = get_json(format!("{}/admin/profiles", router.admin_url())).await;
    assert_eq!(profiles["profiles"][0]["model"], "llama3.2:1b");
}

fn validate_with(conf: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(BIN);
    command.arg("--validate").arg("-c").arg(conf);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("ROUTER_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_originals_variables_are_known_and_unsupported_ones_say_so() {
    let conf = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/smarterrouter.yaml"
    ));
    let env = [
        ("ROUTER_LOG_LEVEL", "WARNING"),
        ("ROUTER_REDIS_MAX_CONNECTIONS", "20"),
        ("ROUTER_RATE_LIMIT_CHAT_REQUESTS_PER_MINUTE", "30"),
        ("ROUTER_VRAM_LOG_INTERVAL", "60"),
        ("ROUTER_DATABASE_URL", "sqlite:///data/router.db"),
        ("ROUTER_QUALTY_PREFERENCE", "0.9"),
    ];
    let (ok, text) = validate_with(&conf, &env);
    assert!(ok, "{text}");
    let expected = [
        "ROUTER_REDIS_MAX_CONNECTIONS is set but has no effect here: each router keeps one multiplexed connection to Redis",
        "ROUTER_VRAM_LOG_INTERVAL is set but not supported yet",
        "ROUTER_DATABASE_URL is set but has no effect here: the store is the embedded one in router.data_dir",
        "ROUTER_QUALTY_PREFERENCE is not a SmarterRouter setting and is ignored; did you mean ROUTER_QUALITY_PREFERENCE?",
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let (ok, text) = validate_with(&conf, &[("ROUTER_PROFILE_PROMPTS_PER_CATEGORY", "8")]);
    assert!(!ok);
    assert!(
        text.contains("ROUTER_PROFILE_PROMPTS_PER_CATEGORY): 8 is out of range"),
        "{text}"
    );

    // The router itself starts with WARNING and prints the same lines as warnings.
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let logs = router.logs();
    for line in expected {
        assert!(logs.contains(line), "missing {line:?} in the log:\n{logs}");
    }
    assert!(
        !logs.contains(" INFO "),
        "WARNING should hide info lines:\n{logs}"
    );
}

/// `systemd-analyze verify` in a temporary root holding the unit and the binary it names (a
/// hard link to the one under test), with the host's own unit files for the dependencies.
#[test]
fn systemd_analyze_verifies_the_unit() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: install Debian's systemd package (scripts/install-prereqs does)"
    );
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let at = |p: &str| root.path().join(p.trim_start_matches('/'));
    for dir in [
        "usr/local/bin",
        "etc/systemd/system",
        "usr/lib/systemd",
        "bin",
    ] {
        std::fs::create_dir_all(at(dir)).unwrap();
    }
    if std::fs::hard_link(BIN, at(UNIT_BIN)).is_err() {
        std::fs::copy(BIN, at(UNIT_BIN)).unwrap();
    }
    std::fs::copy("/bin/kill", at("/bin/kill")).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg("/usr/lib/systemd/system")
        .arg(at("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::copy(UNIT, at("etc/systemd/system/smarterrouter.service")).unwrap();
    let output = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.path().display()))
        .arg("verify")
        .arg(at("etc/systemd/system/smarterrouter.service"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(
        text.trim().is_empty(),
        "systemd-analyze has remarks:\n{text}"
    );
}

/// A second router on the same ports stops at once with the key and the address, in the
/// foreground, instead of running without a listener (or reporting a started daemon).
#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_stops_the_start_with_a_message() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions::new(vec![node(&mock.url(), "ollama")])).await;
    for daemon in [false, true] {
        let mut second = router.command(&[]);
        if daemon {
            second.arg("-d");
        }
        second.stderr(std::process::Stdio::piped());
        let output = second.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "daemon={daemon}: {stderr}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{} is already in use", router.port)),
            "daemon={daemon}: {stderr}"
        );
    }
    // The first one still serves.
    let health = get_json(format!("{}/health", router.url())).await;
    assert_eq!(health["status"], "ok");
}

//! The embedded store from the outside: VRAM history recorded by discovery, and a damaged store
//! stopping startup with a message instead of a panic.

use std::process::Command;
use std::time::Duration;

use smarterrouter_plugin::store::{SledStore, Store};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn discovery_records_vram_history() {
    let mock = default_mock().await;
    let data = tempfile::tempdir().unwrap();
    let mut router = RouterProcess::start(RouterOptions {
        data_dir: Some(data.path().display().to_string()),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let polled = eventually(10, || mock.state.count("/api/ps") >= 3).await;
    assert!(polled);
    // VRAM samples reach the disk at most a second after they are queued.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    router.kill_hard();
    let store = SledStore::open(data.path()).unwrap();
    let history = store.vram_history(0).unwrap();
    assert!(!history.is_empty(), "no VRAM samples recorded");
    let sample = &history[0];
    assert_eq!(sample.node, mock.url());
    let loaded = &mock.state.config.models[0];
    assert_eq!(sample.models, vec![(loaded.name.clone(), loaded.size)]);
    assert_eq!(sample.used_bytes, loaded.size);
}

#[test]
fn a_damaged_store_stops_startup_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("conf"), b"\xff\xfe not sled").unwrap();
    std::fs::write(data.join("db"), vec![0xAB; 4096]).unwrap();
    let conf = dir.path().join("c.yaml");
    std::fs::write(
        &conf,
        format!(
            "pid_file: {d}/p.pid\nupgrade_sock: {d}/p.sock\nrouter:\n  port: {port}\n  host: 127.0.0.1\n  data_dir: {data}\n  admin: {{listen: \"\"}}\n",
            d = dir.path().display(),
            port = free_port(),
            data = data.display()
        ),
    )
    .unwrap();
    let output = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .env_remove("ROUTER_DATA_DIR")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&data.display().to_string()) && stderr.contains("Move the directory aside"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

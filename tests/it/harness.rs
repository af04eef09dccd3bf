//! Runs the real `smarterrouter` binary on ephemeral ports against in-process mock Ollamas.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use mock_ollama::{MockConfig, MockModel, MockOllama};

pub const BIN: &str = env!("CARGO_BIN_EXE_smarterrouter");

/// A port for a router, Redis or anything else a test starts and that binds it later: free now,
/// and below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), so a mock or any
/// socket another test binds to port 0 meanwhile cannot take it (with bind-to-0 ports, a mock of a
/// parallel test once took a router's admin port before the router bound it). Each call in this
/// process gets a new one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000, ephemeral_low.max(10_001));
    // Spread over the range by pid, so two test binaries run at once start apart.
    let start = std::process::id() * 7919;
    for _ in 0..(high - low) {
        let port = low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % (high - low);
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port in {low}..{high}")
}

pub async fn mock(config: MockConfig) -> MockOllama {
    MockOllama::start(config).await.expect("mock starts")
}

pub async fn default_mock() -> MockOllama {
    mock(MockConfig::default()).await
}

/// A node line for the YAML: (url, kind).
pub fn node(url: &str, kind: &str) -> (String, String) {
    (url.to_string(), kind.to_string())
}

pub struct RouterProcess {
    /// The foreground process (`None` in daemon mode, where the daemon's pid is in the pid file).
    child: Option<Child>,
    pub port: u16,
    pub admin_port: u16,
    log_path: PathBuf,
    /// The configuration file the router was started with.
    pub conf: PathBuf,
    pub pid_file: PathBuf,
    /// Daemons started for this router (killed on drop if still running).
    daemons: Vec<u32>,
    dir: tempfile::TempDir,
}

pub struct RouterOptions {
    pub nodes: Vec<(String, String)>,
    /// Extra YAML lines under `router:` (two-space indented).
    pub extra: String,
    pub env: Vec<(String, String)>,
    /// Wait until /health says at least one node is up.
    pub wait_healthy: bool,
    /// `router.discovery.interval_secs`.
    pub discovery_secs: u64,
    /// `router.data_dir`; a fresh one in the test's temp dir when unset.
    pub data_dir: Option<String>,
    /// `router.profiling.auto` (off in tests unless a test is about it: it sends requests).
    pub auto_profile: bool,
    /// Start with `-d`, as the systemd unit does.
    pub daemon: bool,
    /// `grace_period_seconds`.
    pub grace_secs: u64,
}

impl RouterOptions {
    pub fn new(nodes: Vec<(String, String)>) -> Self {
        RouterOptions {
            nodes,
            extra: "  default_model: llama3.2:1b\n".to_string(),
            env: Vec::new(),
            wait_healthy: true,
            discovery_secs: 1,
            data_dir: None,
            auto_profile: false,
            daemon: false,
            grace_secs: 0,
        }
    }
}

impl RouterProcess {
    pub async fn start_default(mock: &MockOllama) -> Self {
        Self::start(RouterOptions::new(vec![node(&mock.url(), "ollama")])).await
    }

    pub async fn start(options: RouterOptions) -> Self {
        let mut router = Self::prepare(&options);
        router.launch(&options).await;
        router
    }

    /// Writes the configuration and picks the ports; starts nothing.
    pub fn prepare(options: &RouterOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let admin_port = free_port();
        let mut yaml = format!(
            "threads: 2\ngrace_period_seconds: {grace}\ngraceful_shutdown_timeout_seconds: 1\n\
             pid_file: {d}/sr.pid\nupgrade_sock: {d}/sr.sock\nrouter:\n  host: 127.0.0.1\n  port: {port}\n  data_dir: {data}\n\
             \x20 admin:\n    listen: 127.0.0.1:{admin_port}\n  discovery:\n    interval_secs: {secs}\n    timeout_ms: 1000\n\
             \x20 profiling:\n    auto: {auto}\n    prompts_per_category: 1\n    timeout_secs: 5\n{extra}",
            d = dir.path().display(),
            data = options
                .data_dir
                .clone()
                .unwrap_or_else(|| dir.path().join("data").display().to_string()),
            extra = options.extra,
            secs = options.discovery_secs,
            auto = options.auto_profile,
            grace = options.grace_secs,
        );
        if !options.nodes.is_empty() {
            yaml.push_str("  pools:\n    - name: testpool\n      nodes:\n");
            for (url, kind) in &options.nodes {
                yaml.push_str(&format!("        - url: {url}\n          kind: {kind}\n"));
            }
        }
        let conf = dir.path().join("router.yaml");
        std::fs::write(&conf, yaml).expect("write config");
        let log_path = dir.path().join("router.log");
        let pid_file = dir.path().join("sr.pid");
        RouterProcess {
            child: None,
            port,
            admin_port,
            log_path,
            conf,
            pid_file,
            daemons: Vec::new(),
            dir,
        }
    }

    /// Starts the router (foreground, or with `-d`) and waits until it answers.
    pub async fn launch(&mut self, options: &RouterOptions) {
        let router = self;
        let mut command = router.command(&options.env);
        if options.daemon {
            command.arg("-d");
            let status = command.status().expect("router starts");
            assert!(
                status.success(),
                "smarterrouter -d failed: {status}; log:\n{}",
                router.logs()
            );
            let pid = router.daemon_pid().expect("the daemon wrote its pid file");
            router.daemons.push(pid);
        } else {
            router.child = Some(command.spawn().expect("router starts"));
        }
        router.wait_ready(options.wait_healthy).await;
    }

    /// The router binary with this router's config, environment and log file.
    pub fn command(&self, env: &[(String, String)]) -> Command {
        let mut command = self.bare_command(env);
        command.arg("-c").arg(&self.conf);
        command
    }

    /// The router binary with this router's environment and log file, and no arguments.
    pub fn bare_command(&self, env: &[(String, String)]) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut command = Command::new(BIN);
        // Relative paths in the config (a relative data_dir) are the test directory's.
        command
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // ROUTER_* variables override the file; the tests set only their own.
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("ROUTER_")) {
            command.env_remove(name);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// The pid in the pid file (the daemon's, in daemon mode).
    pub fn daemon_pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Remembers a daemon started by a test (e.g. by an upgrade), to kill it on drop.
    pub fn adopt_daemon(&mut self, pid: u32) {
        self.daemons.push(pid);
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    async fn wait_ready(&self, healthy: bool) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{}/health", self.url())).send().await {
                if !healthy || r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "router did not become ready; log:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no shutdown work at all) and waits for it.
    /// The foreground process's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill_hard(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in &self.daemons {
            // Only if that pid is still one of ours (pids are reused).
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("smarterrouter"));
            if ours {
                signal(*pid, "KILL");
            }
        }
    }

    /// Whether the process (the foreground one, or the newest daemon) is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => self.daemons.last().is_some_and(|pid| pid_alive(*pid)),
        }
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// Sends a signal (`TERM`, `QUIT`, `KILL`, ...) with kill(1).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            // The state follows the parenthesised command name.
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Waits until the process has exited, at most `secs`; true if it did.
pub async fn wait_exit(pid: u32, secs: u64) -> bool {
    eventually(secs, || !pid_alive(pid)).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Polls `check` until it holds or `secs` pass.
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

pub fn chat_body(model: &str, content: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

/// GET a URL and parse the body as JSON (whatever the status).
pub async fn get_json(url: String) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON body")
}

/// `smarterrouter_store_decisions_not_persisted_total` at `base` (a router's proxy or admin URL):
/// the decisions the store's per-second cap kept in memory only.
pub async fn decisions_over_the_cap(base: &str) -> u64 {
    let metrics = get_text(format!("{base}/metrics")).await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("smarterrouter_store_decisions_not_persisted_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// GET a URL and return the body as text (whatever the status).
pub async fn get_text(url: String) -> String {
    client()
        .get(url)
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("text body")
}

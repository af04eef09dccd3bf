//! Reads the one YAML file: Pingora's server keys at the top level, our settings under `router:`.
//! Every problem found is collected (unknown keys anywhere, type errors with their key path,
//! semantic checks, bad environment overrides) so a user fixes them all in one pass.

use std::fmt;
use std::path::Path;

use pingora::server::configuration::ServerConf;

use super::env::RouterEnv;
use super::{env, validate, RouterConfig};

/// Pingora 0.9.1 `ServerConf` keys accepted at the top level of the file.
const PINGORA_KEYS: &[&str] = &[
    "version",
    "daemon",
    "error_log",
    "pid_file",
    "upgrade_sock",
    "user",
    "group",
    "working_directory",
    "threads",
    "listener_tasks_per_fd",
    "work_stealing",
    "runtime_enable_alt_timer",
    "ca_file",
    "s2n_config_cache_size",
    "grace_period_seconds",
    "graceful_shutdown_timeout_seconds",
    "client_bind_to_ipv4",
    "client_bind_to_ipv6",
    "upstream_keepalive_pool_size",
    "upstream_connect_offload_threadpools",
    "upstream_connect_offload_thread_per_pool",
    "downstream_tls_offload_threadpools",
    "downstream_tls_offload_thread_per_pool",
    "upstream_debug_ssl_keylog",
    "max_retries",
    "upgrade_sock_connect_accept_max_retries",
    "max_blocking_threads",
    "blocking_threads_ttl_seconds",
    "fast_timeout_to_tokio_threshold_seconds",
    "runtime_metrics_poll_time_histogram",
    "runtime_metrics_poll_time_histogram_scale",
    "runtime_metrics_poll_time_histogram_resolution_micros",
    "runtime_metrics_poll_time_histogram_buckets",
    "daemon_wait_for_ready",
    "daemon_ready_timeout_seconds",
    "daemon_notify_timeout_seconds",
];

/// Pingora waits this long after SIGTERM before it stops; its own default (300 s) outlasts
/// systemd's stop timeout, so we default to something a service manager will wait for.
const DEFAULT_GRACE_PERIOD_SECS: u64 = 5;

/// The parent of `smarterrouter -d` waits this long for the daemon to be ready (Pingora's own
/// default is 600 s, longer than systemd waits for a start); `daemon_ready_timeout_seconds`.
const DEFAULT_DAEMON_READY_TIMEOUT_SECS: u64 = 60;

/// A configuration that passed every check.
#[derive(Debug)]
pub struct LoadedConfig {
    pub server: ServerConf,
    pub router: RouterConfig,
    pub nodes: Vec<validate::ResolvedNode>,
    /// Settings that are accepted but have no effect (printed at start and by `--validate`).
    pub warnings: Vec<String>,
}

/// Every problem found in a configuration, each naming its key path or environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{} has {n} configuration error{}:",
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Loads `path`, applying `ROUTER_*` overrides from the process environment.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let source_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        source_name: source_name.clone(),
        problems: vec![format!(
            "cannot read the file: {e} (pass another file with -c PATH)"
        )],
        warnings: Vec::new(),
    })?;
    load_str(&text, &source_name, &RouterEnv::from_process())
}

/// Loads YAML text with `env` (the `ROUTER_*` variables) applied over it.
pub fn load_str(
    text: &str,
    source_name: &str,
    env: &RouterEnv,
) -> Result<LoadedConfig, ConfigError> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let fail = |problems: Vec<String>, warnings: Vec<String>| ConfigError {
        source_name: source_name.to_string(),
        problems,
        warnings,
    };

    let document: serde_yaml::Value = if text.trim().is_empty() {
        serde_yaml::Value::Mapping(Default::default())
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| fail(vec![format!("not valid YAML: {e}")], Vec::new()))?
    };
    let serde_yaml::Value::Mapping(mut top) = document else {
        return Err(fail(
            vec![
                "the top level must be a mapping of keys (Pingora's server keys and `router:`)"
                    .to_string(),
            ],
            Vec::new(),
        ));
    };

    let router_value = top
        .remove("router")
        .unwrap_or(serde_yaml::Value::Mapping(Default::default()));
    for key in top.keys() {
        let name = key.as_str().unwrap_or("<non-string key>");
        if !PINGORA_KEYS.contains(&name) {
            problems.push(format!(
                "{name}: unknown top-level key (expected `router:` or one of Pingora's server keys such as threads, pid_file, grace_period_seconds)"
            ));
        }
    }

    let server = parse_server_conf(&top, &mut problems);
    let mut router = parse_router(router_value, &mut problems);
    if let Some(router) = router.as_mut() {
        // The file may use Python's level names too (WARNING, CRITICAL), as the original's users do.
        if let Some(level) = env::normalise_log_level(&router.log.level) {
            router.log.level = level.to_string();
        }
        warnings = env::apply_overrides(router, env, &mut problems);
        read_key_file(router, &mut problems);
    }
    let nodes = match &router {
        Some(router) => validate::check(router, &mut problems),
        None => Vec::new(),
    };
    if let (Some(server), Some(router)) = (&server, &router) {
        check_server_keys(server, router, &mut problems);
    }

    match (server, router) {
        (Some(server), Some(router)) if problems.is_empty() => Ok(LoadedConfig {
            server,
            router,
            nodes,
            warnings,
        }),
        _ => Err(fail(problems, warnings)),
    }
}

fn parse_server_conf(top: &serde_yaml::Mapping, problems: &mut Vec<String>) -> Option<ServerConf> {
    let mut known = serde_yaml::Mapping::new();
    for (key, value) in top {
        if key.as_str().is_some_and(|k| PINGORA_KEYS.contains(&k)) {
            known.insert(key.clone(), value.clone());
        }
    }
    if !known.contains_key("version") {
        known.insert("version".into(), 1.into());
    }
    let yaml = match serde_yaml::to_string(&known) {
        Ok(yaml) => yaml,
        Err(e) => {
            problems.push(format!("Pingora server keys: {e}"));
            return None;
        }
    };
    match ServerConf::from_yaml(&yaml) {
        Ok(mut conf) => {
            conf.daemon_ready_timeout_seconds = conf
                .daemon_ready_timeout_seconds
                .or(std::num::NonZeroU64::new(DEFAULT_DAEMON_READY_TIMEOUT_SECS));
            conf.grace_period_seconds = conf
                .grace_period_seconds
                .or(Some(DEFAULT_GRACE_PERIOD_SECS));
            conf.graceful_shutdown_timeout_seconds = conf
                .graceful_shutdown_timeout_seconds
                .or(Some(DEFAULT_GRACE_PERIOD_SECS));
            Some(conf)
        }
        Err(e) => {
            // Pingora's message repeats the whole document; keep only the cause.
            let cause = e
                .root_cause()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            problems.push(format!("Pingora server keys: {cause}"));
            None
        }
    }
}

/// Pingora keys that would break the router.
fn check_server_keys(server: &ServerConf, router: &RouterConfig, problems: &mut Vec<String>) {
    if server.threads == 0 {
        problems.push("threads: must be at least 1 (worker threads per service)".to_string());
    }
    // Pingora's own retry cap bounds ours: each node attempt and each resend on a stale pooled
    // connection counts against it.
    let needed = router.upstream.max_attempts + usize::from(super::MAX_STALE_RETRIES);
    if server.max_retries < needed {
        problems.push(format!(
            "max_retries: {} is below what router.upstream.max_attempts needs ({needed}); remove the key (default 16) or raise it",
            server.max_retries
        ));
    }
}

fn parse_router(value: serde_yaml::Value, problems: &mut Vec<String>) -> Option<RouterConfig> {
    if value.is_null() {
        return Some(RouterConfig::default());
    }
    let mut unknown = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let deserializer = serde_ignored::Deserializer::new(value, &mut note_unknown);
    let parsed: Result<RouterConfig, _> = serde_path_to_error::deserialize(deserializer);
    for path in unknown {
        let path = bracket_indices(&path);
        problems.push(format!(
            "router.{path}: unknown key (check its spelling against conf/smarterrouter.yaml)"
        ));
    }
    match parsed {
        Ok(router) => Some(router),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." {
                String::new()
            } else {
                format!(".{path}")
            };
            problems.push(format!("router{path}: {}", e.into_inner()));
            None
        }
    }
}

/// Appends the entries of `router.auth.api_keys_file` to `router.auth.api_keys`.
fn read_key_file(router: &mut RouterConfig, problems: &mut Vec<String>) {
    let Some(path) = router.auth.api_keys_file.clone() else {
        return;
    };
    let at = format!("router.auth.api_keys_file ({path})");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("{at}: cannot read the file: {e}"));
            return;
        }
    };
    let value: serde_yaml::Value = match serde_yaml::from_str(&text) {
        Ok(value) => value,
        Err(e) => {
            problems.push(format!("{at}: not valid YAML: {e}"));
            return;
        }
    };
    let mut unknown = Vec::new();
    let mut note_unknown = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
    let deserializer = serde_ignored::Deserializer::new(value, &mut note_unknown);
    let parsed: Result<Vec<super::ApiKeyConfig>, _> =
        serde_path_to_error::deserialize(deserializer);
    for path in unknown {
        problems.push(format!(
            "{at}: {}: unknown key (an entry has key, name, models, requests_per_minute)",
            bracket_indices(&path)
        ));
    }
    match parsed {
        Ok(entries) => {
            for (i, mut entry) in entries.into_iter().enumerate() {
                entry.origin = Some(format!("{path}[{i}]"));
                router.auth.api_keys.push(entry);
            }
        }
        Err(e) => problems.push(format!(
            "{at}: {}: {} (the file is a YAML list of entries with key, name, models, requests_per_minute)",
            bracket_indices(&e.path().to_string()),
            e.into_inner()
        )),
    }
}

/// `pools.0.nodes.1.x` (serde_ignored) to `pools[0].nodes[1].x`, the form used elsewhere.
fn bracket_indices(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> RouterEnv {
        RouterEnv::default()
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = "threds: 2\nrouter:\n  colour: red\n  port: 0\n  pools:\n    - name: a\n      nodes:\n        - url: http://127.0.0.1:1\n          wieght: 3\n";
        let err = load_str(text, "t.yaml", &no_env()).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("threds: unknown top-level key"), "{all}");
        assert!(all.contains("router.colour: unknown key"), "{all}");
        assert!(
            all.contains("router.pools[0].nodes[0].wieght: unknown key"),
            "{all}"
        );
        assert!(all.contains("router.port: must be"), "{all}");
        assert_eq!(err.problems.len(), 4, "{all}");
    }

    #[test]
    fn type_errors_name_the_key() {
        let err = load_str(
            "router:\n  discovery:\n    interval_secs: soon\n",
            "t",
            &no_env(),
        )
        .unwrap_err();
        assert!(
            err.problems[0].starts_with("router.discovery.interval_secs: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_gives_defaults_and_pingora_gets_a_sane_grace_period() {
        let loaded = load_str("", "t", &no_env()).unwrap();
        assert_eq!(loaded.router.port, 11436);
        assert_eq!(loaded.server.grace_period_seconds, Some(5));
        assert_eq!(
            loaded.server.daemon_ready_timeout_seconds.map(|n| n.get()),
            Some(60)
        );
        assert_eq!(loaded.nodes.len(), 1);
    }

    #[test]
    fn env_errors_are_collected_with_file_errors() {
        let env = RouterEnv::from_pairs(&[("ROUTER_PORT", "x")]);
        let err = load_str("router:\n  log: {level: loud}\n", "t", &env).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }

    #[test]
    fn pingora_keys_that_would_break_the_router_are_errors() {
        let err = load_str("threads: 0\nmax_retries: 1\n", "t", &no_env()).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("threads: must be at least 1"), "{all}");
        assert!(all.contains("max_retries: 1 is below"), "{all}");
    }

    #[test]
    fn admin_on_the_proxy_port_is_an_error() {
        let text = "router:\n  host: 0.0.0.0\n  port: 9000\n  admin: {listen: 127.0.0.1:9000}\n";
        let err = load_str(text, "t", &no_env()).unwrap_err();
        assert!(err.problems[0].starts_with("router.admin.listen"), "{err}");
    }

    #[test]
    fn a_data_dir_too_long_for_the_owner_socket_is_an_error() {
        let long = format!("/tmp/{}", "d".repeat(110));
        let err = load_str(&format!("router:\n  data_dir: {long}\n"), "t", &no_env()).unwrap_err();
        assert!(err.problems[0].starts_with("router.data_dir:"), "{err}");
        assert!(err.problems[0].contains("too long"), "{err}");
    }

    #[test]
    fn pingora_type_errors_are_reported() {
        let err = load_str("threads: many\n", "t", &no_env()).unwrap_err();
        assert!(err.problems[0].starts_with("Pingora server keys"), "{err}");
    }
}

//! Semantic checks on a parsed `router:` section. Each problem names its key path and says what
//! to do; node URLs are resolved here, once, because Pingora's `HttpPeer::new` panics on a name it
//! cannot resolve.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::{NodeKind, RouterConfig};

const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
/// `sun_path` holds 108 bytes with the terminating NUL (`<data_dir>/owner.sock`).
const MAX_OWNER_SOCKET_PATH: usize = 107;
/// 1 GiB: the whole body is held in memory, so larger limits invite exhaustion.
const MAX_BODY_LIMIT: usize = 1 << 30;

/// A node whose URL parsed and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedNode {
    pub pool: String,
    /// The URL as written, without a trailing slash; used in messages and `/health`.
    pub url: String,
    pub addr: SocketAddr,
    /// Value for the `Host` header sent to the node.
    pub host_header: String,
    pub kind: NodeKind,
    pub weight: u32,
    pub max_concurrency: Option<u32>,
    /// Declared GPU memory, in bytes.
    pub vram_total_bytes: Option<u64>,
    /// Whether NVML's GPUs are this node's.
    pub local: bool,
}

pub(super) fn check(router: &RouterConfig, problems: &mut Vec<String>) -> Vec<ResolvedNode> {
    check_listen(router, problems);
    check_requests(router, problems);
    check_routing(router, problems);
    check_admin_key(router, problems);
    check_profiling(router, problems);
    check_store(router, problems);
    check_cluster(router, problems);
    check_timing(router, problems);
    check_cache(router, problems);
    check_vram(router, problems);
    if router.rate_limit.requests_per_minute == 0
        || router.rate_limit.admin_requests_per_minute == 0
        || router.rate_limit.chat_requests_per_minute == Some(0)
    {
        problems.push("router.rate_limit.requests_per_minute, chat_requests_per_minute and admin_requests_per_minute (ROUTER_RATE_LIMIT_*_PER_MINUTE): must be at least 1 (set router.rate_limit.enabled: false to turn limits off)".to_string());
    }
    check_client_keys(router, problems);
    check_pools(router, problems)
}

/// `router.cache`.
fn check_cache(router: &RouterConfig, problems: &mut Vec<String>) {
    let cache = &router.cache;
    if cache.ttl_secs == 0 {
        problems.push("router.cache.ttl_secs (ROUTER_CACHE_TTL_SECONDS): must be at least 1 (set router.cache.enabled: false to turn the cache off)".to_string());
    }
    if cache.max_entries == 0 {
        problems.push(
            "router.cache.max_entries (ROUTER_CACHE_RESPONSE_MAX_SIZE): must be at least 1"
                .to_string(),
        );
    }
    if cache.max_response_bytes == 0 || cache.max_response_bytes > cache.max_bytes {
        problems.push(format!(
            "router.cache.max_response_bytes: {} must be at least 1 and at most router.cache.max_bytes ({})",
            cache.max_response_bytes, cache.max_bytes
        ));
    }
    let semantic = &cache.semantic;
    if !(semantic.similarity_threshold > 0.0 && semantic.similarity_threshold <= 1.0) {
        problems.push(format!(
            "router.cache.semantic.similarity_threshold (ROUTER_CACHE_SIMILARITY_THRESHOLD): {} must be above 0 and at most 1 (a cosine similarity; see the README's table)",
            semantic.similarity_threshold
        ));
    }
    if semantic.timeout_ms == 0 {
        problems.push("router.cache.semantic.timeout_ms: must be at least 1".to_string());
    }
}

/// `router.vram`.
fn check_vram(router: &RouterConfig, problems: &mut Vec<String>) {
    let vram = &router.vram;
    if vram.monitor_interval_secs == 0 {
        problems.push("router.vram.monitor_interval_secs (ROUTER_VRAM_MONITOR_INTERVAL): must be at least 1 (set router.vram.enabled: false to stop monitoring)".to_string());
    }
    if vram
        .max_total_gb
        .is_some_and(|gb| !(gb > 0.0 && gb.is_finite()))
    {
        problems.push(
            "router.vram.max_total_gb (ROUTER_VRAM_MAX_TOTAL_GB): must be a number of GB above 0, e.g. 20"
                .to_string(),
        );
    }
}

/// The proxy and admin addresses.
fn check_listen(router: &RouterConfig, problems: &mut Vec<String>) {
    let host = router.host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_err() {
        problems.push(format!(
            "router.host: {:?} is not an IP address (use 0.0.0.0 for all interfaces or 127.0.0.1 for this machine only)",
            router.host
        ));
    }
    if router.port == 0 {
        problems.push("router.port: must be between 1 and 65535".to_string());
    }
    if !router.admin.listen.is_empty() && router.admin.listen.parse::<SocketAddr>().is_err() {
        problems.push(format!(
            "router.admin.listen: {:?} is not host:port with an IP address (e.g. 127.0.0.1:11437; empty disables the admin service)",
            router.admin.listen
        ));
    }
    let proxy_port_taken = router
        .admin
        .listen
        .parse::<SocketAddr>()
        .is_ok_and(|admin| {
            admin.port() == router.port
                && (admin.ip().is_unspecified()
                    || host
                        .parse::<IpAddr>()
                        .is_ok_and(|h| h.is_unspecified() || h == admin.ip()))
        });
    if proxy_port_taken {
        problems.push(format!(
            "router.admin.listen: {} is the proxy's own address (router.host:router.port); give the admin service another port",
            router.admin.listen
        ));
    }
}

/// Model names, body limit, log level.
fn check_requests(router: &RouterConfig, problems: &mut Vec<String>) {
    if let Some(model) = &router.default_model {
        if model.trim().is_empty() {
            problems.push("router.default_model: must not be empty (remove the key to let the router pick the first model a node offers)".to_string());
        }
    }
    for (i, name) in router.virtual_models.iter().enumerate() {
        if name.trim().is_empty() {
            problems.push(format!("router.virtual_models[{i}]: must not be empty"));
        }
    }
    if !(1024..=MAX_BODY_LIMIT).contains(&router.max_body_bytes) {
        problems.push(format!(
            "router.max_body_bytes: {} is out of range (1024 to {MAX_BODY_LIMIT} bytes; the default is 10485760)",
            router.max_body_bytes
        ));
    }
    if !LOG_LEVELS.contains(&router.log.level.as_str()) {
        problems.push(format!(
            "router.log.level: {:?} is not one of {} (Python's DEBUG, INFO, WARNING, ERROR, CRITICAL work too)",
            router.log.level,
            LOG_LEVELS.join(", ")
        ));
    }
}

/// `router.routing`.
fn check_routing(router: &RouterConfig, problems: &mut Vec<String>) {
    let q = router.routing.quality_preference;
    if !(0.0..=1.0).contains(&q) {
        problems.push(format!(
            "router.routing.quality_preference: {q} is out of range (0 = fastest ... 1 = best)"
        ));
    }
    if router
        .routing
        .pinned_model
        .as_deref()
        .is_some_and(|m| m.trim().is_empty())
    {
        problems.push(
            "router.routing.pinned_model: must not be empty (remove the key for none)".to_string(),
        );
    }
    let sizes = &router.routing.category_min_sizes;
    for (name, row) in [
        ("coding", sizes.coding),
        ("reasoning", sizes.reasoning),
        ("creativity", sizes.creativity),
        ("factual", sizes.factual),
    ] {
        if row.iter().any(|v| *v < 0.0 || !v.is_finite()) || row[0] > row[1] || row[1] > row[2] {
            problems.push(format!(
                "router.routing.category_min_sizes.{name}: {row:?} must be three non-negative sizes in billions for simple, medium and hard prompts, in rising order"
            ));
        }
    }
}

/// `router.admin.api_key`.
fn check_admin_key(router: &RouterConfig, problems: &mut Vec<String>) {
    if router
        .admin
        .api_key
        .as_deref()
        .is_some_and(|k| k.trim().len() < 8)
    {
        problems.push(
            "router.admin.api_key: must be at least 8 characters (remove the key to serve /admin/* on the admin port only)"
                .to_string(),
        );
    }
}

/// Shortest client key accepted: long enough that guessing is hopeless.
const MIN_CLIENT_KEY_CHARS: usize = 16;

/// `router.auth.api_keys` (with the entries of `api_keys_file` appended).
fn check_client_keys(router: &RouterConfig, problems: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    let mut tenants: std::collections::HashMap<&str, &super::ApiKeyConfig> =
        std::collections::HashMap::new();
    for (i, entry) in router.auth.api_keys.iter().enumerate() {
        let at = entry
            .origin
            .clone()
            .unwrap_or_else(|| format!("router.auth.api_keys[{i}]"));
        if entry.key.chars().count() < MIN_CLIENT_KEY_CHARS
            || entry
                .key
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            problems.push(format!("{at}.key: must be at least {MIN_CLIENT_KEY_CHARS} characters with no spaces (e.g. the output of `openssl rand -hex 24`)"));
        }
        if !seen.insert(entry.key.as_str()) {
            problems.push(format!(
                "{at}.key: the same key is listed twice; give each client its own key"
            ));
        }
        if entry.name.as_deref().is_some_and(|n| {
            n.is_empty()
                || n.len() > 64
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        }) {
            problems.push(format!("{at}.name: must be 1 to 64 letters, digits or - _ . @ (it appears in logs and metrics)"));
        }
        if entry.name.as_deref().is_some_and(|n| n.starts_with("key-")) {
            problems.push(format!(
                "{at}.name: names starting with key- are kept for unnamed keys; choose another"
            ));
        }
        if let Some(name) = &entry.name {
            let same = |other: &super::ApiKeyConfig| {
                other.models == entry.models
                    && other.requests_per_minute == entry.requests_per_minute
            };
            match tenants.get(name.as_str()) {
                Some(&first) if !same(first) => problems.push(format!(
                    "{at}: name {name:?} is also used by an entry with other models or requests_per_minute; keys of one tenant share its cache, rate and feedback, so give them the same settings or other names"
                )),
                Some(_) => {}
                None => {
                    tenants.insert(name.as_str(), entry);
                }
            }
        }
        for (j, model) in entry.models.iter().enumerate() {
            if model.trim().is_empty() || model.trim() == "*" {
                problems.push(format!("{at}.models[{j}]: must name a model or a prefix ending in * (leave models out to allow every model)"));
            }
        }
        if entry.requests_per_minute == Some(0) {
            problems.push(format!(
                "{at}.requests_per_minute: must be at least 1 (remove it to use router.rate_limit.requests_per_minute)"
            ));
        }
    }
}

/// `router.profiling` and its judge.
fn check_profiling(router: &RouterConfig, problems: &mut Vec<String>) {
    let profiling = &router.profiling;
    if !(1..=super::SUITE_PROMPTS_PER_CATEGORY).contains(&profiling.prompts_per_category) {
        problems.push(format!(
            "router.profiling.prompts_per_category (ROUTER_PROFILE_PROMPTS_PER_CATEGORY): {} is out of range: the suites have {} prompts per category, so use 1 to {}",
            profiling.prompts_per_category,
            super::SUITE_PROMPTS_PER_CATEGORY,
            super::SUITE_PROMPTS_PER_CATEGORY
        ));
    }
    if profiling.timeout_secs == 0
        || !(1..=64).contains(&profiling.concurrency)
        || profiling.max_tokens == 0
    {
        problems.push(format!(
            "router.profiling: timeout_secs ({}) and max_tokens ({}) must be at least 1, concurrency ({}) 1 to 64",
            profiling.timeout_secs, profiling.max_tokens, profiling.concurrency
        ));
    }
    let judge = &profiling.judge;
    if judge.enabled {
        let url_ok = url::Url::parse(&judge.base_url)
            .is_ok_and(|u| u.scheme() == "http" || u.scheme() == "https");
        if !url_ok {
            problems.push(format!(
                "router.profiling.judge.base_url: {:?} is not an http(s) URL (e.g. https://api.openai.com/v1)",
                judge.base_url
            ));
        }
        if judge.model.trim().is_empty() || judge.timeout_secs == 0 {
            problems.push(
                "router.profiling.judge: model must be set and timeout_secs at least 1".to_string(),
            );
        }
    }
}

/// `router.data_dir` and `router.feedback`.
fn check_store(router: &RouterConfig, problems: &mut Vec<String>) {
    if router.data_dir.trim().is_empty() {
        problems.push("router.data_dir: must name a directory (default ./data)".to_string());
    } else if let Ok(absolute) = std::path::absolute(&router.data_dir) {
        // The store's owner socket lives there; a Unix socket path has at most 107 bytes.
        let socket = absolute.join("owner.sock").as_os_str().len();
        if socket > MAX_OWNER_SOCKET_PATH {
            problems.push(format!(
                "router.data_dir: {} is too long ({socket} bytes with /owner.sock; a Unix socket path has at most {MAX_OWNER_SOCKET_PATH}); use a shorter path",
                absolute.display()
            ));
        }
    }
    if !(router.feedback.half_life_days > 0.0 && router.feedback.half_life_days.is_finite()) {
        problems.push(format!(
            "router.feedback.half_life_days: {} must be a positive number of days",
            router.feedback.half_life_days
        ));
    }
}

fn check_cluster(router: &RouterConfig, problems: &mut Vec<String>) {
    let cluster = &router.cluster;
    if let Some(url) = &cluster.redis_url {
        match url::Url::parse(url) {
            Ok(u) if u.scheme() == "redis" && u.host_str().is_some_and(|h| !h.is_empty()) => {}
            Ok(u) if u.scheme() == "rediss" => problems.push(format!(
                "router.cluster.redis_url: {}: TLS (rediss://) is not built in; reach Redis over a private network or a TLS tunnel and use redis://",
                u.host_str().unwrap_or("")
            )),
            _ => problems.push(
                "router.cluster.redis_url (ROUTER_REDIS_URL): expected redis://[user:password@]host:port[/db], e.g. redis://127.0.0.1:6379".to_string(),
            ),
        }
    }
    let prefix_ok = !cluster.key_prefix.is_empty()
        && cluster.key_prefix.len() <= 64
        && cluster
            .key_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !prefix_ok {
        problems.push(format!(
            "router.cluster.key_prefix (ROUTER_REDIS_CACHE_PREFIX): {:?} must be 1 to 64 letters, digits, '-', '_' or '.'",
            cluster.key_prefix
        ));
    }
    if !(1..=10_000).contains(&cluster.timeout_ms) {
        problems.push(format!(
            "router.cluster.timeout_ms: {} must be between 1 and 10000 (milliseconds a request waits for Redis)",
            cluster.timeout_ms
        ));
    }
}

/// Discovery and upstream timeouts and attempts.
fn check_timing(router: &RouterConfig, problems: &mut Vec<String>) {
    if router.discovery.interval_secs == 0 {
        problems.push("router.discovery.interval_secs: must be at least 1".to_string());
    }
    if router.discovery.timeout_ms == 0 {
        problems.push("router.discovery.timeout_ms: must be at least 1".to_string());
    }
    if router.upstream.connect_timeout_ms == 0 {
        problems.push("router.upstream.connect_timeout_ms: must be at least 1".to_string());
    }
    if router.upstream.read_timeout_secs == 0 {
        problems.push("router.upstream.read_timeout_secs: must be at least 1".to_string());
    }
    if !(1..=10).contains(&router.upstream.max_attempts) {
        problems.push(format!(
            "router.upstream.max_attempts: {} is out of range (1 to 10)",
            router.upstream.max_attempts
        ));
    }
}

fn check_pools(router: &RouterConfig, problems: &mut Vec<String>) -> Vec<ResolvedNode> {
    let mut nodes = Vec::new();
    if router.pools.is_empty() {
        problems.push(
            "router.pools: at least one pool with one node is needed (or set ROUTER_OLLAMA_URL)"
                .to_string(),
        );
    }
    let mut pool_names = HashSet::new();
    let mut urls = HashSet::new();
    for (p, pool) in router.pools.iter().enumerate() {
        if pool.name.trim().is_empty() {
            problems.push(format!("router.pools[{p}].name: must not be empty"));
        } else if !pool_names.insert(pool.name.as_str()) {
            problems.push(format!(
                "router.pools[{p}].name: {:?} is used by another pool; pool names must be unique",
                pool.name
            ));
        }
        if pool.nodes.is_empty() {
            problems.push(format!(
                "router.pools[{p}].nodes: a pool needs at least one node"
            ));
        }
        for (n, node) in pool.nodes.iter().enumerate() {
            let key = format!("router.pools[{p}].nodes[{n}]");
            if node.weight == 0 {
                problems.push(format!("{key}.weight: must be at least 1"));
            }
            if node.max_concurrency == Some(0) {
                problems.push(format!(
                    "{key}.max_concurrency: must be at least 1 (remove the key for no limit)"
                ));
            }
            match resolve_url(&node.url) {
                Ok((url, addr, host_header)) => {
                    if !urls.insert(url.clone()) {
                        problems.push(format!("{key}.url: {url} is listed twice"));
                    }
                    nodes.push(ResolvedNode {
                        pool: pool.name.clone(),
                        url,
                        addr,
                        host_header,
                        kind: node.kind,
                        weight: node.weight,
                        max_concurrency: node.max_concurrency,
                        vram_total_bytes: node.vram_total_gb.map(gb_to_bytes),
                        local: node.local.unwrap_or(addr.ip().is_loopback()),
                    });
                    if node
                        .vram_total_gb
                        .is_some_and(|gb| !(gb > 0.0 && gb.is_finite()))
                    {
                        problems.push(format!(
                            "{key}.vram_total_gb: must be a number of GB above 0, e.g. 24"
                        ));
                    }
                }
                Err(why) => problems.push(format!("{key}.url: {why}")),
            }
        }
    }
    nodes
}

/// GB (10^9 bytes, as the original reports them; nvidia-smi shows MiB, so a 24 GiB card is about
/// 25.8 GB) to bytes.
pub fn gb_to_bytes(gb: f64) -> u64 {
    (gb.max(0.0) * 1e9).round() as u64
}

/// Parses `http://host[:port]` into (normalised URL, resolved address, Host header).
fn resolve_url(raw: &str) -> Result<(String, SocketAddr, String), String> {
    let parsed = url::Url::parse(raw)
        .map_err(|e| format!("{raw:?} is not a URL ({e}); write it as http://host:port"))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{raw:?}: https nodes are not supported yet; put the node on a private network and use http://"
            ))
        }
        other => return Err(format!("{raw:?}: scheme {other:?} is not supported; use http://")),
    }
    if !(parsed.path().is_empty() || parsed.path() == "/") || parsed.query().is_some() {
        return Err(format!(
            "{raw:?}: give only scheme, host and port (no path such as /v1: the router adds the API path itself)"
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{raw:?} has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare_host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host {host:?}: {e}"))?
        .collect();
    // `localhost` often resolves to ::1 first while Ollama listens on 127.0.0.1 only.
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("host {host:?} resolved to no address"))?;
    let host_header = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let url = format!("http://{host_header}");
    Ok((url, addr, host_header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_port_resolves() {
        let (url, addr, host) = resolve_url("http://127.0.0.1:11434/").unwrap();
        assert_eq!(url, "http://127.0.0.1:11434");
        assert_eq!(addr, "127.0.0.1:11434".parse().unwrap());
        assert_eq!(host, "127.0.0.1:11434");
    }

    #[test]
    fn url_problems_are_explained() {
        assert!(resolve_url("127.0.0.1:11434")
            .unwrap_err()
            .contains("http://"));
        assert!(resolve_url("https://x:1").unwrap_err().contains("https"));
        assert!(resolve_url("http://127.0.0.1:8080/v1")
            .unwrap_err()
            .contains("no path"));
        assert!(resolve_url("http://no-such-host.invalid:1")
            .unwrap_err()
            .contains("cannot resolve"));
    }
}

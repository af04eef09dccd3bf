//! `ROUTER_*` environment variables of the original SmarterRouter, applied over the file so an
//! existing `.env` keeps working. A variable that is set but empty is ignored, as pydantic did.
//!
//! Every variable SmarterRouter (2.1 and 2.2) knows is listed in [`VARIABLES`] with what this
//! router does with it: applies it, warns that its feature is not built yet, or warns that it
//! has no equivalent and says what to use instead. A `ROUTER_*` variable that is not listed is
//! most likely a typo: it gets a warning naming the nearest known variable.

use super::{LogFormat, NodeConfig, NodeKind, PoolConfig, RouterConfig};

/// The `ROUTER_*` part of the environment, as the loader reads it (a snapshot, so tests need
/// no process globals).
#[derive(Debug, Clone, Default)]
pub struct RouterEnv {
    vars: Vec<(String, String)>,
}

impl RouterEnv {
    /// The process's `ROUTER_*` variables.
    pub fn from_process() -> Self {
        RouterEnv {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| {
                    Some((k.into_string().ok()?, v.to_string_lossy().into_owned()))
                })
                .filter(|(k, _)| k.starts_with("ROUTER_"))
                .collect(),
        }
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        RouterEnv {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The value, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

/// What the loader does with a variable of the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Applied over the file by [`apply_overrides`].
    Applied,
    /// Its feature is not built yet; the text names it.
    NotYet(&'static str),
    /// No equivalent here; the text says what to use instead.
    Ignored(&'static str),
}

use Support::{Applied, Ignored, NotYet};

const CACHE: &str = "the response cache";
const VRAM: &str = "VRAM monitoring and unloading";
const RATE: &str = "rate limiting";
const REDIS: &str = "the shared Redis backend";

/// Every variable of SmarterRouter 2.1 and 2.2 (and the later README), and what is done with it.
pub const VARIABLES: &[(&str, Support)] = &[
    ("ROUTER_OLLAMA_URL", Applied),
    ("ROUTER_HOST", Applied),
    ("ROUTER_PORT", Applied),
    ("ROUTER_LOG_LEVEL", Applied),
    ("ROUTER_LOG_FORMAT", Applied),
    ("ROUTER_DEFAULT_MODEL", Applied),
    ("ROUTER_MAX_REQUEST_BODY_BYTES", Applied),
    ("ROUTER_QUALITY_PREFERENCE", Applied),
    ("ROUTER_PREFER_SMALLER_MODELS", Applied),
    ("ROUTER_PINNED_MODEL", Applied),
    ("ROUTER_DATA_DIR", Applied),
    ("ROUTER_FEEDBACK_ENABLED", Applied),
    ("ROUTER_PROFILE_PROMPTS_PER_CATEGORY", Applied),
    ("ROUTER_PROFILE_TIMEOUT", Applied),
    ("ROUTER_PROFILE_CONCURRENCY", Applied),
    ("ROUTER_MODEL_AUTO_PROFILE_ENABLED", Applied),
    ("ROUTER_JUDGE_ENABLED", Applied),
    ("ROUTER_JUDGE_MODEL", Applied),
    ("ROUTER_JUDGE_BASE_URL", Applied),
    ("ROUTER_JUDGE_API_KEY", Applied),
    ("ROUTER_JUDGE_MAX_RETRIES", Applied),
    ("ROUTER_JUDGE_RETRY_BASE_DELAY", Applied),
    ("ROUTER_ADMIN_API_KEY", Applied),
    ("ROUTER_ROUTER_EXTERNAL_MODEL_NAME", Applied),
    ("ROUTER_EXTERNAL_MODEL_NAME", Applied),
    ("ROUTER_POLLING_INTERVAL", Applied),
    ("ROUTER_MODEL_POLLING_INTERVAL", Applied),
    ("ROUTER_DATABASE_URL", Ignored("the store is the embedded one in router.data_dir (ROUTER_DATA_DIR); no database server is used")),
    ("ROUTER_DATABASE_POOL_SIZE", Ignored("the store is embedded; there is no database pool")),
    ("ROUTER_DATABASE_MAX_OVERFLOW", Ignored("the store is embedded; there is no database pool")),
    ("ROUTER_DATABASE_POOL_RECYCLE", Ignored("the store is embedded; there is no database pool")),
    ("ROUTER_DATABASE_POOL_PRE_PING", Ignored("the store is embedded; there is no database pool")),
    ("ROUTER_CACHE_ENABLED", NotYet(CACHE)),
    ("ROUTER_CACHE_MAX_SIZE", NotYet(CACHE)),
    ("ROUTER_CACHE_TTL_SECONDS", NotYet(CACHE)),
    ("ROUTER_CACHE_RESPONSE_MAX_SIZE", NotYet(CACHE)),
    ("ROUTER_CACHE_SIMILARITY_THRESHOLD", NotYet("the semantic cache")),
    ("ROUTER_EMBED_MODEL", NotYet("the semantic cache")),
    ("ROUTER_CACHE_BACKEND", NotYet(REDIS)),
    ("ROUTER_REDIS_URL", NotYet(REDIS)),
    ("ROUTER_REDIS_MAX_CONNECTIONS", NotYet(REDIS)),
    ("ROUTER_REDIS_CACHE_PREFIX", NotYet(REDIS)),
    ("ROUTER_RATE_LIMIT_ENABLED", NotYet(RATE)),
    ("ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE", NotYet(RATE)),
    ("ROUTER_RATE_LIMIT_ADMIN_REQUESTS_PER_MINUTE", NotYet(RATE)),
    ("ROUTER_RATE_LIMIT_CHAT_REQUESTS_PER_MINUTE", NotYet(RATE)),
    ("ROUTER_ADMIN_ALLOWED_IPS", NotYet("admin access by client address")),
    ("ROUTER_VRAM_MONITOR_ENABLED", NotYet(VRAM)),
    ("ROUTER_VRAM_MONITOR_INTERVAL", NotYet(VRAM)),
    ("ROUTER_VRAM_MAX_TOTAL_GB", NotYet(VRAM)),
    ("ROUTER_VRAM_LOG_INTERVAL", NotYet(VRAM)),
    ("ROUTER_VRAM_AUTO_UNLOAD_ENABLED", NotYet(VRAM)),
    ("ROUTER_VRAM_UNLOAD_THRESHOLD_PCT", NotYet(VRAM)),
    ("ROUTER_VRAM_UNLOAD_STRATEGY", NotYet(VRAM)),
    ("ROUTER_VRAM_DEFAULT_ESTIMATE_GB", NotYet(VRAM)),
    ("ROUTER_MODEL_KEEP_ALIVE", NotYet(VRAM)),
    ("ROUTER_PROFILE_MEASURE_VRAM", NotYet(VRAM)),
    ("ROUTER_PROFILE_VRAM_SAMPLE_DELAY", NotYet(VRAM)),
    ("ROUTER_PROFILE_VRAM_SAMPLES", NotYet(VRAM)),
    ("ROUTER_APPLE_UNIFIED_MEMORY_GB", NotYet(VRAM)),
    ("ROUTER_AMD_UNIFIED_MEMORY_GB", NotYet(VRAM)),
    ("ROUTER_PROVIDER", Ignored("nodes are listed in router.pools, each with kind: ollama or openai")),
    ("ROUTER_LLAMA_CPP_URL", Ignored("add the server to router.pools with kind: openai")),
    ("ROUTER_OPENAI_BASE_URL", Ignored("add OpenAI-compatible servers to router.pools with kind: openai (http only)")),
    ("ROUTER_OPENAI_API_KEY", Ignored("nodes are called without a key")),
    ("ROUTER_MODEL_PREFIX", Ignored("model names are used as the nodes list them")),
    ("ROUTER_SIGNATURE_ENABLED", Ignored("the chosen model is in the x-smarterrouter-model response header; answers are not changed")),
    ("ROUTER_SIGNATURE_FORMAT", Ignored("the chosen model is in the x-smarterrouter-model response header; answers are not changed")),
    ("ROUTER_GENERATION_TIMEOUT", Ignored("use router.upstream.read_timeout_secs (longest silence from a node)")),
    ("ROUTER_REQUEST_TIMEOUT_ENABLED", Ignored("use router.upstream.read_timeout_secs (longest silence from a node)")),
    ("ROUTER_REQUEST_TIMEOUT_SECONDS", Ignored("use router.upstream.read_timeout_secs (longest silence from a node)")),
    ("ROUTER_ROUTER_MODEL", Ignored("prompts are classified by the router itself, not by an LLM dispatcher")),
    ("ROUTER_ROUTER_TEMPERATURE", Ignored("prompts are classified by the router itself, not by an LLM dispatcher")),
    ("ROUTER_ROUTER_MAX_TOKENS", Ignored("prompts are classified by the router itself, not by an LLM dispatcher")),
    ("ROUTER_MODEL", Ignored("prompts are classified by the router itself, not by an LLM dispatcher")),
    ("ROUTER_TEMPERATURE", Ignored("prompts are classified by the router itself, not by an LLM dispatcher")),
    ("ROUTER_MAX_TOKENS", Ignored("prompts are classified by the router itself, not by an LLM dispatcher")),
    ("ROUTER_PREFER_NEWER_MODELS", Ignored("models are scored on measured profiles and size, not release date")),
    ("ROUTER_CASCADING_ENABLED", Ignored("failover to another node is always on (router.upstream.max_attempts)")),
    ("ROUTER_BACKEND_RETRY_ENABLED", Ignored("use router.upstream.max_attempts")),
    ("ROUTER_BACKEND_MAX_RETRIES", Ignored("use router.upstream.max_attempts")),
    ("ROUTER_BACKEND_RETRY_BASE_DELAY", Ignored("use router.upstream.max_attempts")),
    ("ROUTER_BACKEND_RETRY_MAX_DELAY", Ignored("use router.upstream.max_attempts")),
    ("ROUTER_BACKEND_CIRCUIT_BREAKER_ENABLED", Ignored("a node that fails is marked down until discovery reaches it again")),
    ("ROUTER_BACKEND_CIRCUIT_BREAKER_FAILURE_THRESHOLD", Ignored("a node that fails is marked down until discovery reaches it again")),
    ("ROUTER_BACKEND_CIRCUIT_BREAKER_RESET_TIMEOUT", Ignored("a node that fails is marked down until discovery reaches it again")),
    ("ROUTER_BACKEND_CIRCUIT_BREAKER_HALF_OPEN_MAX_ATTEMPTS", Ignored("a node that fails is marked down until discovery reaches it again")),
    ("ROUTER_BACKEND_CIRCUIT_BREAKER_SLIDING_WINDOW_SIZE", Ignored("a node that fails is marked down until discovery reaches it again")),
    ("ROUTER_BACKEND_CIRCUIT_BREAKER_QUOTA_RESET_TIMEOUT", Ignored("a node that fails is marked down until discovery reaches it again")),
    ("ROUTER_BENCHMARK_SOURCES", Ignored("quality comes from the router's own profiles, not public benchmarks")),
    ("ROUTER_ARTIFICIAL_ANALYSIS_API_KEY", Ignored("quality comes from the router's own profiles, not public benchmarks")),
    ("ROUTER_ARTIFICIAL_ANALYSIS_CACHE_TTL", Ignored("quality comes from the router's own profiles, not public benchmarks")),
    ("ROUTER_ARTIFICIAL_ANALYSIS_MODEL_MAPPING_FILE", Ignored("quality comes from the router's own profiles, not public benchmarks")),
    ("ROUTER_PROVIDER_DB_ENABLED", Ignored("quality comes from the router's own profiles, not provider.db")),
    ("ROUTER_PROVIDER_DB_PATH", Ignored("quality comes from the router's own profiles, not provider.db")),
    ("ROUTER_PROVIDER_DB_MAX_AGE_HOURS", Ignored("quality comes from the router's own profiles, not provider.db")),
    ("ROUTER_PROVIDER_DB_AUTO_UPDATE_HOURS", Ignored("quality comes from the router's own profiles, not provider.db")),
    ("ROUTER_PROVIDER_DB_DOWNLOAD_URL", Ignored("quality comes from the router's own profiles, not provider.db")),
    ("ROUTER_PROFILE_PARALLEL_COUNT", Ignored("use ROUTER_PROFILE_CONCURRENCY")),
    ("ROUTER_PROFILE_WARMUP_DISK_SPEED_MBPS", Ignored("each prompt has ROUTER_PROFILE_TIMEOUT seconds")),
    ("ROUTER_PROFILE_WARMUP_MAX_TIMEOUT", Ignored("each prompt has ROUTER_PROFILE_TIMEOUT seconds")),
    ("ROUTER_PROFILE_ADAPTIVE_TIMEOUT_MIN", Ignored("each prompt has ROUTER_PROFILE_TIMEOUT seconds")),
    ("ROUTER_PROFILE_ADAPTIVE_TIMEOUT_MAX", Ignored("each prompt has ROUTER_PROFILE_TIMEOUT seconds")),
    ("ROUTER_PROFILE_ADAPTIVE_SAFETY_FACTOR", Ignored("each prompt has ROUTER_PROFILE_TIMEOUT seconds")),
    ("ROUTER_JUDGE_HTTP_REFERER", Ignored("the judge sends no OpenRouter headers")),
    ("ROUTER_JUDGE_X_TITLE", Ignored("the judge sends no OpenRouter headers")),
    ("ROUTER_MODEL_POLLING_ENABLED", Ignored("discovery always runs; set ROUTER_MODEL_POLLING_INTERVAL")),
    ("ROUTER_MODEL_CLEANUP_ENABLED", Ignored("models a node stops listing disappear at the next discovery pass")),
    ("ROUTER_MODEL_FILTER_INCLUDE", Ignored("every model a node lists is routable")),
    ("ROUTER_MODEL_FILTER_EXCLUDE", Ignored("every model a node lists is routable")),
    ("ROUTER_ENABLE_RESPONSE_COMPRESSION", Ignored("responses are passed through as the node sends them")),
    ("ROUTER_COMPRESSION_MINIMUM_SIZE", Ignored("responses are passed through as the node sends them")),
    ("ROUTER_CACHE_CLEANUP_INTERVAL_HOURS", NotYet(CACHE)),
    ("ROUTER_PERSISTENT_CACHE_ENABLED", NotYet(CACHE)),
    ("ROUTER_PERSISTENT_CACHE_MAX_AGE_DAYS", NotYet(CACHE)),
    ("ROUTER_CACHE_STATS_ENABLED", NotYet(CACHE)),
    ("ROUTER_CACHE_STATS_RETENTION_HOURS", NotYet(CACHE)),
    ("ROUTER_ENABLE_SLOW_QUERY_LOGGING", Ignored("every request has an access log line with latency_ms")),
    ("ROUTER_SLOW_QUERY_THRESHOLD_MS", Ignored("every request has an access log line with latency_ms")),
    ("ROUTER_DB_SLOW_FALLBACK_ENABLED", Ignored("requests never wait on the store")),
    ("ROUTER_DB_SLOW_QUERY_THRESHOLD_MS", Ignored("requests never wait on the store")),
    ("ROUTER_DB_SLOW_FALLBACK_WINDOW_SECONDS", Ignored("requests never wait on the store")),
    ("ROUTER_DB_STALE_CACHE_MAX_AGE_SECONDS", Ignored("requests never wait on the store")),
    ("ROUTER_PROMPT_INJECTION_DETECTION_ENABLED", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_PROMPT_INJECTION_DETECTION_ACTION", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_CONTENT_MODERATION_ENABLED", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_CONTENT_MODERATION_ACTION", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_CONTENT_MODERATION_WEBHOOK_URL", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_CONTENT_MODERATION_CATEGORIES", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_MAX_MESSAGE_CONTENT_LENGTH", Ignored("use ROUTER_MAX_REQUEST_BODY_BYTES")),
    ("ROUTER_VERIFY_TLS", Ignored("nodes are reached over http; the judge always verifies TLS")),
    ("ROUTER_CORS_ORIGINS", Ignored("CORS headers are not added; put the router behind your web server for browser clients")),
    ("ROUTER_CORS_ALLOWED_ORIGINS", Ignored("CORS headers are not added; put the router behind your web server for browser clients")),
    ("ROUTER_CORS_ALLOW_CREDENTIALS", Ignored("CORS headers are not added; put the router behind your web server for browser clients")),
    ("ROUTER_CORS_ALLOW_METHODS", Ignored("CORS headers are not added; put the router behind your web server for browser clients")),
    ("ROUTER_CORS_ALLOW_HEADERS", Ignored("CORS headers are not added; put the router behind your web server for browser clients")),
    ("ROUTER_CORS_MAX_AGE", Ignored("CORS headers are not added; put the router behind your web server for browser clients")),
    ("ROUTER_ADMIN_AUDIT_ENABLED", Ignored("admin requests are in the access log")),
    ("ROUTER_DLQ_ENABLED", Ignored("failed requests are not queued for replay")),
    ("ROUTER_DLQ_MAX_RETRIES", Ignored("failed requests are not queued for replay")),
    ("ROUTER_DLQ_RETRY_BASE_DELAY_SECONDS", Ignored("failed requests are not queued for replay")),
    ("ROUTER_DLQ_AUTO_RETRY_BATCH_SIZE", Ignored("failed requests are not queued for replay")),
    ("ROUTER_EXTERNAL_PROVIDERS_ENABLED", Ignored("only your own nodes are routed to")),
    ("ROUTER_EXTERNAL_PROVIDERS", Ignored("only your own nodes are routed to")),
    ("ROUTER_ANTHROPIC_API_KEY", Ignored("only your own nodes are routed to")),
    ("ROUTER_ANTHROPIC_BASE_URL", Ignored("only your own nodes are routed to")),
    ("ROUTER_GOOGLE_API_KEY", Ignored("only your own nodes are routed to")),
    ("ROUTER_GOOGLE_BASE_URL", Ignored("only your own nodes are routed to")),
    ("ROUTER_COHERE_API_KEY", Ignored("only your own nodes are routed to")),
    ("ROUTER_COHERE_BASE_URL", Ignored("only your own nodes are routed to")),
    ("ROUTER_MISTRAL_API_KEY", Ignored("only your own nodes are routed to")),
    ("ROUTER_MISTRAL_BASE_URL", Ignored("only your own nodes are routed to")),
    ("ROUTER_ENCRYPTION_KEY", Ignored("keys are read as given")),
    ("ROUTER_HARDWARE_PRESET", Ignored("set the routing and VRAM keys directly")),
    ("ROUTER_COMPRESSION_ENABLED", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_COMPRESSION_MODE", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_ARBITRAGE_ENABLED", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_ARBITRAGE_MULTILINGUAL_THRESHOLD", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_PRUNER_ENABLED", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_DCA_ENABLED", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_DCA_TARGET_CONTEXT_LIMIT", Ignored("prompts are forwarded unchanged")),
    ("ROUTER_DEFAULT_EMBEDDING_MODEL", Ignored("embedding requests name their model")),
];

pub fn support(name: &str) -> Option<Support> {
    VARIABLES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Log levels as SmarterRouter's users write them: Python's names (DEBUG, INFO, WARNING,
/// ERROR, CRITICAL) or numbers, in any case, mapped to ours.
pub fn normalise_log_level(level: &str) -> Option<&'static str> {
    match level.trim().to_ascii_lowercase().as_str() {
        "trace" => Some("trace"),
        "debug" | "10" => Some("debug"),
        "info" | "20" => Some("info"),
        "warn" | "warning" | "30" => Some("warn"),
        "error" | "critical" | "fatal" | "40" | "50" => Some("error"),
        _ => None,
    }
}

/// Applies the variables that have an equivalent, and returns one warning per set variable
/// that has none (or is not a SmarterRouter variable at all).
pub(super) fn apply_overrides(
    router: &mut RouterConfig,
    env: &RouterEnv,
    problems: &mut Vec<String>,
) -> Vec<String> {
    let get = |name: &str| env.get(name);

    if let Some(url) = get("ROUTER_OLLAMA_URL") {
        router.pools = vec![PoolConfig {
            name: "ollama".to_string(),
            nodes: vec![NodeConfig {
                url,
                kind: NodeKind::Ollama,
                weight: 1,
                max_concurrency: None,
            }],
        }];
    }
    if let Some(host) = get("ROUTER_HOST") {
        router.host = host;
    }
    if let Some(port) = get("ROUTER_PORT") {
        match port.parse::<u16>() {
            Ok(port) => router.port = port,
            Err(_) => problems.push(format!(
                "ROUTER_PORT={port:?}: not a port number (expected 1-65535)"
            )),
        }
    }
    if let Some(level) = get("ROUTER_LOG_LEVEL") {
        match normalise_log_level(&level) {
            Some(level) => router.log.level = level.to_string(),
            None => problems.push(format!(
                "ROUTER_LOG_LEVEL={level:?}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL (or trace), in any case"
            )),
        }
    }
    if let Some(format) = get("ROUTER_LOG_FORMAT") {
        match format.to_ascii_lowercase().as_str() {
            "text" => router.log.format = LogFormat::Text,
            "json" => router.log.format = LogFormat::Json,
            _ => problems.push(format!(
                "ROUTER_LOG_FORMAT={format:?}: expected `text` or `json`"
            )),
        }
    }
    if let Some(model) = get("ROUTER_DEFAULT_MODEL") {
        router.default_model = Some(model);
    }
    if let Some(bytes) = get("ROUTER_MAX_REQUEST_BODY_BYTES") {
        match bytes.parse::<usize>() {
            Ok(bytes) => router.max_body_bytes = bytes,
            Err(_) => problems.push(format!(
                "ROUTER_MAX_REQUEST_BODY_BYTES={bytes:?}: not a whole number of bytes"
            )),
        }
    }
    if let Some(value) = get("ROUTER_QUALITY_PREFERENCE") {
        match value.parse::<f32>() {
            Ok(q) => router.routing.quality_preference = q,
            Err(_) => problems.push(format!(
                "ROUTER_QUALITY_PREFERENCE={value:?}: expected a number from 0 (fastest) to 1 (best)"
            )),
        }
    }
    let mut flag = |name: &str, set: &mut dyn FnMut(bool)| {
        if let Some(value) = get(name) {
            match parse_bool(&value) {
                Some(b) => set(b),
                None => problems.push(format!("{name}={value:?}: expected true or false")),
            }
        }
    };
    flag("ROUTER_PREFER_SMALLER_MODELS", &mut |b| {
        router.routing.prefer_smaller_models = b
    });
    flag("ROUTER_MODEL_AUTO_PROFILE_ENABLED", &mut |b| {
        router.profiling.auto = b
    });
    flag("ROUTER_JUDGE_ENABLED", &mut |b| {
        router.profiling.judge.enabled = b
    });
    flag("ROUTER_FEEDBACK_ENABLED", &mut |b| {
        router.feedback.enabled = b
    });
    let mut number = |name: &str, set: &mut dyn FnMut(u64)| {
        if let Some(value) = get(name) {
            // pydantic accepted "90.0" for an int field; so do we, when it is whole.
            match value.parse::<u64>().ok().or_else(|| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }) {
                Some(n) => set(n),
                None => problems.push(format!("{name}={value:?}: expected a whole number")),
            }
        }
    };
    number("ROUTER_PROFILE_PROMPTS_PER_CATEGORY", &mut |n| {
        router.profiling.prompts_per_category = n as usize
    });
    number("ROUTER_PROFILE_TIMEOUT", &mut |n| {
        router.profiling.timeout_secs = n
    });
    number("ROUTER_PROFILE_CONCURRENCY", &mut |n| {
        router.profiling.concurrency = n as usize
    });
    number("ROUTER_JUDGE_MAX_RETRIES", &mut |n| {
        router.profiling.judge.max_retries = n.min(u64::from(u32::MAX)) as u32
    });
    // The original's discovery loop; the later name wins when both are set.
    number("ROUTER_POLLING_INTERVAL", &mut |n| {
        router.discovery.interval_secs = n
    });
    number("ROUTER_MODEL_POLLING_INTERVAL", &mut |n| {
        router.discovery.interval_secs = n
    });
    if let Some(value) = get("ROUTER_JUDGE_RETRY_BASE_DELAY") {
        match value.parse::<f64>() {
            Ok(secs) if secs >= 0.0 && secs.is_finite() => {
                router.profiling.judge.retry_base_delay_ms = (secs * 1000.0).round() as u64
            }
            _ => problems.push(format!(
                "ROUTER_JUDGE_RETRY_BASE_DELAY={value:?}: expected seconds, e.g. 1.0"
            )),
        }
    }
    if let Some(model) = get("ROUTER_JUDGE_MODEL") {
        router.profiling.judge.model = model;
    }
    if let Some(url) = get("ROUTER_JUDGE_BASE_URL") {
        router.profiling.judge.base_url = url;
    }
    if let Some(key) = get("ROUTER_JUDGE_API_KEY") {
        router.profiling.judge.api_key = Some(key);
    }
    if let Some(key) = get("ROUTER_ADMIN_API_KEY") {
        router.admin.api_key = Some(key);
    }
    if let Some(dir) = get("ROUTER_DATA_DIR") {
        router.data_dir = dir;
    }
    if let Some(model) = get("ROUTER_PINNED_MODEL") {
        router.routing.pinned_model = Some(model);
    }
    if let Some(name) =
        get("ROUTER_ROUTER_EXTERNAL_MODEL_NAME").or_else(|| get("ROUTER_EXTERNAL_MODEL_NAME"))
    {
        if !router.virtual_models.contains(&name) {
            router.virtual_models.insert(0, name);
        }
    }
    warnings(env)
}

/// One line per set variable that is not applied: its feature is not built, it has no
/// equivalent, or it is not a SmarterRouter variable (with the nearest known name).
fn warnings(env: &RouterEnv) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, value) in &env.vars {
        if value.trim().is_empty() {
            continue;
        }
        match support(name) {
            Some(Applied) => {}
            Some(NotYet(feature)) => lines.push(format!(
                "{name} is set but not supported yet ({feature} is not built in this version); it has no effect"
            )),
            Some(Ignored(instead)) => {
                lines.push(format!("{name} is set but has no effect here: {instead}"))
            }
            None => lines.push(match nearest(name) {
                Some(known) => format!(
                    "{name} is not a SmarterRouter setting and is ignored; did you mean {known}?"
                ),
                None => format!("{name} is not a SmarterRouter setting and is ignored"),
            }),
        }
    }
    lines.sort();
    lines
}

/// The known variable closest to `name` (edit distance), if it is close enough to be a typo.
fn nearest(name: &str) -> Option<&'static str> {
    let (best, distance) = VARIABLES
        .iter()
        .map(|(known, _)| (*known, edit_distance(name, known)))
        .min_by_key(|(_, d)| *d)?;
    let suffix_len = name.len().saturating_sub("ROUTER_".len());
    (distance <= 3.max(suffix_len / 4)).then_some(best)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Booleans as pydantic reads them.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(vars: &[(&str, &str)]) -> (RouterConfig, Vec<String>, Vec<String>) {
        let mut router = RouterConfig::default();
        let mut problems = Vec::new();
        let warnings = apply_overrides(&mut router, &RouterEnv::from_pairs(vars), &mut problems);
        (router, problems, warnings)
    }

    #[test]
    fn ollama_url_replaces_pools_with_one_node() {
        let (router, problems, _) = apply(&[("ROUTER_OLLAMA_URL", "http://10.1.2.3:11434")]);
        assert!(problems.is_empty());
        assert_eq!(router.pools.len(), 1);
        assert_eq!(router.pools[0].nodes[0].url, "http://10.1.2.3:11434");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let (_, problems, _) = apply(&[("ROUTER_PORT", "eleven"), ("ROUTER_LOG_FORMAT", "xml")]);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with("ROUTER_PORT="));
        assert!(problems[1].starts_with("ROUTER_LOG_FORMAT="));
    }

    #[test]
    fn routing_variables_apply() {
        let (router, problems, _) = apply(&[
            ("ROUTER_QUALITY_PREFERENCE", "0.9"),
            ("ROUTER_PREFER_SMALLER_MODELS", "False"),
            ("ROUTER_PINNED_MODEL", "llama3.2:1b"),
        ]);
        assert!(problems.is_empty());
        assert_eq!(router.routing.quality_preference, 0.9);
        assert!(!router.routing.prefer_smaller_models);
        assert_eq!(router.routing.pinned_model.as_deref(), Some("llama3.2:1b"));
        let (_, problems, _) = apply(&[
            ("ROUTER_QUALITY_PREFERENCE", "high"),
            ("ROUTER_PREFER_SMALLER_MODELS", "maybe"),
        ]);
        assert_eq!(problems.len(), 2);
    }

    #[test]
    fn empty_values_are_ignored() {
        let (router, problems, warnings) = apply(&[
            ("ROUTER_PORT", ""),
            ("ROUTER_DEFAULT_MODEL", " "),
            ("ROUTER_CACHE_ENABLED", ""),
        ]);
        assert!(problems.is_empty());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(router.port, super::super::DEFAULT_PORT);
        assert_eq!(router.default_model, None);
    }

    #[test]
    fn host_port_level_format_model_apply() {
        let (router, problems, _) = apply(&[
            ("ROUTER_HOST", "127.0.0.1"),
            ("ROUTER_PORT", "9000"),
            ("ROUTER_LOG_LEVEL", "DEBUG"),
            ("ROUTER_LOG_FORMAT", "json"),
            ("ROUTER_DEFAULT_MODEL", "llama3.2:3b"),
        ]);
        assert!(problems.is_empty());
        assert_eq!(router.host, "127.0.0.1");
        assert_eq!(router.port, 9000);
        assert_eq!(router.log.level, "debug");
        assert_eq!(router.log.format, LogFormat::Json);
        assert_eq!(router.default_model.as_deref(), Some("llama3.2:3b"));
    }

    #[test]
    fn python_log_levels_are_accepted_in_any_case() {
        for (given, ours) in [
            ("WARNING", "warn"),
            ("warning", "warn"),
            ("Critical", "error"),
            ("INFO", "info"),
            ("ERROR", "error"),
            ("debug", "debug"),
            ("30", "warn"),
        ] {
            let (router, problems, _) = apply(&[("ROUTER_LOG_LEVEL", given)]);
            assert!(problems.is_empty(), "{given}: {problems:?}");
            assert_eq!(router.log.level, ours, "{given}");
        }
        let (_, problems, _) = apply(&[("ROUTER_LOG_LEVEL", "loud")]);
        assert!(problems[0].contains("WARNING"), "{problems:?}");
    }

    #[test]
    fn variables_without_an_effect_get_one_line_each() {
        let (_, problems, warnings) = apply(&[
            ("ROUTER_CACHE_ENABLED", "true"),
            ("ROUTER_RATE_LIMIT_ENABLED", "true"),
            ("ROUTER_VRAM_MAX_TOTAL_GB", "20"),
            ("ROUTER_DATABASE_URL", "sqlite:///data/router.db"),
            ("ROUTER_CAHCE_TTL_SECONDS", "60"),
            ("ROUTER_PINNED_MODEL", "llama3.2:1b"),
        ]);
        assert!(problems.is_empty());
        assert_eq!(warnings.len(), 5, "{warnings:#?}");
        let line = |name: &str| warnings.iter().find(|w| w.starts_with(name)).unwrap();
        assert!(line("ROUTER_CACHE_ENABLED ").contains("not supported yet"));
        assert!(line("ROUTER_RATE_LIMIT_ENABLED ").contains("rate limiting"));
        assert!(line("ROUTER_VRAM_MAX_TOTAL_GB ").contains("VRAM"));
        assert!(line("ROUTER_DATABASE_URL ").contains("router.data_dir"));
        assert!(
            line("ROUTER_CAHCE_TTL_SECONDS ").contains("did you mean ROUTER_CACHE_TTL_SECONDS?")
        );
    }

    #[test]
    fn every_variable_the_tuning_guide_names_is_known() {
        let guide = "ROUTER_PINNED_MODEL, ROUTER_QUALITY_PREFERENCE, ROUTER_PREFER_SMALLER_MODELS, \
            ROUTER_CACHE_ENABLED, ROUTER_CACHE_MAX_SIZE, ROUTER_CACHE_TTL_SECONDS, ROUTER_CACHE_RESPONSE_MAX_SIZE, \
            ROUTER_CACHE_SIMILARITY_THRESHOLD, ROUTER_EMBED_MODEL, ROUTER_PROFILE_PROMPTS_PER_CATEGORY, \
            ROUTER_PROFILE_TIMEOUT, ROUTER_PROFILE_CONCURRENCY, ROUTER_JUDGE_ENABLED, ROUTER_JUDGE_MODEL, \
            ROUTER_RATE_LIMIT_ENABLED, ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE, ROUTER_LOG_FORMAT, ROUTER_LOG_LEVEL, \
            ROUTER_VRAM_MAX_TOTAL_GB, ROUTER_VRAM_AUTO_UNLOAD_ENABLED, ROUTER_VRAM_UNLOAD_THRESHOLD_PCT, \
            ROUTER_VRAM_UNLOAD_STRATEGY, ROUTER_DATABASE_URL";
        for name in guide.split(',').map(str::trim) {
            assert!(support(name).is_some(), "{name} is not known to the loader");
        }
    }

    #[test]
    fn every_applied_variable_is_read_and_the_table_has_no_duplicates() {
        let mut names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a variable is listed twice");
        // Setting an applied variable to a sample value changes the configuration.
        let samples = [
            ("ROUTER_OLLAMA_URL", "http://10.0.0.9:1"),
            ("ROUTER_HOST", "127.0.0.1"),
            ("ROUTER_PORT", "1"),
            ("ROUTER_LOG_LEVEL", "trace"),
            ("ROUTER_LOG_FORMAT", "json"),
            ("ROUTER_DEFAULT_MODEL", "m"),
            ("ROUTER_MAX_REQUEST_BODY_BYTES", "2048"),
            ("ROUTER_QUALITY_PREFERENCE", "0.1"),
            ("ROUTER_PREFER_SMALLER_MODELS", "false"),
            ("ROUTER_PINNED_MODEL", "m"),
            ("ROUTER_DATA_DIR", "/x"),
            ("ROUTER_FEEDBACK_ENABLED", "false"),
            ("ROUTER_PROFILE_PROMPTS_PER_CATEGORY", "1"),
            ("ROUTER_PROFILE_TIMEOUT", "7"),
            ("ROUTER_PROFILE_CONCURRENCY", "9"),
            ("ROUTER_MODEL_AUTO_PROFILE_ENABLED", "false"),
            ("ROUTER_JUDGE_ENABLED", "true"),
            ("ROUTER_JUDGE_MODEL", "j"),
            ("ROUTER_JUDGE_BASE_URL", "http://j"),
            ("ROUTER_JUDGE_API_KEY", "k"),
            ("ROUTER_JUDGE_MAX_RETRIES", "9"),
            ("ROUTER_JUDGE_RETRY_BASE_DELAY", "0.25"),
            ("ROUTER_ADMIN_API_KEY", "kkkkkkkk"),
            ("ROUTER_ROUTER_EXTERNAL_MODEL_NAME", "v"),
            ("ROUTER_EXTERNAL_MODEL_NAME", "w"),
            ("ROUTER_POLLING_INTERVAL", "77"),
            ("ROUTER_MODEL_POLLING_INTERVAL", "78"),
        ];
        let applied: Vec<&str> = VARIABLES
            .iter()
            .filter(|(_, s)| *s == Applied)
            .map(|(n, _)| *n)
            .collect();
        for name in &applied {
            let (name, value) = samples
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{name} has no sample in this test"));
            let (router, problems, warnings) = apply(&[(name, value)]);
            assert!(problems.is_empty() && warnings.is_empty(), "{name}");
            let debug = format!("{router:?}");
            assert_ne!(
                debug,
                format!("{:?}", RouterConfig::default()),
                "{name} changed nothing"
            );
        }
    }
}

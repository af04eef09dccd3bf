//! The `router:` section of the YAML file: serde types read loosely, then validated into the
//! settings the proxy uses. Loading (the file, Pingora's own keys, unknown-key detection) lives in
//! [`load`], the `ROUTER_*` environment overrides in [`env`], and the checks in [`validate`].

mod env;
mod env_table;
mod load;
mod validate;

pub use env::{known as known_variables, RouterEnv, Support, UNAPPLIED};
pub use load::{load_file, load_str, ConfigError, LoadedConfig};
pub use validate::{gb_to_bytes, ResolvedNode};

use serde::Deserialize;

/// Default port of the original SmarterRouter, kept so existing clients need no change.
pub const DEFAULT_PORT: u16 = 11436;
/// Prompts each built-in profiling suite has per category (`router.profiling.prompts_per_category`
/// cannot ask for more).
pub const SUITE_PROMPTS_PER_CATEGORY: usize = 5;
/// Resends of a request after a pooled keep-alive connection turned out closed by the node
/// (not counted as node attempts); Pingora's `max_retries` must leave room for them.
pub const MAX_STALE_RETRIES: u8 = 2;
/// Default request-body limit (10 MiB), as the original.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Everything under `router:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RouterConfig {
    /// Address the proxy listens on (`ROUTER_HOST`).
    pub host: String,
    /// Port the proxy listens on (`ROUTER_PORT`).
    pub port: u16,
    /// Model used when a request names no model or a virtual one (`ROUTER_DEFAULT_MODEL`).
    pub default_model: Option<String>,
    /// Model names that mean "let the router choose".
    pub virtual_models: Vec<String>,
    /// List the virtual models first in `/api/tags`, so Ollama clients can pick them.
    pub list_virtual_models_in_tags: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub discovery: DiscoveryConfig,
    pub upstream: UpstreamConfig,
    pub routing: RoutingConfig,
    /// Directory of the embedded store (`ROUTER_DATA_DIR`).
    pub data_dir: String,
    pub feedback: FeedbackConfig,
    pub profiling: ProfilingConfig,
    pub cache: CacheConfig,
    pub vram: VramConfig,
    pub rate_limit: RateLimitConfig,
    pub auth: AuthConfig,
    pub cluster: ClusterConfig,
    pub pools: Vec<PoolConfig>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            host: "0.0.0.0".to_string(),
            port: DEFAULT_PORT,
            default_model: None,
            virtual_models: vec!["smarterrouter/main".to_string(), "auto".to_string()],
            list_virtual_models_in_tags: true,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            discovery: DiscoveryConfig::default(),
            upstream: UpstreamConfig::default(),
            routing: RoutingConfig::default(),
            data_dir: "./data".to_string(),
            feedback: FeedbackConfig::default(),
            profiling: ProfilingConfig::default(),
            cache: CacheConfig::default(),
            vram: VramConfig::default(),
            rate_limit: RateLimitConfig::default(),
            auth: AuthConfig::default(),
            cluster: ClusterConfig::default(),
            pools: vec![PoolConfig {
                name: "local".to_string(),
                nodes: vec![NodeConfig {
                    url: "http://127.0.0.1:11434".to_string(),
                    kind: NodeKind::Ollama,
                    weight: 1,
                    max_concurrency: None,
                    vram_total_gb: None,
                    local: None,
                }],
            }],
        }
    }
}

/// `router.log`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`; Python's names (`WARNING`, `CRITICAL`, ...)
    /// in any case too (`ROUTER_LOG_LEVEL`).
    pub level: String,
    /// `text` or `json` (`ROUTER_LOG_FORMAT`).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `router.admin`: the side service for `/health` and `/admin/*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// `host:port`; empty string disables the side service.
    pub listen: String,
    /// Bearer token for `/admin/*` (`ROUTER_ADMIN_API_KEY`). Unset: `/admin/*` is served on the
    /// admin port only.
    pub api_key: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:11437".to_string(),
            api_key: None,
        }
    }
}

/// `router.discovery`: how often nodes are asked which models they have.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DiscoveryConfig {
    pub interval_secs: u64,
    pub timeout_ms: u64,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            interval_secs: 30,
            timeout_ms: 5000,
        }
    }
}

/// `router.upstream`: connection behaviour towards the nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UpstreamConfig {
    pub connect_timeout_ms: u64,
    /// Longest silence between two reads from a node; generous because models load slowly.
    pub read_timeout_secs: u64,
    /// Attempts per request, counting the first (connection failures only; nothing is resent
    /// once a node has received the request).
    pub max_attempts: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            connect_timeout_ms: 2000,
            read_timeout_secs: 300,
            max_attempts: 3,
        }
    }
}

/// `router.profiling`: how `smarterrouter profile` measures models.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ProfilingConfig {
    /// Prompts per suite category (`ROUTER_PROFILE_PROMPTS_PER_CATEGORY`; suites have 5).
    pub prompts_per_category: usize,
    /// Seconds allowed per prompt (`ROUTER_PROFILE_TIMEOUT`).
    pub timeout_secs: u64,
    /// Models profiled at once (`ROUTER_PROFILE_CONCURRENCY`); each model's prompts run one at a
    /// time, so a node sees at most this many profiling requests.
    pub concurrency: usize,
    /// Longest answer asked for, in tokens.
    pub max_tokens: u32,
    /// Profile in the background: at start and when a model appears, has no profile, or its
    /// profile is older than `max_age_hours` or from another digest
    /// (`ROUTER_MODEL_AUTO_PROFILE_ENABLED`).
    pub auto: bool,
    pub max_age_hours: u64,
    pub judge: JudgeConfig,
}

/// `router.profiling.judge`: an OpenAI-compatible LLM that grades open-ended (creativity)
/// answers 0..10 instead of the form checks. `ROUTER_JUDGE_ENABLED`, `ROUTER_JUDGE_MODEL`,
/// `ROUTER_JUDGE_BASE_URL`, `ROUTER_JUDGE_API_KEY`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JudgeConfig {
    pub enabled: bool,
    pub model: String,
    /// Up to and including `/v1`; the judge posts to `{base_url}/chat/completions`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Retries after a 429, a 5xx or a network error, with exponential backoff.
    pub max_retries: u32,
    pub retry_base_delay_ms: u64,
    pub timeout_secs: u64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            enabled: false,
            model: "gpt-4o".to_string(),
            base_url: "https://api.openai.com/v1".to_string(),
            api_key: None,
            max_retries: 3,
            retry_base_delay_ms: 1000,
            timeout_secs: 60,
        }
    }
}

impl Default for ProfilingConfig {
    fn default() -> Self {
        ProfilingConfig {
            prompts_per_category: 3,
            timeout_secs: 90,
            concurrency: 1,
            max_tokens: 256,
            auto: true,
            max_age_hours: 168,
            judge: JudgeConfig::default(),
        }
    }
}

/// `router.cache`: the response cache (identical requests answered from memory).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// `ROUTER_CACHE_ENABLED`.
    pub enabled: bool,
    /// How long an answer is served from cache (`ROUTER_CACHE_TTL_SECONDS`).
    pub ttl_secs: u64,
    /// Most answers kept (`ROUTER_CACHE_RESPONSE_MAX_SIZE`, the original's response-cache size).
    pub max_entries: usize,
    /// Most bytes kept, all answers together.
    pub max_bytes: usize,
    /// Largest answer kept; larger ones are served but not stored.
    pub max_response_bytes: usize,
    /// Do not cache requests sampled at random (temperature above 0, or unset, without a seed).
    pub skip_random_sampling: bool,
    /// Answers to a reworded last user turn (`router.cache.semantic`).
    pub semantic: SemanticCacheConfig,
}

/// `router.cache.semantic`: a request whose last user turn means the same as a stored one (same
/// model, earlier turns and parameters) gets the stored answer. Off until `embed_model` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SemanticCacheConfig {
    /// The embedding model a node serves (`ROUTER_EMBED_MODEL`); unset: exact caching only.
    pub embed_model: Option<String>,
    /// Least cosine similarity for a hit (`ROUTER_CACHE_SIMILARITY_THRESHOLD`).
    pub similarity_threshold: f64,
    /// Longest wait for the embedding; slower, and the request is cached exactly only.
    pub timeout_ms: u64,
    /// Reject near-misses cosine cannot see (other numbers, negations, other names).
    pub guard: bool,
}

impl Default for SemanticCacheConfig {
    fn default() -> Self {
        SemanticCacheConfig {
            embed_model: None,
            similarity_threshold: 0.85,
            timeout_ms: 300,
            guard: true,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            ttl_secs: 3600,
            max_entries: 200,
            max_bytes: 64 << 20,
            max_response_bytes: 1 << 20,
            skip_random_sampling: true,
            semantic: SemanticCacheConfig::default(),
        }
    }
}

/// `router.rate_limit`: requests per minute per client on the proxy port.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// `ROUTER_RATE_LIMIT_ENABLED`.
    pub enabled: bool,
    /// Model requests and feedback, per client (`ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE`).
    pub requests_per_minute: u32,
    /// `/admin/*` on the proxy port, per client (`ROUTER_RATE_LIMIT_ADMIN_REQUESTS_PER_MINUTE`).
    pub admin_requests_per_minute: u32,
    /// Chat and generation requests, per client, when set; unset, they count against
    /// `requests_per_minute` (`ROUTER_RATE_LIMIT_CHAT_REQUESTS_PER_MINUTE`).
    pub chat_requests_per_minute: Option<u32>,
    /// Proxies whose `X-Forwarded-For` names the client (a load balancer); others' is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: false,
            requests_per_minute: 60,
            admin_requests_per_minute: 10,
            chat_requests_per_minute: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `router.cluster`: several routers sharing rate limits and the response cache through one
/// Redis. Off (no `redis_url`): everything stays in this process and its embedded store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClusterConfig {
    /// `redis://[user:password@]host:port[/db]` (`ROUTER_REDIS_URL`); unset: cluster mode off.
    pub redis_url: Option<String>,
    /// Prefix of every key this deployment writes, so deployments can share one Redis
    /// (`ROUTER_REDIS_CACHE_PREFIX`).
    pub key_prefix: String,
    /// Longest wait for one Redis call before the request goes on with local state.
    pub timeout_ms: u64,
    /// Share the response cache through Redis (`ROUTER_CACHE_BACKEND=redis`); false
    /// (`ROUTER_CACHE_BACKEND=memory`) keeps each instance's cache its own.
    pub share_cache: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            key_prefix: "smarterrouter".to_string(),
            timeout_ms: 50,
            share_cache: true,
        }
    }
}

/// `router.auth`: client API keys for the proxy port. With none, anyone who reaches the port may
/// use it (as the original); with any, model requests, listings and `/v1/feedback` need
/// `Authorization: Bearer <key>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub api_keys: Vec<ApiKeyConfig>,
    /// A YAML file holding a list of entries like `api_keys`' (kept out of the main file, e.g.
    /// mode 0600); read at start and at each reload, added to `api_keys`.
    pub api_keys_file: Option<String>,
}

/// One client key of `router.auth.api_keys`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeyConfig {
    /// The secret the client sends as `Authorization: Bearer <key>` (at least 16 characters).
    pub key: String,
    /// The tenant, for logs, the cache, rate limits and feedback; keys with the same name are one
    /// tenant (and must have the same settings). Unset: `key-` and 8 hex digits of the key's hash.
    #[serde(default)]
    pub name: Option<String>,
    /// Models this key may use (names as the nodes list them; a trailing `*` matches a prefix).
    /// Empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Replaces `router.rate_limit.requests_per_minute` and `chat_requests_per_minute` for this
    /// key (not the admin rate).
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Where an entry of `api_keys_file` came from (`FILE[i]`), for error messages.
    #[serde(skip)]
    pub origin: Option<String>,
}

/// `router.vram`: GPU memory readings (NVML for this host, `/api/ps` per Ollama node) and the
/// budget `/admin/vram` reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VramConfig {
    /// `ROUTER_VRAM_MONITOR_ENABLED`; off, `/admin/vram` answers as the original does.
    pub enabled: bool,
    /// Seconds between samples (`ROUTER_VRAM_MONITOR_INTERVAL`).
    pub monitor_interval_secs: u64,
    /// Budget per node in GB (`ROUTER_VRAM_MAX_TOTAL_GB`); unset: 90% of its known total.
    pub max_total_gb: Option<f64>,
    /// Unload models to fit a cold model in its node's budget (`ROUTER_VRAM_AUTO_UNLOAD_ENABLED`).
    pub auto_unload_enabled: bool,
    /// Which loaded model goes first (`ROUTER_VRAM_UNLOAD_STRATEGY`).
    pub unload_strategy: UnloadStrategy,
    /// GB a model takes when it was never measured (`ROUTER_VRAM_DEFAULT_ESTIMATE_GB`).
    pub default_estimate_gb: f64,
    /// How long a request for a cold model waits for busy models in its way to finish, before
    /// 503 `vram_exhausted`.
    pub group_wait_ms: u64,
    /// A cold model's first answer byte must come within this, or the node is avoided for cold
    /// loads for `degraded_secs`.
    pub load_timeout_ms: u64,
    pub degraded_secs: u64,
    /// A model this router loaded is unloaded for another only after this long, unless nothing
    /// else makes room.
    pub min_residency_secs: u64,
    /// `ROUTER_VRAM_UNLOAD_THRESHOLD_PCT`: the utilisation at which `/admin/vram` warns that the
    /// auto-unload threshold is reached (unloading itself is driven by the budget at admission).
    pub unload_threshold_pct: f64,
}

/// The order models are unloaded in to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnloadStrategy {
    /// Least recently used by this router's requests first.
    #[default]
    Lru,
    /// The largest in VRAM first.
    Largest,
    /// The longest idle first, by the node's own clock (`expires_at` of `/api/ps`).
    Idle,
}

impl UnloadStrategy {
    pub fn parse(text: &str) -> Option<UnloadStrategy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "lru" => Some(UnloadStrategy::Lru),
            "largest" => Some(UnloadStrategy::Largest),
            "idle" => Some(UnloadStrategy::Idle),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UnloadStrategy::Lru => "lru",
            UnloadStrategy::Largest => "largest",
            UnloadStrategy::Idle => "idle",
        }
    }
}

impl Default for VramConfig {
    fn default() -> Self {
        VramConfig {
            enabled: true,
            monitor_interval_secs: 30,
            max_total_gb: None,
            auto_unload_enabled: true,
            unload_strategy: UnloadStrategy::Lru,
            default_estimate_gb: 8.0,
            group_wait_ms: 3000,
            load_timeout_ms: 120_000,
            degraded_secs: 600,
            min_residency_secs: 60,
            unload_threshold_pct: 85.0,
        }
    }
}

/// `router.feedback`: `POST /v1/feedback` and its weight in scoring.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FeedbackConfig {
    /// `ROUTER_FEEDBACK_ENABLED`; off, the endpoint answers 403 and scoring ignores feedback.
    pub enabled: bool,
    /// Feedback loses half its weight in this many days.
    pub half_life_days: f64,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            enabled: true,
            half_life_days: 7.0,
        }
    }
}

/// `router.routing`: how the scoring engine weighs models.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RoutingConfig {
    /// 0 = fastest ... 1 = best (`ROUTER_QUALITY_PREFERENCE`).
    pub quality_preference: f32,
    /// Weigh speed a quarter more (`ROUTER_PREFER_SMALLER_MODELS`).
    pub prefer_smaller_models: bool,
    /// The always-loaded model, preferred for simple prompts (`ROUTER_PINNED_MODEL`).
    pub pinned_model: Option<String>,
    /// Route even requests that name a real model.
    pub override_explicit_model: bool,
    pub category_min_sizes: CategoryMinSizes,
    /// Which prompt classifier decides the category: `learned` (the trained model) or
    /// `keywords` (the original's keyword lists, improved).
    pub classifier: ClassifierKind,
    /// Another weights file for the learned classifier (from `tools/train-classifier`); unset:
    /// the one built into the binary.
    pub classifier_weights: Option<String>,
}

/// `router.routing.classifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassifierKind {
    #[default]
    Learned,
    Keywords,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            quality_preference: 0.5,
            prefer_smaller_models: true,
            pinned_model: None,
            override_explicit_model: false,
            category_min_sizes: CategoryMinSizes::default(),
            classifier: ClassifierKind::Learned,
            classifier_weights: None,
        }
    }
}

/// Smallest model (billions of parameters) for a category's simple, medium and hard prompts;
/// smaller models are penalised 0.3 per missing billion (at most 1.5).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CategoryMinSizes {
    pub coding: [f32; 3],
    pub reasoning: [f32; 3],
    pub creativity: [f32; 3],
    pub factual: [f32; 3],
}

impl Default for CategoryMinSizes {
    fn default() -> Self {
        CategoryMinSizes {
            coding: [0.0, 4.0, 8.0],
            reasoning: [0.0, 4.0, 8.0],
            creativity: [0.0, 1.0, 4.0],
            factual: [0.0, 1.0, 4.0],
        }
    }
}

/// One entry of `router.pools`.
#[derive(Debug, Clone, Deserialize)]
pub struct PoolConfig {
    pub name: String,
    pub nodes: Vec<NodeConfig>,
}

/// One entry of `router.pools[].nodes`.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeConfig {
    /// `http://host:port`
    pub url: String,
    #[serde(default)]
    pub kind: NodeKind,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Most requests in flight to this node at once; unset means no limit.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// The node's GPU memory in GB, when NVML cannot see it (a remote node).
    #[serde(default)]
    pub vram_total_gb: Option<f64>,
    /// The node runs on this host, so NVML's GPUs are its GPUs. Unset: true for a loopback
    /// address.
    #[serde(default)]
    pub local: Option<bool>,
}

fn default_weight() -> u32 {
    1
}

/// What API a node speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Ollama: `/api/*` and its OpenAI-compatible `/v1/*`.
    #[default]
    Ollama,
    /// An OpenAI-compatible server such as llama.cpp's `llama-server`: `/v1/*` only.
    Openai,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Ollama => "ollama",
            NodeKind::Openai => "openai",
        }
    }
}

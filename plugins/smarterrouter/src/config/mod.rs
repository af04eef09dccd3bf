//! The `router:` section of the YAML file: serde types read loosely, then validated into the
//! settings the proxy uses. Loading (the file, Pingora's own keys, unknown-key detection) lives in
//! [`load`], the `ROUTER_*` environment overrides in [`env`], and the checks in [`validate`].

mod env;
mod load;
mod validate;

pub use load::{load_file, load_str, ConfigError, LoadedConfig};
pub use validate::ResolvedNode;

use serde::Deserialize;

/// Default port of the original SmarterRouter, kept so existing clients need no change.
pub const DEFAULT_PORT: u16 = 11436;
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
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub discovery: DiscoveryConfig,
    pub upstream: UpstreamConfig,
    pub pools: Vec<PoolConfig>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            host: "0.0.0.0".to_string(),
            port: DEFAULT_PORT,
            default_model: None,
            virtual_models: vec!["smarterrouter/main".to_string(), "auto".to_string()],
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            discovery: DiscoveryConfig::default(),
            upstream: UpstreamConfig::default(),
            pools: vec![PoolConfig {
                name: "local".to_string(),
                nodes: vec![NodeConfig {
                    url: "http://127.0.0.1:11434".to_string(),
                    kind: NodeKind::Ollama,
                    weight: 1,
                    max_concurrency: None,
                }],
            }],
        }
    }
}

/// `router.log`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (`ROUTER_LOG_LEVEL`).
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
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:11437".to_string(),
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

//! The router's own calls to its nodes (discovery, `/api/ps`, profiling), through clients pinned
//! to the addresses the configuration resolved: a node never looks healthy at one address while
//! the proxy connects to another.

use std::time::Duration;

use serde_json::Value;

use crate::config::ResolvedNode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
    #[error("GET {url}: {why}")]
    Get { url: String, why: String },
}

/// Clients for the router's own requests to nodes.
#[derive(Debug, Clone)]
pub struct NodeClient {
    /// Short requests (`/api/tags`, `/api/show`, `/api/ps`), bounded by
    /// `router.discovery.timeout_ms`.
    control: reqwest::Client,
    /// Generations (profiling): no overall limit, each request sets its own.
    generation: reqwest::Client,
}

impl NodeClient {
    pub fn new(nodes: &[ResolvedNode], control_timeout: Duration) -> Result<Self, UpstreamError> {
        let build = |builder: reqwest::ClientBuilder| {
            pin(builder, nodes)
                .pool_idle_timeout(Duration::from_secs(90))
                .build()
                .map_err(|e| UpstreamError::Client(e.to_string()))
        };
        Ok(NodeClient {
            control: build(reqwest::Client::builder().timeout(control_timeout))?,
            generation: build(reqwest::Client::builder().connect_timeout(Duration::from_secs(10)))?,
        })
    }

    pub fn control(&self) -> &reqwest::Client {
        &self.control
    }

    pub fn generation(&self) -> &reqwest::Client {
        &self.generation
    }

    /// GETs a JSON document with the control client.
    pub async fn get_json(&self, url: String) -> Result<Value, UpstreamError> {
        let fail = |why: String| UpstreamError::Get {
            url: url.clone(),
            why,
        };
        let response = self
            .control
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        response
            .json::<Value>()
            .await
            .map_err(|e| fail(format!("answer is not JSON ({e})")))
    }

    /// The entries of an Ollama node's `/api/ps` (the models loaded now).
    pub async fn loaded_models(&self, base: &str) -> Result<Vec<Value>, UpstreamError> {
        let url = format!("{base}/api/ps");
        let ps = self.get_json(url.clone()).await?;
        ps.get("models")
            .and_then(Value::as_array)
            .cloned()
            .ok_or(UpstreamError::Get {
                url,
                why: "answer has no `models` list".to_string(),
            })
    }
}

/// Resolves each node's host name to the address validation chose (IPv4 first).
fn pin(mut builder: reqwest::ClientBuilder, nodes: &[ResolvedNode]) -> reqwest::ClientBuilder {
    for node in nodes {
        let host = node
            .host_header
            .rsplit_once(':')
            .map_or(node.host_header.as_str(), |(h, _)| h);
        let is_ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        if !is_ip {
            builder = builder.resolve(host, node.addr);
        }
    }
    builder
}

pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection refused or unreachable".to_string()
    } else {
        e.to_string()
    }
}

//! `ROUTER_*` environment variables of the original SmarterRouter, applied over the file so an
//! existing `.env` keeps working. A variable that is set but empty is ignored, as pydantic did.

use super::{LogFormat, NodeConfig, NodeKind, PoolConfig, RouterConfig};

pub(super) fn apply_overrides(
    router: &mut RouterConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };

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
        router.log.level = level.to_ascii_lowercase();
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
    if let Some(value) = get("ROUTER_PREFER_SMALLER_MODELS") {
        match parse_bool(&value) {
            Some(b) => router.routing.prefer_smaller_models = b,
            None => problems.push(format!(
                "ROUTER_PREFER_SMALLER_MODELS={value:?}: expected true or false"
            )),
        }
    }
    let mut number = |name: &str, set: &mut dyn FnMut(u64)| {
        if let Some(value) = get(name) {
            match value.parse::<u64>() {
                Ok(n) => set(n),
                Err(_) => problems.push(format!("{name}={value:?}: expected a whole number")),
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
    if let Some(value) = get("ROUTER_MODEL_AUTO_PROFILE_ENABLED") {
        match parse_bool(&value) {
            Some(b) => router.profiling.auto = b,
            None => problems.push(format!(
                "ROUTER_MODEL_AUTO_PROFILE_ENABLED={value:?}: expected true or false"
            )),
        }
    }
    if let Some(value) = get("ROUTER_JUDGE_ENABLED") {
        match parse_bool(&value) {
            Some(b) => router.profiling.judge.enabled = b,
            None => problems.push(format!(
                "ROUTER_JUDGE_ENABLED={value:?}: expected true or false"
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
    if let Some(value) = get("ROUTER_FEEDBACK_ENABLED") {
        match parse_bool(&value) {
            Some(b) => router.feedback.enabled = b,
            None => problems.push(format!(
                "ROUTER_FEEDBACK_ENABLED={value:?}: expected true or false"
            )),
        }
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

    fn apply(vars: &[(&str, &str)]) -> (RouterConfig, Vec<String>) {
        let mut router = RouterConfig::default();
        let mut problems = Vec::new();
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        apply_overrides(&mut router, &lookup, &mut problems);
        (router, problems)
    }

    #[test]
    fn ollama_url_replaces_pools_with_one_node() {
        let (router, problems) = apply(&[("ROUTER_OLLAMA_URL", "http://10.1.2.3:11434")]);
        assert!(problems.is_empty());
        assert_eq!(router.pools.len(), 1);
        assert_eq!(router.pools[0].nodes[0].url, "http://10.1.2.3:11434");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let (_, problems) = apply(&[("ROUTER_PORT", "eleven"), ("ROUTER_LOG_FORMAT", "xml")]);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with("ROUTER_PORT="));
        assert!(problems[1].starts_with("ROUTER_LOG_FORMAT="));
    }

    #[test]
    fn routing_variables_apply() {
        let (router, problems) = apply(&[
            ("ROUTER_QUALITY_PREFERENCE", "0.9"),
            ("ROUTER_PREFER_SMALLER_MODELS", "False"),
            ("ROUTER_PINNED_MODEL", "llama3.2:1b"),
        ]);
        assert!(problems.is_empty());
        assert_eq!(router.routing.quality_preference, 0.9);
        assert!(!router.routing.prefer_smaller_models);
        assert_eq!(router.routing.pinned_model.as_deref(), Some("llama3.2:1b"));
        let (_, problems) = apply(&[
            ("ROUTER_QUALITY_PREFERENCE", "high"),
            ("ROUTER_PREFER_SMALLER_MODELS", "maybe"),
        ]);
        assert_eq!(problems.len(), 2);
    }

    #[test]
    fn empty_values_are_ignored() {
        let (router, problems) = apply(&[("ROUTER_PORT", ""), ("ROUTER_DEFAULT_MODEL", " ")]);
        assert!(problems.is_empty());
        assert_eq!(router.port, super::super::DEFAULT_PORT);
        assert_eq!(router.default_model, None);
    }

    #[test]
    fn host_port_level_format_model_apply() {
        let (router, problems) = apply(&[
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
}

//! `ROUTER_*` environment variables of the original SmarterRouter, applied over the file so an
//! existing `.env` keeps working. A variable that is set but empty is ignored, as pydantic did.
//!
//! Every variable SmarterRouter (2.1 and 2.2) knows is known here: [`APPLIED`] sets the
//! configuration; [`UNAPPLIED`] (in `env_table.rs`) lists the rest with a warning saying that
//! the feature is not built yet, or that it has no equivalent and what to use instead. A `ROUTER_*` variable that is not listed is
//! most likely a typo: it gets a warning naming the nearest known variable.

pub use super::env_table::UNAPPLIED;
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

/// What the loader does with `name`; `None` if it is not a SmarterRouter variable.
pub fn support(name: &str) -> Option<Support> {
    if APPLIED.iter().any(|(n, _)| *n == name) {
        return Some(Support::Applied);
    }
    UNAPPLIED.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Every variable the loader knows, applied or not.
pub fn known() -> impl Iterator<Item = &'static str> {
    APPLIED
        .iter()
        .map(|(n, _)| *n)
        .chain(UNAPPLIED.iter().map(|(n, _)| *n))
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

/// Sets one variable's value in the configuration; the error says what was expected.
type Apply = fn(&mut RouterConfig, &str) -> Result<(), String>;

/// The variables applied over the file, in order (a later one wins).
const APPLIED: &[(&str, Apply)] = &[
    ("ROUTER_OLLAMA_URL", |r, url| {
        r.pools = vec![PoolConfig {
            name: "ollama".to_string(),
            nodes: vec![NodeConfig {
                url: url.to_string(),
                kind: NodeKind::Ollama,
                weight: 1,
                max_concurrency: None,
                vram_total_gb: None,
                local: None,
            }],
        }];
        Ok(())
    }),
    ("ROUTER_HOST", |r, v| set(&mut r.host, v.to_string())),
    ("ROUTER_PORT", |r, v| {
        set(
            &mut r.port,
            parse(v, "not a port number (expected 1-65535)")?,
        )
    }),
    ("ROUTER_LOG_LEVEL", |r, v| match normalise_log_level(v) {
        Some(level) => set(&mut r.log.level, level.to_string()),
        None => Err(
            "expected DEBUG, INFO, WARNING, ERROR or CRITICAL (or trace), in any case".to_string(),
        ),
    }),
    ("ROUTER_LOG_FORMAT", |r, v| {
        match v.to_ascii_lowercase().as_str() {
            "text" => set(&mut r.log.format, LogFormat::Text),
            "json" => set(&mut r.log.format, LogFormat::Json),
            _ => Err("expected `text` or `json`".to_string()),
        }
    }),
    ("ROUTER_DEFAULT_MODEL", |r, v| {
        set(&mut r.default_model, Some(v.to_string()))
    }),
    ("ROUTER_MAX_REQUEST_BODY_BYTES", |r, v| {
        set(
            &mut r.max_body_bytes,
            parse(v, "not a whole number of bytes")?,
        )
    }),
    ("ROUTER_QUALITY_PREFERENCE", |r, v| {
        let q = parse(v, "expected a number from 0 (fastest) to 1 (best)")?;
        set(&mut r.routing.quality_preference, q)
    }),
    ("ROUTER_PREFER_SMALLER_MODELS", |r, v| {
        set(&mut r.routing.prefer_smaller_models, flag(v)?)
    }),
    ("ROUTER_PINNED_MODEL", |r, v| {
        set(&mut r.routing.pinned_model, Some(v.to_string()))
    }),
    ("ROUTER_REDIS_URL", |r, v| {
        set(&mut r.cluster.redis_url, Some(v.to_string()))
    }),
    ("ROUTER_REDIS_CACHE_PREFIX", |r, v| {
        set(&mut r.cluster.key_prefix, v.to_string())
    }),
    // The original's switch for its Redis cache: `memory` keeps the response cache in this
    // process even in cluster mode; `redis` shares it (the default with a URL) and needs one.
    ("ROUTER_CACHE_BACKEND", |r, v| {
        match v.trim().to_ascii_lowercase().as_str() {
            "memory" => set(&mut r.cluster.share_cache, false),
            "redis" if r.cluster.redis_url.is_some() => set(&mut r.cluster.share_cache, true),
            "redis" => Err(
                "redis needs the server's address: set ROUTER_REDIS_URL (router.cluster.redis_url)"
                    .to_string(),
            ),
            other => Err(format!(
            "{other:?} is not a cache backend: use memory, or redis together with ROUTER_REDIS_URL"
        )),
        }
    }),
    ("ROUTER_DATA_DIR", |r, v| {
        set(&mut r.data_dir, v.to_string())
    }),
    ("ROUTER_FEEDBACK_ENABLED", |r, v| {
        set(&mut r.feedback.enabled, flag(v)?)
    }),
    ("ROUTER_PROFILE_PROMPTS_PER_CATEGORY", |r, v| {
        set(&mut r.profiling.prompts_per_category, whole(v)? as usize)
    }),
    ("ROUTER_PROFILE_TIMEOUT", |r, v| {
        set(&mut r.profiling.timeout_secs, whole(v)?)
    }),
    ("ROUTER_PROFILE_CONCURRENCY", |r, v| {
        set(&mut r.profiling.concurrency, whole(v)? as usize)
    }),
    ("ROUTER_MODEL_AUTO_PROFILE_ENABLED", |r, v| {
        set(&mut r.profiling.auto, flag(v)?)
    }),
    ("ROUTER_JUDGE_ENABLED", |r, v| {
        set(&mut r.profiling.judge.enabled, flag(v)?)
    }),
    ("ROUTER_JUDGE_MODEL", |r, v| {
        set(&mut r.profiling.judge.model, v.to_string())
    }),
    ("ROUTER_JUDGE_BASE_URL", |r, v| {
        set(&mut r.profiling.judge.base_url, v.to_string())
    }),
    ("ROUTER_JUDGE_API_KEY", |r, v| {
        set(&mut r.profiling.judge.api_key, Some(v.to_string()))
    }),
    ("ROUTER_JUDGE_MAX_RETRIES", |r, v| {
        let n = whole(v)?.min(u64::from(u32::MAX)) as u32;
        set(&mut r.profiling.judge.max_retries, n)
    }),
    ("ROUTER_JUDGE_RETRY_BASE_DELAY", |r, v| {
        match v.parse::<f64>() {
            Ok(secs) if secs >= 0.0 && secs.is_finite() => set(
                &mut r.profiling.judge.retry_base_delay_ms,
                (secs * 1000.0).round() as u64,
            ),
            _ => Err("expected seconds, e.g. 1.0".to_string()),
        }
    }),
    ("ROUTER_ADMIN_API_KEY", |r, v| {
        set(&mut r.admin.api_key, Some(v.to_string()))
    }),
    ("ROUTER_CACHE_ENABLED", |r, v| {
        set(&mut r.cache.enabled, flag(v)?)
    }),
    ("ROUTER_CACHE_TTL_SECONDS", |r, v| {
        set(&mut r.cache.ttl_secs, whole(v)?)
    }),
    ("ROUTER_CACHE_RESPONSE_MAX_SIZE", |r, v| {
        set(&mut r.cache.max_entries, whole(v)? as usize)
    }),
    ("ROUTER_RATE_LIMIT_ENABLED", |r, v| {
        set(&mut r.rate_limit.enabled, flag(v)?)
    }),
    ("ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE", |r, v| {
        set(
            &mut r.rate_limit.requests_per_minute,
            whole(v)?.min(u64::from(u32::MAX)) as u32,
        )
    }),
    ("ROUTER_RATE_LIMIT_ADMIN_REQUESTS_PER_MINUTE", |r, v| {
        let n = whole(v)?.min(u64::from(u32::MAX)) as u32;
        set(&mut r.rate_limit.admin_requests_per_minute, n)
    }),
    ("ROUTER_RATE_LIMIT_CHAT_REQUESTS_PER_MINUTE", |r, v| {
        let n = whole(v)?.min(u64::from(u32::MAX)) as u32;
        set(&mut r.rate_limit.chat_requests_per_minute, Some(n))
    }),
    ("ROUTER_VRAM_MONITOR_ENABLED", |r, v| {
        set(&mut r.vram.enabled, flag(v)?)
    }),
    ("ROUTER_VRAM_MONITOR_INTERVAL", |r, v| {
        set(&mut r.vram.monitor_interval_secs, whole(v)?)
    }),
    ("ROUTER_VRAM_MAX_TOTAL_GB", |r, v| match v.parse::<f64>() {
        Ok(gb) if gb.is_finite() => set(&mut r.vram.max_total_gb, Some(gb)),
        _ => Err("expected GB, e.g. 20 or 22.5".to_string()),
    }),
    ("ROUTER_VRAM_AUTO_UNLOAD_ENABLED", |r, v| {
        set(&mut r.vram.auto_unload_enabled, flag(v)?)
    }),
    (
        "ROUTER_VRAM_UNLOAD_STRATEGY",
        |r, v| match crate::config::UnloadStrategy::parse(v) {
            Some(strategy) => set(&mut r.vram.unload_strategy, strategy),
            None => Err("expected lru, largest or idle".to_string()),
        },
    ),
    ("ROUTER_VRAM_UNLOAD_THRESHOLD_PCT", |r, v| {
        match v.parse::<f64>() {
            Ok(pct) if (0.0..=100.0).contains(&pct) => set(&mut r.vram.unload_threshold_pct, pct),
            _ => Err("expected a percentage from 0 to 100, e.g. 85".to_string()),
        }
    }),
    ("ROUTER_VRAM_DEFAULT_ESTIMATE_GB", |r, v| {
        match v.parse::<f64>() {
            Ok(gb) if gb.is_finite() && gb > 0.0 => set(&mut r.vram.default_estimate_gb, gb),
            _ => Err("expected GB above 0, e.g. 8".to_string()),
        }
    }),
    ("ROUTER_EMBED_MODEL", |r, v| {
        let model = Some(v.trim().to_string()).filter(|m| !m.is_empty());
        set(&mut r.cache.semantic.embed_model, model)
    }),
    ("ROUTER_CACHE_SIMILARITY_THRESHOLD", |r, v| {
        match v.parse::<f64>() {
            Ok(t) if t.is_finite() => set(&mut r.cache.semantic.similarity_threshold, t),
            _ => Err("expected a number between 0 and 1, e.g. 0.9".to_string()),
        }
    }),
    // The original's discovery loop; the later name wins when both are set.
    ("ROUTER_POLLING_INTERVAL", |r, v| {
        set(&mut r.discovery.interval_secs, whole(v)?)
    }),
    ("ROUTER_MODEL_POLLING_INTERVAL", |r, v| {
        set(&mut r.discovery.interval_secs, whole(v)?)
    }),
    // The documented name, then the one pydantic really read (doubled prefix), which wins.
    ("ROUTER_EXTERNAL_MODEL_NAME", |r, v| add_virtual(r, v)),
    ("ROUTER_ROUTER_EXTERNAL_MODEL_NAME", |r, v| {
        add_virtual(r, v)
    }),
];

fn set<T>(slot: &mut T, value: T) -> Result<(), String> {
    *slot = value;
    Ok(())
}

fn parse<T: std::str::FromStr>(value: &str, why: &str) -> Result<T, String> {
    value.parse().map_err(|_| why.to_string())
}

fn flag(value: &str) -> Result<bool, String> {
    parse_bool(value).ok_or_else(|| "expected true or false".to_string())
}

/// A whole number; pydantic accepted "90.0" for an int field, and so do we.
fn whole(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .or_else(|| {
            value
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| "expected a whole number".to_string())
}

fn add_virtual(router: &mut RouterConfig, name: &str) -> Result<(), String> {
    if !router.virtual_models.iter().any(|v| v == name) {
        router.virtual_models.insert(0, name.to_string());
    }
    Ok(())
}

/// Applies the variables that have an equivalent, and returns one warning per set variable
/// that has none (or is not a SmarterRouter variable at all).
pub(super) fn apply_overrides(
    router: &mut RouterConfig,
    env: &RouterEnv,
    problems: &mut Vec<String>,
) -> Vec<String> {
    for (name, apply) in APPLIED {
        if let Some(value) = env.get(name) {
            if let Err(why) = apply(router, &value) {
                problems.push(format!("{name}={value:?}: {why}"));
            }
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
            Some(Support::Applied) => {}
            Some(Support::NotYet(feature)) => lines.push(format!(
                "{name} is set but not supported yet ({feature} is not built in this version); it has no effect"
            )),
            Some(Support::Ignored(instead)) => {
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
    let (best, distance) = known()
        .map(|known| (known, edit_distance(name, known)))
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
            ("ROUTER_REDIS_MAX_CONNECTIONS", "20"),
            ("ROUTER_VRAM_LOG_INTERVAL", "60"),
            ("ROUTER_DATABASE_URL", "sqlite:///data/router.db"),
            ("ROUTER_CAHCE_TTL_SECONDS", "60"),
            ("ROUTER_PINNED_MODEL", "llama3.2:1b"),
        ]);
        assert!(problems.is_empty());
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        let line = |name: &str| warnings.iter().find(|w| w.starts_with(name)).unwrap();
        assert!(line("ROUTER_REDIS_MAX_CONNECTIONS ").contains("one multiplexed connection"));
        assert!(line("ROUTER_VRAM_LOG_INTERVAL ").contains("VRAM"));
        assert!(line("ROUTER_DATABASE_URL ").contains("router.data_dir"));
        assert!(
            line("ROUTER_CAHCE_TTL_SECONDS ").contains("did you mean ROUTER_CACHE_TTL_SECONDS?")
        );
    }

    #[test]
    fn the_originals_redis_variables_turn_cluster_mode_on() {
        let (router, problems, _) = apply(&[
            ("ROUTER_CACHE_BACKEND", "redis"),
            ("ROUTER_REDIS_URL", "redis://10.0.0.5:6379/2"),
            ("ROUTER_REDIS_CACHE_PREFIX", "prod-eu"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            router.cluster.redis_url.as_deref(),
            Some("redis://10.0.0.5:6379/2")
        );
        assert_eq!(router.cluster.key_prefix, "prod-eu");
        let (_, problems, _) = apply(&[("ROUTER_CACHE_BACKEND", "redis")]);
        assert!(problems[0].contains("ROUTER_REDIS_URL"), "{problems:?}");
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
        let mut names: Vec<&str> = known().collect();
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
            ("ROUTER_CACHE_ENABLED", "false"),
            ("ROUTER_CACHE_TTL_SECONDS", "5"),
            ("ROUTER_CACHE_RESPONSE_MAX_SIZE", "7"),
            ("ROUTER_EMBED_MODEL", "all-minilm"),
            ("ROUTER_VRAM_MONITOR_ENABLED", "false"),
            ("ROUTER_VRAM_MONITOR_INTERVAL", "11"),
            ("ROUTER_VRAM_MAX_TOTAL_GB", "20"),
            ("ROUTER_VRAM_AUTO_UNLOAD_ENABLED", "false"),
            ("ROUTER_RATE_LIMIT_ENABLED", "true"),
            ("ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE", "7"),
            ("ROUTER_RATE_LIMIT_ADMIN_REQUESTS_PER_MINUTE", "3"),
            ("ROUTER_RATE_LIMIT_CHAT_REQUESTS_PER_MINUTE", "30"),
            ("ROUTER_VRAM_UNLOAD_STRATEGY", "largest"),
            ("ROUTER_VRAM_DEFAULT_ESTIMATE_GB", "3"),
            ("ROUTER_VRAM_UNLOAD_THRESHOLD_PCT", "70"),
            ("ROUTER_CACHE_SIMILARITY_THRESHOLD", "0.9"),
            ("ROUTER_MODEL_POLLING_INTERVAL", "78"),
            ("ROUTER_REDIS_URL", "redis://127.0.0.1:6379"),
            ("ROUTER_REDIS_CACHE_PREFIX", "staging"),
            ("ROUTER_CACHE_BACKEND", "memory"),
        ];
        let applied: Vec<&str> = APPLIED.iter().map(|(n, _)| *n).collect();
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

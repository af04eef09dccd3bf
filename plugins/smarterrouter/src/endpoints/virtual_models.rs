//! The router's virtual models (`router.virtual_models`: `smarterrouter/main`, `auto`) as Ollama
//! clients see models: entries for `/api/tags` (so Open WebUI, the `ollama` CLI and every client
//! that picks from that list can choose automatic routing), a `/api/show` answer, and the answer
//! to a load/unload request (`ollama run` sends one), which has nothing to load: each request is
//! routed on its own.

use serde_json::{json, Value};

use crate::model::facts::ModelFacts;
use crate::routing::ModelCatalog;
use crate::RouterState;

/// Ollama's `details` for a virtual model.
fn details() -> Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": "smarterrouter",
        "families": ["smarterrouter"],
        "parameter_size": "routed",
        "quantization_level": "routed",
    })
}

/// The chat models a virtual model may route to.
fn candidates(state: &RouterState) -> Vec<ModelFacts> {
    state
        .registry
        .candidate_facts(false)
        .into_iter()
        .filter(ModelFacts::can_chat)
        .collect()
}

/// A stable 64-hex-digit digest for a name (clients show and compare digests; a virtual model has
/// no blob to hash).
fn digest(name: &str) -> String {
    (0u64..4)
        .map(|seed| {
            let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for byte in name.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{hash:016x}")
        })
        .collect()
}

/// `/api/tags` entries for the virtual models, in configuration order. `size` is the largest
/// candidate's (what may end up loaded); `modified_at` the newest candidate's.
pub fn tags_entries(state: &RouterState) -> Vec<Value> {
    let tags = state.registry.tags_entries();
    let newest = tags
        .iter()
        .filter_map(|(m, _)| m.tags_entry.get("modified_at").and_then(Value::as_str))
        .max()
        .unwrap_or("1970-01-01T00:00:00Z")
        .to_string();
    let size = candidates(state)
        .iter()
        .map(|f| f.size_bytes)
        .max()
        .unwrap_or(0);
    state
        .config
        .virtual_models
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "model": name,
                "modified_at": newest,
                "size": size,
                "digest": digest(name),
                "details": details(),
            })
        })
        .collect()
}

/// `POST /api/show` for a virtual model: what some candidate can do (so a client offers image
/// upload and tools when a request with them can be routed), and the context length every
/// candidate supports.
pub fn show(state: &RouterState, name: &str) -> Value {
    let candidates = candidates(state);
    let mut capabilities = vec!["completion"];
    let any = |has: fn(&ModelFacts) -> bool| candidates.iter().any(has);
    if any(|f| f.capabilities.vision) {
        capabilities.push("vision");
    }
    if any(|f| f.capabilities.tools) {
        capabilities.push("tools");
    }
    if any(|f| f.capabilities.thinking) {
        capabilities.push("thinking");
    }
    let context_length = candidates.iter().filter_map(|f| f.context_length).min();
    let names: Vec<&str> = candidates.iter().map(|f| f.name.as_str()).collect();
    let mut model_info = json!({
        "general.architecture": "smarterrouter",
        "general.basename": name,
    });
    if let Some(length) = context_length {
        model_info["smarterrouter.context_length"] = json!(length);
    }
    json!({
        "modelfile": "",
        "parameters": "",
        "template": "",
        "license": "",
        "description": format!(
            "Virtual model of SmarterRouter: each request is routed to the model that fits it best, among: {}",
            if names.is_empty() { "none yet".to_string() } else { names.join(", ") }
        ),
        "details": details(),
        "model_info": model_info,
        "capabilities": capabilities,
        "modified_at": tags_entries(state)
            .first()
            .and_then(|e| e.get("modified_at").cloned())
            .unwrap_or(Value::Null),
    })
}

/// The answer to an Ollama load (or, with `keep_alive: 0`, unload) request for a virtual model.
pub fn load_answer(
    name: &str,
    body: &serde_json::Map<String, Value>,
    chat: bool,
    now_rfc3339: &str,
) -> Value {
    let unload = matches!(body.get("keep_alive"), Some(v) if v == &json!(0) || v == &json!("0"));
    let reason = if unload { "unload" } else { "load" };
    let mut answer = json!({
        "model": name,
        "created_at": now_rfc3339,
        "done_reason": reason,
        "done": true,
    });
    if chat {
        answer["message"] = json!({"role": "assistant", "content": ""});
    } else {
        answer["response"] = json!("");
    }
    answer
}

/// Whether `name` is one of the virtual models (any case; Ollama clients add `:latest`).
pub fn is_virtual(state: &RouterState, name: &str) -> bool {
    crate::routing::is_virtual(&state.config.virtual_models, name)
}

/// `unix_secs` as RFC 3339 in UTC (`2026-12-02T07:11:14Z`), as Ollama writes `created_at`.
pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rest = unix_secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_hex_of_64_digits() {
        let d = digest("smarterrouter/main");
        assert_eq!(d.len(), 64);
        assert!(d.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(d, digest("smarterrouter/main"));
        assert_ne!(d, digest("auto"));
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_746_380_264 + 7 * 3600), "2025-05-05T00:37:44Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_load_with_keep_alive_zero_is_an_unload() {
        let body = json!({"model": "auto", "keep_alive": 0});
        let answer = load_answer("auto", body.as_object().unwrap(), true, "t");
        assert_eq!(answer["done_reason"], "unload");
        assert_eq!(answer["message"]["content"], "");
        let body = json!({"model": "auto"});
        let answer = load_answer("auto", body.as_object().unwrap(), false, "t");
        assert_eq!(answer["done_reason"], "load");
        assert_eq!(answer["response"], "");
    }
}

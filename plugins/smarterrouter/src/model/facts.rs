//! What the router knows about a model: size, family, capabilities, context length, whether it
//! is loaded. Read from Ollama's `/api/tags` and `/api/show`; guessed from the name only when a
//! node does not say (OpenAI-kind nodes), with the original's quirks fixed (`llama3.1:70b` is 70B).

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capabilities {
    pub completion: bool,
    pub vision: bool,
    pub tools: bool,
    pub embedding: bool,
    pub thinking: bool,
}

/// Where the capabilities came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FactSource {
    /// `/api/show` capabilities.
    #[default]
    Node,
    /// Guessed from the model name.
    Name,
}

impl FactSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FactSource::Node => "node",
            FactSource::Name => "name",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelFacts {
    pub name: String,
    /// Billions of parameters, if known.
    pub params_b: Option<f32>,
    pub size_bytes: u64,
    pub family: String,
    pub capabilities: Capabilities,
    pub source: FactSource,
    pub context_length: Option<u64>,
    /// Loaded in memory on some node now (Ollama `/api/ps`).
    pub loaded: bool,
}

impl ModelFacts {
    /// Facts from an `/api/tags` entry, capabilities guessed from the name until `/api/show`
    /// answers.
    pub fn from_tags_entry(name: &str, entry: &Value) -> Self {
        let family = entry
            .pointer("/details/family")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let params_b = entry
            .pointer("/details/parameter_size")
            .and_then(Value::as_str)
            .and_then(parse_parameter_size)
            .or_else(|| params_from_name(name));
        ModelFacts {
            name: name.to_string(),
            params_b,
            size_bytes: entry.get("size").and_then(Value::as_u64).unwrap_or(0),
            capabilities: capabilities_from_name(name, &family),
            family,
            source: FactSource::Name,
            context_length: None,
            loaded: false,
        }
    }

    /// Applies an `/api/show` answer: capabilities, exact parameter count, context length.
    pub fn apply_show(&mut self, show: &Value) {
        if let Some(list) = show.get("capabilities").and_then(Value::as_array) {
            let has = |c: &str| list.iter().any(|v| v.as_str() == Some(c));
            self.capabilities = Capabilities {
                completion: has("completion"),
                vision: has("vision"),
                tools: has("tools"),
                embedding: has("embedding"),
                thinking: has("thinking"),
            };
            self.source = FactSource::Node;
        }
        let info = show.get("model_info");
        if let Some(count) = info
            .and_then(|i| i.get("general.parameter_count"))
            .and_then(Value::as_f64)
        {
            if count > 0.0 {
                self.params_b = Some((count / 1e9) as f32);
            }
        }
        if let Some(arch) = info
            .and_then(|i| i.get("general.architecture"))
            .and_then(Value::as_str)
        {
            let key = format!("{arch}.context_length");
            self.context_length = info.and_then(|i| i.get(&key)).and_then(Value::as_u64);
        }
    }

    pub fn can_chat(&self) -> bool {
        !self.capabilities.embedding || self.capabilities.completion
    }
}

/// `"7.6B"`, `"270M"`, `"8x7B"` to billions.
pub fn parse_parameter_size(text: &str) -> Option<f32> {
    let t = text.trim().to_ascii_lowercase();
    if let Some((experts, each)) = t.split_once('x') {
        let experts: f32 = experts.parse().ok()?;
        return parse_parameter_size(each).map(|e| experts * e);
    }
    let (number, scale) = if let Some(n) = t.strip_suffix('b') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('t') {
        (n, 1000.0)
    } else {
        return None;
    };
    number
        .trim()
        .parse::<f32>()
        .ok()
        .map(|n| n * scale)
        .filter(|n| *n > 0.0)
}

/// Size from a name such as `llama3.1:70b`, `qwen2.5-coder:14b-instruct`, `mixtral:8x7b`,
/// `phi3:mini`. Looks in the tag first, then the name; version numbers (`3.1`) are not sizes.
pub fn params_from_name(name: &str) -> Option<f32> {
    let lower = name.to_ascii_lowercase();
    let (base, tag) = lower.split_once(':').unwrap_or((lower.as_str(), ""));
    for part in [tag, base] {
        for token in part.split(['-', '_', ':', '/']) {
            if let Some(size) = parse_parameter_size(token) {
                return Some(size);
            }
        }
    }
    const NAMED: &[(&str, f32)] = &[
        ("mini", 3.8),
        ("small", 7.0),
        ("medium", 14.0),
        ("large", 70.0),
    ];
    NAMED
        .iter()
        .find(|(word, _)| tag.contains(word))
        .map(|(_, size)| *size)
}

/// Name and family guesses, used only when a node does not report capabilities.
pub fn capabilities_from_name(name: &str, family: &str) -> Capabilities {
    let n = name.to_ascii_lowercase();
    let f = family.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| n.contains(w));
    let embedding = any(&["embed", "minilm", "bge-", "e5-", "gte-", "nomic", "mxbai"])
        || f == "bert"
        || f == "nomic-bert";
    Capabilities {
        completion: !embedding,
        vision: any(&[
            "llava",
            "pixtral",
            "vision",
            "-vl",
            "moondream",
            "bakllava",
            "minicpm-v",
            "gemma3:4b",
            "gemma3:12b",
            "gemma3:27b",
            "llama4",
            "internvl",
            "cogvlm",
        ]),
        tools: any(&[
            "qwen2.5",
            "qwen3",
            "llama3.1",
            "llama3.2",
            "llama3.3",
            "mistral",
            "command-r",
            "hermes",
            "firefunction",
            "granite",
            "gpt-oss",
        ]),
        embedding,
        thinking: any(&["r1", "qwq", "qwen3", "gpt-oss", "thinking"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_from_names_fix_the_originals_quirks() {
        assert_eq!(params_from_name("llama3.1:70b"), Some(70.0));
        assert_eq!(params_from_name("deepseek-r1:7b"), Some(7.0));
        assert_eq!(params_from_name("gemma3:4b"), Some(4.0));
        assert_eq!(params_from_name("llava:7b"), Some(7.0));
        assert_eq!(params_from_name("codellama:34b"), Some(34.0));
        assert_eq!(params_from_name("mixtral:8x7b"), Some(56.0));
        assert_eq!(
            params_from_name("qwen2.5-coder:14b-instruct-q4_K_M"),
            Some(14.0)
        );
        assert_eq!(params_from_name("phi3:mini"), Some(3.8));
        assert_eq!(params_from_name("smollm2-135m"), Some(0.135));
        assert_eq!(params_from_name("qwen2.5:latest"), None);
    }

    #[test]
    fn parameter_size_strings() {
        assert_eq!(parse_parameter_size("7.6B"), Some(7.6));
        assert_eq!(parse_parameter_size("270M"), Some(0.27));
        assert_eq!(parse_parameter_size("unknown"), None);
    }

    #[test]
    fn show_overrides_name_guesses() {
        let mut facts = ModelFacts::from_tags_entry(
            "mystery:latest",
            &json!({"size": 5, "details": {"family": "llama", "parameter_size": "8.0B"}}),
        );
        assert_eq!(facts.source, FactSource::Name);
        assert_eq!(facts.params_b, Some(8.0));
        facts.apply_show(&json!({
            "capabilities": ["completion", "vision"],
            "model_info": {"general.architecture": "llama", "general.parameter_count": 8_030_261_248u64,
                           "llama.context_length": 8192}
        }));
        assert!(facts.capabilities.vision && !facts.capabilities.tools);
        assert_eq!(facts.source, FactSource::Node);
        assert_eq!(facts.context_length, Some(8192));
        assert!((facts.params_b.unwrap() - 8.03).abs() < 0.01);
    }

    #[test]
    fn embedding_models_cannot_chat() {
        let facts = ModelFacts::from_tags_entry(
            "all-minilm:latest",
            &json!({"details": {"family": "bert"}}),
        );
        assert!(!facts.can_chat());
    }
}

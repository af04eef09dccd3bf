//! Client API keys (`router.auth.api_keys`): who a request on the proxy port is, and what that
//! client may use.
//!
//! A presented key is hashed (Blake2s-256) and looked up by its hash, then compared with the
//! stored key in constant time. The lookup's timing depends only on the hash of what the client
//! sent, which tells an attacker nothing about any stored key, and the cost is the same for
//! ten keys or ten thousand.

use std::collections::HashMap;
use std::sync::Arc;

use blake2::{Blake2s256, Digest};

use crate::config::AuthConfig;
use crate::model::facts::ModelFacts;
use crate::routing::ModelCatalog;

/// The client a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The tenant: `name` of its entry, or `key-` and the first 8 hex digits of the key's hash
    /// (stable when entries are added or removed; names starting `key-` are refused).
    pub name: String,
    /// Models it may use; empty: every model. A trailing `*` matches a prefix.
    pub models: Vec<String>,
    /// Its own rate, over `router.rate_limit.requests_per_minute`.
    pub requests_per_minute: Option<u32>,
    /// `tenant:<name>`, its part of the cache key (built once, not per request).
    pub cache_identity: String,
    /// `key:<name>`, its rate-limit bucket.
    pub rate_key: String,
}

impl Client {
    /// Whether this client may use `model` (a name as the nodes list it).
    pub fn may_use(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|allowed| matches(allowed, model))
    }
}

/// `allowed` names `model` exactly, with Ollama's implicit `:latest`, or as a `prefix*`.
fn matches(allowed: &str, model: &str) -> bool {
    if let Some(prefix) = allowed.strip_suffix('*') {
        return model.starts_with(prefix);
    }
    allowed == model
        || model
            .strip_suffix(":latest")
            .is_some_and(|bare| bare == allowed)
        || allowed
            .strip_suffix(":latest")
            .is_some_and(|bare| bare == model)
}

/// The models on offer as one client sees them: only those its key allows.
pub struct AllowedModels<'a> {
    pub inner: &'a dyn ModelCatalog,
    pub client: &'a Client,
}

impl ModelCatalog for AllowedModels<'_> {
    fn resolve(&self, requested: &str) -> Option<String> {
        self.inner
            .resolve(requested)
            .filter(|m| self.client.may_use(m))
    }

    fn generation_models(&self) -> Vec<String> {
        let mut models = self.inner.generation_models();
        models.retain(|m| self.client.may_use(m));
        models
    }

    fn all_models(&self) -> Vec<String> {
        let mut models = self.inner.all_models();
        models.retain(|m| self.client.may_use(m));
        models
    }

    fn candidate_facts(&self, ollama_only: bool) -> Vec<ModelFacts> {
        let mut facts = self.inner.candidate_facts(ollama_only);
        facts.retain(|f| self.client.may_use(&f.name));
        facts
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A key that is not configured.
    Unknown,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "this router needs an API key: send Authorization: Bearer <key> (router.auth.api_keys)",
            Refusal::Unknown => "the API key is not valid for this router (router.auth.api_keys)",
        }
    }
}

struct Entry {
    key: Vec<u8>,
    client: Arc<Client>,
}

/// The configured keys, by hash. Empty: auth is off.
#[derive(Default)]
pub struct ClientKeys {
    by_hash: HashMap<[u8; 32], Entry>,
}

impl ClientKeys {
    pub fn from_config(config: &AuthConfig) -> Self {
        let mut by_hash = HashMap::new();
        for entry in &config.api_keys {
            let digest = hash(entry.key.as_bytes());
            let name = entry.name.clone().unwrap_or_else(|| default_name(&digest));
            let client = Arc::new(Client {
                cache_identity: format!("tenant:{name}"),
                rate_key: format!("key:{name}"),
                name,
                models: entry.models.iter().map(|m| m.trim().to_string()).collect(),
                requests_per_minute: entry.requests_per_minute,
            });
            by_hash.insert(
                digest,
                Entry {
                    key: entry.key.as_bytes().to_vec(),
                    client,
                },
            );
        }
        ClientKeys { by_hash }
    }

    /// Whether any key is configured (then every model request needs one).
    pub fn required(&self) -> bool {
        !self.by_hash.is_empty()
    }

    /// The client an `Authorization` header value names.
    pub fn identify(&self, authorization: Option<&[u8]>) -> Result<Arc<Client>, Refusal> {
        let token = authorization
            .and_then(bearer_token)
            .ok_or(Refusal::Missing)?;
        let entry = self.by_hash.get(&hash(token)).ok_or(Refusal::Unknown)?;
        if constant_time_eq(&entry.key, token) {
            Ok(entry.client.clone())
        } else {
            Err(Refusal::Unknown)
        }
    }
}

/// The token of `Bearer <token>` (scheme in any case, as RFC 9110 allows).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// An unnamed key's tenant: from its hash, so it does not change when other entries do.
fn default_name(digest: &[u8; 32]) -> String {
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("key-{hex}")
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Blake2s256::digest(bytes).into()
}

/// Whether two secrets are equal, in a time that depends on neither (their hashes are compared,
/// so not even the length shows).
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    constant_time_eq(&hash(given), &hash(expected))
}

/// Equal-length comparison without an early exit (lengths are not secret: the hash matched).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    fn keys() -> ClientKeys {
        let entry = |key: &str, name: Option<&str>, models: &[&str]| ApiKeyConfig {
            key: key.to_string(),
            name: name.map(str::to_string),
            models: models.iter().map(|m| m.to_string()).collect(),
            requests_per_minute: None,
            origin: None,
        };
        ClientKeys::from_config(&AuthConfig {
            api_keys: vec![
                entry(
                    "sk-team-a-0123456789",
                    Some("team-a"),
                    &["qwen2.5-coder:7b", "llama3*"],
                ),
                entry("sk-anyone-0123456789", None, &[]),
            ],
            api_keys_file: None,
        })
    }

    #[test]
    fn a_configured_key_names_its_client() {
        let keys = keys();
        assert!(keys.required());
        let a = keys.identify(Some(b"Bearer sk-team-a-0123456789")).unwrap();
        assert_eq!(a.name, "team-a");
        let b = keys
            .identify(Some(b"bearer  sk-anyone-0123456789 "))
            .unwrap();
        assert_eq!(
            b.name,
            default_name(&hash(b"sk-anyone-0123456789")),
            "unnamed keys are named by their hash"
        );
        assert!(b.name.starts_with("key-") && b.name.len() == 12);
        assert_eq!(keys.identify(None), Err(Refusal::Missing));
        assert_eq!(keys.identify(Some(b"Basic abc")), Err(Refusal::Missing));
        assert_eq!(keys.identify(Some(b"Bearer ")), Err(Refusal::Missing));
        assert_eq!(
            keys.identify(Some(b"Bearer sk-team-a-012345678")),
            Err(Refusal::Unknown)
        );
        assert!(!ClientKeys::default().required());
    }

    #[test]
    fn allowed_models_match_names_latest_and_prefixes() {
        let a = keys()
            .identify(Some(b"Bearer sk-team-a-0123456789"))
            .unwrap();
        assert!(a.may_use("qwen2.5-coder:7b"));
        assert!(a.may_use("llama3.2:1b"));
        assert!(!a.may_use("qwen2.5-coder:14b"));
        assert!(!a.may_use("mistral:7b"));
        let any = keys()
            .identify(Some(b"Bearer sk-anyone-0123456789"))
            .unwrap();
        assert!(any.may_use("mistral:7b"));
        assert!(matches("phi3", "phi3:latest") && matches("phi3:latest", "phi3"));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(same_secret(b"admin-key-1", b"admin-key-1"));
        assert!(!same_secret(b"admin-key-1", b"admin-key-2"));
    }
}

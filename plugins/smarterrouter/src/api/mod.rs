//! The HTTP surface: which endpoint a request is for, in which dialect (OpenAI or Ollama), and
//! typed views of the request fields the router reads. Bodies are forwarded, not translated.

pub mod prompt;
pub mod query;
pub mod request;
pub mod usage;

pub use crate::error::Dialect;

/// An endpoint the router forwards to a node after choosing the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    ChatCompletions,
    Completions,
    Embeddings,
    OllamaChat,
    OllamaGenerate,
    OllamaEmbed,
    OllamaEmbeddings,
    OllamaShow,
}

impl Forwarded {
    pub fn dialect(self) -> Dialect {
        match self {
            Forwarded::ChatCompletions | Forwarded::Completions | Forwarded::Embeddings => {
                Dialect::OpenAi
            }
            _ => Dialect::Ollama,
        }
    }

    /// Whether the router may choose the model (chat and generation) rather than require one.
    pub fn is_generation(self) -> bool {
        matches!(
            self,
            Forwarded::ChatCompletions
                | Forwarded::Completions
                | Forwarded::OllamaChat
                | Forwarded::OllamaGenerate
        )
    }

    /// Whether the upstream streams unless the body says `"stream": false`.
    pub fn streams_by_default(self) -> bool {
        matches!(self, Forwarded::OllamaChat | Forwarded::OllamaGenerate)
    }
}

/// An endpoint the router answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    Root,
    Health,
    Metrics,
    OpenAiModels,
    OpenAiModel,
    OllamaTags,
    OllamaPs,
    OllamaVersion,
    /// `/admin/explain` (GET with `?prompt=`, or POST with a chat body).
    Explain,
    /// `POST /v1/feedback`.
    Feedback,
    /// `GET /admin/profiles`.
    Profiles,
    /// `POST /admin/reprofile[?model=M&force=true]`.
    Reprofile,
    /// `GET /admin/reprofile/{id}`.
    ReprofileStatus,
    /// `GET /admin/cache/stats`.
    CacheStats,
    /// `POST /admin/cache/invalidate[?model=M]`.
    CacheInvalidate,
    /// `GET /admin/vram[?history_minutes=N]`.
    Vram,
    /// `GET /admin/decisions[?limit=N]`.
    Decisions,
    /// `GET /admin/decisions/{request_id}`.
    Decision,
    /// `GET /admin/activity[?minutes=N]`.
    Activity,
    /// `GET /admin/ui`: the dashboard page (also `/` on the admin listener for a browser).
    Ui,
}

/// What a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Forwarded(Forwarded),
    Local(Local),
}

impl Endpoint {
    /// A bounded label for metrics and logs (never the raw path).
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Forwarded(f) => match f {
                Forwarded::ChatCompletions => "/v1/chat/completions",
                Forwarded::Completions => "/v1/completions",
                Forwarded::Embeddings => "/v1/embeddings",
                Forwarded::OllamaChat => "/api/chat",
                Forwarded::OllamaGenerate => "/api/generate",
                Forwarded::OllamaEmbed => "/api/embed",
                Forwarded::OllamaEmbeddings => "/api/embeddings",
                Forwarded::OllamaShow => "/api/show",
            },
            Endpoint::Local(l) => match l {
                Local::Root => "/",
                Local::Health => "/health",
                Local::Metrics => "/metrics",
                Local::OpenAiModels => "/v1/models",
                Local::OpenAiModel => "/v1/models/{model}",
                Local::OllamaTags => "/api/tags",
                Local::OllamaPs => "/api/ps",
                Local::OllamaVersion => "/api/version",
                Local::Explain => "/admin/explain",
                Local::Feedback => "/v1/feedback",
                Local::Profiles => "/admin/profiles",
                Local::Reprofile => "/admin/reprofile",
                Local::ReprofileStatus => "/admin/reprofile/{id}",
                Local::CacheStats => "/admin/cache/stats",
                Local::CacheInvalidate => "/admin/cache/invalidate",
                Local::Vram => "/admin/vram",
                Local::Decisions => "/admin/decisions",
                Local::Decision => "/admin/decisions/{request_id}",
                Local::Activity => "/admin/activity",
                Local::Ui => "/admin/ui",
            },
        }
    }
}

/// The dialect of a path, for answering errors even on unknown paths.
pub fn dialect_of_path(path: &str) -> Dialect {
    // The router's own /admin API answers in the OpenAI shape (it has a `code`).
    if path.starts_with("/v1/") || path == "/v1" || path.starts_with("/admin/") {
        Dialect::OpenAi
    } else {
        Dialect::Ollama
    }
}

/// Why a request matched no endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMiss {
    UnknownPath,
    WrongMethod,
}

/// Maps method and path to an endpoint.
pub fn route(method: &str, path: &str) -> Result<Endpoint, RouteMiss> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let (expected, endpoint) = match path {
        "/v1/chat/completions" => ("POST", Endpoint::Forwarded(Forwarded::ChatCompletions)),
        "/v1/completions" => ("POST", Endpoint::Forwarded(Forwarded::Completions)),
        "/v1/embeddings" => ("POST", Endpoint::Forwarded(Forwarded::Embeddings)),
        "/api/chat" => ("POST", Endpoint::Forwarded(Forwarded::OllamaChat)),
        "/api/generate" => ("POST", Endpoint::Forwarded(Forwarded::OllamaGenerate)),
        "/api/embed" => ("POST", Endpoint::Forwarded(Forwarded::OllamaEmbed)),
        "/api/embeddings" => ("POST", Endpoint::Forwarded(Forwarded::OllamaEmbeddings)),
        "/api/show" => ("POST", Endpoint::Forwarded(Forwarded::OllamaShow)),
        "/" => ("GET", Endpoint::Local(Local::Root)),
        "/health" => ("GET", Endpoint::Local(Local::Health)),
        "/metrics" => ("GET", Endpoint::Local(Local::Metrics)),
        "/v1/models" => ("GET", Endpoint::Local(Local::OpenAiModels)),
        "/api/tags" => ("GET", Endpoint::Local(Local::OllamaTags)),
        "/api/ps" => ("GET", Endpoint::Local(Local::OllamaPs)),
        "/api/version" => ("GET", Endpoint::Local(Local::OllamaVersion)),
        "/v1/feedback" => ("POST", Endpoint::Local(Local::Feedback)),
        "/admin/profiles" => ("GET", Endpoint::Local(Local::Profiles)),
        "/admin/reprofile" => ("POST", Endpoint::Local(Local::Reprofile)),
        p if p.starts_with("/admin/reprofile/") => ("GET", Endpoint::Local(Local::ReprofileStatus)),
        "/admin/cache/stats" => ("GET", Endpoint::Local(Local::CacheStats)),
        "/admin/vram" => ("GET", Endpoint::Local(Local::Vram)),
        "/admin/decisions" => ("GET", Endpoint::Local(Local::Decisions)),
        p if p.starts_with("/admin/decisions/") => ("GET", Endpoint::Local(Local::Decision)),
        "/admin/activity" => ("GET", Endpoint::Local(Local::Activity)),
        "/admin/ui" => ("GET", Endpoint::Local(Local::Ui)),
        "/admin/cache/invalidate" => ("POST", Endpoint::Local(Local::CacheInvalidate)),
        "/admin/explain" if method == "POST" => ("POST", Endpoint::Local(Local::Explain)),
        "/admin/explain" => ("GET", Endpoint::Local(Local::Explain)),
        p if p.starts_with("/v1/models/") => ("GET", Endpoint::Local(Local::OpenAiModel)),
        _ => return Err(RouteMiss::UnknownPath),
    };
    let method_ok = method == expected || (expected == "GET" && method == "HEAD");
    if method_ok {
        Ok(endpoint)
    } else {
        Err(RouteMiss::WrongMethod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_known_paths_and_methods() {
        assert_eq!(
            route("POST", "/v1/chat/completions"),
            Ok(Endpoint::Forwarded(Forwarded::ChatCompletions))
        );
        assert_eq!(
            route("GET", "/api/tags/"),
            Ok(Endpoint::Local(Local::OllamaTags))
        );
        assert_eq!(route("HEAD", "/"), Ok(Endpoint::Local(Local::Root)));
        assert_eq!(route("GET", "/api/chat"), Err(RouteMiss::WrongMethod));
        assert_eq!(route("POST", "/nope"), Err(RouteMiss::UnknownPath));
        assert_eq!(
            route("GET", "/v1/models/llama3.2:1b"),
            Ok(Endpoint::Local(Local::OpenAiModel))
        );
    }

    #[test]
    fn dialect_follows_prefix() {
        assert_eq!(dialect_of_path("/v1/anything"), Dialect::OpenAi);
        assert_eq!(dialect_of_path("/api/x"), Dialect::Ollama);
    }
}

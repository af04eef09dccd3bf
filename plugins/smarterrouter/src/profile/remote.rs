//! `smarterrouter profile` while a router owns the store: the CLI cannot open the store (sled
//! locks it), so it asks that router to profile, through its admin API
//! (`POST /admin/reprofile`, then `GET /admin/reprofile/{id}` until the job ends), prints the
//! same progress lines, and reads the saved profiles from `GET /admin/profiles`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::runner::Progress;
use super::ModelProfile;
use crate::config::RouterConfig;

const POLL_EVERY: Duration = Duration::from_millis(300);

/// Where the running router's admin API is, and the key it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminTarget {
    pub base_url: String,
    pub api_key: Option<String>,
}

/// The admin API of the router configured by `config`, or what to do if it has none.
pub fn admin_target(config: &RouterConfig) -> Result<AdminTarget, String> {
    let api_key = config.admin.api_key.clone();
    if !config.admin.listen.is_empty() {
        let listen = config
            .admin
            .listen
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("[::]:", "[::1]:");
        return Ok(AdminTarget {
            base_url: format!("http://{listen}"),
            api_key,
        });
    }
    if api_key.is_some() {
        let host = match config.host.as_str() {
            "0.0.0.0" => "127.0.0.1".to_string(),
            "::" | "[::]" => "[::1]".to_string(),
            h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            h => h.to_string(),
        };
        return Ok(AdminTarget {
            base_url: format!("http://{host}:{}", config.port),
            api_key,
        });
    }
    Err(
        "its admin API is off (router.admin.listen is empty and router.admin.api_key is unset), so the CLI cannot ask it to profile: \
         set router.admin.listen (or an api_key) and restart the router, or stop the router and run `smarterrouter profile` again"
            .to_string(),
    )
}

/// `/admin/reprofile/{id}` as the CLI reads it.
#[derive(Debug, Deserialize)]
struct Job {
    id: String,
    state: String,
    #[serde(default)]
    finished_models: Vec<String>,
    error: Option<String>,
    #[serde(default)]
    progress: Vec<Progress>,
    #[serde(default)]
    progress_skipped: usize,
}

/// Runs the profile on the router at `target`; prints progress with `print`.
pub async fn run(
    target: &AdminTarget,
    only: Option<&str>,
    print: &dyn Fn(&str),
) -> Result<Vec<ModelProfile>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
    let authorised = |request: reqwest::RequestBuilder| match &target.api_key {
        Some(key) => request.bearer_auth(key),
        None => request,
    };
    let mut url = format!("{}/admin/reprofile?force=true", target.base_url);
    if let Some(model) = only {
        url.push_str("&model=");
        url.extend(url::form_urlencoded::byte_serialize(model.as_bytes()));
    }
    let job: Job = call(authorised(client.post(&url))).await?;
    print(&format!(
        "the router at {} is profiling (job {})",
        target.base_url, job.id
    ));
    let mut printed = 0usize;
    let job = loop {
        tokio::time::sleep(POLL_EVERY).await;
        let status_url = format!("{}/admin/reprofile/{}", target.base_url, job.id);
        let job: Job = call(authorised(client.get(&status_url)))
            .await
            .map_err(|e| {
                if e.contains("404") {
                    format!("the router no longer knows job {} (it was restarted or reloaded); run the command again", job.id)
                } else {
                    e
                }
            })?;
        for (i, line) in job.progress.iter().enumerate() {
            if job.progress_skipped + i >= printed {
                print(&super::cli::progress_line(line));
                printed = job.progress_skipped + i + 1;
            }
        }
        if job.state == "done" || job.state == "failed" {
            break job;
        }
    };
    if let Some(error) = job.error.filter(|_| job.state == "failed") {
        return Err(format!("the router's profiling job failed: {error}"));
    }
    let all: Value = call(authorised(
        client.get(format!("{}/admin/profiles", target.base_url)),
    ))
    .await?;
    let mut profiles: Vec<ModelProfile> = all
        .get("profiles")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("GET /admin/profiles: unexpected answer ({e})"))?
        .unwrap_or_default();
    profiles.retain(|p| job.finished_models.contains(&p.model));
    profiles.sort_by(|a, b| a.model.cmp(&b.model));
    Ok(profiles)
}

async fn call<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("the router's admin API did not answer: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("the router's admin API answer was cut off: {e}"))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err("the router's admin API refused the key (set router.admin.api_key or ROUTER_ADMIN_API_KEY to the router's key)".to_string());
    }
    if !status.is_success() {
        return Err(format!("the router's admin API answered {status}: {body}"));
    }
    serde_json::from_str(&body)
        .map_err(|e| format!("unexpected answer from the admin API ({e}): {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_port_is_preferred_and_wildcards_become_loopback() {
        let mut config = RouterConfig::default();
        config.admin.listen = "0.0.0.0:9001".into();
        assert_eq!(
            admin_target(&config).unwrap().base_url,
            "http://127.0.0.1:9001"
        );
        config.admin.listen = String::new();
        assert!(admin_target(&config)
            .unwrap_err()
            .contains("router.admin.listen"));
        config.admin.api_key = Some("sekrit-key".into());
        config.port = 9000;
        let target = admin_target(&config).unwrap();
        assert_eq!(target.base_url, "http://127.0.0.1:9000");
        assert_eq!(target.api_key.as_deref(), Some("sekrit-key"));
    }
}

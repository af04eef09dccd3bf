//! Cluster mode: several routers behind one load balancer share rate limits, the response
//! cache, routing decisions and feedback through one Redis (`router.cluster.redis_url`).
//!
//! Decisions go to Redis in pipelined batches off the request (kept [`DECISION_TTL`]), so
//! feedback sent to any instance finds the response another one served; each feedback is
//! added to a Redis stream that every instance reads with its ping and folds into its own
//! scoring and store (a response takes one rating across the cluster).
//!
//! One multiplexed connection per process (the `redis` crate's `ConnectionManager`, which
//! reconnects by itself), opened by a Pingora background service after the server has
//! daemonised and watched by a ping every [`PING_EVERY`]. Every call has the
//! `router.cluster.timeout_ms` deadline, and none is made while Redis is known to be down: a
//! request then uses this process's own limiter and cache at once (fail-open), one WARN marks the
//! outage, `smarterrouter_cluster_up` drops to 0 and `/health` says `degraded`; the first good
//! ping resumes sharing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::ClusterConfig;
use crate::store::{DecisionRecord, Feedback};

/// How long a shared decision can still be rated.
pub const DECISION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Decisions waiting for Redis; past it, new ones are kept only locally.
const DECISION_QUEUE: usize = 10_000;
/// Most decisions in one pipelined write.
const DECISION_BATCH: usize = 256;
/// The feedback stream keeps about this many entries.
const FEEDBACK_STREAM_LEN: usize = 100_000;

/// Reserves GPU memory for a model on one node, for the whole cluster: the memory in use is,
/// per model, the larger of what this instance sees loaded (ARGV pairs) and what any instance
/// has reserved (unexpired); the model fits if that plus its size is within the budget.
/// Returns `{1|0, bytes held by the others}`.
const VRAM_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local model = ARGV[3]
local needed = tonumber(ARGV[4])
local used = {}
for i = 5, #ARGV, 2 do used[ARGV[i]] = tonumber(ARGV[i + 1]) end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local bytes, expires = string.match(all[i + 1], '(%d+)|(%d+)')
  bytes = tonumber(bytes)
  expires = tonumber(expires)
  if expires == nil or expires <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    used[all[i]] = math.max(used[all[i]] or 0, bytes)
  end
end
used[model] = nil
local total = 0
for _, b in pairs(used) do total = total + b end
if total + needed > budget then
  return {0, tostring(total)}
end
redis.call('HSET', KEYS[1], model, string.format('%d|%d', needed, now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, tostring(total)}
"#;

/// Decisions on their way to Redis: (key, JSON).
type DecisionQueue = tokio::sync::mpsc::Receiver<(String, Vec<u8>)>;

/// What the cluster does with feedback another instance accepted.
pub type FeedbackSink = Box<dyn Fn(Feedback) + Send + Sync>;

/// How often the connection is checked (and, while down, retried).
pub const PING_EVERY: Duration = Duration::from_millis(500);

pub struct Cluster {
    url: String,
    prefix: String,
    timeout: Duration,
    connection: RwLock<Option<ConnectionManager>>,
    up: AtomicBool,
    /// The cluster's cache invalidation count, read with every ping: an instance whose local
    /// cache is older clears it.
    cache_epoch: AtomicU64,
    /// Tells this instance's feedback from the others' in the stream.
    instance: String,
    decisions: tokio::sync::mpsc::Sender<(String, Vec<u8>)>,
    decisions_rx: Mutex<Option<DecisionQueue>>,
    feedback_sink: OnceLock<FeedbackSink>,
    /// The last feedback stream entry read (entries from before this process started are not).
    feedback_cursor: Mutex<String>,
}

/// The token bucket of [`crate::ratelimit`] kept in a Redis hash, on Redis's clock, so every
/// instance counts against the same bucket. Returns `{allowed, tokens left}` (the tokens as a
/// string: Redis truncates Lua numbers to integers).
const BUCKET_SCRIPT: &str = r#"
local capacity = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
local rate = capacity / 60000
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
return {allowed, tostring(tokens)}
"#;

impl Cluster {
    /// `None` when `router.cluster.redis_url` is unset (cluster mode off).
    pub fn from_config(config: &ClusterConfig, data_dir: &str) -> Option<Arc<Self>> {
        let url = config.redis_url.clone()?;
        let (decisions, decisions_rx) = tokio::sync::mpsc::channel(DECISION_QUEUE);
        Some(Arc::new(Cluster {
            instance: instance_id(data_dir),
            decisions,
            decisions_rx: Mutex::new(Some(decisions_rx)),
            feedback_sink: OnceLock::new(),
            feedback_cursor: Mutex::new(format!("{}-0", crate::store::now_unix_ms())),
            url,
            prefix: config.key_prefix.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            connection: RwLock::new(None),
            up: AtomicBool::new(false),
            cache_epoch: AtomicU64::new(0),
        }))
    }

    /// Whether Redis answered the last call or ping.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// This deployment's name for `key`.
    pub fn key(&self, kind: &str, key: &str) -> String {
        format!("{}:{kind}:{key}", self.prefix)
    }

    fn connection(&self) -> Option<ConnectionManager> {
        if !self.is_up() {
            return None;
        }
        self.connection.read().ok()?.clone()
    }

    fn set_up(&self, up: bool, why: &str) {
        let was = self.up.swap(up, Ordering::Relaxed);
        crate::metrics::set_cluster_up(up);
        match (was, up) {
            (true, false) => tracing::warn!(
                redis = %redacted(&self.url),
                "cluster: Redis is unreachable ({why}); rate limits and the cache are this instance's own until it is back"
            ),
            (false, true) => tracing::info!(
                redis = %redacted(&self.url),
                "cluster: Redis is reachable; sharing rate limits and the cache"
            ),
            _ => {}
        }
    }

    /// Runs `cmd` within the deadline; `None` (and Redis marked down on a failure) when it
    /// cannot be had in time.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        self.query_within(cmd, self.timeout).await
    }

    /// [`Self::query`] with its own deadline (for writes off the request). Only a lost
    /// connection or a timeout marks Redis down; an error answer (a full Redis, a replica that
    /// refuses writes) fails just that call.
    async fn query_within<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        deadline: Duration,
    ) -> Option<T> {
        let mut connection = self.connection()?;
        match tokio::time::timeout(deadline, cmd.query_async::<T>(&mut connection)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e))
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout() =>
            {
                self.set_up(false, &e.to_string());
                None
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cluster: a Redis call failed");
                None
            }
            Err(_) => {
                self.set_up(false, "a call took longer than router.cluster.timeout_ms");
                None
            }
        }
    }

    /// One request of `client` against its shared bucket of `per_minute`: `(allowed, tokens
    /// left)`, or `None` when Redis cannot answer in time.
    pub async fn take_token(
        &self,
        bucket: &str,
        client: &str,
        per_minute: u32,
    ) -> Option<(bool, f64)> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(BUCKET_SCRIPT)
            .arg(1)
            .arg(self.key("limit", &format!("{bucket}:{per_minute}:{client}")))
            .arg(per_minute);
        let (allowed, tokens): (i64, String) = self.query(&cmd).await?;
        Some((allowed == 1, tokens.parse().unwrap_or(0.0)))
    }

    /// The bytes stored under `key` of `kind`, if any.
    pub async fn get(&self, kind: &str, key: &str) -> Option<Vec<u8>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(kind, key));
        self.query::<Option<Vec<u8>>>(&cmd).await?
    }

    /// Stores `value` under `key` of `kind` for `ttl`; false when Redis did not take it.
    pub async fn put(&self, kind: &str, key: &str, value: &[u8], ttl: Duration) -> bool {
        let millis = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(kind, key))
            .arg(value)
            .arg("PX")
            .arg(millis);
        // Off the request: a large answer may take longer than a request's deadline.
        self.query_within::<()>(&cmd, self.timeout * 10)
            .await
            .is_some()
    }

    /// Where feedback accepted by other instances goes (set once, when the state is built).
    pub fn set_feedback_sink(&self, sink: FeedbackSink) {
        let _ = self.feedback_sink.set(sink);
    }

    /// Queues `record` for Redis, off the request; dropped (kept only locally) when Redis is
    /// down or the queue is full.
    pub fn share_decision(&self, record: &DecisionRecord) {
        if !self.is_up() {
            return;
        }
        if let Ok(json) = serde_json::to_vec(record) {
            let _ = self
                .decisions
                .try_send((self.key("decision", &record.request_id), json));
        }
    }

    /// The decision another instance (or this one) shared for `request_id`.
    pub async fn decision(&self, request_id: &str) -> Option<DecisionRecord> {
        let bytes = self.get("decision", request_id).await?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Tells the other instances about feedback this one has stored; false when Redis did not
    /// take it (the feedback is still this instance's).
    pub async fn share_feedback(&self, feedback: &Feedback) -> bool {
        let Ok(json) = serde_json::to_string(feedback) else {
            return false;
        };
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.key("feedback", "stream"))
            .arg("MAXLEN")
            .arg("~")
            .arg(FEEDBACK_STREAM_LEN)
            .arg("*")
            .arg("origin")
            .arg(&self.instance)
            .arg("feedback")
            .arg(json);
        self.query::<String>(&cmd).await.is_some()
    }

    /// Reads the feedback other instances added since the last read and hands it to the sink.
    async fn read_feedback(&self) {
        let Some(sink) = self.feedback_sink.get() else {
            return;
        };
        let cursor = self
            .feedback_cursor
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| "0-0".to_string());
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(512)
            .arg("STREAMS")
            .arg(self.key("feedback", "stream"))
            .arg(cursor);
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let Some(streams) = self.query::<Option<Vec<(String, Entries)>>>(&cmd).await else {
            return;
        };
        for (_, entries) in streams.unwrap_or_default() {
            for (id, fields) in entries {
                let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                if field("origin") != Some(&self.instance) {
                    if let Some(feedback) =
                        field("feedback").and_then(|f| serde_json::from_str::<Feedback>(f).ok())
                    {
                        sink(feedback);
                    }
                }
                if let Ok(mut cursor) = self.feedback_cursor.lock() {
                    *cursor = id;
                }
            }
        }
    }

    /// Writes queued decisions to Redis in pipelined batches until shutdown.
    async fn write_decisions(&self, mut queue: DecisionQueue) {
        let mut batch = Vec::with_capacity(DECISION_BATCH);
        while queue.recv_many(&mut batch, DECISION_BATCH).await > 0 {
            let Some(mut connection) = self.connection() else {
                batch.clear();
                continue;
            };
            let mut pipe = redis::pipe();
            for (key, value) in batch.drain(..) {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(DECISION_TTL.as_secs())
                    .ignore();
            }
            match tokio::time::timeout(self.timeout * 10, pipe.query_async::<()>(&mut connection))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.set_up(false, &e.to_string()),
                Err(_) => self.set_up(false, "writing decisions took too long"),
            }
        }
    }

    /// Takes the cluster-wide lease `what`/`name` for `ttl`: `Some(true)` ours, `Some(false)`
    /// another instance holds it, `None` Redis cannot say.
    pub async fn lease(&self, what: &str, name: &str, ttl: Duration) -> Option<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("lease:{what}"), name))
            .arg(&self.instance)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let reply: Option<String> = self.query(&cmd).await?;
        Some(reply.is_some())
    }

    /// Gives back a lease this instance holds (another's is left alone).
    pub async fn release(&self, what: &str, name: &str) {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
        )
        .arg(1)
        .arg(self.key(&format!("lease:{what}"), name))
        .arg(&self.instance);
        let _: Option<i64> = self.query(&cmd).await;
    }

    /// Reserves `needed` bytes for `model` on `node` within `budget`, given what this instance
    /// sees loaded there: `Some(Ok(()))` reserved, `Some(Err(bytes the others hold))` it does
    /// not fit, `None` Redis cannot say.
    pub async fn reserve_vram(
        &self,
        node: &str,
        model: &str,
        needed: u64,
        budget: u64,
        loaded: &[(String, u64)],
        ttl: Duration,
    ) -> Option<Result<(), u64>> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(VRAM_SCRIPT)
            .arg(1)
            .arg(self.key("vram", node))
            .arg(ttl.as_millis().max(1) as u64)
            .arg(budget)
            .arg(model)
            .arg(needed);
        for (name, bytes) in loaded {
            cmd.arg(name).arg(*bytes);
        }
        let (fits, held): (i64, String) = self.query(&cmd).await?;
        let held = held.parse::<f64>().unwrap_or(0.0) as u64;
        Some(if fits == 1 { Ok(()) } else { Err(held) })
    }

    /// Drops the reservation of `model` on `node` (this instance unloaded it).
    pub async fn release_vram(&self, node: &str, model: &str) {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.key("vram", node)).arg(model);
        let _: Option<i64> = self.query(&cmd).await;
    }

    /// The profile of `model` another instance (or this one) measured.
    pub async fn profile(&self, model: &str) -> Option<crate::model::ModelProfile> {
        let bytes = self.get("profile", model).await?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Shares a measured profile, kept `ttl` (the profiles' `max_age_hours`).
    pub async fn share_profile(&self, profile: &crate::model::ModelProfile, ttl: Duration) {
        if let Ok(json) = serde_json::to_vec(profile) {
            self.put("profile", &profile.model, &json, ttl).await;
        }
    }

    /// How many times the cluster's cache was invalidated, as last read.
    pub fn cache_epoch(&self) -> u64 {
        self.cache_epoch.load(Ordering::Relaxed)
    }

    /// Drops every shared cache entry and tells the other instances (through the epoch) to
    /// clear their local copies.
    pub async fn invalidate_cache(&self) {
        let mut bump = redis::cmd("INCR");
        bump.arg(self.key("cache-epoch", "all"));
        if let Some(epoch) = self.query::<u64>(&bump).await {
            // Our own local tier was cleared by the caller already.
            self.cache_epoch.store(epoch, Ordering::Relaxed);
        }
        let Some(mut connection) = self.connection() else {
            return;
        };
        let pattern = format!("{}:cache:*", self.prefix);
        let mut cursor: u64 = 0;
        // Bounded: a few thousand keys per round, a round per call's deadline.
        for _ in 0..10_000 {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let Ok(Ok((next, keys))) = tokio::time::timeout(
                self.timeout * 10,
                scan.query_async::<(u64, Vec<String>)>(&mut connection),
            )
            .await
            else {
                return;
            };
            if !keys.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(keys);
                let _ = tokio::time::timeout(
                    self.timeout * 10,
                    unlink.query_async::<()>(&mut connection),
                )
                .await;
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }

    /// Opens the connection (retrying with backoff while Redis is down), then pings it every
    /// [`PING_EVERY`] to notice outages and recoveries.
    async fn watch(&self, shutdown: &mut ShutdownWatch) {
        let mut backoff = PING_EVERY;
        loop {
            if self.connection.read().map(|c| c.is_none()).unwrap_or(false) {
                match self.connect().await {
                    Ok(connection) => {
                        if let Ok(mut slot) = self.connection.write() {
                            *slot = Some(connection);
                        }
                        backoff = PING_EVERY;
                    }
                    Err(why) => {
                        self.set_up(false, &why);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            let connection = self.connection.read().ok().and_then(|c| c.clone());
            if let Some(mut connection) = connection {
                // The ping reads the cache epoch.
                let mut ping = redis::cmd("GET");
                ping.arg(self.key("cache-epoch", "all"));
                // The requests' deadline: a Redis too slow for them stays down.
                match tokio::time::timeout(
                    self.timeout,
                    ping.query_async::<Option<u64>>(&mut connection),
                )
                .await
                {
                    Ok(Ok(epoch)) => {
                        self.cache_epoch
                            .store(epoch.unwrap_or(0), Ordering::Relaxed);
                        self.set_up(true, "");
                        self.read_feedback().await;
                    }
                    Ok(Err(e)) => self.set_up(false, &e.to_string()),
                    Err(_) => self.set_up(false, "no answer to PING"),
                }
            }
            let wait = if self.is_up() { PING_EVERY } else { backoff };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn connect(&self) -> Result<ConnectionManager, String> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(self.timeout.max(Duration::from_millis(200))))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        match tokio::time::timeout(
            Duration::from_secs(3),
            client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no connection within 3 s".to_string()),
        }
    }
}

/// This instance's name in the cluster: its host and store, so the process that replaces it in
/// a graceful upgrade (same host, same store, which hands feedback over itself) is the same
/// instance, and two instances (never one store) are not.
fn instance_id(data_dir: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
    let dir = std::path::absolute(data_dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| data_dir.to_string());
    format!("{host}:{dir}")
}

/// The URL without its password, for logs.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The Pingora background service that keeps the connection (started after daemonising).
pub struct ClusterService(pub Arc<Cluster>);

#[async_trait]
impl BackgroundService for ClusterService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        crate::metrics::set_cluster_up(false);
        let queue = self.0.decisions_rx.lock().ok().and_then(|mut q| q.take());
        if let Some(queue) = queue {
            let cluster = Arc::clone(&self.0);
            tokio::spawn(async move { cluster.write_decisions(queue).await });
        }
        self.0.watch(&mut shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redacted("redis://user:secret@10.0.0.5:6379/0"),
            "redis://user:***@10.0.0.5:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn keys_carry_the_deployments_prefix() {
        let cluster = Cluster::from_config(
            &ClusterConfig {
                redis_url: Some("redis://127.0.0.1:1".into()),
                key_prefix: "prod".into(),
                ..ClusterConfig::default()
            },
            "/var/lib/smarterrouter",
        )
        .expect("cluster mode is on with a URL");
        assert_eq!(cluster.key("cache", "ab12"), "prod:cache:ab12");
        assert!(!cluster.is_up(), "down until the first good ping");
        assert!(Cluster::from_config(&ClusterConfig::default(), "./data").is_none());
        assert!(cluster.instance.ends_with(":/var/lib/smarterrouter"));
    }
}

//! Rate limits per client: a token bucket per client (its IP, or the address a trusted proxy
//! forwarded for), refilled continuously, so a client that slows down is let back in at once
//! (the original's later versions blocked an IP for good). Written here rather than taken from
//! `governor` or `pingora-limits`: the router needs the bucket's state for the `x-ratelimit-*`
//! headers and `Retry-After`, and a hard bound on memory however many clients arrive, in a few
//! dozen lines. In cluster mode the same bucket lives in Redis (`cluster::Cluster::take_token`),
//! and this process's buckets count only while Redis is unreachable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most clients tracked; past it, clients whose bucket is full again (the same as untracked)
/// are forgotten first, then any.
pub const MAX_CLIENTS: usize = 100_000;

/// A limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until one more request is allowed (0 when allowed).
    pub retry_after_secs: u64,
}

impl Verdict {
    /// Let through, with the whole budget left (when the limiter cannot count).
    fn open(per_minute: u32) -> Self {
        Verdict {
            allowed: true,
            limit: per_minute,
            remaining: per_minute,
            reset_secs: 0,
            retry_after_secs: 0,
        }
    }
}

/// What decides whether a client may go on (one process now; a shared store later).
pub trait Limiter: Send + Sync {
    /// Counts one request of `client`, allowed `per_minute` a minute.
    fn check(&self, client: &str, per_minute: u32, now: Instant) -> Verdict;
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A bucket per client: up to `per_minute` requests in a burst, refilled at `per_minute` a
/// minute.
pub struct TokenBuckets {
    buckets: Mutex<HashMap<String, Bucket>>,
    max_clients: usize,
}

fn refilled(bucket: Bucket, capacity: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * capacity / 60.0).min(capacity)
}

impl TokenBuckets {
    pub fn new(max_clients: usize) -> Self {
        TokenBuckets {
            buckets: Mutex::new(HashMap::new()),
            max_clients: max_clients.max(1),
        }
    }

    pub fn clients(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

impl Limiter for TokenBuckets {
    fn check(&self, client: &str, per_minute: u32, now: Instant) -> Verdict {
        let per_minute = per_minute.max(1);
        let capacity = f64::from(per_minute);
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock must not lock everyone out.
            return Verdict::open(per_minute);
        };
        if buckets.len() >= self.max_clients && !buckets.contains_key(client) {
            buckets.retain(|_, b| refilled(*b, capacity, now) < capacity);
            if buckets.len() >= self.max_clients {
                buckets.clear();
            }
        }
        // Only a new client's name is copied: the known ones are looked up by reference.
        if !buckets.contains_key(client) {
            buckets.insert(
                client.to_string(),
                Bucket {
                    tokens: capacity,
                    updated: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(client) else {
            return Verdict::open(per_minute);
        };
        let mut tokens = refilled(*bucket, capacity, now);
        let allowed = tokens >= 1.0;
        if allowed {
            tokens -= 1.0;
        }
        *bucket = Bucket {
            tokens,
            updated: now,
        };
        verdict(allowed, tokens, per_minute)
    }
}

/// The answer for a bucket of `per_minute` left with `tokens` after this request.
pub fn verdict(allowed: bool, tokens: f64, per_minute: u32) -> Verdict {
    let capacity = f64::from(per_minute.max(1));
    let rate = capacity / 60.0;
    let tokens = tokens.clamp(0.0, capacity);
    Verdict {
        allowed,
        limit: per_minute,
        remaining: tokens.floor() as u32,
        reset_secs: ((capacity - tokens) / rate).ceil() as u64,
        retry_after_secs: if allowed {
            0
        } else {
            ((1.0 - tokens) / rate).ceil().max(1.0) as u64
        },
    }
}

/// Which budget a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Model requests other than chat and generation, and feedback.
    Model,
    /// Chat and generation (their own budget when `chat_requests_per_minute` is set).
    Chat,
    /// `/admin/*` on the proxy port.
    Admin,
}

/// `router.rate_limit` as running limiters.
pub struct RateLimits {
    settings: crate::config::RateLimitConfig,
    model: TokenBuckets,
    chat: TokenBuckets,
    admin: TokenBuckets,
}

impl RateLimits {
    /// `None` when `router.rate_limit.enabled` is off.
    pub fn from_config(settings: &crate::config::RateLimitConfig) -> Option<Self> {
        settings.enabled.then(|| RateLimits {
            settings: settings.clone(),
            model: TokenBuckets::new(MAX_CLIENTS),
            chat: TokenBuckets::new(MAX_CLIENTS),
            admin: TokenBuckets::new(MAX_CLIENTS),
        })
    }

    /// Counts a request of `client`; `key_rate` is its API key's own `requests_per_minute`,
    /// which replaces the general and chat rates (not the admin one).
    pub fn check(
        &self,
        class: Class,
        client: &str,
        key_rate: Option<u32>,
        now: Instant,
    ) -> Verdict {
        let (bucket, rate) = self.budget(class, key_rate);
        let buckets = match bucket {
            "admin" => &self.admin,
            "chat" => &self.chat,
            _ => &self.model,
        };
        buckets.check(client, rate, now)
    }

    /// Which bucket (`model`, `chat` or `admin`) a request counts against, and its rate a minute.
    pub fn budget(&self, class: Class, key_rate: Option<u32>) -> (&'static str, u32) {
        let s = &self.settings;
        match (class, s.chat_requests_per_minute) {
            (Class::Admin, _) => ("admin", s.admin_requests_per_minute),
            (Class::Chat, Some(chat)) => ("chat", key_rate.unwrap_or(chat)),
            (Class::Chat | Class::Model, _) => ("model", key_rate.unwrap_or(s.requests_per_minute)),
        }
    }
}

/// The client a request counts for: the peer's address, or, when the peer is a trusted proxy,
/// the address it forwarded for (`X-Forwarded-For`, read from the right, skipping trusted hops).
pub fn client_of(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> String {
    let Some(peer) = peer else {
        return "unknown".to_string();
    };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .rev()
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_over_its_rate_waits_only_as_long_as_it_must() {
        let limiter = TokenBuckets::new(10);
        let t0 = Instant::now();
        for i in 0..60 {
            let v = limiter.check("a", 60, t0);
            assert!(v.allowed, "burst of 60: {i}");
            assert_eq!(v.remaining, 59 - i);
        }
        let refused = limiter.check("a", 60, t0);
        assert!(!refused.allowed);
        assert_eq!(
            (refused.retry_after_secs, refused.remaining, refused.limit),
            (1, 0, 60)
        );
        assert_eq!(refused.reset_secs, 60);
        assert!(
            limiter.check("b", 60, t0).allowed,
            "other clients are not affected"
        );
        // One request a second comes back: let in as soon as it slows down.
        assert!(
            limiter
                .check("a", 60, t0 + Duration::from_millis(1100))
                .allowed
        );
        assert!(
            !limiter
                .check("a", 60, t0 + Duration::from_millis(1200))
                .allowed
        );
    }

    #[test]
    fn memory_stays_bounded_however_many_clients_arrive() {
        let limiter = TokenBuckets::new(100);
        let t0 = Instant::now();
        for i in 0..10_000 {
            limiter.check(&format!("client-{i}"), 60, t0 + Duration::from_millis(i));
        }
        assert!(limiter.clients() <= 100, "{}", limiter.clients());
    }

    #[test]
    fn chat_has_its_own_budget_when_set_and_a_key_its_own_rate() {
        let settings = crate::config::RateLimitConfig {
            enabled: true,
            requests_per_minute: 2,
            admin_requests_per_minute: 1,
            chat_requests_per_minute: Some(3),
            trusted_proxies: Vec::new(),
        };
        let limits = RateLimits::from_config(&settings).unwrap();
        let t0 = Instant::now();
        let allowed = |class, key_rate| {
            (0..10)
                .filter(|_| limits.check(class, "c", key_rate, t0).allowed)
                .count()
        };
        assert_eq!(allowed(Class::Chat, None), 3);
        assert_eq!(allowed(Class::Model, None), 2, "a separate budget");
        assert_eq!(
            allowed(Class::Admin, Some(100)),
            1,
            "keys do not raise admin"
        );
        assert_eq!(
            limits.check(Class::Model, "k", Some(5), t0).limit,
            5,
            "a key's own rate"
        );
        settings_off_means_no_limiter();
    }

    fn settings_off_means_no_limiter() {
        assert!(RateLimits::from_config(&crate::config::RateLimitConfig::default()).is_none());
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let xff = Some("198.51.100.1, 203.0.113.7");
        assert_eq!(
            client_of(Some(client), xff, &[proxy]),
            "203.0.113.7",
            "not a proxy: its own address"
        );
        assert_eq!(
            client_of(Some(proxy), xff, &[proxy]),
            "203.0.113.7",
            "the rightmost untrusted hop"
        );
        assert_eq!(client_of(Some(proxy), None, &[proxy]), "10.0.0.1");
        assert_eq!(
            client_of(Some(proxy), Some("garbage"), &[proxy]),
            "10.0.0.1"
        );
    }
}

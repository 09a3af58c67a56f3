//! Rate limits per client address, per API key and per agent (token buckets in memory), and the
//! client address itself (the peer, or `X-Forwarded-For` when the peer is a trusted proxy).
//!
//! The address bucket is charged for every request before any work. The API-key and agent
//! buckets are checked before the request and charged after it unless it was refused with 401:
//! a forger who sends someone else's agent id or a made-up key cannot use up their budget.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aim_crypto::hash::sha256;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{Rate, ServerConfig};
use crate::http::json_error;
use crate::state::AppState;

/// The TCP peer of a connection, set by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Buckets kept per shard before full (idle) ones are dropped.
const PRUNE_AT: usize = 4096;
/// Buckets kept per shard at most; beyond that new keys are refused (fail closed).
const MAX_PER_SHARD: usize = 65_536;
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets for one kind of key.
#[derive(Debug)]
pub(crate) struct Buckets {
    rate: Rate,
    shards: Vec<Mutex<HashMap<[u8; 16], Bucket>>>,
}

impl Buckets {
    /// Buckets refilling at `rate`.
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn key(text: &[u8]) -> [u8; 16] {
        let digest = sha256(text);
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    /// Looks at (and with `take`, takes one token from) `text`'s bucket. `Err(wait)`: empty,
    /// retry after `wait`.
    fn apply(&self, text: &[u8], take: bool, now: Instant) -> Result<(), Duration> {
        if self.rate.per_second == 0 {
            return Ok(());
        }
        let key = Self::key(text);
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        let mut map = shard.lock().map_err(|_| Duration::from_secs(1))?;
        let burst = f64::from(self.rate.burst.max(1));
        let per_sec = f64::from(self.rate.per_second);
        if map.len() >= PRUNE_AT && !map.contains_key(&key) {
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
            if map.len() >= MAX_PER_SHARD {
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = map.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * per_sec;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            if take {
                // A charge after the fact may overdraw; the debt is repaid before the next pass.
                bucket.tokens -= 1.0;
            }
            return Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec));
        }
        if take {
            bucket.tokens -= 1.0;
        }
        Ok(())
    }

    /// Takes a token or says how long to wait.
    pub(crate) fn take(&self, text: &[u8]) -> Result<(), Duration> {
        self.apply(text, true, Instant::now())
    }

    /// Says how long to wait if the bucket is empty, without taking a token.
    pub(crate) fn check(&self, text: &[u8]) -> Result<(), Duration> {
        self.apply(text, false, Instant::now())
    }
}

/// The three limiters of a server.
#[derive(Debug)]
pub(crate) struct RateLimits {
    per_address: Buckets,
    per_api_key: Buckets,
    per_agent: Buckets,
}

impl RateLimits {
    /// Limiters with the configured rates.
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Self {
            per_address: Buckets::new(config.limits.per_address),
            per_api_key: Buckets::new(config.limits.per_api_key),
            per_agent: Buckets::new(config.limits.per_agent),
        }
    }
}

/// The bucket key of a client address: the address, or its /64 for IPv6.
fn address_key(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

/// The client's address: the peer's, unless the server is behind a proxy and the peer is a
/// trusted proxy, in which case the right-most `X-Forwarded-For` entry that is not itself a
/// trusted proxy. Forwarded headers from any other peer are ignored.
pub(crate) fn client_address(config: &ServerConfig, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: &IpAddr| config.trusted_proxies.contains(ip);
    if !config.behind_proxy || !trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
    }
    client
}

/// The API key text a request presents, if any (for its bucket; never logged).
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    for name in ["x-api-key", "x-aim-api-key"] {
        if let Some(v) = headers.get(name) {
            return Some(v.as_bytes());
        }
    }
    headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())
}

fn too_many(what: &str, wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("rate limit exceeded for this {what}; retry after {secs} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The rate-limit middleware.
pub(crate) async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &state.rate_limits;
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    if let Some(peer) = peer {
        let client = client_address(&state.config, peer, req.headers());
        if let Err(wait) = limits.per_address.take(&address_key(client)) {
            state.metrics.rate_limited("address");
            return too_many("client address", wait);
        }
    }
    let key = presented_key(req.headers()).map(<[u8]>::to_vec);
    // The agent's canonical id, so spelling one UUID several ways does not multiply its budget.
    let agent = req.headers().get("x-agent-id").map(|v| {
        v.to_str()
            .ok()
            .and_then(|t| uuid::Uuid::parse_str(t.trim()).ok())
            .map_or_else(|| v.as_bytes().to_vec(), |u| u.as_bytes().to_vec())
    });
    if let Some(k) = &key
        && let Err(wait) = limits.per_api_key.check(k)
    {
        state.metrics.rate_limited("api_key");
        return too_many("API key", wait);
    }
    if let Some(a) = &agent
        && let Err(wait) = limits.per_agent.check(a)
    {
        state.metrics.rate_limited("agent");
        return too_many("agent", wait);
    }
    let response = next.run(req).await;
    if response.status() != StatusCode::UNAUTHORIZED {
        if let Some(k) = &key {
            let _ = limits.per_api_key.take(k);
        }
        if let Some(a) = &agent {
            let _ = limits.per_agent.take(a);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate() {
        let b = Buckets::new(Rate::new(10, 2));
        let t0 = Instant::now();
        assert!(b.apply(b"k", true, t0).is_ok());
        assert!(b.apply(b"k", true, t0).is_ok());
        let wait = b.apply(b"k", true, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
        // Another key has its own bucket.
        assert!(b.apply(b"other", true, t0).is_ok());
        // 0.3 s later three tokens came back, minus the overdraft.
        assert!(b.apply(b"k", true, t0 + Duration::from_millis(300)).is_ok());
        assert!(Buckets::new(Rate::OFF).apply(b"k", true, t0).is_ok());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let mut config = ServerConfig::new("/tmp/x");
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4, 10.0.0.1".parse().unwrap());
        // Not behind a proxy: the header means nothing.
        assert_eq!(client_address(&config, proxy, &h), proxy);
        config.behind_proxy = true;
        config.trusted_proxies = vec![proxy];
        assert_eq!(
            client_address(&config, proxy, &h),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // From a peer that is not a trusted proxy: ignored.
        assert_eq!(client_address(&config, peer, &h), peer);
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_address(&config, proxy, &h), proxy);
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
    }
}

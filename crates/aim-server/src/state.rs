//! Shared state of a running server.

use std::sync::Arc;

use crate::config::ServerConfig;
use crate::db::Db;
use crate::metrics::Metrics;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState(pub(crate) Arc<Inner>);

/// The contents of [`AppState`].
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: ServerConfig,
    pub(crate) db: Db,
    pub(crate) metrics: Arc<Metrics>,
    /// `aim_url` returned to registering agents.
    pub(crate) public_url: String,
    /// Decision inputs kept between requests (validated at commit; see `decision_cache`).
    pub(crate) decisions: crate::decision_cache::DecisionCache,
    /// Until when (server clock, ms; 0: never) a verification signed at or before this time may
    /// have been recorded by a previous version under a bare-digest replay key, so it is also
    /// checked against those (see `routes::verifications::replay_key`).
    pub(crate) legacy_replay_until_ms: i64,
    /// Rate limits per client address, API key and agent.
    pub(crate) rate_limits: crate::ratelimit::RateLimits,
    /// The origin (`scheme://host[:port]`) of `public_url`, which v2 request signatures cover.
    pub(crate) origin: String,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// Now, in milliseconds since the epoch, from the configured clock.
    pub(crate) fn now_ms(&self) -> i64 {
        self.config.clock.now_ms()
    }
}

//! Prometheus metrics: request counts and latency by route and status, decisions by outcome,
//! and group-commit batch sizes. Rendered as the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency bucket upper bounds, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Batch-size bucket upper bounds.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if value <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The server's metrics registry.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    batches: Mutex<Histogram>,
    batch_seconds: Mutex<Histogram>,
    commit_seconds: Mutex<Histogram>,
    approved: AtomicU64,
    denied: AtomicU64,
    pending: AtomicU64,
    limited_address: AtomicU64,
    limited_api_key: AtomicU64,
    limited_agent: AtomicU64,
    connections_refused: AtomicU64,
}

/// A decision outcome, for counting.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DecisionKind {
    Approved,
    Denied,
    Pending,
}

impl Metrics {
    /// Records one finished request.
    pub(crate) fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut map) = self.latency.lock() {
            map.entry(route.to_owned())
                .or_default()
                .observe(&LATENCY_BUCKETS, seconds);
        }
    }

    /// Records the size of one committed batch.
    pub(crate) fn observe_batch(&self, jobs: usize) {
        if let Ok(mut h) = self.batches.lock() {
            h.observe(&BATCH_BUCKETS, jobs as f64);
        }
    }

    /// Records how long one batch took: running its jobs, and committing (fsync).
    pub(crate) fn observe_batch_time(&self, run_seconds: f64, commit_seconds: f64) {
        if let Ok(mut h) = self.batch_seconds.lock() {
            h.observe(&LATENCY_BUCKETS, run_seconds);
        }
        if let Ok(mut h) = self.commit_seconds.lock() {
            h.observe(&LATENCY_BUCKETS, commit_seconds);
        }
    }

    /// Counts one decision.
    pub(crate) fn count_decision(&self, kind: DecisionKind) {
        let c = match kind {
            DecisionKind::Approved => &self.approved,
            DecisionKind::Denied => &self.denied,
            DecisionKind::Pending => &self.pending,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request refused by a rate limit (`address`, `api_key` or `agent`).
    pub(crate) fn rate_limited(&self, what: &str) {
        let c = match what {
            "address" => &self.limited_address,
            "api_key" => &self.limited_api_key,
            _ => &self.limited_agent,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one connection closed at once because a connection limit was reached.
    pub(crate) fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP aim_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE aim_http_requests_total counter\n");
        if let Ok(map) = self.requests.lock() {
            for ((route, method, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "aim_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
        }
        out.push_str(
            "# HELP aim_http_request_duration_seconds Request latency by route.\n\
             # TYPE aim_http_request_duration_seconds histogram\n",
        );
        if let Ok(map) = self.latency.lock() {
            for (route, h) in map.iter() {
                h.render(
                    &mut out,
                    "aim_http_request_duration_seconds",
                    &format!("route=\"{}\"", escape(route)),
                    &LATENCY_BUCKETS,
                );
            }
        }
        out.push_str(
            "# HELP aim_decisions_total Verification decisions by outcome.\n\
             # TYPE aim_decisions_total counter\n",
        );
        for (name, c) in [
            ("approved", &self.approved),
            ("denied", &self.denied),
            ("pending", &self.pending),
        ] {
            let _ = writeln!(
                out,
                "aim_decisions_total{{outcome=\"{name}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP aim_rate_limited_total Requests refused with 429, by limit.\n\
             # TYPE aim_rate_limited_total counter\n",
        );
        for (name, c) in [
            ("address", &self.limited_address),
            ("api_key", &self.limited_api_key),
            ("agent", &self.limited_agent),
        ] {
            let _ = writeln!(
                out,
                "aim_rate_limited_total{{limit=\"{name}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP aim_connections_refused_total Connections closed at once by a connection limit.\n\
             # TYPE aim_connections_refused_total counter\naim_connections_refused_total {}",
            self.connections_refused.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP aim_write_batch_size Writes committed per transaction (group commit).\n\
             # TYPE aim_write_batch_size histogram\n",
        );
        if let Ok(h) = self.batches.lock() {
            h.render(&mut out, "aim_write_batch_size", "", &BATCH_BUCKETS);
        }
        out.push_str(
            "# HELP aim_write_batch_run_seconds Time to run the jobs of one batch (before commit).\n\
             # TYPE aim_write_batch_run_seconds histogram\n",
        );
        if let Ok(h) = self.batch_seconds.lock() {
            h.render(
                &mut out,
                "aim_write_batch_run_seconds",
                "",
                &LATENCY_BUCKETS,
            );
        }
        out.push_str(
            "# HELP aim_write_commit_seconds Time to commit one batch (fsync).\n\
             # TYPE aim_write_commit_seconds histogram\n",
        );
        if let Ok(h) = self.commit_seconds.lock() {
            h.render(&mut out, "aim_write_commit_seconds", "", &LATENCY_BUCKETS);
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_decisions() {
        let m = Metrics::default();
        m.observe_request("/api/v1/agents/{id}", "GET", 200, 0.003);
        m.observe_request("/api/v1/agents/{id}", "GET", 200, 0.3);
        m.observe_batch(3);
        m.count_decision(DecisionKind::Denied);
        let text = m.render();
        assert!(text.contains(
            "aim_http_requests_total{route=\"/api/v1/agents/{id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "aim_http_request_duration_seconds_bucket{route=\"/api/v1/agents/{id}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("aim_decisions_total{outcome=\"denied\"} 1"));
        assert!(text.contains("aim_write_batch_size_bucket{le=\"4\"} 1"));
        assert!(text.contains("aim_write_batch_size_count 1"));
    }
}

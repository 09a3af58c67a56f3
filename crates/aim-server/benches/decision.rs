//! Decision-engine throughput: a realistic organization (12 grants, 24 policies, 6 risk
//! overrides) deciding a mix of actions. Prints a RESULT line (single core, decisions/s), then
//! runs the criterion benchmarks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aim_server::decision::{AgentFacts, DecisionInput, Policy, RiskOverride, decide};
use aim_server::model::{AgentStatus, BelowTrust, PolicyEffect, Risk};
use criterion::{Criterion, Throughput};

struct Fixture {
    grants: Vec<String>,
    policies: Vec<Policy>,
    risks: Vec<RiskOverride>,
    context: serde_json::Value,
}

fn fixture() -> Fixture {
    let grants = [
        "read_*",
        "write_file",
        "write_database",
        "send_email",
        "query_api",
        "list_*",
        "search_*",
        "fetch_url",
        "summarize",
        "translate",
        "delete_tmp_*",
        "call_tool",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut policies = Vec::new();
    for i in 0..24 {
        policies.push(Policy {
            id: format!("p{i}"),
            name: format!("policy-{i:02}"),
            priority: i64::from(i % 7),
            action_pattern: match i % 4 {
                0 => format!("custom_{i}_*"),
                1 => "admin_*".into(),
                2 => format!("exec_{i}"),
                _ => "*".into(),
            },
            resource_pattern: if i % 4 == 3 {
                format!("pii_{i}_*")
            } else {
                "*".into()
            },
            agent_pattern: if i % 3 == 0 {
                "support-*".into()
            } else {
                "*".into()
            },
            effect: match i % 3 {
                0 => PolicyEffect::Deny,
                1 => PolicyEffect::RequireApproval,
                _ => PolicyEffect::Allow,
            },
            min_trust: (i % 2 == 0).then_some(0.6),
            below_min_trust: BelowTrust::RequireApproval,
            enabled: i % 5 != 0,
        });
    }
    let risks = vec![
        RiskOverride {
            action_pattern: "read_secrets".into(),
            risk: Risk::Critical,
        },
        RiskOverride {
            action_pattern: "send_*".into(),
            risk: Risk::Medium,
        },
        RiskOverride {
            action_pattern: "fetch_url".into(),
            risk: Risk::Low,
        },
        RiskOverride {
            action_pattern: "write_database".into(),
            risk: Risk::High,
        },
        RiskOverride {
            action_pattern: "translate".into(),
            risk: Risk::Low,
        },
        RiskOverride {
            action_pattern: "call_*".into(),
            risk: Risk::Medium,
        },
    ];
    Fixture {
        grants,
        policies,
        risks,
        context: serde_json::json!({"query": "SELECT 1"}),
    }
}

const ACTIONS: [(&str, Option<&str>); 8] = [
    ("read_database", Some("users")),
    ("write_file", Some("/tmp/report.pdf")),
    ("send_email", None),
    ("delete_file", Some("/etc/passwd")),
    ("read_secrets", Some("vault")),
    ("fetch_url", Some("https://example.com")),
    ("execute_command", None),
    ("summarize", Some("pii_3_customers")),
];

fn run_once(f: &Fixture, i: usize) -> aim_server::decision::Outcome {
    let (action, resource) = ACTIONS[i % ACTIONS.len()];
    decide(&DecisionInput {
        agent: AgentFacts {
            id: "7d9f0000-0000-4000-8000-000000000001",
            name: "billing-bot",
            status: AgentStatus::Verified,
            labels: &[],
        },
        grants: &f.grants,
        policies: &f.policies,
        risk_overrides: &f.risks,
        trust_score: 0.87,
        action,
        resource,
        context: &f.context,
    })
    .outcome
}

fn result_line(f: &Fixture) {
    // Warm up, then count decisions in a fixed time on this thread (one core).
    let warm = Instant::now();
    let mut i = 0usize;
    while warm.elapsed() < Duration::from_millis(300) {
        black_box(run_once(f, i));
        i += 1;
    }
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_millis(400) {
            for _ in 0..256 {
                black_box(run_once(f, n));
                n += 1;
            }
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = rates[rates.len() / 2];
    let verdict = if median >= 200_000.0 { "PASS" } else { "MISS" };
    println!(
        "RESULT server.decision_engine median={median:.0}/s (single thread, 12 grants, 24 policies, 6 overrides) target>=200000/s {verdict}"
    );
}

fn main() {
    let f = fixture();
    result_line(&f);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("server");
    group.throughput(Throughput::Elements(ACTIONS.len() as u64));
    group.bench_function("decide_mix_of_8", |b| {
        b.iter(|| {
            for i in 0..ACTIONS.len() {
                black_box(run_once(&f, i));
            }
        })
    });
    group.finish();
    c.final_summary();
}

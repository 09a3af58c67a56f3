//! The redaction rule: no secret from a configuration (environment values, header values,
//! credentials and tokens in URLs, secret arguments) ever reaches a report, an event, a
//! warning or a `Debug` string.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use aim_detect::{Detector, McpConfigKind, parse_mcp_config};
use proptest::prelude::*;

#[test]
fn no_planted_secret_from_the_fixture_machine_reaches_any_output() {
    let m = common::Machine::new();
    // The fixtures really do contain secrets in every position we redact.
    let mut planted = 0;
    for dir in [&m.project, &m.home] {
        planted += count_marker(dir);
    }
    assert!(planted >= 12, "fixtures plant {planted} secrets");

    let report = Detector::new(m.env()).scan(&m.project).unwrap();
    let now = chrono::Utc::now();
    let outputs = [
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&report.detection_events(&now)).unwrap(),
        format!("{report:?}"),
        report
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        report
            .capabilities
            .iter()
            .map(|c| c.evidence.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    ];
    for out in outputs {
        assert!(!out.contains("PLANTED"), "secret leaked: {}", excerpt(&out));
    }
    assert!(report.mcp_servers.iter().any(|f| f.details.redacted));
}

fn count_marker(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            n += count_marker(&p);
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            n += text.matches("PLANTED").count();
        }
    }
    n
}

fn excerpt(s: &str) -> &str {
    let i = s.find("PLANTED").unwrap_or(0);
    &s[i.saturating_sub(120)..(i + 60).min(s.len())]
}

const KINDS: [McpConfigKind; 7] = [
    McpConfigKind::ClaudeDesktop,
    McpConfigKind::ClaudeCodeState,
    McpConfigKind::ClaudeCodeProject,
    McpConfigKind::Cursor,
    McpConfigKind::VsCodeMcp,
    McpConfigKind::VsCodeSettings,
    McpConfigKind::Windsurf,
];

fn wrap(kind: McpConfigKind, servers: &serde_json::Value) -> serde_json::Value {
    match kind {
        McpConfigKind::VsCodeMcp => serde_json::json!({ "servers": servers }),
        McpConfigKind::VsCodeSettings => serde_json::json!({ "mcp": { "servers": servers } }),
        McpConfigKind::ClaudeCodeState => {
            serde_json::json!({ "mcpServers": servers, "projects": { "/p": { "mcpServers": servers } } })
        }
        _ => serde_json::json!({ "mcpServers": servers }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A secret planted in any secret-bearing position of any client's config never appears in
    /// the findings or warnings.
    #[test]
    fn planted_secrets_never_survive_any_client(
        kind in 0usize..KINDS.len(),
        position in 0usize..9,
        secret in "[A-Za-z0-9]{4,24}",
        name in "[a-z][a-z0-9-]{0,10}",
        host in "[a-z]{1,10}",
        var in "[A-Z][A-Z0-9_]{0,8}",
    ) {
        let secret = format!("Qx7{secret}");
        let server = match position {
            0 => serde_json::json!({"command": "npx", "env": { var.clone(): secret }}),
            1 => serde_json::json!({"url": format!("https://{host}.example/mcp"), "headers": { "Authorization": format!("Bearer {secret}") }}),
            2 => serde_json::json!({"url": format!("https://user:{secret}@{host}.example/mcp")}),
            3 => serde_json::json!({"serverUrl": format!("https://{host}.example/sse?key={secret}")}),
            4 => serde_json::json!({"command": "node", "args": ["s.js", "--token", secret]}),
            5 => serde_json::json!({"command": "node", "args": [format!("--api-key={secret}")]}),
            6 => serde_json::json!({"command": "docker", "args": ["run", "-e", format!("{var}={secret}"), "img"]}),
            7 => serde_json::json!({"command": "npx", "args": ["mcp-remote", format!("https://{host}.example/sse"), "--header", format!("X-Key: {secret}")]}),
            _ => serde_json::json!({"command": "npx", "args": [format!("postgresql://app:{secret}@{host}:5432/db")]}),
        };
        let kind = KINDS[kind];
        let text = serde_json::to_string(&wrap(kind, &serde_json::json!({ name.clone(): server }))).unwrap();
        let (findings, warnings) = parse_mcp_config(kind, "user", &text, Path::new("/c.json"), &[PathBuf::from("/p")]);
        prop_assert!(!findings.is_empty());
        let out = format!("{}{:?}{:?}", serde_json::to_string(&findings).unwrap(), findings, warnings);
        prop_assert!(!out.contains("Qx7"), "leaked: {}", out);
    }
}

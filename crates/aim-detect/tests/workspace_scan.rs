//! The whole detector over the fixture machine: a workspace of several crates, the user's MCP
//! client configs, global npm packages and a virtualenv.

#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;

use aim_detect::{
    ActionForm, DetectionMethod, Detector, Evidence, Mapping, Report, SourceStatus, WarningKind,
};
use common::Machine;

fn scan() -> (Machine, Report) {
    let m = Machine::new();
    let report = Detector::new(m.env()).scan(&m.project).unwrap();
    (m, report)
}

fn source_actions(r: &Report) -> Vec<(String, String, usize, String)> {
    r.capabilities
        .iter()
        .filter_map(|c| match &c.evidence {
            Evidence::SourceAction {
                file, line, action, ..
            } => Some((c.capability.clone(), file.clone(), *line, action.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn actions_from_source_with_renamed_imports_across_crates() {
    let (_m, r) = scan();
    let mut got = source_actions(&r);
    got.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
    let want: Vec<(String, String, usize, String)> = [
        ("access_database", "app/src/main.rs", 3, "read_database"),
        ("make_api_calls", "app/src/main.rs", 7, "call_api"),
        ("process_payments", "app/src/main.rs", 8, "approve_refund"),
        ("send_email", "crates/mailer/src/lib.rs", 4, "send_email"),
        ("read_email", "crates/mailer/src/lib.rs", 7, "fetchInbox"),
        ("write_files", "crates/store/src/lib.rs", 3, "write_file"),
    ]
    .iter()
    .map(|(c, f, l, a)| ((*c).into(), (*f).into(), *l, (*a).into()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn source_evidence_records_form_and_mapping() {
    let (_m, r) = scan();
    let forms: Vec<(String, ActionForm, Mapping)> = r
        .capabilities
        .iter()
        .filter_map(|c| match &c.evidence {
            Evidence::SourceAction {
                action,
                form,
                mapping,
                ..
            } => Some((action.clone(), *form, *mapping)),
            _ => None,
        })
        .collect();
    assert!(forms.contains(&(
        "read_database".into(),
        ActionForm::Attribute,
        Mapping::Exact
    )));
    assert!(forms.contains(&("call_api".into(), ActionForm::Call, Mapping::Exact)));
    assert!(forms.contains(&("approve_refund".into(), ActionForm::Call, Mapping::Keyword)));
}

#[test]
fn skipped_trees_are_not_evidence() {
    let (_m, r) = scan();
    let json = serde_json::to_string(&r.capabilities).unwrap();
    for absent in [
        "from_target",
        "from_hidden",
        "from_own_crate",
        "aws-sdk-s3",
        "aim-client",
        "aim-vendored",
    ] {
        assert!(!json.contains(absent), "{absent} should not be evidence");
    }
    assert!(
        r.sources
            .iter()
            .any(|s| s.status == SourceStatus::Skipped && s.path.ends_with("crates/aim-vendored"))
    );
}

#[test]
fn problems_in_source_are_warnings_with_locations() {
    let (_m, r) = scan();
    let non_literal = r
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::NonLiteralAction)
        .expect("non-literal warning");
    assert!(
        non_literal
            .path
            .as_deref()
            .unwrap()
            .ends_with("app/src/main.rs")
    );
    assert_eq!(non_literal.line, Some(9));
    let malformed = r
        .warnings
        .iter()
        .find(|w| {
            w.path
                .as_deref()
                .is_some_and(|p| p.ends_with("src-bad/bad.rs"))
        })
        .expect("parse warning");
    assert_eq!(malformed.kind, WarningKind::Malformed);
    assert!(malformed.line.is_some());
}

fn deps(r: &Report) -> Vec<(String, String, Vec<String>, Option<String>, bool)> {
    let mut v: Vec<_> = r
        .capabilities
        .iter()
        .filter_map(|c| match &c.evidence {
            Evidence::Dependency {
                crate_name,
                chain,
                target,
                optional,
                ..
            } => Some((
                c.capability.clone(),
                crate_name.clone(),
                chain.clone(),
                target.clone(),
                *optional,
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn dependencies_with_chains_renames_targets_and_kinds() {
    let (_m, r) = scan();
    let s = |x: &[&str]| x.iter().map(|y| (*y).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        deps(&r),
        vec![
            (
                "access_database".into(),
                "rusqlite".into(),
                s(&["store", "rusqlite"]),
                None,
                false
            ),
            (
                "access_database".into(),
                "tokio-postgres".into(),
                s(&["mailer", "tokio-postgres"]),
                Some("cfg(unix)".into()),
                false
            ),
            (
                "ai_model_access".into(),
                "async-openai".into(),
                s(&["app", "agent-sdk", "async-openai"]),
                None,
                false
            ),
            (
                "make_api_calls".into(),
                "reqwest".into(),
                s(&["app", "reqwest"]),
                None,
                false
            ),
            (
                "send_email".into(),
                "lettre".into(),
                s(&["mailer", "lettre"]),
                None,
                true
            ),
        ]
    );
    // Versions come from the lockfile, manifests are named relative to the root.
    let reqwest = r
        .capabilities
        .iter()
        .find_map(|c| match &c.evidence {
            Evidence::Dependency {
                crate_name,
                version,
                manifest,
                ..
            } if crate_name == "reqwest" => Some((version.clone(), manifest.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(reqwest, (Some("0.13.0".into()), "app/Cargo.toml".into()));
}

#[test]
fn dev_build_excluded_and_own_dependencies_do_not_count() {
    let (_m, r) = scan();
    let names: Vec<String> = deps(&r).into_iter().map(|d| d.1).collect();
    for absent in ["polars", "ureq", "tempfile", "redis", "aws-sdk-s3"] {
        assert!(!names.contains(&absent.to_owned()), "{absent} counted");
    }
    let missing_member = r
        .warnings
        .iter()
        .find(|w| {
            w.path
                .as_deref()
                .is_some_and(|p| p.ends_with("crates/broken/Cargo.toml"))
        })
        .expect("missing member manifest warning");
    assert_eq!(missing_member.kind, WarningKind::Incomplete);
}

#[test]
fn declared_capabilities_from_both_config_files() {
    let (m, r) = scan();
    let from_config: Vec<(String, String)> = r
        .capabilities
        .iter()
        .filter_map(|c| match &c.evidence {
            Evidence::Config { path } => Some((c.capability.clone(), path.clone())),
            _ => None,
        })
        .collect();
    let project_cfg = m
        .project
        .join(".aim/capabilities.json")
        .display()
        .to_string();
    assert_eq!(
        from_config,
        vec![
            ("access_database".into(), project_cfg.clone()),
            ("custom_cap".into(), project_cfg.clone())
        ]
    );
    // The bad item and the home file's non-list are warnings.
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("capabilities[2]"))
    );
    let home_cfg = m.home.join(".aim/capabilities.json").display().to_string();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.path.as_deref() == Some(home_cfg.as_str()))
    );
    assert!(r.capability_names().contains(&"custom_cap".to_owned()));
}

#[test]
fn mcp_servers_from_every_client_and_package_location() {
    let (m, r) = scan();
    let mut got: Vec<(String, &str, String, f64)> = r
        .mcp_servers
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                f.method.as_str(),
                f.details.client.clone(),
                f.confidence,
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, &str, String, f64)> = [
        (
            "@modelcontextprotocol/server-github",
            "package_scan",
            "npm",
            90.0,
        ),
        ("brave", "client_config", "windsurf", 50.0),
        ("fetch", "claude_config", "claude_code", 100.0),
        ("filesystem", "claude_config", "claude_desktop", 100.0),
        ("firecrawl-mcp", "package_scan", "npm", 70.0),
        ("github", "claude_config", "claude_desktop", 100.0),
        ("internal-kb", "manual", "aim", 100.0),
        ("linear", "client_config", "cursor", 100.0),
        ("local-only", "claude_config", "claude_code", 100.0),
        ("mcp-server-git", "package_scan", "python", 90.0),
        ("mcp-server-nopkgjson", "package_scan", "npm", 90.0),
        ("memory", "client_config", "vscode", 100.0),
        ("postgres", "client_config", "vscode", 100.0),
        ("remote", "client_config", "cursor", 100.0),
        ("sentry", "claude_config", "claude_code", 100.0),
    ]
    .iter()
    .map(|(n, me, c, conf)| ((*n).into(), *me, (*c).into(), *conf))
    .collect();
    assert_eq!(got, want);
    // Every finding says where it came from.
    for f in &r.mcp_servers {
        assert!(
            f.details.config_path.is_some() || f.details.package_path.is_some(),
            "{}",
            f.name
        );
    }
    // Not this project's servers, SDK libraries, our own packages: absent.
    let names: Vec<&str> = r.mcp_servers.iter().map(|f| f.name.as_str()).collect();
    for absent in [
        "other-project",
        "aim-internal",
        "@modelcontextprotocol/sdk",
        "mcp",
        "aim-sdk",
        "typescript",
        "requests",
    ] {
        assert!(!names.contains(&absent), "{absent}");
    }
    let desktop = r.mcp_servers.iter().find(|f| f.name == "github").unwrap();
    assert_eq!(
        desktop.details.config_path.as_deref(),
        Some(
            m.home
                .join(".config/Claude/claude_desktop_config.json")
                .display()
                .to_string()
                .as_str()
        )
    );
    assert_eq!(desktop.details.command.as_deref(), Some("npx"));
    assert_eq!(
        desktop.details.env_names,
        vec!["GITHUB_PERSONAL_ACCESS_TOKEN"]
    );
    let git = r
        .mcp_servers
        .iter()
        .find(|f| f.name == "mcp-server-git")
        .unwrap();
    assert_eq!(git.details.package_version.as_deref(), Some("2025.1.0"));
    // The broken VS Code mcp.json and the package without package.json are warnings.
    assert!(r.warnings.iter().any(|w| {
        w.kind == WarningKind::Malformed
            && w.path
                .as_deref()
                .is_some_and(|p| p.ends_with("Code/User/mcp.json"))
    }));
    assert!(r.warnings.iter().any(|w| {
        w.path
            .as_deref()
            .is_some_and(|p| p.contains("mcp-server-nopkgjson"))
    }));
}

#[test]
fn redacted_urls_and_arguments_keep_their_shape() {
    let (_m, r) = scan();
    let by = |n: &str| {
        r.mcp_servers
            .iter()
            .find(|f| f.name == n)
            .unwrap()
            .details
            .clone()
    };
    assert_eq!(
        by("remote").url.as_deref(),
        Some("https://mcp.example.com/sse?token=REDACTED")
    );
    assert_eq!(by("remote").transport.as_deref(), Some("sse"));
    assert_eq!(
        by("brave").url.as_deref(),
        Some("https://search.example.com/mcp?apiKey=REDACTED")
    );
    assert_eq!(
        by("postgres").args.unwrap(),
        vec![
            "run",
            "-i",
            "--rm",
            "-e",
            "PGPASSWORD=REDACTED",
            "--api-key",
            "REDACTED",
            "mcp/postgres",
            "postgresql://db.internal:5432/app"
        ]
    );
    assert!(by("postgres").redacted);
    assert_eq!(by("sentry").header_names, vec!["Authorization"]);
    assert_eq!(
        by("linear").args.unwrap()[3..],
        ["--header".to_owned(), "REDACTED".to_owned()]
    );
    assert!(!by("github").redacted);
}

#[test]
fn detection_events_match_the_server_shape() {
    let (_m, r) = scan();
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05+00:00").unwrap();
    let events = serde_json::to_value(r.detection_events(&now)).unwrap();
    let allowed = [
        "manual",
        "claude_config",
        "client_config",
        "package_scan",
        "sdk_import",
        "sdk_runtime",
        "direct_api",
    ];
    for e in events.as_array().unwrap() {
        let o = e.as_object().unwrap();
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "confidence",
                "details",
                "detectionMethod",
                "mcpServer",
                "sdkVersion",
                "timestamp"
            ]
        );
        assert!(allowed.contains(&e["detectionMethod"].as_str().unwrap()));
        let c = e["confidence"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&c));
        assert_eq!(e["timestamp"], "2026-01-02T03:04:05+00:00");
        assert!(
            e["sdkVersion"]
                .as_str()
                .unwrap()
                .starts_with("aim-detect-rust@")
        );
        assert!(e["details"]["client"].is_string());
        assert!(e["details"].get("env").is_none());
    }
    assert_eq!(
        r.mcp_servers
            .iter()
            .filter(|f| f.method == DetectionMethod::PackageScan)
            .count(),
        4
    );
}

#[test]
fn every_location_looked_at_is_recorded() {
    let (_m, r) = scan();
    let read = r
        .sources
        .iter()
        .filter(|s| s.status == SourceStatus::Read)
        .count();
    let absent = r
        .sources
        .iter()
        .filter(|s| s.status == SourceStatus::Absent)
        .count();
    assert!(read >= 12, "{read} read");
    assert!(absent >= 3, "{absent} absent");
    assert!(
        r.sources
            .iter()
            .any(|s| s.what.starts_with("Rust sources (5 files)")),
        "{:?}",
        r.sources
    );
}

//! `aim detect`: what a project's agent can do and which MCP servers it talks to.

use std::fmt::Write as _;
use std::path::PathBuf;

use aim_detect::{DetectEnv, Detector, Report};
use anyhow::{Context, Result};

/// Detect an agent's capabilities and MCP servers.
///
/// Reads the project's Rust sources (`#[aim::action("...")]` and `perform_action("...")`),
/// `Cargo.toml`/`Cargo.lock`, `~/.aim/capabilities.json` and `<project>/.aim/capabilities.json`,
/// the MCP configurations of Claude Desktop, Claude Code, Cursor, VS Code and Windsurf, and MCP
/// server packages installed globally for npm or in the active Python environment. Makes no
/// network calls. Secrets in configurations (environment values, header values, tokens in URLs
/// and arguments) are never printed. Problems with individual files are warnings on stderr.
#[derive(Debug, clap::Args)]
pub(crate) struct DetectArgs {
    /// Project directory to scan.
    #[arg(default_value = ".", value_name = "PATH")]
    path: PathBuf,

    /// Print JSON instead of tables: capability names, findings with evidence, the detection
    /// events exactly as `--report` would send them, warnings, and every location looked at.
    #[arg(long)]
    json: bool,

    /// Send the capabilities (as declared, not granted) and the MCP detection events to the AIM
    /// server for the agent.
    #[arg(long)]
    report: bool,

    /// AIM server URL to report to (with --report).
    #[arg(long, value_name = "URL", requires = "report")]
    server: Option<String>,

    /// Name of the agent to report for (with --report).
    #[arg(long, value_name = "NAME", requires = "report")]
    agent: Option<String>,
}

/// Runs `aim detect`.
pub(crate) fn run(args: DetectArgs) -> Result<()> {
    // Resolve the agent before scanning so a missing flag fails fast.
    let agent = if args.report {
        Some(
            args.agent
                .clone()
                .or_else(|| std::env::var("AIM_AGENT").ok().filter(|a| !a.is_empty()))
                .context("--report needs the agent to report for: --agent NAME (or AIM_AGENT)")?,
        )
    } else {
        None
    };
    let report = Detector::new(DetectEnv::from_process())
        .scan(&args.path)
        .with_context(|| format!("cannot scan {}", args.path.display()))?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let now = chrono::Utc::now();
    if args.json {
        let value = to_json(&report, &now);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", render_table(&report));
        if !report.warnings.is_empty() {
            eprintln!(
                "{} warning(s); files with problems were skipped",
                report.warnings.len()
            );
        }
    }
    if let Some(agent) = agent {
        send_report(&report, &agent, args.server.as_deref(), &now)?;
    }
    Ok(())
}

/// The capabilities to declare: one per name, with the evidence that found it (paths, crate
/// names and action names only; never secrets).
fn capability_reports(
    report: &Report,
    now: &chrono::DateTime<chrono::Utc>,
) -> Vec<aim_client::CapabilityReport> {
    report
        .capability_names()
        .into_iter()
        .map(|name| {
            let evidence: Vec<String> = report
                .capabilities
                .iter()
                .filter(|f| f.capability == name)
                .map(|f| f.evidence.to_string())
                .collect();
            aim_client::CapabilityReport {
                capability_type: name.to_string(),
                scope: serde_json::json!({
                    "source": "aim_detect",
                    "sdkVersion": aim_detect::SDK_VERSION,
                    "detectedAt": now.to_rfc3339(),
                    "evidence": evidence,
                }),
            }
        })
        .collect()
}

/// One `(server, detection method, confidence)` per distinct MCP server, highest confidence
/// first seen wins.
fn mcp_declarations(events: &[serde_json::Value]) -> Vec<(String, String, f64)> {
    let mut out: Vec<(String, String, f64)> = Vec::new();
    for e in events {
        let Some(name) = e.get("mcpServer").and_then(|v| v.as_str()) else {
            continue;
        };
        let method = e
            .get("detectionMethod")
            .and_then(|v| v.as_str())
            .unwrap_or("manual");
        let confidence = e
            .get("confidence")
            .and_then(|v| v.as_f64())
            .unwrap_or(100.0);
        match out.iter_mut().find(|(n, _, _)| n == name) {
            Some(slot) if slot.2 < confidence => *slot = (name.into(), method.into(), confidence),
            Some(_) => {}
            None => out.push((name.into(), method.into(), confidence)),
        }
    }
    out
}

/// Sends the capabilities (declared, not granted), declares the MCP servers found, and sends
/// the MCP detection events for `agent`.
fn send_report(
    report: &Report,
    agent: &str,
    server: Option<&str>,
    now: &chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let mut config = aim_client::ClientConfig::from_env()?;
    if let Some(server) = server {
        config.server_url = server.to_string();
    }
    let capabilities = capability_reports(report, now);
    let events: Vec<serde_json::Value> = report
        .detection_events(now)
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    crate::admin_client::block_on(async move {
        let client = aim_client::AimClient::secure_with(agent, config)
            .await
            .with_context(|| format!("cannot load or register agent `{agent}`"))?;
        if capabilities.is_empty() {
            eprintln!("no capabilities to declare");
        } else {
            let summary = client.report_capabilities(&capabilities).await?;
            eprintln!(
                "declared {} capability(ies) for {agent} ({} new, {} already known); \
                 declared capabilities are not grants: a person grants them with \
                 `aim capabilities grant {agent} CAPABILITY`",
                summary.total, summary.recorded, summary.already_known
            );
        }
        if events.is_empty() {
            eprintln!("no MCP servers to report");
        } else {
            // Declare (attach) each server first: a detection of an undeclared server is drift.
            for (name, method, confidence) in mcp_declarations(&events) {
                let metadata =
                    serde_json::json!({"source": "aim_detect", "detectionMethod": method});
                client
                    .register_mcp(&name, "cli", confidence, metadata)
                    .await?;
            }
            let answer = client.report_detections(&events).await?;
            eprintln!(
                "reported {} MCP detection(s): {}",
                events.len(),
                answer
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("accepted")
            );
        }
        Ok(())
    })
}

/// The `--json` document.
fn to_json(report: &Report, now: &chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({
        "capabilities": report.capability_names(),
        "capabilityFindings": report.capabilities,
        "detections": report.detection_events(now),
        "warnings": report.warnings,
        "sources": report.sources,
    })
}

/// How many evidence lines a capability gets in the table before "and N more".
const EVIDENCE_SHOWN: usize = 3;
/// Longest command or URL cell in the table (the JSON has everything).
const MAX_CELL: usize = 60;

/// Two aligned tables: capabilities with evidence, and MCP servers.
fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let names = report.capability_names();
    let _ = writeln!(out, "Capabilities ({})", names.len());
    if names.is_empty() {
        out.push_str("  none found\n");
    } else {
        let mut rows = vec![row(["CAPABILITY", "SOURCE", "EVIDENCE"])];
        for name in &names {
            let findings: Vec<_> = report
                .capabilities
                .iter()
                .filter(|c| &c.capability == name)
                .collect();
            for (i, f) in findings.iter().take(EVIDENCE_SHOWN).enumerate() {
                let label = if i == 0 { name.as_str() } else { "" };
                rows.push(row([
                    label,
                    f.evidence.kind_label(),
                    &f.evidence.to_string(),
                ]));
            }
            if findings.len() > EVIDENCE_SHOWN {
                let more = format!("... and {} more", findings.len() - EVIDENCE_SHOWN);
                rows.push(row(["", "", &more]));
            }
        }
        push_aligned(&mut out, &rows);
    }
    let _ = writeln!(out, "\nMCP servers ({})", report.mcp_servers.len());
    if report.mcp_servers.is_empty() {
        out.push_str("  none found\n");
    } else {
        let mut rows = vec![row([
            "SERVER",
            "METHOD",
            "CONF",
            "CLIENT",
            "COMMAND / URL",
            "FROM",
        ])];
        for f in &report.mcp_servers {
            let d = &f.details;
            let target = match (&d.command, &d.url) {
                (Some(c), _) => {
                    let mut s = c.clone();
                    for a in d.args.iter().flatten() {
                        s.push(' ');
                        s.push_str(a);
                    }
                    s
                }
                (None, Some(u)) => u.clone(),
                (None, None) => d
                    .package_version
                    .as_ref()
                    .map_or_else(String::new, |v| format!("version {v}")),
            };
            let mut client = d.client.clone();
            if d.disabled {
                client.push_str(" (disabled)");
            }
            let from = d
                .config_path
                .as_deref()
                .or(d.package_path.as_deref())
                .unwrap_or("");
            rows.push(row([
                &f.name,
                f.method.as_str(),
                &format!("{:.0}", f.confidence),
                &client,
                &truncate(&target, MAX_CELL),
                from,
            ]));
        }
        push_aligned(&mut out, &rows);
    }
    out
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Appends rows with every column but the last padded to its widest cell.
fn push_aligned(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        out.push_str("  ");
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                out.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_detect::{
        ActionForm, CapabilityFinding, DetectionMethod, Evidence, Mapping, McpDetails, McpFinding,
    };
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: DetectArgs,
    }

    fn sample() -> Report {
        let src = |line| Evidence::SourceAction {
            file: "src/main.rs".into(),
            line,
            column: 15,
            action: "read_database".into(),
            form: ActionForm::Attribute,
            mapping: Mapping::Exact,
        };
        let mut capabilities: Vec<CapabilityFinding> = (1..=5)
            .map(|l| CapabilityFinding {
                capability: "access_database".into(),
                evidence: src(l),
            })
            .collect();
        capabilities.push(CapabilityFinding {
            capability: "make_api_calls".into(),
            evidence: Evidence::Dependency {
                crate_name: "reqwest".into(),
                version: Some("0.13.0".into()),
                chain: vec!["app".into(), "reqwest".into()],
                manifest: "Cargo.toml".into(),
                target: None,
                optional: false,
            },
        });
        Report {
            capabilities,
            mcp_servers: vec![McpFinding {
                name: "github".into(),
                method: DetectionMethod::ClaudeConfig,
                confidence: 100.0,
                details: McpDetails {
                    config_path: Some("/h/claude_desktop_config.json".into()),
                    client: "claude_desktop".into(),
                    command: Some("npx".into()),
                    args: Some(vec![
                        "-y".into(),
                        "@modelcontextprotocol/server-github".into(),
                    ]),
                    ..McpDetails::default()
                },
            }],
            ..Report::default()
        }
    }

    #[test]
    fn table_is_aligned_and_summarises_long_evidence() {
        let t = render_table(&sample());
        let expected = "\
Capabilities (2)
  CAPABILITY       SOURCE  EVIDENCE
  access_database  source  src/main.rs:1 #[action(\"read_database\")]
                   source  src/main.rs:2 #[action(\"read_database\")]
                   source  src/main.rs:3 #[action(\"read_database\")]
                           ... and 2 more
  make_api_calls   cargo   reqwest 0.13.0 (app > reqwest)

MCP servers (1)
  SERVER  METHOD         CONF  CLIENT          COMMAND / URL                               FROM
  github  claude_config  100   claude_desktop  npx -y @modelcontextprotocol/server-github  /h/claude_desktop_config.json
";
        assert_eq!(t, expected);
    }

    #[test]
    fn empty_report_says_so() {
        let t = render_table(&Report::default());
        assert_eq!(
            t,
            "Capabilities (0)\n  none found\n\nMCP servers (0)\n  none found\n"
        );
    }

    #[test]
    fn json_carries_names_findings_and_events() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc();
        let v = to_json(&sample(), &now);
        assert_eq!(
            v["capabilities"],
            serde_json::json!(["access_database", "make_api_calls"])
        );
        assert_eq!(v["capabilityFindings"].as_array().unwrap().len(), 6);
        assert_eq!(v["detections"][0]["mcpServer"], "github");
        assert_eq!(v["detections"][0]["detectionMethod"], "claude_config");
        assert_eq!(v["detections"][0]["timestamp"], "2026-01-02T03:04:05+00:00");
    }

    #[test]
    fn arguments_parse_and_report_needs_an_agent() {
        let cli = Cli::try_parse_from(["detect", "proj", "--json"]).unwrap();
        assert_eq!(cli.args.path, PathBuf::from("proj"));
        assert!(cli.args.json && !cli.args.report);
        assert!(
            Cli::try_parse_from(["detect", "--server", "http://x"]).is_err(),
            "--server needs --report"
        );
        // SAFETY of the test: AIM_AGENT is not set by the test harness.
        if std::env::var_os("AIM_AGENT").is_none() {
            let cli = Cli::try_parse_from(["detect", "--report"]).unwrap();
            let err = run(cli.args).unwrap_err().to_string();
            assert!(err.contains("--agent NAME"), "{err}");
        }
    }

    #[test]
    fn capability_reports_carry_evidence_and_source() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc();
        let reports = capability_reports(&sample(), &now);
        let names: Vec<&str> = reports.iter().map(|r| r.capability_type.as_str()).collect();
        assert_eq!(names, ["access_database", "make_api_calls"]);
        for r in &reports {
            assert_eq!(r.scope["source"], "aim_detect");
            assert_eq!(r.scope["detectedAt"], "2026-01-02T03:04:05+00:00");
            assert!(!r.scope["evidence"].as_array().unwrap().is_empty());
        }
    }

    #[test]
    fn mcp_declarations_are_distinct_with_the_highest_confidence() {
        let events = vec![
            serde_json::json!({"mcpServer": "github", "detectionMethod": "package_scan", "confidence": 90.0}),
            serde_json::json!({"mcpServer": "github", "detectionMethod": "claude_config", "confidence": 100.0}),
            serde_json::json!({"mcpServer": "fs", "detectionMethod": "client_config", "confidence": 50.0}),
        ];
        assert_eq!(
            mcp_declarations(&events),
            vec![
                ("github".to_string(), "claude_config".to_string(), 100.0),
                ("fs".to_string(), "client_config".to_string(), 50.0)
            ]
        );
    }

    #[test]
    fn scanning_a_missing_directory_is_an_error() {
        let dir = std::env::temp_dir().join("aim-detect-cli-test-does-not-exist");
        let cli = Cli::try_parse_from(["detect".as_ref(), dir.as_os_str()]).unwrap();
        assert!(run(cli.args).is_err());
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 5), "ab...");
        assert_eq!(truncate("abc", 5), "abc");
    }
}

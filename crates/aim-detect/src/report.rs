//! What a scan found: capabilities with their evidence, MCP servers, warnings, and the list of
//! places that were looked at.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeZone};
use serde::Serialize;

/// `sdkVersion` of every detection event this crate produces.
pub const SDK_VERSION: &str = concat!("aim-detect-rust@", env!("CARGO_PKG_VERSION"));

/// The result of [`crate::Detector::scan`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// One entry per (capability, piece of evidence), sorted by capability then evidence.
    pub capabilities: Vec<CapabilityFinding>,
    /// MCP servers found in client configurations, installed packages or `capabilities.json`.
    pub mcp_servers: Vec<McpFinding>,
    /// Files that were skipped or only partly understood, and why. Never fatal.
    pub warnings: Vec<Warning>,
    /// Every location that was looked at, found or not (for auditing what was scanned).
    pub sources: Vec<SourceRecord>,
}

impl Report {
    /// The distinct capability names, sorted: what an agent declares.
    pub fn capability_names(&self) -> Vec<String> {
        self.capabilities
            .iter()
            .map(|c| c.capability.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The MCP findings as detection events, in the JSON shape the server accepts
    /// (`POST /api/v1/detection/agents/{id}/report` body: `{"detections": [...]}`).
    pub fn detection_events<Tz: TimeZone>(&self, now: &DateTime<Tz>) -> Vec<DetectionEvent>
    where
        Tz::Offset: fmt::Display,
    {
        let timestamp = now.to_rfc3339_opts(SecondsFormat::AutoSi, false);
        self.mcp_servers
            .iter()
            .map(|f| DetectionEvent {
                mcp_server: f.name.clone(),
                detection_method: f.method,
                confidence: f.confidence,
                details: f.details.clone(),
                sdk_version: SDK_VERSION.to_owned(),
                timestamp: timestamp.clone(),
            })
            .collect()
    }

    pub(crate) fn sort(&mut self) {
        self.capabilities.sort_by(|a, b| {
            a.capability
                .cmp(&b.capability)
                .then_with(|| a.evidence.sort_key().cmp(&b.evidence.sort_key()))
        });
        self.capabilities.dedup();
    }
}

/// One capability and the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapabilityFinding {
    /// Capability name in the SDK's vocabulary (see the crate README), or an unmapped action name.
    pub capability: String,
    /// Why the capability was reported.
    pub evidence: Evidence,
}

/// Where a capability came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Evidence {
    /// An action named in the project's Rust source.
    SourceAction {
        /// File path relative to the scanned root, `/`-separated.
        file: String,
        /// 1-based line of the action name.
        line: usize,
        /// 1-based column of the action name.
        column: usize,
        /// The action name as written.
        action: String,
        /// How the action was named.
        form: ActionForm,
        /// How the action was turned into a capability.
        mapping: Mapping,
    },
    /// A crate the project depends on at run time.
    Dependency {
        /// The crate's package name (after undoing any `package = "..."` rename).
        #[serde(rename = "crate")]
        crate_name: String,
        /// Version from `Cargo.lock`, when there is one.
        version: Option<String>,
        /// The chain that pulls the crate in: workspace member first, this crate last.
        chain: Vec<String>,
        /// The manifest of the workspace member at the head of the chain.
        manifest: String,
        /// `cfg(...)` or target triple of the member's direct dependency, when target-specific.
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Whether the member's direct dependency is `optional = true`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
    },
    /// A `capabilities.json` entry.
    Config {
        /// The configuration file.
        path: String,
    },
}

impl Evidence {
    fn sort_key(&self) -> (u8, String, usize, usize) {
        match self {
            Evidence::SourceAction {
                file, line, column, ..
            } => (0, file.clone(), *line, *column),
            Evidence::Dependency { chain, .. } => (1, chain.join("\u{0}"), 0, 0),
            Evidence::Config { path } => (2, path.clone(), 0, 0),
        }
    }

    /// The short label of the source kind: `source`, `cargo` or `config`.
    pub fn kind_label(&self) -> &'static str {
        match self {
            Evidence::SourceAction { .. } => "source",
            Evidence::Dependency { .. } => "cargo",
            Evidence::Config { .. } => "config",
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::SourceAction {
                file,
                line,
                action,
                form,
                ..
            } => match form {
                ActionForm::Attribute => write!(f, "{file}:{line} #[action({action:?})]"),
                ActionForm::Call => write!(f, "{file}:{line} perform_action({action:?})"),
            },
            Evidence::Dependency {
                crate_name,
                version,
                chain,
                target,
                optional,
                ..
            } => {
                write!(f, "{crate_name}")?;
                if let Some(v) = version {
                    write!(f, " {v}")?;
                }
                write!(f, " ({})", chain.join(" > "))?;
                if let Some(t) = target {
                    write!(f, " [{t}]")?;
                }
                if *optional {
                    write!(f, " [optional]")?;
                }
                Ok(())
            }
            Evidence::Config { path } => write!(f, "{path}"),
        }
    }
}

/// How an action was named in source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionForm {
    /// `#[aim::action("...")]` (or a renamed import of it).
    Attribute,
    /// `x.perform_action("...", ...)` or `AimClient::perform_action(&x, "...", ...)`.
    Call,
}

/// How an action name was turned into a capability (see the README's action tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mapping {
    /// Listed in the exact action table.
    Exact,
    /// Matched a keyword rule.
    Keyword,
    /// Unmapped: the action name is the capability (as in the Python SDK).
    AsIs,
}

/// A skipped or partly understood file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The file concerned, when there is one.
    pub path: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The category.
    pub kind: WarningKind,
    /// What happened (never contains configuration values).
    pub message: String,
}

impl Warning {
    pub(crate) fn at(path: &Path, kind: WarningKind, message: impl Into<String>) -> Self {
        Self {
            path: Some(path.display().to_string()),
            line: None,
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn at_line(
        path: &Path,
        line: usize,
        kind: WarningKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            line: Some(line),
            ..Self::at(path, kind, message)
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(p), Some(l)) => write!(f, "{p}:{l}: {}", self.message),
            (Some(p), None) => write!(f, "{p}: {}", self.message),
            _ => write!(f, "{}", self.message),
        }
    }
}

/// Warning categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Exists but could not be read (permissions, not a regular file, I/O error).
    Unreadable,
    /// Larger than the documented cap.
    TooLarge,
    /// Not valid JSON / TOML / Rust / UTF-8, or the wrong shape.
    Malformed,
    /// Nested too deeply to parse safely.
    TooDeep,
    /// An action named by something other than a string literal.
    NonLiteralAction,
    /// Something expected is missing (a workspace member, `Cargo.lock`, ...).
    Incomplete,
}

/// A location detection looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRecord {
    /// What this location is (e.g. `Claude Desktop config`).
    pub what: String,
    /// The path.
    pub path: String,
    /// What happened.
    pub status: SourceStatus,
}

/// Outcome for one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Read and used.
    Read,
    /// Nothing there.
    Absent,
    /// There but skipped (see the warnings).
    Skipped,
}

/// How an MCP server was found. Serialized as the server's `detectionMethod` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionMethod {
    /// Declared by the user (`mcpServers` in `.aim/capabilities.json`).
    Manual,
    /// Claude Desktop or Claude Code configuration.
    ClaudeConfig,
    /// Cursor, VS Code or Windsurf configuration (`details.client` names it).
    ClientConfig,
    /// An installed npm or Python package.
    PackageScan,
    /// The Python SDK's import scan (not produced by this crate).
    SdkImport,
    /// The Python SDK's runtime tracking (not produced by this crate).
    SdkRuntime,
    /// Reported by the API directly (not produced by this crate).
    DirectApi,
}

impl DetectionMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionMethod::Manual => "manual",
            DetectionMethod::ClaudeConfig => "claude_config",
            DetectionMethod::ClientConfig => "client_config",
            DetectionMethod::PackageScan => "package_scan",
            DetectionMethod::SdkImport => "sdk_import",
            DetectionMethod::SdkRuntime => "sdk_runtime",
            DetectionMethod::DirectApi => "direct_api",
        }
    }
}

/// One MCP server found somewhere.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct McpFinding {
    /// The server's name (config key or package name).
    pub name: String,
    /// How it was found.
    pub method: DetectionMethod,
    /// 0–100 (see the README's confidence table).
    pub confidence: f64,
    /// Where and what, with secrets redacted.
    pub details: McpDetails,
}

/// `details` of a detection event. Never carries environment or header *values*.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct McpDetails {
    /// The configuration file the server was declared in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
    /// The installed package's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_path: Option<String>,
    /// `claude_desktop`, `claude_code`, `cursor`, `vscode`, `windsurf`, `npm`, `python` or `aim`.
    pub client: String,
    /// `user`, `project` or `local` for configs; `global` or `virtualenv` for packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `stdio`, `sse`, `http`, ... as declared (or inferred from `command`/`url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The command, secrets redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The arguments, secrets redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// The URL without userinfo, fragment, query values or secret-looking path segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Names (never values) of environment variables set for the server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_names: Vec<String>,
    /// Names (never values) of HTTP headers sent to the server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header_names: Vec<String>,
    /// `true` when the client config marks the server disabled.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// `true` when something was removed from `command`, `args` or `url`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
    /// The package name, for package findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// The package version, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
}

/// One detection event, exactly as the server's detection-report endpoint accepts it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionEvent {
    /// Server name.
    pub mcp_server: String,
    /// How it was found.
    pub detection_method: DetectionMethod,
    /// 0–100.
    pub confidence: f64,
    /// Where and what.
    pub details: McpDetails,
    /// [`SDK_VERSION`].
    pub sdk_version: String,
    /// RFC 3339 with offset.
    pub timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn detection_event_has_the_server_shape() {
        let report = Report {
            mcp_servers: vec![McpFinding {
                name: "github".into(),
                method: DetectionMethod::ClaudeConfig,
                confidence: 100.0,
                details: McpDetails {
                    config_path: Some("/h/c.json".into()),
                    client: "claude_desktop".into(),
                    command: Some("npx".into()),
                    args: Some(vec!["-y".into()]),
                    ..McpDetails::default()
                },
            }],
            ..Report::default()
        };
        let now = FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(2025, 10, 24, 14, 44, 21)
            .unwrap();
        let events = report.detection_events(&now);
        let v = serde_json::to_value(&events).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{
                "mcpServer": "github",
                "detectionMethod": "claude_config",
                "confidence": 100.0,
                "details": {"configPath": "/h/c.json", "client": "claude_desktop", "command": "npx", "args": ["-y"]},
                "sdkVersion": SDK_VERSION,
                "timestamp": "2025-10-24T14:44:21+01:00"
            }])
        );
        assert!(SDK_VERSION.starts_with("aim-detect-rust@"));
    }

    #[test]
    fn every_method_serializes_to_its_wire_name() {
        for m in [
            DetectionMethod::Manual,
            DetectionMethod::ClaudeConfig,
            DetectionMethod::ClientConfig,
            DetectionMethod::PackageScan,
            DetectionMethod::SdkImport,
            DetectionMethod::SdkRuntime,
            DetectionMethod::DirectApi,
        ] {
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::json!(m.as_str())
            );
        }
    }

    #[test]
    fn capability_names_are_sorted_and_distinct() {
        let ev = Evidence::Config { path: "p".into() };
        let report = Report {
            capabilities: ["b", "a", "b"]
                .iter()
                .map(|c| CapabilityFinding {
                    capability: (*c).into(),
                    evidence: ev.clone(),
                })
                .collect(),
            ..Report::default()
        };
        assert_eq!(report.capability_names(), vec!["a", "b"]);
    }
}

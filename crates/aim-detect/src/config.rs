//! Declared capabilities: `~/.aim/capabilities.json` and `<project>/.aim/capabilities.json`
//! in the Python SDK's schema (`{"capabilities": [...], "last_updated": ..., "version": ...}`),
//! plus an optional `"mcpServers": ["name", ...]` list reported as `manual` detections.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::env::DetectEnv;
use crate::fsread::{self, MAX_CONFIG_BYTES};
use crate::report::{
    CapabilityFinding, DetectionMethod, Evidence, McpDetails, McpFinding, SourceRecord,
    SourceStatus, Warning, WarningKind,
};
use crate::tables;

/// Confidence of an MCP server listed by hand in `capabilities.json`.
pub const CONFIDENCE_MANUAL: f64 = 100.0;

/// Result of reading the configuration files.
#[derive(Debug, Default)]
pub(crate) struct ConfigScan {
    pub(crate) capabilities: Vec<CapabilityFinding>,
    pub(crate) mcp: Vec<McpFinding>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) sources: Vec<SourceRecord>,
}

/// The files read, user-wide first.
pub(crate) fn paths(env: &DetectEnv, root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = env
        .in_home(&[".aim", "capabilities.json"])
        .into_iter()
        .collect();
    let project = root.join(".aim").join("capabilities.json");
    if !v.contains(&project) {
        v.push(project);
    }
    v
}

pub(crate) fn scan(env: &DetectEnv, root: &Path) -> ConfigScan {
    let mut out = ConfigScan::default();
    for path in paths(env, root) {
        let what = "AIM capabilities config";
        let status = match fsread::read_text(&path, MAX_CONFIG_BYTES) {
            Ok(None) => SourceStatus::Absent,
            Err(skip) => {
                out.warnings.push(skip.warning(&path));
                SourceStatus::Skipped
            }
            Ok(Some(text)) => match crate::jsonc::parse(&text) {
                Ok(v) => {
                    read_value(&path, &v, &mut out);
                    SourceStatus::Read
                }
                Err(e) => {
                    out.warnings.push(Warning::at(
                        &path,
                        WarningKind::Malformed,
                        format!("skipped: {e}"),
                    ));
                    SourceStatus::Skipped
                }
            },
        };
        out.sources.push(SourceRecord {
            what: what.into(),
            path: path.display().to_string(),
            status,
        });
    }
    out
}

/// A capability or server name we accept: 1–128 characters of `[A-Za-z0-9_.:/@-]`.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '@'))
}

fn read_value(path: &Path, v: &Value, out: &mut ConfigScan) {
    let Some(obj) = v.as_object() else {
        out.warnings.push(Warning::at(
            path,
            WarningKind::Malformed,
            "not a JSON object; ignored",
        ));
        return;
    };
    match obj.get("capabilities") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) if valid_name(name) => out.capabilities.push(CapabilityFinding {
                        capability: name.to_owned(),
                        evidence: Evidence::Config {
                            path: path.display().to_string(),
                        },
                    }),
                    _ => out.warnings.push(Warning::at(
                        path,
                        WarningKind::Malformed,
                        format!("capabilities[{i}] is not a valid capability name; ignored"),
                    )),
                }
            }
        }
        Some(_) => out.warnings.push(Warning::at(
            path,
            WarningKind::Malformed,
            "\"capabilities\" is not a list; ignored",
        )),
        None if !obj.contains_key("mcpServers") => out.warnings.push(Warning::at(
            path,
            WarningKind::Malformed,
            "no \"capabilities\" list",
        )),
        None => {}
    }
    match obj.get("mcpServers") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) if valid_name(name) && !tables::is_own_package(name) => {
                        out.mcp.push(McpFinding {
                            name: name.to_owned(),
                            method: DetectionMethod::Manual,
                            confidence: CONFIDENCE_MANUAL,
                            details: McpDetails {
                                config_path: Some(path.display().to_string()),
                                client: "aim".into(),
                                scope: Some("declared".into()),
                                ..McpDetails::default()
                            },
                        })
                    }
                    Some(name) if tables::is_own_package(name) => {}
                    _ => out.warnings.push(Warning::at(
                        path,
                        WarningKind::Malformed,
                        format!("mcpServers[{i}] is not a valid server name; ignored"),
                    )),
                }
            }
        }
        Some(_) => out.warnings.push(Warning::at(
            path,
            WarningKind::Malformed,
            "\"mcpServers\" is not a list; ignored",
        )),
    }
}

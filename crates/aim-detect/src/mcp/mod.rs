//! MCP servers: client configuration files and installed server packages.

pub(crate) mod clients;
pub(crate) mod packages;

use std::path::{Path, PathBuf};

use crate::env::DetectEnv;
use crate::fsread;
use crate::report::{McpFinding, SourceRecord, SourceStatus, Warning};

/// Result of the MCP scan.
#[derive(Debug, Default)]
pub(crate) struct McpScan {
    pub(crate) findings: Vec<McpFinding>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) sources: Vec<SourceRecord>,
}

pub(crate) fn scan(env: &DetectEnv, root: &Path) -> McpScan {
    let mut out = McpScan::default();
    let mut projects: Vec<PathBuf> = vec![root.to_path_buf(), env.cwd.clone()];
    projects.dedup();
    for loc in clients::locations(env, root) {
        let status = match fsread::read_text(&loc.path, loc.cap()) {
            Ok(None) => SourceStatus::Absent,
            Err(skip) => {
                out.warnings.push(skip.warning(&loc.path));
                SourceStatus::Skipped
            }
            Ok(Some(text)) => {
                let (f, w) =
                    clients::parse_mcp_config(loc.kind, loc.scope, &text, &loc.path, &projects);
                let status = if f.is_empty() && !w.is_empty() {
                    SourceStatus::Skipped
                } else {
                    SourceStatus::Read
                };
                out.findings.extend(f);
                out.warnings.extend(w);
                status
            }
        };
        out.sources.push(SourceRecord {
            what: loc.label(),
            path: loc.path.display().to_string(),
            status,
        });
    }
    let p = packages::scan(env);
    out.findings.extend(p.findings);
    out.warnings.extend(p.warnings);
    out.sources.extend(p.sources);
    out
}

//! Capability and MCP-server detection for AI agents.
//!
//! [`Detector::scan`] looks at a project and the user's machine and reports what the agent can
//! do and which MCP servers it talks to, each finding with its evidence:
//!
//! - **Rust source** (parsed with `syn`): action names in `#[aim::action("...")]` attributes
//!   (also through `use` renames) and `perform_action("...", ...)` calls, mapped to
//!   capabilities by the action tables;
//! - **Cargo**: every crate reachable through normal dependencies (`Cargo.toml` and
//!   `Cargo.lock`), mapped by the crate table, with the chain that pulls it in;
//! - **configuration**: `~/.aim/capabilities.json` and `<project>/.aim/capabilities.json`;
//! - **MCP servers**: Claude Desktop, Claude Code, Cursor, VS Code and Windsurf
//!   configurations, and MCP server packages installed globally for npm or in the active
//!   Python environment.
//!
//! It makes no network calls and spawns no processes. Nothing it cannot read is fatal (it
//! becomes a [`Warning`]), and no secret from a configuration is copied into a report:
//! environment and header values are dropped, URLs and arguments are redacted ([`redact`]).
//!
//! ```no_run
//! use aim_detect::{DetectEnv, Detector};
//!
//! let report = Detector::new(DetectEnv::from_process()).scan(".".as_ref())?;
//! println!("{:?}", report.capability_names());
//! let events = report.detection_events(&chrono::Utc::now());
//! # Ok::<(), aim_detect::DetectError>(())
//! ```

mod cargo;
mod config;
mod env;
mod fsread;
mod jsonc;
mod mcp;
pub mod redact;
mod report;
mod source;
pub mod tables;

use std::path::{Path, PathBuf};

pub use config::CONFIDENCE_MANUAL;
pub use env::{DetectEnv, Os, RELEVANT_VARS};
pub use fsread::{
    MAX_CLAUDE_CODE_STATE_BYTES, MAX_CONFIG_BYTES, MAX_METADATA_PREFIX_BYTES, MAX_RUST_FILE_BYTES,
};
pub use mcp::clients::{CONFIDENCE_DECLARED, CONFIDENCE_DISABLED, McpConfigKind, parse_mcp_config};
pub use mcp::packages::{
    CONFIDENCE_MCP_NAMED_PACKAGE, CONFIDENCE_SERVER_PACKAGE, KNOWN_SERVER_PACKAGES, NOT_SERVERS,
    classify_package,
};
pub use report::{
    ActionForm, CapabilityFinding, DetectionEvent, DetectionMethod, Evidence, Mapping, McpDetails,
    McpFinding, Report, SDK_VERSION, SourceRecord, SourceStatus, Warning, WarningKind,
};
pub use source::MAX_SOURCE_FILES;

/// Errors that stop a scan. Everything else becomes a [`Warning`] in the report.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The project root is missing or not a directory.
    #[error("project root {path} is not a readable directory: {reason}")]
    BadRoot {
        /// The root given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Runs every detector against one project with one environment.
#[derive(Debug, Clone)]
pub struct Detector {
    env: DetectEnv,
}

impl Detector {
    /// A detector reading the locations `env` describes.
    pub fn new(env: DetectEnv) -> Self {
        Self { env }
    }

    /// Scans `project_root` (sources, Cargo, `.aim/capabilities.json`, project MCP configs)
    /// and the user-wide locations of the environment.
    pub fn scan(&self, project_root: &Path) -> Result<Report, DetectError> {
        let meta = std::fs::metadata(project_root).map_err(|e| DetectError::BadRoot {
            path: project_root.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(DetectError::BadRoot {
                path: project_root.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        let root = if project_root.is_absolute() {
            project_root.to_path_buf()
        } else {
            self.env.cwd.join(project_root)
        };
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        let mut report = Report::default();

        let src = source::scan(&root);
        report.capabilities.extend(src.capabilities);
        report.warnings.extend(src.warnings);
        report.sources.extend(src.sources);

        let cargo = cargo::scan(&root);
        report.capabilities.extend(cargo.capabilities);
        report.warnings.extend(cargo.warnings);
        report.sources.extend(cargo.sources);

        let cfg = config::scan(&self.env, &root);
        report.capabilities.extend(cfg.capabilities);
        report.mcp_servers.extend(cfg.mcp);
        report.warnings.extend(cfg.warnings);
        report.sources.extend(cfg.sources);

        let mcp = mcp::scan(&self.env, &root);
        report.mcp_servers.extend(mcp.findings);
        report.warnings.extend(mcp.warnings);
        report.sources.extend(mcp.sources);

        report.sort();
        Ok(report)
    }
}

//! MCP server packages installed globally for npm and in the active Python environment,
//! found by directory convention (no process is spawned, nothing is fetched).

use std::path::{Path, PathBuf};

use crate::env::{DetectEnv, Os};
use crate::fsread::{self, MAX_CONFIG_BYTES, MAX_METADATA_PREFIX_BYTES};
use crate::report::{
    DetectionMethod, McpDetails, McpFinding, SourceRecord, SourceStatus, Warning, WarningKind,
};
use crate::tables;

/// Confidence of a package that is a known MCP server or named like one (`mcp-server-*`).
pub const CONFIDENCE_SERVER_PACKAGE: f64 = 90.0;
/// Confidence of a package whose name only suggests MCP (`*-mcp`, `mcp-*`, `@scope/mcp`).
pub const CONFIDENCE_MCP_NAMED_PACKAGE: f64 = 70.0;

/// Most entries listed in one `node_modules` or `site-packages` directory.
const MAX_DIR_ENTRIES: usize = 20_000;

/// The Python SDK's list of known MCP server packages (spec §8.1), plus well-known ones.
pub const KNOWN_SERVER_PACKAGES: &[&str] = &[
    "@modelcontextprotocol/server-filesystem",
    "@modelcontextprotocol/server-github",
    "@modelcontextprotocol/server-memory",
    "@modelcontextprotocol/server-postgres",
    "@modelcontextprotocol/server-puppeteer",
    "@modelcontextprotocol/server-slack",
    "mcp-server-fetch",
    "mcp-server-git",
    "@playwright/mcp",
    "@upstash/context7-mcp",
];

/// MCP libraries and tools that are not servers: SDKs, the inspector, proxies.
pub const NOT_SERVERS: &[&str] = &[
    "@modelcontextprotocol/sdk",
    "@modelcontextprotocol/inspector",
    "@modelcontextprotocol/create-server",
    "mcp",
    "fastmcp",
    "mcp-remote",
    "mcp-proxy",
    "mcp-use",
];

/// The confidence that an installed package named `name` is an MCP server, or `None`.
/// Python names are compared in normalized form (lower case, `_` and `.` as `-`).
pub fn classify_package(name: &str) -> Option<f64> {
    let n = name.to_ascii_lowercase().replace(['_', '.'], "-");
    let n = n.as_str();
    if tables::is_own_package(n) || NOT_SERVERS.contains(&n) {
        return None;
    }
    if KNOWN_SERVER_PACKAGES.contains(&n) || n.starts_with("@modelcontextprotocol/server-") {
        return Some(CONFIDENCE_SERVER_PACKAGE);
    }
    let base = match n.split_once('/') {
        Some((scope, base)) if scope.starts_with('@') => base,
        _ => n,
    };
    if base.starts_with("mcp-server-")
        || base.ends_with("-mcp-server")
        || base.contains("-mcp-server-")
        || base == "mcp-server"
    {
        return Some(CONFIDENCE_SERVER_PACKAGE);
    }
    let scoped = base.len() != n.len();
    if (scoped && base == "mcp")
        || base.ends_with("-mcp")
        || (base.starts_with("mcp-") && base.len() > 4)
    {
        return Some(CONFIDENCE_MCP_NAMED_PACKAGE);
    }
    None
}

/// Global `node_modules` directories by convention for the OS.
pub(crate) fn npm_dirs(env: &DetectEnv) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let prefix = env
        .var("NPM_CONFIG_PREFIX")
        .or_else(|| env.var("npm_config_prefix"));
    match env.os {
        Os::Windows => {
            if let Some(p) = prefix {
                v.push(Path::new(p).join("node_modules"));
            }
            let appdata = env
                .var("APPDATA")
                .map(PathBuf::from)
                .or_else(|| env.in_home(&["AppData", "Roaming"]));
            if let Some(a) = appdata {
                v.push(a.join("npm").join("node_modules"));
            }
        }
        Os::Linux | Os::MacOs => {
            if let Some(p) = prefix {
                v.push(Path::new(p).join("lib").join("node_modules"));
            }
            v.extend(env.in_home(&[".npm-global", "lib", "node_modules"]));
            v.push(env.system(&["usr", "local", "lib", "node_modules"]));
            v.push(env.system(&["usr", "lib", "node_modules"]));
            if env.os == Os::MacOs {
                v.push(env.system(&["opt", "homebrew", "lib", "node_modules"]));
            }
            // nvm: every installed Node version.
            let nvm = env
                .var("NVM_DIR")
                .map(PathBuf::from)
                .or_else(|| env.in_home(&[".nvm"]));
            if let Some(nvm) = nvm {
                let versions = nvm.join("versions").join("node");
                for d in sorted_entries(&versions) {
                    v.push(d.join("lib").join("node_modules"));
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

/// `site-packages` directories of the active virtualenv / conda environment.
pub(crate) fn python_dirs(env: &DetectEnv) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        let Some(prefix) = env.var(var).map(PathBuf::from) else {
            continue;
        };
        if env.os == Os::Windows {
            v.push(prefix.join("Lib").join("site-packages"));
        } else {
            for lib in ["lib", "lib64"] {
                for d in sorted_entries(&prefix.join(lib)) {
                    if d.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("python"))
                    {
                        v.push(d.join("site-packages"));
                    }
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .take(MAX_DIR_ENTRIES)
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Result of the package scan.
#[derive(Debug, Default)]
pub(crate) struct PackageScan {
    pub(crate) findings: Vec<McpFinding>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) sources: Vec<SourceRecord>,
}

impl PackageScan {
    fn record(&mut self, what: &str, path: &Path, status: SourceStatus) {
        self.sources.push(SourceRecord {
            what: what.to_owned(),
            path: path.display().to_string(),
            status,
        });
    }
}

pub(crate) fn scan(env: &DetectEnv) -> PackageScan {
    let mut out = PackageScan::default();
    for dir in npm_dirs(env) {
        if !dir.is_dir() {
            out.record("global npm packages", &dir, SourceStatus::Absent);
            continue;
        }
        out.record("global npm packages", &dir, SourceStatus::Read);
        scan_node_modules(&dir, &mut out);
    }
    for dir in python_dirs(env) {
        if !dir.is_dir() {
            out.record("Python environment packages", &dir, SourceStatus::Absent);
            continue;
        }
        out.record("Python environment packages", &dir, SourceStatus::Read);
        scan_site_packages(&dir, &mut out);
    }
    out
}

fn scan_node_modules(dir: &Path, out: &mut PackageScan) {
    let mut candidates = Vec::new();
    for entry in sorted_entries(dir) {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('@') {
            for inner in sorted_entries(&entry) {
                let base = inner
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                candidates.push((format!("{name}/{base}"), inner));
            }
        } else if !name.starts_with('.') {
            candidates.push((name, entry));
        }
    }
    for (name, path) in candidates {
        let Some(confidence) = classify_package(&name) else {
            continue;
        };
        let manifest = path.join("package.json");
        let mut version = None;
        match fsread::read_text(&manifest, MAX_CONFIG_BYTES) {
            Ok(Some(text)) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => version = v.get("version").and_then(|x| x.as_str()).map(clean),
                Err(e) => out.warnings.push(Warning::at(
                    &manifest,
                    WarningKind::Malformed,
                    format!(
                        "invalid JSON at line {} column {}; version unknown",
                        e.line(),
                        e.column()
                    ),
                )),
            },
            Ok(None) => out.warnings.push(Warning::at(
                &manifest,
                WarningKind::Incomplete,
                "package has no package.json; version unknown",
            )),
            Err(skip) => out.warnings.push(skip.warning(&manifest)),
        }
        out.findings.push(package_finding(
            &name, &path, version, confidence, "npm", "global",
        ));
    }
}

fn scan_site_packages(dir: &Path, out: &mut PackageScan) {
    for entry in sorted_entries(dir) {
        let file = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(stem) = file.strip_suffix(".dist-info") else {
            continue;
        };
        let dir_name = stem.split('-').next().unwrap_or(stem);
        if classify_package(dir_name).is_none() {
            continue;
        }
        let metadata = entry.join("METADATA");
        let (mut name, mut version) = (
            dir_name.to_owned(),
            stem.split_once('-').map(|(_, v)| clean(v)),
        );
        match fsread::read_prefix(&metadata, MAX_METADATA_PREFIX_BYTES) {
            Ok(Some(text)) => {
                for line in text.lines().take_while(|l| !l.is_empty()) {
                    if let Some(v) = line.strip_prefix("Name:") {
                        name = clean(v.trim());
                    } else if let Some(v) = line.strip_prefix("Version:") {
                        version = Some(clean(v.trim()));
                    }
                }
            }
            Ok(None) => out.warnings.push(Warning::at(
                &metadata,
                WarningKind::Incomplete,
                "distribution has no METADATA; name taken from the directory",
            )),
            Err(skip) => out.warnings.push(skip.warning(&metadata)),
        }
        if let Some(confidence) = classify_package(&name) {
            out.findings.push(package_finding(
                &name,
                &entry,
                version,
                confidence,
                "python",
                "virtualenv",
            ));
        }
    }
}

fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(128).collect()
}

fn package_finding(
    name: &str,
    path: &Path,
    version: Option<String>,
    confidence: f64,
    client: &str,
    scope: &str,
) -> McpFinding {
    McpFinding {
        name: clean(name),
        method: DetectionMethod::PackageScan,
        confidence,
        details: McpDetails {
            package_path: Some(path.display().to_string()),
            client: client.to_owned(),
            scope: Some(scope.to_owned()),
            package_name: Some(clean(name)),
            package_version: version,
            ..McpDetails::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let strong = Some(CONFIDENCE_SERVER_PACKAGE);
        let weak = Some(CONFIDENCE_MCP_NAMED_PACKAGE);
        for (name, want) in [
            ("@modelcontextprotocol/server-github", strong),
            ("@modelcontextprotocol/server-everything", strong),
            ("mcp-server-fetch", strong),
            ("mcp_server_git", strong),
            ("@notionhq/notion-mcp-server", strong),
            ("@supabase/mcp-server-supabase", strong),
            ("@playwright/mcp", strong),
            ("firecrawl-mcp", weak),
            ("@acme/mcp", weak),
            ("mcp-weather", weak),
            ("@modelcontextprotocol/sdk", None),
            ("@modelcontextprotocol/inspector", None),
            ("mcp", None),
            ("fastmcp", None),
            ("aim-sdk", None),
            ("aim_sdk", None),
            ("mcp-", None),
            ("typescript", None),
            ("nmcp", None),
        ] {
            assert_eq!(classify_package(name), want, "{name}");
        }
    }

    #[test]
    fn npm_locations_per_os() {
        let env =
            DetectEnv::isolated("/h", "/w", Os::Linux, "/r").with_var("NPM_CONFIG_PREFIX", "/pre");
        let d = npm_dirs(&env);
        for want in [
            "/pre/lib/node_modules",
            "/h/.npm-global/lib/node_modules",
            "/r/usr/local/lib/node_modules",
            "/r/usr/lib/node_modules",
        ] {
            assert!(d.contains(&PathBuf::from(want)), "{want}: {d:?}");
        }
        let env = DetectEnv::isolated("/h", "/w", Os::Windows, "/r").with_var("APPDATA", "/ad");
        assert_eq!(npm_dirs(&env), vec![PathBuf::from("/ad/npm/node_modules")]);
        let env = DetectEnv::isolated("/h", "/w", Os::MacOs, "/r");
        assert!(npm_dirs(&env).contains(&PathBuf::from("/r/opt/homebrew/lib/node_modules")));
    }
}

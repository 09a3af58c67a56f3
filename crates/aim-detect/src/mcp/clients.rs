//! MCP client configuration files: where each client keeps them, and how their server entries
//! become findings (with [`crate::redact`] applied to everything copied out).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::env::{DetectEnv, Os};
use crate::fsread::{MAX_CLAUDE_CODE_STATE_BYTES, MAX_CONFIG_BYTES};
use crate::redact;
use crate::report::{DetectionMethod, McpDetails, McpFinding, Warning, WarningKind};
use crate::tables;

/// Confidence of a server declared (and enabled) in a client configuration.
pub const CONFIDENCE_DECLARED: f64 = 100.0;
/// Confidence of a server declared but marked `"disabled": true`.
pub const CONFIDENCE_DISABLED: f64 = 50.0;

/// Which client file a configuration is, which decides its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpConfigKind {
    /// Claude Desktop `claude_desktop_config.json`: `{"mcpServers": {...}}`.
    ClaudeDesktop,
    /// Claude Code `~/.claude.json`: user `mcpServers` and `projects.<path>.mcpServers`.
    ClaudeCodeState,
    /// Claude Code project `.mcp.json`: `{"mcpServers": {...}}`.
    ClaudeCodeProject,
    /// Cursor `mcp.json` (user or project): `{"mcpServers": {...}}`.
    Cursor,
    /// VS Code `mcp.json` (user or `.vscode/`): `{"servers": {...}}`, JSON with comments.
    VsCodeMcp,
    /// VS Code `settings.json`: `{"mcp": {"servers": {...}}}`, JSON with comments.
    VsCodeSettings,
    /// Windsurf `mcp_config.json`: `{"mcpServers": {...}}`, URLs as `serverUrl`.
    Windsurf,
}

impl McpConfigKind {
    /// `details.client`.
    pub fn client(self) -> &'static str {
        match self {
            McpConfigKind::ClaudeDesktop => "claude_desktop",
            McpConfigKind::ClaudeCodeState | McpConfigKind::ClaudeCodeProject => "claude_code",
            McpConfigKind::Cursor => "cursor",
            McpConfigKind::VsCodeMcp | McpConfigKind::VsCodeSettings => "vscode",
            McpConfigKind::Windsurf => "windsurf",
        }
    }

    /// `claude_config` for Claude Desktop and Claude Code, `client_config` for the others.
    pub fn method(self) -> DetectionMethod {
        match self {
            McpConfigKind::ClaudeDesktop
            | McpConfigKind::ClaudeCodeState
            | McpConfigKind::ClaudeCodeProject => DetectionMethod::ClaudeConfig,
            _ => DetectionMethod::ClientConfig,
        }
    }

    fn label(self) -> &'static str {
        match self {
            McpConfigKind::ClaudeDesktop => "Claude Desktop config",
            McpConfigKind::ClaudeCodeState => "Claude Code user config",
            McpConfigKind::ClaudeCodeProject => "Claude Code project config",
            McpConfigKind::Cursor => "Cursor MCP config",
            McpConfigKind::VsCodeMcp => "VS Code MCP config",
            McpConfigKind::VsCodeSettings => "VS Code settings",
            McpConfigKind::Windsurf => "Windsurf MCP config",
        }
    }
}

/// One configuration file to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigLocation {
    pub(crate) kind: McpConfigKind,
    /// `user` or `project`.
    pub(crate) scope: &'static str,
    pub(crate) path: PathBuf,
}

impl ConfigLocation {
    pub(crate) fn label(&self) -> String {
        format!("{} ({})", self.kind.label(), self.scope)
    }

    pub(crate) fn cap(&self) -> u64 {
        if self.kind == McpConfigKind::ClaudeCodeState {
            MAX_CLAUDE_CODE_STATE_BYTES
        } else {
            MAX_CONFIG_BYTES
        }
    }
}

/// Every client configuration file for this OS, user-wide ones first.
pub(crate) fn locations(env: &DetectEnv, root: &Path) -> Vec<ConfigLocation> {
    use McpConfigKind::*;
    let mut v = Vec::new();
    let mut user = |kind, path: Option<PathBuf>| {
        if let Some(path) = path {
            v.push(ConfigLocation {
                kind,
                scope: "user",
                path,
            });
        }
    };
    // Claude Desktop: the OS's application-data directory, plus the SDK's `~/.claude/` path.
    let claude_desktop_dir = match env.os {
        Os::Windows | Os::Linux => env.config_dir().map(|d| d.join("Claude")),
        Os::MacOs => env.in_home(&["Library", "Application Support", "Claude"]),
    };
    user(
        ClaudeDesktop,
        claude_desktop_dir.map(|d| d.join("claude_desktop_config.json")),
    );
    user(
        ClaudeDesktop,
        env.in_home(&[".claude", "claude_desktop_config.json"]),
    );
    user(ClaudeCodeState, env.in_home(&[".claude.json"]));
    user(Cursor, env.in_home(&[".cursor", "mcp.json"]));
    for product in ["Code", "Code - Insiders"] {
        let dir = env.config_dir().map(|d| d.join(product).join("User"));
        user(VsCodeMcp, dir.as_ref().map(|d| d.join("mcp.json")));
        user(
            VsCodeSettings,
            dir.as_ref().map(|d| d.join("settings.json")),
        );
    }
    user(
        Windsurf,
        env.in_home(&[".codeium", "windsurf", "mcp_config.json"]),
    );
    for (kind, rel) in [
        (ClaudeCodeProject, &[".mcp.json"][..]),
        (Cursor, &[".cursor", "mcp.json"][..]),
        (VsCodeMcp, &[".vscode", "mcp.json"][..]),
        (VsCodeSettings, &[".vscode", "settings.json"][..]),
    ] {
        v.push(ConfigLocation {
            kind,
            scope: "project",
            path: crate::env::join_all(root, rel),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|l| seen.insert(l.path.clone()));
    v
}

/// Parses one client configuration file's text into findings.
///
/// `projects` are the directories whose Claude Code local-scope servers apply (the scanned
/// project and the working directory). A file that is not JSON yields one warning and nothing
/// else; an entry of the wrong shape yields a warning and is skipped.
pub fn parse_mcp_config(
    kind: McpConfigKind,
    scope: &str,
    text: &str,
    path: &Path,
    projects: &[PathBuf],
) -> (Vec<McpFinding>, Vec<Warning>) {
    let mut findings = Vec::new();
    let mut warnings = Vec::new();
    let value = match crate::jsonc::parse(text) {
        Ok(v) => v,
        Err(e) => {
            warnings.push(Warning::at(
                path,
                WarningKind::Malformed,
                format!("skipped: {e}"),
            ));
            return (findings, warnings);
        }
    };
    let Some(obj) = value.as_object() else {
        warnings.push(Warning::at(
            path,
            WarningKind::Malformed,
            "skipped: not a JSON object",
        ));
        return (findings, warnings);
    };
    let mut ctx = Ctx {
        kind,
        path,
        findings: &mut findings,
        warnings: &mut warnings,
    };
    match kind {
        McpConfigKind::VsCodeMcp => ctx.servers(obj.get("servers"), "servers", scope),
        McpConfigKind::VsCodeSettings => {
            let nested = obj.get("mcp").and_then(|m| m.get("servers"));
            ctx.servers(
                nested.or_else(|| obj.get("mcp.servers")),
                "mcp.servers",
                scope,
            );
        }
        McpConfigKind::ClaudeCodeState => {
            ctx.servers(obj.get("mcpServers"), "mcpServers", scope);
            if let Some(all) = obj.get("projects").and_then(Value::as_object) {
                for (dir, p) in all {
                    if projects.iter().any(|want| same_dir(want, dir)) {
                        ctx.servers(p.get("mcpServers"), "projects.<dir>.mcpServers", "local");
                    }
                }
            }
        }
        _ => ctx.servers(obj.get("mcpServers"), "mcpServers", scope),
    }
    (findings, warnings)
}

/// Whether a `projects` key of `~/.claude.json` names `want`. Windows-style keys
/// (`C:\\...`, `C:/...`) compare case-insensitively with either separator.
fn same_dir(want: &Path, key: &str) -> bool {
    let want = want.display().to_string();
    let (a, b) = (
        want.trim_end_matches(['/', '\\']),
        key.trim_end_matches(['/', '\\']),
    );
    let windows = b.as_bytes().get(1) == Some(&b':');
    a == b
        || (windows
            && a.replace('\\', "/")
                .eq_ignore_ascii_case(&b.replace('\\', "/")))
}

struct Ctx<'a> {
    kind: McpConfigKind,
    path: &'a Path,
    findings: &'a mut Vec<McpFinding>,
    warnings: &'a mut Vec<Warning>,
}

impl Ctx<'_> {
    fn warn(&mut self, message: String) {
        self.warnings
            .push(Warning::at(self.path, WarningKind::Malformed, message));
    }

    fn servers(&mut self, v: Option<&Value>, field: &str, scope: &str) {
        let Some(v) = v else { return };
        let Some(map) = v.as_object() else {
            self.warn(format!("\"{field}\" is not an object; ignored"));
            return;
        };
        for (name, entry) in map {
            let name = clean_name(name);
            if tables::is_own_package(&name) {
                continue;
            }
            match entry.as_object() {
                Some(e) => {
                    let f = self.finding(&name, e, scope);
                    self.findings.push(f);
                }
                None => self.warn(format!("server \"{name}\" is not an object; ignored")),
            }
        }
    }

    fn finding(&mut self, name: &str, e: &Map<String, Value>, scope: &str) -> McpFinding {
        let mut d = McpDetails {
            config_path: Some(self.path.display().to_string()),
            client: self.kind.client().to_owned(),
            scope: Some(scope.to_owned()),
            ..McpDetails::default()
        };
        match e.get("command") {
            Some(Value::String(c)) => {
                let r = redact::redact_command(c);
                d.redacted |= r.changed;
                d.command = Some(r.text);
            }
            Some(_) => self.warn(format!(
                "server \"{name}\": \"command\" is not a string; ignored"
            )),
            None => {}
        }
        match e.get("args") {
            Some(Value::Array(items)) => {
                let mut args = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => args.push(s.clone()),
                        Value::Number(n) => args.push(n.to_string()),
                        Value::Bool(b) => args.push(b.to_string()),
                        _ => args.push(redact::REDACTED.to_owned()),
                    }
                }
                let (args, changed) = redact::redact_args(&args);
                d.redacted |= changed;
                d.args = Some(args);
            }
            Some(_) => self.warn(format!(
                "server \"{name}\": \"args\" is not a list; ignored"
            )),
            None => {}
        }
        let url = ["url", "serverUrl", "httpUrl"]
            .iter()
            .find_map(|k| e.get(*k));
        match url {
            Some(Value::String(u)) => {
                let r = redact::redact_url(u);
                d.redacted |= r.changed;
                d.url = Some(r.text);
            }
            Some(_) => self.warn(format!(
                "server \"{name}\": the URL is not a string; ignored"
            )),
            None => {}
        }
        d.env_names = names_of(e.get("env"));
        d.header_names = names_of(e.get("headers"));
        d.disabled = e.get("disabled").and_then(Value::as_bool) == Some(true)
            || e.get("enabled").and_then(Value::as_bool) == Some(false);
        d.transport = e
            .get("type")
            .or_else(|| e.get("transport"))
            .and_then(Value::as_str)
            .map(|t| {
                t.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .take(32)
                    .collect::<String>()
            })
            .filter(|t| !t.is_empty())
            .or_else(|| {
                if d.command.is_some() {
                    Some("stdio".to_owned())
                } else {
                    d.url.as_ref().map(|u| {
                        let path = u.split('?').next().unwrap_or(u);
                        if path.trim_end_matches('/').ends_with("/sse") {
                            "sse"
                        } else {
                            "http"
                        }
                        .to_owned()
                    })
                }
            });
        McpFinding {
            name: name.to_owned(),
            method: self.kind.method(),
            confidence: if d.disabled {
                CONFIDENCE_DISABLED
            } else {
                CONFIDENCE_DECLARED
            },
            details: d,
        }
    }
}

/// Keys of an object (environment variable or header names), sorted; names that themselves
/// look like credentials are left out.
fn names_of(v: Option<&Value>) -> Vec<String> {
    let mut names: Vec<String> = v
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .filter(|k| !k.is_empty() && k.len() <= 128 && !redact::looks_like_secret(k))
                .map(|k| clean_name(k))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

/// A name as it may appear in a report: no control characters, at most 200 characters.
fn clean_name(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: McpConfigKind, text: &str) -> (Vec<McpFinding>, Vec<Warning>) {
        parse_mcp_config(
            kind,
            "user",
            text,
            Path::new("/cfg.json"),
            &[PathBuf::from("/proj")],
        )
    }

    #[test]
    fn claude_desktop_entry() {
        let (f, w) = parse(
            McpConfigKind::ClaudeDesktop,
            r#"{"mcpServers": {"github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_0123456789abcdefghijABCDEFGHIJ012345"}}}}"#,
        );
        assert!(w.is_empty());
        assert_eq!(f.len(), 1);
        let v = serde_json::to_value(&f[0]).unwrap();
        assert_eq!(v["method"], "claude_config");
        assert_eq!(v["confidence"], 100.0);
        assert_eq!(
            v["details"]["args"],
            serde_json::json!(["-y", "@modelcontextprotocol/server-github"])
        );
        assert_eq!(
            v["details"]["envNames"],
            serde_json::json!(["GITHUB_PERSONAL_ACCESS_TOKEN"])
        );
        assert_eq!(v["details"]["transport"], "stdio");
        assert!(!v.to_string().contains("ghp_0123"));
    }

    #[test]
    fn vscode_servers_with_comments_headers_and_http() {
        let (f, w) = parse(
            McpConfigKind::VsCodeMcp,
            r#"{ // user servers
                "inputs": [],
                "servers": {
                    "remote": {"type": "http", "url": "https://u:p4ss@api.example.com/mcp?key=abc",
                               "headers": {"Authorization": "Bearer xyz"}},
                },
            }"#,
        );
        assert!(w.is_empty(), "{w:?}");
        let d = &f[0].details;
        assert_eq!(f[0].method, DetectionMethod::ClientConfig);
        assert_eq!(d.client, "vscode");
        assert_eq!(
            d.url.as_deref(),
            Some("https://api.example.com/mcp?key=REDACTED")
        );
        assert_eq!(d.header_names, vec!["Authorization"]);
        assert!(d.redacted);
        assert_eq!(d.transport.as_deref(), Some("http"));
    }

    #[test]
    fn vscode_settings_nested_servers() {
        let (f, _) = parse(
            McpConfigKind::VsCodeSettings,
            r#"{"editor.fontSize": 12, "mcp": {"servers": {"fs": {"command": "mcp-fs"}}}}"#,
        );
        assert_eq!(
            f.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            vec!["fs"]
        );
    }

    #[test]
    fn claude_code_state_user_and_matching_project_only() {
        let (f, _) = parse(
            McpConfigKind::ClaudeCodeState,
            r#"{"mcpServers": {"u": {"command": "a"}},
                "projects": {"/proj": {"mcpServers": {"local": {"command": "b"}}},
                             "/other": {"mcpServers": {"elsewhere": {"command": "c"}}}}}"#,
        );
        let got: Vec<(&str, Option<&str>)> = f
            .iter()
            .map(|x| (x.name.as_str(), x.details.scope.as_deref()))
            .collect();
        assert_eq!(got, vec![("u", Some("user")), ("local", Some("local"))]);
    }

    #[test]
    fn claude_code_project_keys_match_exactly_or_windows_insensitively() {
        assert!(same_dir(Path::new("/proj"), "/proj/"));
        assert!(!same_dir(Path::new("/proj"), "/Proj"));
        assert!(!same_dir(Path::new("/proj"), "/proj2"));
        assert!(same_dir(Path::new("C:\\Users\\me\\p"), "c:/users/me/p"));
    }

    #[test]
    fn windsurf_server_url_and_disabled() {
        let (f, _) = parse(
            McpConfigKind::Windsurf,
            r#"{"mcpServers": {"s": {"serverUrl": "https://mcp.example.com/sse", "disabled": true}}}"#,
        );
        assert_eq!(f[0].confidence, CONFIDENCE_DISABLED);
        assert!(f[0].details.disabled);
        assert_eq!(f[0].details.transport.as_deref(), Some("sse"));
    }

    #[test]
    fn malformed_shapes_warn_and_skip() {
        let (f, w) = parse(McpConfigKind::Cursor, "not json");
        assert!(f.is_empty());
        assert_eq!(w.len(), 1);
        let (f, w) = parse(McpConfigKind::Cursor, "[1]");
        assert!(f.is_empty() && w.len() == 1);
        let (f, w) = parse(McpConfigKind::Cursor, r#"{"mcpServers": []}"#);
        assert!(f.is_empty() && w.len() == 1);
        let (f, w) = parse(
            McpConfigKind::Cursor,
            r#"{"mcpServers": {"bad": 1, "ok": {"command": 5, "args": "x"}, "aim-notes": {"command": "x"}}}"#,
        );
        assert_eq!(
            f.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            vec!["ok"]
        );
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn locations_cover_every_client_per_os() {
        let env = DetectEnv::isolated("/h", "/w", Os::MacOs, "/r");
        let paths: Vec<String> = locations(&env, Path::new("/p"))
            .iter()
            .map(|l| l.path.display().to_string())
            .collect();
        for want in [
            "/h/Library/Application Support/Claude/claude_desktop_config.json",
            "/h/.claude/claude_desktop_config.json",
            "/h/.claude.json",
            "/h/.cursor/mcp.json",
            "/h/Library/Application Support/Code/User/mcp.json",
            "/h/Library/Application Support/Code/User/settings.json",
            "/h/.codeium/windsurf/mcp_config.json",
            "/p/.mcp.json",
            "/p/.cursor/mcp.json",
            "/p/.vscode/mcp.json",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "{want} missing from {paths:?}"
            );
        }
        let env = DetectEnv::isolated("/h", "/w", Os::Windows, "/r").with_var("APPDATA", "/ad");
        let paths: Vec<String> = locations(&env, Path::new("/p"))
            .iter()
            .map(|l| l.path.display().to_string())
            .collect();
        assert!(paths.contains(&"/ad/Claude/claude_desktop_config.json".to_owned()));
        assert!(paths.contains(&"/ad/Code/User/mcp.json".to_owned()));
        let env = DetectEnv::isolated("/h", "/w", Os::Linux, "/r");
        let paths: Vec<String> = locations(&env, Path::new("/p"))
            .iter()
            .map(|l| l.path.display().to_string())
            .collect();
        assert!(paths.contains(&"/h/.config/Claude/claude_desktop_config.json".to_owned()));
        assert!(paths.contains(&"/h/.config/Code/User/settings.json".to_owned()));
    }
}

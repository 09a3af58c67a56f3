//! Each OS's conventional locations, with real files in a temporary tree standing in for the
//! machine (the environment is injected, nothing real is read).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use aim_detect::{DetectEnv, Detector, Os, Report};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn server(name: &str) -> String {
    format!("{{\"mcpServers\": {{\"{name}\": {{\"command\": \"npx\"}}}}}}")
}

fn found(r: &Report) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = r
        .mcp_servers
        .iter()
        .map(|f| {
            let at = f
                .details
                .config_path
                .clone()
                .or(f.details.package_path.clone())
                .unwrap();
            (f.name.clone(), f.details.client.clone(), at)
        })
        .collect();
    v.sort();
    v
}

struct T {
    _dir: tempfile::TempDir,
    base: PathBuf,
}

fn t() -> T {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(base.join("project")).unwrap();
    T { _dir: dir, base }
}

#[test]
fn macos_locations() {
    let t = t();
    let (home, root) = (t.base.join("home"), t.base.join("root"));
    let support = home.join("Library/Application Support");
    write(
        &support.join("Claude/claude_desktop_config.json"),
        &server("desk"),
    );
    write(
        &support.join("Code/User/mcp.json"),
        "{\"servers\": {\"code\": {\"command\": \"x\"}}}",
    );
    write(
        &support.join("Code - Insiders/User/settings.json"),
        "{\"mcp\": {\"servers\": {\"insiders\": {\"command\": \"x\"}}}}",
    );
    write(
        &home.join(".claude/claude_desktop_config.json"),
        &server("legacy"),
    );
    write(
        &root.join("opt/homebrew/lib/node_modules/mcp-server-brew/package.json"),
        "{\"version\": \"1.0.0\"}",
    );
    let env = DetectEnv::isolated(&home, t.base.join("project"), Os::MacOs, &root);
    let r = Detector::new(env).scan(&t.base.join("project")).unwrap();
    let s = |p: &Path| p.display().to_string();
    assert_eq!(
        found(&r),
        vec![
            (
                "code".into(),
                "vscode".into(),
                s(&support.join("Code/User/mcp.json"))
            ),
            (
                "desk".into(),
                "claude_desktop".into(),
                s(&support.join("Claude/claude_desktop_config.json"))
            ),
            (
                "insiders".into(),
                "vscode".into(),
                s(&support.join("Code - Insiders/User/settings.json"))
            ),
            (
                "legacy".into(),
                "claude_desktop".into(),
                s(&home.join(".claude/claude_desktop_config.json"))
            ),
            (
                "mcp-server-brew".into(),
                "npm".into(),
                s(&root.join("opt/homebrew/lib/node_modules/mcp-server-brew"))
            ),
        ]
    );
}

#[test]
fn windows_locations() {
    let t = t();
    let (home, appdata, venv) = (
        t.base.join("home"),
        t.base.join("appdata"),
        t.base.join("venv"),
    );
    write(
        &appdata.join("Claude/claude_desktop_config.json"),
        &server("desk"),
    );
    write(
        &appdata.join("Code/User/settings.json"),
        "{\"mcp\": {\"servers\": {\"code\": {\"command\": \"x\"}}}}",
    );
    write(
        &appdata.join("npm/node_modules/@modelcontextprotocol/server-slack/package.json"),
        "{}",
    );
    write(&home.join(".cursor/mcp.json"), &server("cur"));
    write(
        &home.join(".codeium/windsurf/mcp_config.json"),
        &server("wind"),
    );
    write(
        &venv.join("Lib/site-packages/mcp_server_time-1.0.dist-info/METADATA"),
        "Name: mcp-server-time\nVersion: 1.0\n",
    );
    // Linux-only locations hold decoys that a Windows scan must not read.
    write(
        &home.join(".config/Claude/claude_desktop_config.json"),
        &server("linux-decoy"),
    );
    let env = DetectEnv::isolated(
        &home,
        t.base.join("project"),
        Os::Windows,
        t.base.join("root"),
    )
    .with_var("APPDATA", appdata.display().to_string())
    .with_var("VIRTUAL_ENV", venv.display().to_string());
    let r = Detector::new(env).scan(&t.base.join("project")).unwrap();
    let names: Vec<String> = found(&r)
        .into_iter()
        .map(|f| format!("{}:{}", f.0, f.1))
        .collect();
    assert_eq!(
        names,
        vec![
            "@modelcontextprotocol/server-slack:npm",
            "code:vscode",
            "cur:cursor",
            "desk:claude_desktop",
            "mcp-server-time:python",
            "wind:windsurf"
        ]
    );
}

#[test]
fn linux_overrides_nvm_npm_prefix_and_conda() {
    let t = t();
    let (home, xdg, prefix, nvm, conda) = (
        t.base.join("home"),
        t.base.join("xdg"),
        t.base.join("prefix"),
        t.base.join("nvm"),
        t.base.join("conda"),
    );
    write(
        &xdg.join("Claude/claude_desktop_config.json"),
        &server("xdg"),
    );
    write(
        &home.join(".config/Claude/claude_desktop_config.json"),
        &server("not-read-when-xdg-set"),
    );
    write(
        &prefix.join("lib/node_modules/a-mcp-server/package.json"),
        "{}",
    );
    write(
        &nvm.join("versions/node/v20.1.0/lib/node_modules/mcp-server-nvm20/package.json"),
        "{}",
    );
    write(
        &nvm.join("versions/node/v22.0.0/lib/node_modules/mcp-server-nvm22/package.json"),
        "{}",
    );
    write(
        &conda.join("lib/python3.11/site-packages/mcp_server_sqlite-0.6.dist-info/METADATA"),
        "Name: mcp-server-sqlite\n",
    );
    write(
        &t.base
            .join("root/usr/lib/node_modules/mcp-server-system/package.json"),
        "{}",
    );
    let env = DetectEnv::isolated(
        &home,
        t.base.join("project"),
        Os::Linux,
        t.base.join("root"),
    )
    .with_var("XDG_CONFIG_HOME", xdg.display().to_string())
    .with_var("NPM_CONFIG_PREFIX", prefix.display().to_string())
    .with_var("NVM_DIR", nvm.display().to_string())
    .with_var("CONDA_PREFIX", conda.display().to_string());
    let r = Detector::new(env).scan(&t.base.join("project")).unwrap();
    let names: Vec<String> = found(&r).into_iter().map(|f| f.0).collect();
    assert_eq!(
        names,
        vec![
            "a-mcp-server",
            "mcp-server-nvm20",
            "mcp-server-nvm22",
            "mcp-server-sqlite",
            "mcp-server-system",
            "xdg"
        ]
    );
}

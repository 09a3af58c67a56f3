//! `aim detect --report` against the REAL server: capabilities arrive as declared (not granted)
//! and MCP servers as attached (declared and detected, so no drift).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A project that names an action in source and depends on an HTTP client, and a HOME whose
/// Cursor configuration declares one MCP server with a secret in its environment.
fn fixture(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let project = root.join("project");
    write(
        &project.join("Cargo.toml"),
        "[package]\nname = \"bot\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nreqwest = \"0.13\"\n",
    );
    write(
        &project.join("src/main.rs"),
        "#[aim::action(\"read_database\", resource = \"customers\")]\nfn load() {}\nfn main() { load() }\n",
    );
    let home = root.join("home");
    write(
        &home.join(".cursor/mcp.json"),
        r#"{"mcpServers": {"github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_TOKEN": "ghp_planted_secret_value_123"}}}}"#,
    );
    (project, home)
}

#[test]
fn report_declares_capabilities_and_attaches_mcp_servers() {
    let s = support::start();
    s.run(&["agent", "register", "detect-bot"]);
    let tmp = tempfile::tempdir().unwrap();
    let (project, home) = fixture(tmp.path());

    let out = Command::new(env!("CARGO_BIN_EXE_aim"))
        .args([
            "detect",
            project.to_str().unwrap(),
            "--report",
            "--agent",
            "detect-bot",
        ])
        .args(["--server", &s.url])
        .env("HOME", &home)
        .env("AIM_HOME", s.home.path())
        .env("AIM_PASSPHRASE", "cli test passphrase")
        .env("AIM_KDF", "argon2id$v=19$m=64,t=1,p=1")
        .env_remove("AIM_API_KEY")
        .env_remove("AIM_AGENT")
        .env_remove("VIRTUAL_ENV")
        .env_remove("CONDA_PREFIX")
        .env_remove("NPM_CONFIG_PREFIX")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aim detect --report failed: {stderr}");
    assert!(stderr.contains("declared"), "{stderr}");
    assert!(!stderr.contains("ghp_planted_secret_value_123"));

    let caps = s.json(&["capabilities", "list", "detect-bot"]);
    let declared: Vec<&str> = caps["declared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["capability"].as_str().unwrap())
        .collect();
    assert!(declared.contains(&"access_database"), "{caps}");
    assert!(declared.contains(&"make_api_calls"), "{caps}");
    assert!(
        caps["granted"].as_array().unwrap().is_empty(),
        "declared must not be granted: {caps}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = aim_client::AdminClient::new(
        &aim_client::ClientConfig::new(&s.url)
            .with_api_key(aim_client::ApiKey::from_file(&s.key_file).unwrap()),
    )
    .unwrap();
    let servers = rt
        .block_on(admin.get("/api/v1/agents/detect-bot/mcp-servers"))
        .unwrap();
    let github = servers["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "github")
        .unwrap_or_else(|| panic!("github not attached: {servers}"));
    assert_eq!(github["declared"], true, "{servers}");
    assert_eq!(github["detected"], true, "{servers}");
    assert_eq!(github["drift"], false, "{servers}");
    assert!(!servers.to_string().contains("ghp_planted_secret_value_123"));
}

//! MCP client configuration parsing (every client layout) and the redaction of what is copied
//! out: no panic on any input, and no `env` object ever reaches a finding.
#![no_main]

use std::path::{Path, PathBuf};

use aim_detect::{McpConfigKind, parse_mcp_config, redact};
use libfuzzer_sys::fuzz_target;

const KINDS: [McpConfigKind; 7] = [
    McpConfigKind::ClaudeDesktop,
    McpConfigKind::ClaudeCodeState,
    McpConfigKind::ClaudeCodeProject,
    McpConfigKind::Cursor,
    McpConfigKind::VsCodeMcp,
    McpConfigKind::VsCodeSettings,
    McpConfigKind::Windsurf,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let (findings, _warnings) =
        parse_mcp_config(kind, "user", text, Path::new("/cfg.json"), &[PathBuf::from("/p")]);
    for f in &findings {
        let v = serde_json::to_value(f).expect("findings serialize");
        assert!(v["details"].get("env").is_none());
    }
    let _ = redact::redact_url(text);
    let args: Vec<String> = text.split(' ').map(str::to_owned).collect();
    let (out, _) = redact::redact_args(&args);
    assert_eq!(out.len(), args.len());
});

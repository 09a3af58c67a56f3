//! Capability and MCP-server detection for AI agents: Rust sources, Cargo manifests and lockfiles, config files and MCP client configurations.

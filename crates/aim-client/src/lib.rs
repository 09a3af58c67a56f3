//! Async client of the AIM agent API: registration, signed action verification, results, capabilities, MCP and detections.

//! Encrypted, classified, tamper-evident memory vault for AI agents.

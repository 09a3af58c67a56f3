//! The AIM identity server: agent registration, signed action verification, decisions, approvals, trust scores and audit.

//! Integration tests: the real server on a loopback port, driven over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod auth;
mod authz;
mod bad_input;
mod capabilities;
mod edge;
mod harness;
mod mcp;
mod names;
mod oversight;
mod policies;
mod verifications;
mod witness;

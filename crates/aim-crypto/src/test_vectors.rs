//! The byte-exact test vectors of `specs/aim-python-sdk.md` §3.10, produced with the real
//! AIM Python SDK (seed = bytes 0x00..0x1f, time patched). Other crates' tests use them too.

/// The seed: bytes 0x00..=0x1f.
pub const SEED: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// Public key of [`SEED`], standard base64.
pub const PUBLIC_KEY_B64: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
/// Private key of [`SEED`] in the 64-byte `seed ‖ public` form.
pub const PRIVATE_KEY_64_B64: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8DoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuA==";
/// Private key of [`SEED`] in the 32-byte seed form.
pub const PRIVATE_KEY_32_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The agent id used by every vector.
pub const AGENT_ID: &str = "550e8400-e29b-41d4-a716-446655440000";
/// `X-Timestamp` used by every vector.
pub const UNIX_SECONDS: u64 = 1_761_317_061;

/// V1: the `verify_action` body-signature message.
pub const V1_BODY_MESSAGE: &str = r#"{"action_type": "read_database", "agent_id": "550e8400-e29b-41d4-a716-446655440000", "context": {"f": 100.0, "n": 1, "nested": {"b": [1, {"a": true, "z": null}]}, "query": "SELECT 1", "u": "caf\u00e9"}, "resource": "users_table", "timestamp": "2025-10-24T14:44:21.123456Z"}"#;
/// V1: the body `signature` field.
pub const V1_BODY_SIGNATURE: &str =
    "tpaEYp8r9WI2bhqv9IljDBHYYrsKEqPNbPFHu+PCcFtnJfT3Bejyp9dYScjgYCm74XE6xiKSuFDpIuXcq7LUBA==";
/// V1: the exact HTTP body sent to `POST /api/v1/sdk-api/verifications`.
pub const V1_HTTP_BODY: &str = r#"{"action_type": "read_database", "agent_id": "550e8400-e29b-41d4-a716-446655440000", "context": {"f": 100.0, "n": 1, "nested": {"b": [1, {"a": true, "z": null}]}, "query": "SELECT 1", "u": "caf\u00e9"}, "public_key": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "resource": "users_table", "signature": "tpaEYp8r9WI2bhqv9IljDBHYYrsKEqPNbPFHu+PCcFtnJfT3Bejyp9dYScjgYCm74XE6xiKSuFDpIuXcq7LUBA==", "timestamp": "2025-10-24T14:44:21.123456Z"}"#;
/// V1: path of the verification request.
pub const V1_PATH: &str = "/api/v1/sdk-api/verifications";
/// V1: `X-Signature` of the verification request.
pub const V1_HEADER_SIGNATURE: &str =
    "Xm9fq4545Exy5wlttwfxJL3+Fx+eMFhpjLmbyB4s21r/w2uBTsaF8HJD2pruqERM8bh39wpoHi617ViN3NygDA==";
/// V1: the `log_action_result` body that follows.
pub const V1_RESULT_BODY: &str = r#"{"error_message": null, "result": "success", "result_summary": "ok", "timestamp": "2025-10-24T14:44:21.123456+00:00"}"#;
/// V1: path of the result request.
pub const V1_RESULT_PATH: &str =
    "/api/v1/sdk-api/verifications/11111111-2222-3333-4444-555555555555/result";
/// V1: `X-Signature` of the result request.
pub const V1_RESULT_HEADER_SIGNATURE: &str =
    "i6xSmLOXW3GmIHdi3pQJdC/CeRxkm0Qx1N+MEQX7deVKnoto+vqphb1a+BGJhAc70/lz1su73Gj+g1dd5lJXBg==";

/// V2: body-signature message with `resource=None` and an empty context.
pub const V2_BODY_MESSAGE: &str = r#"{"action_type": "read_database", "agent_id": "550e8400-e29b-41d4-a716-446655440000", "context": {}, "resource": null, "timestamp": "2025-10-24T14:44:21Z"}"#;
/// V2: its signature.
pub const V2_BODY_SIGNATURE: &str =
    "ZHWidoVaQ/bLowRtxoQrlMjtKd2HIAXs7d9gavH5hPL44GB46Xi9B+fC4F5SDsqFvs8LIuiLajH2yXMd5kskCg==";

/// V3: path of a GET poll with no body.
pub const V3_PATH: &str = "/api/v1/sdk-api/verifications/11111111-2222-3333-4444-555555555555";
/// V3: its `X-Signature`.
pub const V3_HEADER_SIGNATURE: &str =
    "ktIHKSncjbypzS9PixBhq5zKBNCOKjBKnjumFOXZr8cpjxGCSJlLpTMd6RzkYVhygHExAtrM182TtyutJGuuAg==";

/// V4: a detection report body.
pub const V4_BODY: &str = r#"{"detections": [{"confidence": 100.0, "details": {"call_count": 1}, "detectionMethod": "sdk_runtime", "mcpServer": "filesystem", "sdkVersion": "aim-sdk-python@1.0.0", "timestamp": "2025-10-24T14:44:21+00:00"}]}"#;
/// V4: its path.
pub const V4_PATH: &str = "/api/v1/detection/agents/550e8400-e29b-41d4-a716-446655440000/report";
/// V4: its `X-Signature`.
pub const V4_HEADER_SIGNATURE: &str =
    "0KnuKTUhrL3NkxxTftmsqF909wWN7csGsRF3vemBmzwp2yP7cPo7fAdurg2PnzUXoCd8ogn2hWKT/lJISLwtDQ==";

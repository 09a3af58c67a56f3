//! Transport faults the real AIM server cannot be made to produce on demand (503, 429 with
//! `Retry-After`, a hanging answer), served by a tiny axum stub on a loopback port. Everything
//! the real server can do is tested against the real server in `server.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aim_client::{
    ActionRequest, AgentIdentity, AimClient, ApiKey, ClientConfig, Error, RetryPolicy,
    TransportKind,
};
use aim_crypto::canonical::parse;
use aim_crypto::request_v2::origin_of;
use aim_crypto::{ActionPayload, AgentKeypair, RequestV2, RequestVerifier, SignedRequest};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

const AGENT_ID: &str = "550e8400-e29b-41d4-a716-446655440000";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

#[derive(Clone)]
enum Canned {
    Status(u16, &'static str, Option<&'static str>),
    Hang(Duration),
}

#[derive(Clone, Default)]
struct Stub {
    replies: Arc<Mutex<VecDeque<Canned>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn handle(
    axum::extract::State(stub): axum::extract::State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    stub.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let next = stub.replies.lock().unwrap().pop_front();
    match next {
        Some(Canned::Status(code, body, retry_after)) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), body.to_owned()).into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Some(Canned::Hang(d)) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, "{}").into_response()
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, "no canned reply").into_response(),
    }
}

async fn start_stub(replies: Vec<Canned>) -> (Stub, String) {
    let stub = Stub::default();
    stub.replies.lock().unwrap().extend(replies);
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (stub, format!("http://{addr}"))
}

fn make_client(url: &str, retry: RetryPolicy) -> (AimClient, AgentKeypair) {
    let keypair = AgentKeypair::generate().unwrap();
    let identity = AgentIdentity::new("stub-agent", AGENT_ID, url, keypair.clone()).unwrap();
    let mut config = ClientConfig::new(url).with_api_key(ApiKey::new("aim_test_key").unwrap());
    config.retry = retry;
    config.request_timeout = Duration::from_millis(300);
    (AimClient::new(config, identity).unwrap(), keypair)
}

fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
    }
}

const APPROVED: &str = r#"{"id": "11111111-2222-3333-4444-555555555555", "status": "approved", "approved_by": "system"}"#;

/// With `request_signatures = V1` (servers that predate v2) the client signs as the AIM SDK
/// does: no version header, no nonce, the path without its query.
#[tokio::test]
async fn v1_signatures_on_request() {
    let (stub, url) = start_stub(vec![Canned::Status(201, APPROVED, None)]).await;
    let keypair = AgentKeypair::generate().unwrap();
    let identity = AgentIdentity::new("stub-agent", AGENT_ID, &url, keypair.clone()).unwrap();
    let mut config = ClientConfig::new(&url).with_api_key(ApiKey::new("aim_test_key").unwrap());
    config.request_signatures = aim_crypto::SignatureVersion::V1;
    let client = AimClient::new(config, identity).unwrap();
    client
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap();
    let seen = stub.seen.lock().unwrap().clone();
    let s = &seen[0];
    assert!(s.headers.get("x-aim-signature-version").is_none());
    assert!(s.headers.get("x-aim-nonce").is_none());
    let h = |n: &str| s.headers.get(n).unwrap().to_str().unwrap().to_owned();
    let ts = h("x-timestamp");
    RequestVerifier::default()
        .verify(
            &keypair.public_key(),
            &SignedRequest {
                method: "POST",
                path: &s.path,
                timestamp: &ts,
                signature: &h("x-signature"),
                body: &s.body,
            },
            ts.parse().unwrap(),
        )
        .unwrap();
}

#[tokio::test]
async fn retries_503_and_429_honouring_retry_after_and_re_signs_each_attempt() {
    let (stub, url) = start_stub(vec![
        Canned::Status(503, r#"{"error": "overloaded"}"#, None),
        Canned::Status(429, r#"{"error": "slow down"}"#, Some("1")),
        Canned::Status(201, APPROVED, None),
    ])
    .await;
    let (client, keypair) = make_client(&url, fast_retry(4));
    let approval = client
        .verify_action(&ActionRequest::new("read_database").resource("customers"))
        .await
        .unwrap();
    assert_eq!(approval.approved_by.as_deref(), Some("system"));

    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    // Retry-After: 1 was honoured between the 429 and the last attempt.
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(950));
    let mut signatures = Vec::new();
    for s in &seen {
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.path, "/api/v1/sdk-api/verifications");
        let h = |n: &str| s.headers.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("x-agent-id"), AGENT_ID);
        assert_eq!(h("x-api-key"), "aim_test_key");
        assert_eq!(h("x-public-key"), keypair.public_key().to_b64());
        let (ts, sig, nonce) = (h("x-timestamp"), h("x-signature"), h("x-aim-nonce"));
        assert_eq!(h("x-aim-signature-version"), "2");
        // The header signature (v2, the default) covers the exact bytes sent, the agent id,
        // the path and this server's origin.
        let now: u64 = ts.parse().unwrap();
        RequestVerifier::default()
            .verify_v2(
                &keypair.public_key(),
                &RequestV2 {
                    agent_id: AGENT_ID,
                    method: "POST",
                    path_and_query: &s.path,
                    origin: &origin_of(&url).unwrap(),
                    timestamp: &ts,
                    nonce: &nonce,
                    body: &s.body,
                },
                &sig,
                &origin_of(&url).unwrap(),
                now,
            )
            .unwrap();
        // The body signature verifies as the server rebuilds it.
        let body = parse(&s.body).unwrap();
        let payload = ActionPayload {
            action_type: body.get("action_type").unwrap().as_str().unwrap().into(),
            agent_id: body.get("agent_id").unwrap().as_str().unwrap().into(),
            context: body.get("context").unwrap().clone(),
            resource: body.get("resource").unwrap().as_str().map(str::to_owned),
            timestamp: body.get("timestamp").unwrap().as_str().unwrap().into(),
            risk_level: None,
        };
        payload
            .verify(
                &keypair.public_key(),
                body.get("signature").unwrap().as_str().unwrap(),
            )
            .unwrap();
        signatures.push((nonce, sig));
    }
    // Every attempt was signed afresh with a new nonce: the server's replay guard would reject
    // a repeated one.
    for pair in signatures.windows(2) {
        assert_ne!(pair[0].0, pair[1].0);
        assert_ne!(pair[0].1, pair[1].1);
    }
}

#[tokio::test]
async fn gives_up_after_the_bounded_attempts_and_never_retries_other_4xx() {
    let (stub, url) = start_stub(vec![
        Canned::Status(502, "bad gateway", None),
        Canned::Status(502, "bad gateway", None),
    ])
    .await;
    let (client, _) = make_client(&url, fast_retry(2));
    let err = client
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 502, .. }), "{err:?}");
    assert_eq!(stub.seen.lock().unwrap().len(), 2);

    for (status, body) in [(400, r#"{"error": "bad body"}"#), (404, "{}"), (409, "{}")] {
        let (stub, url) = start_stub(vec![Canned::Status(status, body, None)]).await;
        let (client, _) = make_client(&url, fast_retry(4));
        let err = client
            .verify_action(&ActionRequest::new("read_database"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Http { status: s, .. } if s == &status),
            "{err:?}"
        );
        assert_eq!(
            stub.seen.lock().unwrap().len(),
            1,
            "status {status} was retried"
        );
    }
    let (_, url) = start_stub(vec![Canned::Status(
        401,
        r#"{"error": "Invalid signature"}"#,
        None,
    )])
    .await;
    let (client, _) = make_client(&url, fast_retry(4));
    let err = client
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Authentication { status: 401, message } if message == "Invalid signature"),
        "{err:?}"
    );
}

#[tokio::test]
async fn read_timeouts_are_retried_then_reported_as_transport_timeouts() {
    let (stub, url) = start_stub(vec![
        Canned::Hang(Duration::from_secs(2)),
        Canned::Status(201, APPROVED, None),
    ])
    .await;
    let (client, _) = make_client(&url, fast_retry(3));
    client
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap();
    assert_eq!(stub.seen.lock().unwrap().len(), 2);

    let (_, url) = start_stub(vec![
        Canned::Hang(Duration::from_secs(2)),
        Canned::Hang(Duration::from_secs(2)),
    ])
    .await;
    let (client, _) = make_client(&url, fast_retry(2));
    let err = client
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_lost_result_answer_retried_into_409_counts_as_recorded() {
    let (stub, url) = start_stub(vec![
        Canned::Status(503, "", None),
        Canned::Status(409, r#"{"error": "result already recorded"}"#, None),
    ])
    .await;
    let (client, _) = make_client(&url, fast_retry(3));
    client
        .log_action_result(
            "11111111-2222-3333-4444-555555555555",
            true,
            Some("ok"),
            None,
        )
        .await
        .unwrap();
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].path,
        "/api/v1/sdk-api/verifications/11111111-2222-3333-4444-555555555555/result"
    );
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["result"], "success");
    assert_eq!(body["result_summary"], "ok");
}

//! Gates by classification, the pluggable gate traits and the boundary-daemon client
//! against a real Unix-socket peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use vault_store::{
    Approval, Boundary, BoundaryRequest, CallbackApprover, Classification, DenyReason, GateConfig,
    GateError, GateRequest, Gates, MemoryId, MemoryInput, Presence, RecallRequest,
    UnixSocketBoundary, VaultError,
};

/// A boundary-daemon peer answering each connection with `answer(request_json)`; `None`
/// means: read the request and never answer (hang).
fn daemon(
    path: &Path,
    answer: impl Fn(&serde_json::Value) -> Option<String> + Send + 'static,
) -> Arc<Mutex<Vec<serde_json::Value>>> {
    let listener = UnixListener::bind(path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            seen2.lock().unwrap().push(v.clone());
            match answer(&v) {
                Some(a) => {
                    let _ = conn.write_all(a.as_bytes());
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        }
    });
    seen
}

fn req() -> GateRequest {
    GateRequest {
        memory_id: MemoryId::from_bytes([7; 16]),
        classification: Classification::Vaulted,
        profile: "agent".into(),
        requester: "agent-7".into(),
        justification: "audit".into(),
        purpose: "recall".into(),
    }
}

#[test]
fn boundary_client_permit_deny_garbage_hang_dead() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let seen = daemon(&p("permit"), |_| {
        Some(
            "{\"permitted\": true, \"reason\": \"ok\", \"operational_mode\": \"offline\"}\n".into(),
        )
    });
    let d = UnixSocketBoundary::new(p("permit"))
        .check_recall(&req())
        .unwrap();
    assert!(d.permitted);
    assert_eq!(d.operational_mode.as_deref(), Some("offline"));
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["command"], "check_recall");
    assert_eq!(sent["params"]["memory_class"], 4);
    assert_eq!(
        sent["params"]["memory_id"],
        MemoryId::from_bytes([7; 16]).to_string()
    );
    assert_eq!(sent["params"]["requester"], "agent-7");
    assert_eq!(sent["params"]["justification"], "audit");

    daemon(&p("deny"), |_| {
        Some("{\"permitted\": false, \"reason\": \"airgap required\"}\n".into())
    });
    let d = UnixSocketBoundary::new(p("deny"))
        .check_recall(&req())
        .unwrap();
    assert!(!d.permitted && d.reason == "airgap required");

    daemon(&p("truthy"), |_| Some("{\"permitted\": \"yes\"}\n".into()));
    assert!(
        !UnixSocketBoundary::new(p("truthy"))
            .check_recall(&req())
            .unwrap()
            .permitted
    );

    daemon(&p("garbage"), |_| Some("permitted: true\n".into()));
    assert!(matches!(
        UnixSocketBoundary::new(p("garbage")).check_recall(&req()),
        Err(GateError::Protocol(_))
    ));

    daemon(&p("close"), |_| Some(String::new()));
    assert!(matches!(
        UnixSocketBoundary::new(p("close")).check_recall(&req()),
        Err(GateError::Protocol(_))
    ));

    daemon(&p("hang"), |_| None);
    let t = std::time::Instant::now();
    let r = UnixSocketBoundary::new(p("hang"))
        .with_timeout(Duration::from_millis(200))
        .check_recall(&req());
    assert!(matches!(r, Err(GateError::Timeout(200))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2));

    assert!(matches!(
        UnixSocketBoundary::new(p("nobody")).check_recall(&req()),
        Err(GateError::Unavailable(_))
    ));
    // A socket file whose daemon died.
    drop(UnixListener::bind(p("dead")).unwrap());
    assert!(matches!(
        UnixSocketBoundary::new(p("dead")).check_recall(&req()),
        Err(GateError::Unavailable(_))
    ));
}

struct CountingPresence(AtomicUsize, bool);
impl Presence for CountingPresence {
    fn confirm(&self, _: &GateRequest) -> Result<(), GateError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if self.1 {
            Ok(())
        } else {
            Err(GateError::Refused("no touch".into()))
        }
    }
}

struct FixedBoundary(bool);
impl Boundary for FixedBoundary {
    fn check_recall(
        &self,
        _: &BoundaryRequest,
    ) -> Result<vault_store::BoundaryDecision, GateError> {
        Ok(vault_store::BoundaryDecision {
            permitted: self.0,
            reason: "fixed".into(),
            operational_mode: None,
        })
    }
}

fn approve_all() -> Arc<CallbackApprover> {
    Arc::new(CallbackApprover::new(|_| {
        Ok(Approval {
            approver: "alice".into(),
        })
    }))
}

#[test]
fn default_gates_by_level() {
    let f = Fixture::new();
    drop(f.with_profile());
    // No gates plugged in: 0–2 work (2 with a justification), 3–5 deny.
    let v = f.open();
    let mut s = v.unlock("agent", pw()).unwrap();
    let ids: Vec<MemoryId> = (0u8..=5)
        .map(|l| {
            s.store(MemoryInput::text(format!("level {l}")).classification(l))
                .unwrap()
        })
        .collect();
    s.recall(ids[0], RecallRequest::new("")).unwrap();
    s.recall(ids[1], RecallRequest::new("")).unwrap();
    assert_eq!(
        s.recall(ids[2], RecallRequest::new("  "))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::JustificationRequired)
    );
    s.recall(ids[2], RecallRequest::new("needed for task 12"))
        .unwrap();
    assert_eq!(
        s.recall(ids[3], RecallRequest::new("j"))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::ApproverUnavailable)
    );
    assert_eq!(
        s.recall(ids[4], RecallRequest::new("j"))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::BoundaryUnavailable)
    );
    assert_eq!(
        s.recall(ids[5], RecallRequest::new("j"))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::BoundaryUnavailable)
    );
    drop(s);
    drop(v);

    // Everything plugged in and permitting: 3 and 4 pass; 4 then cools down; 5 needs presence.
    let presence = Arc::new(CountingPresence(AtomicUsize::new(0), true));
    let v = f.open_with(
        Gates::new()
            .approver(approve_all())
            .boundary(Arc::new(FixedBoundary(true)))
            .presence(presence.clone()),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    s.recall(ids[3], RecallRequest::new("j")).unwrap();
    assert_eq!(
        last_event(&v).get("approver").unwrap().as_str(),
        Some("alice")
    );
    s.recall(ids[4], RecallRequest::new("j")).unwrap();
    assert!(matches!(
        s.recall(ids[4], RecallRequest::new("j"))
            .unwrap_err()
            .deny_reason(),
        Some(DenyReason::Cooldown { .. })
    ));
    f.clock.advance(5 * 60 * 1000);
    s.recall(ids[4], RecallRequest::new("j")).unwrap();
    s.recall(ids[5], RecallRequest::new("j")).unwrap();
    assert_eq!(presence.0.load(Ordering::SeqCst), 1);
    drop(s);
    drop(v);

    // Refusals deny with their reason.
    let mut v = f.open_with(
        Gates::new()
            .approver(Arc::new(CallbackApprover::new(|_| {
                Err(GateError::Refused("bob said no".into()))
            })))
            .boundary(Arc::new(FixedBoundary(true)))
            .presence(Arc::new(CountingPresence(AtomicUsize::new(0), false))),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    assert!(
        matches!(s.recall(ids[3], RecallRequest::new("j")).unwrap_err().deny_reason(), Some(DenyReason::ApprovalDenied(r)) if r.contains("bob said no"))
    );
    drop(s);
    v.set_gates(
        Gates::new()
            .approver(approve_all())
            .boundary(Arc::new(FixedBoundary(true)))
            .presence(Arc::new(CountingPresence(AtomicUsize::new(0), false))),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    f.clock.advance(5 * 60 * 1000);
    assert!(
        matches!(s.recall(ids[5], RecallRequest::new("j")).unwrap_err().deny_reason(), Some(DenyReason::PresenceDenied(r)) if r.contains("no touch"))
    );
    drop(s);
    v.set_gates(
        Gates::new()
            .approver(approve_all())
            .boundary(Arc::new(FixedBoundary(false))),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    assert!(matches!(
        s.recall(ids[4], RecallRequest::new("j"))
            .unwrap_err()
            .deny_reason(),
        Some(DenyReason::BoundaryDenied(_))
    ));
    let ev = last_event(&v);
    assert_eq!(
        (ev.kind.as_str(), ev.get("reason").unwrap().as_str()),
        ("memory.recall.denied", Some("boundary_denied"))
    );
}

#[test]
fn presence_is_required_for_black_even_when_everything_else_permits() {
    let f = Fixture::new();
    drop(f.with_profile());
    let v = f.open_with(
        Gates::new()
            .approver(approve_all())
            .boundary(Arc::new(FixedBoundary(true))),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s
        .store(MemoryInput::text("black").classification(5))
        .unwrap();
    assert_eq!(
        s.recall(id, RecallRequest::new("j"))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::PresenceUnavailable)
    );
}

#[test]
fn configured_boundary_socket_is_used_and_a_dead_daemon_denies() {
    let f = Fixture::new();
    let v = f.with_profile_gates(person_gates());
    let sock = f.dir.path().join("boundary.sock");
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s
        .store(MemoryInput::text("private").classification(2))
        .unwrap();
    let cfg = GateConfig {
        boundary_socket: Some(sock.to_string_lossy().into_owned()),
        ..GateConfig::default()
    };
    s.set_gate_config(&cfg).unwrap();
    assert_eq!(last_event(&v).kind, "gates.config.change");
    // Configured but nobody listening: level 2 now needs the daemon, and it is dead.
    assert!(matches!(
        s.recall(id, RecallRequest::new("j"))
            .unwrap_err()
            .deny_reason(),
        Some(DenyReason::BoundaryError(_))
    ));
    let seen = daemon(&sock, |v| {
        let ok = v["params"]["memory_class"] == 2;
        Some(format!("{{\"permitted\": {ok}, \"reason\": \"class\"}}\n"))
    });
    s.recall(id, RecallRequest::new("j")).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Level 1 is never sent to the daemon by default.
    let l1 = s.store(MemoryInput::text("working")).unwrap();
    s.recall(l1, RecallRequest::new("")).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn expiry_denies_and_ephemeral_memories_are_purged() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let now = vault_store::Clock::now_ms(&f.clock);
    let eph = s
        .store(
            MemoryInput::text("scratch")
                .classification(0)
                .expires_at_ms(now + 1_000),
        )
        .unwrap();
    let work = s
        .store(
            MemoryInput::text("dated")
                .classification(1)
                .expires_at_ms(now + 1_000),
        )
        .unwrap();
    s.recall(eph, RecallRequest::new("")).unwrap();
    f.clock.advance(1_000);
    assert_eq!(
        s.recall(work, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::Expired)
    );
    assert_eq!(s.purge_expired().unwrap(), 1);
    assert_eq!(
        s.recall(eph, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::Tombstoned)
    );
    let content: Option<Vec<u8>> = v
        .connection()
        .query_row(
            "SELECT content FROM memories WHERE classification = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(content.is_none());
    assert!(event_kinds(&v).contains(&"memory.purge".to_string()));
}

#[test]
fn tombstones_erase_content_keep_record_and_history() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s
        .store(MemoryInput::text("forget me please").tag("t1"))
        .unwrap();
    s.recall(id, RecallRequest::new("")).unwrap();
    assert!(s.tombstone(id, "user asked").unwrap());
    assert!(!s.tombstone(id, "again").unwrap());
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::Tombstoned)
    );
    let (content, meta, words): (Option<Vec<u8>>, Option<Vec<u8>>, i64) = v
        .connection()
        .query_row(
            "SELECT content, meta, (SELECT count(*) FROM memory_words) + (SELECT count(*) FROM memory_labels) FROM memories",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(content.is_none() && meta.is_none() && words == 0);
    assert!(
        s.search(&vault_store::SearchQuery::new("forget"))
            .unwrap()
            .is_empty()
    );
    let listed = s
        .list(&vault_store::ListFilter {
            include_tombstoned: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].tombstoned_at_ms.is_some());
    let kinds = event_kinds(&v);
    for k in ["memory.store", "memory.recall", "memory.tombstone"] {
        assert!(kinds.contains(&k.to_string()), "{k}");
    }
    let _ = VaultError::MemoryNotFound(String::new());
}

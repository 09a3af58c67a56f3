//! What an agent holding only its own key can no longer do through the library: answer
//! guesses about sealed memories by searching (point 5), change gates, leave lockdown
//! (point 6), or keep erased words in the file after a tombstone (point 8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use vault_store::{
    Approval, Boundary, BoundaryDecision, BoundaryRequest, CallbackApprover, DenyReason,
    GateConfig, GateError, GateRequest, Gates, HumanFactor, ListFilter, MemoryInput, Presence,
    SearchQuery, Session, VaultError,
};

struct Allow;

impl Boundary for Allow {
    fn check_recall(&self, _: &BoundaryRequest) -> Result<BoundaryDecision, GateError> {
        Ok(BoundaryDecision {
            permitted: true,
            reason: "ok".into(),
            operational_mode: None,
        })
    }
}

struct Counting(Arc<AtomicUsize>, bool);

impl Presence for Counting {
    fn confirm(&self, _: &GateRequest) -> Result<(), GateError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if self.1 {
            Ok(())
        } else {
            Err(GateError::Refused("no touch".into()))
        }
    }
}

/// An approver that says yes to everything, like an agent answering the terminal prompt.
fn rubber_stamp() -> Arc<CallbackApprover> {
    Arc::new(CallbackApprover::new(|_| {
        Ok(Approval {
            approver: "terminal".into(),
        })
    }))
}

fn hits(s: &mut Session<'_>, q: &SearchQuery) -> Result<usize, VaultError> {
    s.search(q).map(|h| h.len())
}

#[test]
fn search_does_not_answer_guesses_about_sealed_memories() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let black = s
        .store(
            MemoryInput::text("launch code zebra 7781")
                .classification(5)
                .tag("codes"),
        )
        .unwrap();
    let sealed = s
        .store(MemoryInput::text("zebra 7781 backup").classification(3))
        .unwrap();
    // The attack: guess words. With the default query nothing above level 2 answers.
    assert_eq!(hits(&mut s, &SearchQuery::new("zebra 7781")).unwrap(), 0);
    assert_eq!(hits(&mut s, &SearchQuery::new("zebra 7782")).unwrap(), 0);
    // Asking for the sealed levels explicitly runs their gates: no justification, denied.
    let e = hits(
        &mut s,
        &SearchQuery::new("zebra 7781").classifications(0, 5),
    )
    .unwrap_err();
    assert_eq!(e.deny_reason(), Some(&DenyReason::JustificationRequired));
    let ev = last_event(&v);
    assert_eq!(ev.kind, "memory.search.denied");
    assert_eq!(ev.get("classification_max").unwrap().as_int(), Some(5));
    // With a justification, level 3 needs a human approver, which this vault lacks.
    let e = hits(
        &mut s,
        &SearchQuery::new("zebra 7781")
            .classifications(3, 3)
            .justification("guessing"),
    )
    .unwrap_err();
    assert_eq!(e.deny_reason(), Some(&DenyReason::ApproverUnavailable));
    // Listing by the sealed memory's tag does not confirm the tag either.
    let by_tag = s
        .list(&ListFilter {
            tag: Some("codes".into()),
            ..ListFilter::default()
        })
        .unwrap();
    assert!(by_tag.is_empty(), "{by_tag:?}");
    drop(s);

    // With every gate plugged in and passing, the gated search finds them.
    let touches = Arc::new(AtomicUsize::new(0));
    let v = f.open_with(
        Gates::new()
            .approver(rubber_stamp())
            .boundary(Arc::new(Allow))
            .presence(Arc::new(Counting(touches.clone(), true))),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    let q = SearchQuery::new("zebra 7781")
        .classifications(0, 5)
        .justification("incident 42");
    let mut found: Vec<_> = s
        .search(&q)
        .unwrap()
        .into_iter()
        .map(|h| h.memory_id)
        .collect();
    found.sort();
    let mut want = vec![black, sealed];
    want.sort();
    assert_eq!(found, want);
    assert_eq!(touches.load(Ordering::SeqCst), 1, "presence asked once");
    let ev = last_event(&v);
    assert_eq!(ev.kind, "memory.search");
    assert_eq!(ev.get("approver").unwrap().as_str(), Some("terminal"));
    assert_eq!(
        hits(
            &mut s,
            &SearchQuery::new("zebra 7782")
                .classifications(0, 5)
                .justification("incident 42")
        )
        .unwrap(),
        0
    );
    drop(s);

    // Level 5 without a touch: denied.
    let v = f.open_with(
        Gates::new()
            .approver(rubber_stamp())
            .boundary(Arc::new(Allow))
            .presence(Arc::new(Counting(touches, false))),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    let e = hits(&mut s, &q).unwrap_err();
    assert!(
        matches!(e.deny_reason(), Some(DenyReason::PresenceDenied(_))),
        "{e}"
    );
}

#[test]
fn with_only_its_key_the_agent_cannot_change_gates_or_leave_lockdown() {
    let f = Fixture::new();
    // The agent's vault: its key, and an approver it answers itself (a terminal under
    // `script`): not a human factor.
    let v = f.with_profile_gates(Gates::new().approver(rubber_stamp()));
    let mut s = v.unlock("agent", pw()).unwrap();
    let mut open = GateConfig::default();
    for l in &mut open.levels {
        l.approval = false;
        l.presence = false;
    }
    let e = s.set_gate_config(&open).unwrap_err();
    assert!(
        matches!(e.deny_reason(), Some(DenyReason::HumanFactorRequired(_))),
        "{e}"
    );
    assert_eq!(last_event(&v).kind, "admin.denied");
    assert_eq!(s.gate_config().unwrap(), GateConfig::default());
    let e = s.authorize_admin("presence.enroll").unwrap_err();
    assert!(matches!(
        e.deny_reason(),
        Some(DenyReason::HumanFactorRequired(_))
    ));

    v.enter_lockdown("suspected compromise").unwrap();
    let e = s.leave_lockdown().unwrap_err();
    assert!(matches!(
        e.deny_reason(),
        Some(DenyReason::HumanFactorRequired(_))
    ));
    drop(s);
    let e = v.leave_lockdown("agent", pw()).unwrap_err();
    assert!(matches!(
        e.deny_reason(),
        Some(DenyReason::HumanFactorRequired(_))
    ));
    let s = v.unlock("agent", pw()).unwrap();
    assert!(s.lockdown_active().unwrap(), "the lockdown stays");
}

#[test]
fn a_human_factor_authorizes_one_change() {
    let f = Fixture::new();
    let touches = Arc::new(AtomicUsize::new(0));
    let v = f.with_profile_gates(Gates::new().presence(Arc::new(Counting(touches.clone(), true))));
    let mut s = v.unlock("agent", pw()).unwrap();
    let mut cfg = GateConfig::default();
    cfg.levels[2].approval = true;
    s.set_gate_config(&cfg).unwrap();
    assert_eq!(touches.load(Ordering::SeqCst), 1);
    assert_eq!(
        last_event(&v).get("authorized_by").unwrap().as_str(),
        Some("presence")
    );
    s.set_gate_config(&GateConfig::default()).unwrap();
    assert_eq!(touches.load(Ordering::SeqCst), 2, "each change asks again");
    assert_eq!(
        s.authorize_admin("presence.enroll").unwrap(),
        HumanFactor::Presence
    );
    v.enter_lockdown("drill").unwrap();
    s.leave_lockdown().unwrap();
    assert_eq!(touches.load(Ordering::SeqCst), 3, "the held one was used");
    assert!(!s.lockdown_active().unwrap());
    drop(s);

    // A person's approval through an approver that vouches for one.
    let v = f.open_with(
        Gates::new().approver(Arc::new(CallbackApprover::person(|r| {
            assert_eq!(r.purpose, "gates.config.change");
            Ok(Approval {
                approver: "aim:alice".into(),
            })
        }))),
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    s.set_gate_config(&GateConfig::default()).unwrap();
    assert_eq!(
        last_event(&v).get("authorized_by").unwrap().as_str(),
        Some("approval:aim:alice")
    );
}

#[test]
fn the_recovery_key_is_a_human_factor() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let (key, _fingerprint) = s.create_recovery_key("e1").unwrap();
    drop(s);
    v.enter_lockdown("drill").unwrap();
    assert!(v.leave_lockdown("agent", pw()).is_err());
    let mut r = v.unlock_with_recovery_key("agent", "e1", &key).unwrap();
    r.leave_lockdown().unwrap();
    r.set_gate_config(&GateConfig::default()).unwrap();
    assert_eq!(
        last_event(&v).get("authorized_by").unwrap().as_str(),
        Some("recovery_key")
    );
}

/// Every file of the vault (database, WAL) as one byte string.
fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut out = std::fs::read(path).unwrap();
    let wal = path.with_extension("db-wal");
    if let Ok(w) = std::fs::read(wal) {
        out.extend(w);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_tombstone_removes_the_word_tokens_from_the_file() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let keep = s.store(MemoryInput::text("kept memory about tea")).unwrap();
    let gone = s
        .store(MemoryInput::text("quixotic xylophone 918273"))
        .unwrap();
    let words: String = v
        .connection()
        .query_row(
            "SELECT words FROM memory_words WHERE seq = (SELECT max(seq) FROM memory_words)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let tokens: Vec<String> = words.split(' ').map(str::to_owned).collect();
    assert_eq!(tokens.len(), 3);
    // The tail of each token (FTS5 prefix-compresses terms), as the file stores it.
    let tails: Vec<Vec<u8>> = tokens.iter().map(|t| t.as_bytes()[4..].to_vec()).collect();
    v.connection()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let before = file_bytes(&f.path);
    assert!(
        tails.iter().all(|t| contains(&before, t)),
        "tokens are indexed"
    );

    assert!(s.tombstone(gone, "forget").unwrap());
    let after = file_bytes(&f.path);
    for (t, tail) in tokens.iter().zip(&tails) {
        assert!(!contains(&after, tail), "token {t} is still in the file");
    }
    assert!(s.search(&SearchQuery::new("xylophone")).unwrap().is_empty());
    let found: Vec<_> = s
        .search(&SearchQuery::new("tea"))
        .unwrap()
        .into_iter()
        .map(|h| h.memory_id)
        .collect();
    assert_eq!(found, vec![keep], "the other memories stay searchable");
}

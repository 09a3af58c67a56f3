//! Keyed full-text search: ranked, filtered, never returning content, audited without terms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use vault_store::{ListFilter, MemoryInput, SearchQuery};

#[test]
fn ranked_filtered_search_over_keyed_tokens() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let tea = s
        .store(
            MemoryInput::text("The user prefers green tea in the morning")
                .tag("prefs")
                .intent("intent-1"),
        )
        .unwrap();
    let coffee = s
        .store(MemoryInput::text("The user drinks coffee, never tea before noon").classification(2))
        .unwrap();
    let other = s
        .store(MemoryInput::text("Quarterly report is due Friday").tag("work"))
        .unwrap();
    f.clock.advance(10_000);
    let late = s
        .store(MemoryInput::text("tea tea tea").metadata(br#"{"kind":"beverage"}"#.to_vec()))
        .unwrap();

    let ids = |q: &SearchQuery, s: &mut vault_store::Session<'_>| {
        s.search(q)
            .unwrap()
            .into_iter()
            .map(|h| h.memory_id)
            .collect::<Vec<_>>()
    };
    let all_tea = ids(&SearchQuery::new("TEA"), &mut s);
    assert_eq!(all_tea.len(), 3);
    assert!(!all_tea.contains(&other));
    assert_eq!(ids(&SearchQuery::new("green tea"), &mut s), vec![tea]);
    let mut any = ids(&SearchQuery::new("green coffee").any_word(), &mut s);
    any.sort();
    let mut want = vec![tea, coffee];
    want.sort();
    assert_eq!(any, want);
    assert_eq!(
        ids(&SearchQuery::new("tea").classifications(2, 2), &mut s),
        vec![coffee]
    );
    assert_eq!(
        ids(&SearchQuery::new("tea").tag("prefs"), &mut s),
        vec![tea]
    );
    assert_eq!(
        ids(&SearchQuery::new("tea").intent("intent-1"), &mut s),
        vec![tea]
    );
    let mut q = SearchQuery::new("tea");
    q.created_after_ms = Some(vault_store::Clock::now_ms(&f.clock));
    assert_eq!(ids(&q, &mut s), vec![late]);
    assert_eq!(
        ids(&SearchQuery::new("beverage"), &mut s),
        vec![late],
        "metadata is indexed"
    );
    assert!(ids(&SearchQuery::new("nonexistentword"), &mut s).is_empty());
    assert!(s.search(&SearchQuery::new(" ,, ")).is_err());

    let ev = last_event(&v);
    assert_eq!(ev.kind, "memory.search");
    let rendered = format!("{ev:?}");
    assert!(
        !rendered.contains("tea") && !rendered.contains("beverage"),
        "{rendered}"
    );

    // Tags and intents filter listings too.
    let by_intent = s.memories_for_intent("intent-1").unwrap();
    assert_eq!(
        by_intent.iter().map(|m| m.memory_id).collect::<Vec<_>>(),
        vec![tea]
    );
    s.link_intent(other, "intent-1").unwrap();
    assert_eq!(s.memories_for_intent("intent-1").unwrap().len(), 2);
    let work = s
        .list(&ListFilter {
            tag: Some("work".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(work.len(), 1);
    let r = s
        .recall(other, vault_store::RecallRequest::new(""))
        .unwrap();
    assert_eq!(r.intents, vec!["intent-1".to_string()]);
    assert_eq!(r.tags, vec!["work".to_string()]);
}

#[test]
fn other_profiles_tokens_never_match() {
    let f = Fixture::new();
    let v = f.with_profile();
    v.create_profile("b", vault_store::Enrollment::passphrase_with("pw", fast()))
        .unwrap();
    let mut a = v.unlock("agent", pw()).unwrap();
    a.store(MemoryInput::text("shared word banana")).unwrap();
    drop(a);
    let mut b = v.unlock("b", pw()).unwrap();
    assert!(b.search(&SearchQuery::new("banana")).unwrap().is_empty());
    let words: String = v
        .connection()
        .query_row("SELECT words FROM memory_words", [], |r| r.get(0))
        .unwrap();
    assert!(!words.contains("banana"));
    assert_eq!(words.split(' ').count(), 3);
}

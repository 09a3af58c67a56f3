//! Property tests: every inclusion and consistency proof verifies and any mutation fails; the
//! event encoding round-trips, is canonical, and catches every single-byte change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::collections::BTreeMap;

use proptest::prelude::*;
use vault_audit::hash::leaf_hash;
use vault_audit::{
    ConsistencyProof, Event, FieldValue, Hash, InclusionProof, MemoryTree, verify_consistency,
    verify_inclusion,
};

fn tree(n: u64) -> MemoryTree {
    MemoryTree::new((0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect())
}

fn flip(h: &Hash, byte: usize, bit: u8) -> Hash {
    let mut out = *h;
    out[byte % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_proofs_verify_and_mutations_fail(
        n in 1u64..600,
        i_seed in any::<u64>(),
        which in any::<usize>(),
        byte in 0usize..32,
        bit in 0u8..8,
        other in any::<u64>(),
    ) {
        let t = tree(n);
        let i = i_seed % n;
        let root = t.root(n).unwrap();
        let leaf = leaf_hash(&i.to_be_bytes());
        let proof = t.inclusion_proof(i, n).unwrap();
        prop_assert!(proof.path.len() <= 64);
        verify_inclusion(&leaf, &proof, &root).unwrap();

        // A changed path hash.
        if !proof.path.is_empty() {
            let mut p = proof.clone();
            let k = which % p.path.len();
            p.path[k] = flip(&p.path[k], byte, bit);
            prop_assert!(verify_inclusion(&leaf, &p, &root).is_err());
            // A dropped hash.
            let mut p = proof.clone();
            p.path.remove(k);
            prop_assert!(verify_inclusion(&leaf, &p, &root).is_err());
        }
        // An extra hash.
        let mut p = proof.clone();
        p.path.push(root);
        prop_assert!(verify_inclusion(&leaf, &p, &root).is_err());
        // A changed root or leaf.
        prop_assert!(verify_inclusion(&leaf, &proof, &flip(&root, byte, bit)).is_err());
        prop_assert!(verify_inclusion(&flip(&leaf, byte, bit), &proof, &root).is_err());
        // A changed index.
        let j = other % (n + 2);
        if j != i {
            let p = InclusionProof { index: j, ..proof.clone() };
            prop_assert!(verify_inclusion(&leaf, &p, &root).is_err(), "index {} -> {}", i, j);
        }
        // A changed size, checked against the root of that size (heads bind size to root).
        let m = 1 + other % 700;
        if m != n {
            let p = InclusionProof { tree_size: m, ..proof.clone() };
            let bigger = tree(m.max(n));
            let root_m = bigger.root(m).unwrap();
            prop_assert!(verify_inclusion(&leaf, &p, &root_m).is_err(), "size {} -> {}", n, m);
        }
    }

    #[test]
    fn consistency_proofs_verify_and_mutations_fail(
        n in 1u64..600,
        m_seed in any::<u64>(),
        which in any::<usize>(),
        byte in 0usize..32,
        bit in 0u8..8,
        other in any::<u64>(),
    ) {
        let t = tree(n);
        let m = 1 + m_seed % n; // 1..=n
        let old_root = t.root(m).unwrap();
        let new_root = t.root(n).unwrap();
        let proof = t.consistency_proof(m, n).unwrap();
        verify_consistency(&old_root, &new_root, &proof).unwrap();

        if !proof.path.is_empty() {
            let mut p = proof.clone();
            let k = which % p.path.len();
            p.path[k] = flip(&p.path[k], byte, bit);
            prop_assert!(verify_consistency(&old_root, &new_root, &p).is_err());
            let mut p = proof.clone();
            p.path.remove(k);
            prop_assert!(verify_consistency(&old_root, &new_root, &p).is_err());
        }
        let mut p = proof.clone();
        p.path.push(old_root);
        prop_assert!(verify_consistency(&old_root, &new_root, &p).is_err());
        prop_assert!(verify_consistency(&flip(&old_root, byte, bit), &new_root, &proof).is_err());
        prop_assert!(verify_consistency(&old_root, &flip(&new_root, byte, bit), &proof).is_err());

        // Changed sizes, checked against the roots of those sizes.
        let big = tree(700);
        let m2 = 1 + other % 699;
        if m2 != m && m2 <= n {
            let p = ConsistencyProof { old_size: m2, ..proof.clone() };
            let r = big.root(m2).unwrap();
            prop_assert!(verify_consistency(&r, &new_root, &p).is_err(), "old {} -> {}", m, m2);
        }
        let n2 = 1 + other % 699;
        if n2 != n && n2 >= m {
            let p = ConsistencyProof { new_size: n2, ..proof.clone() };
            let r = big.root(n2).unwrap();
            prop_assert!(verify_consistency(&old_root, &r, &p).is_err(), "new {} -> {}", n, n2);
        }
    }

    #[test]
    fn a_real_fork_is_never_consistent(n in 2u64..300, m_seed in any::<u64>(), k_seed in any::<u64>()) {
        // Rewriting any leaf below the old size makes the old root unprovable from the new tree.
        let m = 1 + m_seed % (n - 1);
        let k = k_seed % m;
        let honest = tree(n);
        let mut leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        leaves[k as usize] = leaf_hash(b"rewritten");
        let forked = MemoryTree::new(leaves);
        let p = forked.consistency_proof(m, n).unwrap();
        prop_assert!(verify_consistency(&honest.root(m).unwrap(), &forked.root(n).unwrap(), &p).is_err());
    }
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn kind() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..4)
        .prop_map(|s| s.join("."))
        .prop_filter("kind at most 64 bytes", |k| k.len() <= 64)
}

fn value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        ".{0,20}".prop_map(FieldValue::Str),
        any::<i64>().prop_map(FieldValue::Int),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(FieldValue::Bytes),
        any::<bool>().prop_map(FieldValue::Bool),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        kind(),
        any::<i64>(),
        prop::collection::btree_map(segment(), value(), 0..8),
    )
        .prop_map(
            |(kind, time_ms, fields): (String, i64, BTreeMap<_, _>)| Event {
                kind,
                time_ms,
                fields,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn events_round_trip(e in event()) {
        let bytes = e.encode().unwrap();
        prop_assert_eq!(Event::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn any_single_byte_change_fails_or_changes_the_event(
        e in event(),
        pos in any::<usize>(),
        delta in 1u8..=255,
    ) {
        let bytes = e.encode().unwrap();
        let mut m = bytes.clone();
        let at = pos % m.len();
        m[at] = m[at].wrapping_add(delta);
        if let Ok(d) = Event::decode(&m) {
            prop_assert_ne!(&d, &e);
            // Canonical: what decodes re-encodes to exactly the same bytes.
            prop_assert_eq!(d.encode().unwrap(), m);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_ones_are_canonical(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        if let Ok(d) = Event::decode(&bytes) {
            prop_assert_eq!(d.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn near_valid_bytes_never_panic(e in event(), cut in any::<usize>(), extra in any::<u8>()) {
        let mut bytes = e.encode().unwrap();
        let c = cut % (bytes.len() + 1);
        bytes.truncate(c);
        bytes.push(extra);
        if let Ok(d) = Event::decode(&bytes) {
            prop_assert_eq!(d.encode().unwrap(), bytes);
        }
    }
}

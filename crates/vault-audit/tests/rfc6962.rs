//! The tree against published RFC 6962 reference values, against `rs_merkle` (with a
//! domain-separating hasher), and the SQLite log against the in-memory tree.
//!
//! Reference values: the 8-leaf test tree of Google's certificate-transparency C++ code
//! (`cpp/merkletree/merkle_tree_test.cc`), reused by transparency-dev/merkle
//! (`proof/verify_test.go`, `testonly/constants.go`): leaf inputs `""`, `00`, `10`, `2021`,
//! `3031`, `40414243`, `5051525354555657`, `606162636465666768696a6b6c6d6e6f`, the roots of
//! every prefix, and their inclusion and consistency proof vectors (leaf numbers there are
//! 1-based; here indices are 0-based).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use rusqlite::Connection;
use vault_audit::hash::{empty_root, from_hex, leaf_hash, node_hash};
use vault_audit::{
    AuditLog, ConsistencyProof, Event, Hash, InclusionProof, MemoryTree, create_schema,
    verify_consistency, verify_inclusion,
};

const INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the first n leaves, n = 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (0-based index, tree size, audit path).
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn h(text: &str) -> Hash {
    from_hex(text).unwrap()
}

fn reference_tree() -> MemoryTree {
    MemoryTree::new(
        INPUTS
            .iter()
            .map(|i| leaf_hash(&hex::decode(i).unwrap()))
            .collect(),
    )
}

#[test]
fn roots_of_every_prefix_match_the_reference() {
    let tree = reference_tree();
    assert_eq!(empty_root(), h(ROOTS[0]));
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(tree.root(n as u64).unwrap(), h(want), "size {n}");
    }
}

#[test]
fn inclusion_proofs_match_the_reference_and_verify() {
    let tree = reference_tree();
    for (index, size, path) in INCLUSION {
        let proof = tree.inclusion_proof(index, size).unwrap();
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(proof.path, want, "index {index} size {size}");
        let leaf = leaf_hash(&hex::decode(INPUTS[index as usize]).unwrap());
        verify_inclusion(&leaf, &proof, &h(ROOTS[size as usize])).unwrap();
        assert!(verify_inclusion(&leaf, &proof, &h(ROOTS[0])).is_err());
    }
}

#[test]
fn consistency_proofs_match_the_reference_and_verify() {
    let tree = reference_tree();
    for (old, new, path) in CONSISTENCY {
        let proof = tree.consistency_proof(old, new).unwrap();
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(proof.path, want, "{old} -> {new}");
        verify_consistency(&h(ROOTS[old as usize]), &h(ROOTS[new as usize]), &proof).unwrap();
    }
    // A reference proof checked against the wrong old root fails.
    let p = ConsistencyProof {
        old_size: 6,
        new_size: 8,
        path: CONSISTENCY[2].2.iter().map(|x| h(x)).collect(),
    };
    assert!(verify_consistency(&h(ROOTS[5]), &h(ROOTS[8]), &p).is_err());
}

#[test]
fn reference_inclusion_vectors_verify_as_given() {
    // Verify the published proofs directly (not our generated ones).
    for (index, size, path) in INCLUSION {
        let proof = InclusionProof {
            index,
            tree_size: size,
            path: path.iter().map(|p| h(p)).collect(),
        };
        let leaf = leaf_hash(&hex::decode(INPUTS[index as usize]).unwrap());
        verify_inclusion(&leaf, &proof, &h(ROOTS[size as usize])).unwrap();
    }
}

/// rs_merkle with RFC 6962 domain separation: leaves are passed pre-hashed with 0x00, interior
/// nodes get 0x01, and a lone node is promoted (rs_merkle's default, which is RFC 6962's shape).
#[derive(Clone)]
struct Rfc6962Hasher;

impl rs_merkle::Hasher for Rfc6962Hasher {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        aim_crypto::hash::sha256(data)
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(r) => node_hash(left, r),
            None => *left,
        }
    }
}

#[test]
fn roots_and_paths_agree_with_rs_merkle_for_many_sizes() {
    for n in 1..=130usize {
        let leaves: Vec<Hash> = (0..n)
            .map(|i| leaf_hash(&(i as u64).to_le_bytes()))
            .collect();
        let theirs = rs_merkle::MerkleTree::<Rfc6962Hasher>::from_leaves(&leaves);
        let ours = MemoryTree::new(leaves.clone());
        assert_eq!(
            theirs.root(),
            Some(ours.root(n as u64).unwrap()),
            "size {n}"
        );
        for i in [0, n / 2, n - 1] {
            let their_path = theirs.proof(&[i]).proof_hashes().to_vec();
            let our_path = ours.inclusion_proof(i as u64, n as u64).unwrap().path;
            assert_eq!(their_path, our_path, "size {n} index {i}");
        }
    }
}

#[test]
fn the_sqlite_log_agrees_with_the_memory_tree_at_every_size() {
    let conn = Connection::open_in_memory().unwrap();
    create_schema(&conn).unwrap();
    create_schema(&conn).unwrap(); // idempotent
    let mut mem = MemoryTree::default();
    for i in 0..70i64 {
        let e = Event::new("memory.store", i).with("n", i);
        let idx = AuditLog::append(&conn, &e).unwrap();
        assert_eq!(idx, i as u64);
        mem.push(leaf_hash(&e.encode().unwrap()));
        let n = idx + 1;
        assert_eq!(AuditLog::tree_size(&conn).unwrap(), n);
        assert_eq!(AuditLog::root(&conn, n).unwrap(), mem.root(n).unwrap());
    }
    for n in 1..=70u64 {
        assert_eq!(AuditLog::root(&conn, n).unwrap(), mem.root(n).unwrap());
        for i in 0..n {
            assert_eq!(
                AuditLog::inclusion_proof(&conn, i, n).unwrap(),
                mem.inclusion_proof(i, n).unwrap()
            );
        }
        for m in 0..=n {
            assert_eq!(
                AuditLog::consistency_proof(&conn, m, n).unwrap(),
                mem.consistency_proof(m, n).unwrap()
            );
        }
    }
    assert!(AuditLog::root(&conn, 71).is_err());
    assert!(AuditLog::inclusion_proof(&conn, 70, 70).is_err());
    assert!(AuditLog::consistency_proof(&conn, 3, 71).is_err());
    assert_eq!(
        AuditLog::leaf(&conn, 5).unwrap(),
        Event::new("memory.store", 5).with("n", 5i64)
    );
}

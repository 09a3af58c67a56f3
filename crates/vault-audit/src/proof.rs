//! Inclusion and consistency proofs (RFC 6962 §2.1.1–2.1.2), generated from any source of
//! complete-subtree hashes in O(log n) reads, and verified with the algorithms of RFC 9162
//! §2.1.3.2 and §2.1.4.2.

use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};
use crate::hash::{Hash, empty_root, node_hash, serde_hex};

/// Proof that a leaf is at `index` in the tree of `tree_size` leaves (RFC 6962 audit path,
/// deepest sibling first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// 0-based leaf index.
    pub index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up to the root.
    #[serde(with = "serde_hex::list")]
    pub path: Vec<Hash>,
}

/// Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves
/// (RFC 6962 §2.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The earlier tree size.
    pub old_size: u64,
    /// The later tree size.
    pub new_size: u64,
    /// The proof hashes, in RFC 6962 order.
    #[serde(with = "serde_hex::list")]
    pub path: Vec<Hash>,
}

/// Checks that `leaf_hash` is at `proof.index` in the tree with root `root` and size
/// `proof.tree_size` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf_hash: &Hash, proof: &InclusionProof, root: &Hash) -> Result<()> {
    let computed = root_from_inclusion(leaf_hash, proof)?;
    if &computed == root {
        Ok(())
    } else {
        Err(AuditError::ProofInvalid(
            "inclusion proof leads to a different root",
        ))
    }
}

/// The root an inclusion proof leads to, or an error if the proof is malformed for its size.
pub fn root_from_inclusion(leaf_hash: &Hash, proof: &InclusionProof) -> Result<Hash> {
    if proof.index >= proof.tree_size {
        return Err(AuditError::ProofInvalid(
            "leaf index is not below tree size",
        ));
    }
    let mut fnode = proof.index;
    let mut snode = proof.tree_size - 1;
    let mut r = *leaf_hash;
    for p in &proof.path {
        if snode == 0 {
            return Err(AuditError::ProofInvalid("inclusion proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(AuditError::ProofInvalid("inclusion proof is too short"));
    }
    Ok(r)
}

/// Checks that the tree with root `old_root` is a prefix of the tree with root `new_root`
/// (RFC 9162 §2.1.4.2, with RFC 6962's conventions for the edge cases: equal sizes need an
/// empty proof and equal roots; the empty tree is a prefix of every tree, with an empty proof).
pub fn verify_consistency(
    old_root: &Hash,
    new_root: &Hash,
    proof: &ConsistencyProof,
) -> Result<()> {
    let (first, second, path) = (proof.old_size, proof.new_size, &proof.path);
    if first > second {
        return Err(AuditError::ProofInvalid("old size is larger than new size"));
    }
    if first == second {
        if !path.is_empty() {
            return Err(AuditError::ProofInvalid(
                "proof between equal sizes must be empty",
            ));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(AuditError::ProofInvalid("equal sizes but different roots"))
        };
    }
    if first == 0 {
        if !path.is_empty() {
            return Err(AuditError::ProofInvalid(
                "proof from the empty tree must be empty",
            ));
        }
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(AuditError::ProofInvalid("old root is not the empty root"))
        };
    }
    if path.is_empty() {
        return Err(AuditError::ProofInvalid("consistency proof is empty"));
    }
    // Step 2: if `first` is a power of two, the old root is itself the first proof node.
    let mut nodes = path.iter();
    let seed = if first.is_power_of_two() {
        *old_root
    } else {
        match nodes.next() {
            Some(h) => *h,
            None => return Err(AuditError::ProofInvalid("consistency proof is empty")),
        }
    };
    let mut fnode = first - 1;
    let mut snode = second - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = seed;
    let mut sr = seed;
    for c in nodes {
        if snode == 0 {
            return Err(AuditError::ProofInvalid("consistency proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(AuditError::ProofInvalid("consistency proof is too short"));
    }
    if &fr != old_root {
        return Err(AuditError::ProofInvalid(
            "consistency proof does not lead to the old root",
        ));
    }
    if &sr != new_root {
        return Err(AuditError::ProofInvalid(
            "consistency proof does not lead to the new root",
        ));
    }
    Ok(())
}

/// A source of complete-subtree hashes: `node(level, index)` is the root of the perfect subtree
/// over leaves `[index·2^level, (index+1)·2^level)`; level 0 is the leaf hash.
pub(crate) trait NodeSource {
    /// The hash of one complete subtree.
    fn node(&mut self, level: u32, index: u64) -> Result<Hash>;
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH of leaves `[lo, hi)`, where `lo` is a multiple of a power of two ≥ `hi - lo` (true of
/// every range the RFC 6962 recursion produces): a right fold over at most log n stored
/// complete subtrees.
pub(crate) fn range_hash(src: &mut dyn NodeSource, lo: u64, hi: u64) -> Result<Hash> {
    if hi <= lo {
        return Ok(empty_root());
    }
    let len = hi - lo;
    let mut acc: Option<Hash> = None;
    // Chunks from the right (smallest) to the left (largest): the lowest set bit of `len`
    // sits at the end of the range.
    let mut end = hi;
    let mut remaining = len;
    while remaining != 0 {
        let level = remaining.trailing_zeros();
        let size = 1u64 << level;
        let start = end - size;
        let h = src.node(level, start >> level)?;
        acc = Some(match acc {
            None => h,
            Some(right) => node_hash(&h, &right),
        });
        remaining -= size;
        end = start;
    }
    acc.ok_or(AuditError::ProofInvalid("empty range"))
}

/// RFC 6962 PATH(m, D[lo:hi]).
fn path_into(
    src: &mut dyn NodeSource,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < lo + k {
        path_into(src, m, lo, lo + k, out)?;
        out.push(range_hash(src, lo + k, hi)?);
    } else {
        path_into(src, m, lo + k, hi, out)?;
        out.push(range_hash(src, lo, lo + k)?);
    }
    Ok(())
}

/// The inclusion proof of leaf `index` in the tree of `tree_size` leaves.
pub(crate) fn inclusion_proof(
    src: &mut dyn NodeSource,
    index: u64,
    tree_size: u64,
) -> Result<InclusionProof> {
    if index >= tree_size {
        return Err(AuditError::IndexOutOfRange { index, tree_size });
    }
    let mut path = Vec::with_capacity(64 - tree_size.leading_zeros() as usize);
    path_into(src, index, 0, tree_size, &mut path)?;
    Ok(InclusionProof {
        index,
        tree_size,
        path,
    })
}

/// RFC 6962 SUBPROOF(m, D[lo:hi], b), with `m` counted from `lo`.
fn subproof_into(
    src: &mut dyn NodeSource,
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(range_hash(src, lo, hi)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof_into(src, m, lo, lo + k, complete, out)?;
        out.push(range_hash(src, lo + k, hi)?);
    } else {
        subproof_into(src, m - k, lo + k, hi, false, out)?;
        out.push(range_hash(src, lo, lo + k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of `old_size` and `new_size` leaves.
pub(crate) fn consistency_proof(
    src: &mut dyn NodeSource,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof> {
    if old_size > new_size {
        return Err(AuditError::SizeOutOfRange {
            size: old_size,
            tree_size: new_size,
        });
    }
    let mut path = Vec::new();
    if old_size != 0 && old_size != new_size {
        subproof_into(src, old_size, 0, new_size, true, &mut path)?;
    }
    Ok(ConsistencyProof {
        old_size,
        new_size,
        path,
    })
}

/// Streaming tree builder (a "compact range" from the left edge): push leaf hashes in order;
/// it keeps one hash per set bit of the size and reports every completed subtree.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompactRange {
    size: u64,
    /// Roots of the complete subtrees, largest (leftmost) first, with their levels.
    stack: Vec<(u32, Hash)>,
}

impl CompactRange {
    /// An empty range.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of leaves pushed.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Pushes the next leaf hash; `on_node(level, index, hash)` sees every interior node this
    /// completes, lowest level first (the order `AuditLog::append` stores them in).
    pub(crate) fn push<E>(
        &mut self,
        leaf: Hash,
        mut on_node: impl FnMut(u32, u64, &Hash) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut cur = leaf;
        let mut level = 0u32;
        let mut index = self.size;
        while index & 1 == 1 {
            let Some((_, left)) = self.stack.pop() else {
                break;
            };
            cur = node_hash(&left, &cur);
            level += 1;
            index >>= 1;
            on_node(level, index, &cur)?;
        }
        self.stack.push((level, cur));
        self.size += 1;
        Ok(())
    }

    /// The root of the leaves pushed so far.
    pub(crate) fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some((_, last)) = iter.next() else {
            return empty_root();
        };
        let mut acc = *last;
        for (_, h) in iter {
            acc = node_hash(h, &acc);
        }
        acc
    }
}

/// Position of interior node `(level ≥ 1, index)` in the order [`CompactRange::push`] completes
/// nodes; the storage key of `audit_nodes`. Returns `None` on overflow.
pub(crate) fn node_position(level: u32, index: u64) -> Option<u64> {
    if level == 0 || level >= 63 {
        return None;
    }
    let m = index.checked_add(1)?.checked_mul(1u64 << level)?;
    let before = m - 1;
    Some(before - u64::from(before.count_ones()) + u64::from(level) - 1)
}

/// An in-memory tree over leaf hashes, for tests and small offline uses. Subtree hashes are
/// recomputed on demand, so proofs cost O(n); the SQLite log is the O(log n) one.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    leaves: Vec<Hash>,
}

impl MemoryTree {
    /// A tree over the given leaf hashes.
    pub fn new(leaves: Vec<Hash>) -> Self {
        Self { leaves }
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.leaves.push(leaf);
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        range_hash(&mut &*self, 0, size)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        self.check_size(size)?;
        inclusion_proof(&mut &*self, index, size)
    }

    /// The consistency proof between the first `old` and the first `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        self.check_size(new)?;
        consistency_proof(&mut &*self, old, new)
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(AuditError::SizeOutOfRange {
                size,
                tree_size: self.size(),
            });
        }
        Ok(())
    }
}

impl NodeSource for &MemoryTree {
    fn node(&mut self, level: u32, index: u64) -> Result<Hash> {
        let width = 1u64 << level;
        let lo = index * width;
        let slice = usize::try_from(lo)
            .ok()
            .and_then(|lo| self.leaves.get(lo..lo + width as usize))
            .ok_or(AuditError::ProofInvalid("subtree outside the tree"))?;
        let mut range = CompactRange::new();
        for leaf in slice {
            range.push::<()>(*leaf, |_, _, _| Ok(())).ok();
        }
        Ok(range.root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    /// MTH straight from RFC 6962 §2.1, recursively, as an independent reference.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(1 << 40), 1 << 39);
        assert_eq!(split_point((1 << 40) + 1), 1 << 40);
    }

    #[test]
    fn compact_range_matches_recursive_mth_and_emits_nodes_in_position_order() {
        let all = leaves(70);
        let mut range = CompactRange::new();
        let mut next_pos = 0u64;
        for (i, leaf) in all.iter().enumerate() {
            range
                .push::<()>(*leaf, |level, index, hash| {
                    assert_eq!(node_position(level, index), Some(next_pos));
                    next_pos += 1;
                    let width = 1usize << level;
                    let lo = index as usize * width;
                    assert_eq!(*hash, mth(&all[lo..lo + width]));
                    Ok(())
                })
                .unwrap();
            assert_eq!(range.root(), mth(&all[..=i]));
        }
        assert_eq!(next_pos, 70 - u64::from(70u64.count_ones()));
    }

    #[test]
    fn memory_tree_roots_match_recursive_mth() {
        let all = leaves(33);
        let tree = MemoryTree::new(all.clone());
        for n in 0..=33u64 {
            assert_eq!(tree.root(n).unwrap(), mth(&all[..n as usize]));
        }
        assert!(tree.root(34).is_err());
    }

    #[test]
    fn every_proof_in_small_trees_verifies() {
        let all = leaves(20);
        let tree = MemoryTree::new(all.clone());
        for n in 1..=20u64 {
            let root = tree.root(n).unwrap();
            for i in 0..n {
                let p = tree.inclusion_proof(i, n).unwrap();
                verify_inclusion(&all[i as usize], &p, &root).unwrap();
            }
            for m in 0..=n {
                let p = tree.consistency_proof(m, n).unwrap();
                verify_consistency(&tree.root(m).unwrap(), &root, &p).unwrap();
            }
        }
    }

    #[test]
    fn malformed_proofs_are_rejected_not_panicking() {
        let tree = MemoryTree::new(leaves(8));
        let root = tree.root(8).unwrap();
        let mut p = tree.inclusion_proof(3, 8).unwrap();
        p.index = 8;
        assert!(verify_inclusion(&leaves(8)[3], &p, &root).is_err());
        let bad = ConsistencyProof {
            old_size: 9,
            new_size: 8,
            path: vec![],
        };
        assert!(verify_consistency(&root, &root, &bad).is_err());
        let empty = ConsistencyProof {
            old_size: 3,
            new_size: 8,
            path: vec![],
        };
        assert!(verify_consistency(&tree.root(3).unwrap(), &root, &empty).is_err());
        assert!(tree.inclusion_proof(8, 8).is_err());
        assert!(tree.consistency_proof(5, 4).is_err());
    }

    #[test]
    fn node_position_rejects_level_zero_and_overflow() {
        assert_eq!(node_position(0, 0), None);
        assert_eq!(node_position(1, 0), Some(0));
        assert_eq!(node_position(1, 1), Some(1));
        assert_eq!(node_position(2, 0), Some(2));
        assert_eq!(node_position(1, 2), Some(3));
        assert_eq!(node_position(62, u64::MAX), None);
    }
}

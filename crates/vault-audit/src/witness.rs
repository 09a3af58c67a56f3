//! Witnesses: external parties that hold published heads and refuse any head that does not
//! extend what they hold, so a forked or rewritten log is caught.
//!
//! The published record (one JSON object; one line of a [`FileWitness`] file; the body the AIM
//! server's endpoint accepts) is [`PublishedHead`]; see `docs/audit-log.md`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};
use crate::hash::Hash;
use crate::head::SignedTreeHead;
use crate::proof::{ConsistencyProof, verify_consistency};

/// Version of the [`PublishedHead`] record.
pub const PUBLISHED_HEAD_VERSION: u32 = 1;

/// A head as published to a witness, with the proof that it extends the witness's latest head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedHead {
    /// Record version ([`PUBLISHED_HEAD_VERSION`]).
    pub version: u32,
    /// The signed head.
    pub head: SignedTreeHead,
    /// Consistency from the witness's latest size to `head.tree_size`; `null` for the first head
    /// or a head of the same size.
    pub consistency: Option<ConsistencyProof>,
}

/// What a witness answers when it accepts a head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessReceipt {
    /// Which witness (a file path, a server URL).
    pub witness: String,
    /// The size now held.
    pub tree_size: u64,
    /// The root now held.
    #[serde(with = "crate::hash::serde_hex")]
    pub root: Hash,
    /// True if the witness already held this exact size and root.
    pub duplicate: bool,
}

/// An external holder of published heads.
pub trait Witness {
    /// Who this witness is, for messages (a file path, a server URL).
    fn describe(&self) -> String;

    /// The latest head the witness holds, checked (for a file: every record re-verified).
    fn latest(&self) -> Result<Option<SignedTreeHead>>;

    /// Publishes `head`, with the consistency proof from the witness's latest size (which the
    /// caller learns from the witness, e.g. [`FileWitness::latest`]). Fails with
    /// [`AuditError::Fork`] for a different root at a size it holds, and
    /// [`AuditError::WitnessInconsistent`] for a head it cannot prove extends what it holds.
    fn publish(
        &self,
        head: &SignedTreeHead,
        consistency: Option<&ConsistencyProof>,
    ) -> Result<WitnessReceipt>;
}

/// The decision rules every witness applies (the AIM server's endpoint applies the same), given
/// the heads it holds (ascending size) and a new record. `Ok(true)` means "already held".
pub fn judge(held: &[SignedTreeHead], new: &PublishedHead) -> Result<bool> {
    if new.version != PUBLISHED_HEAD_VERSION {
        return Err(AuditError::HeadInvalid("unknown published head version"));
    }
    new.head.verify_signature()?;
    let head = &new.head;
    if let Some(same) = held.iter().find(|h| h.tree_size == head.tree_size) {
        if same.root != head.root {
            return Err(AuditError::Fork {
                tree_size: head.tree_size,
                held_root: same.root,
                presented_root: head.root,
            });
        }
        return Ok(true);
    }
    let Some(latest) = held.iter().max_by_key(|h| h.tree_size) else {
        return Ok(false);
    };
    if head.tree_size < latest.tree_size {
        return Err(AuditError::WitnessInconsistent {
            held_size: latest.tree_size,
            new_size: head.tree_size,
            reason: "head is older than the latest head held",
        });
    }
    let Some(proof) = &new.consistency else {
        return Err(AuditError::WitnessInconsistent {
            held_size: latest.tree_size,
            new_size: head.tree_size,
            reason: "a consistency proof from the held size is required",
        });
    };
    if proof.old_size != latest.tree_size || proof.new_size != head.tree_size {
        return Err(AuditError::WitnessInconsistent {
            held_size: latest.tree_size,
            new_size: head.tree_size,
            reason: "consistency proof is between other sizes",
        });
    }
    verify_consistency(&latest.root, &head.root, proof).map_err(|_| {
        AuditError::WitnessInconsistent {
            held_size: latest.tree_size,
            new_size: head.tree_size,
            reason: "consistency proof does not verify: the log was rewritten",
        }
    })?;
    Ok(false)
}

/// A witness kept in a local append-only file of JSON lines, one [`PublishedHead`] per accepted
/// head. Keep it somewhere the vault's writer cannot rewrite (another machine, a WORM mount).
#[derive(Debug, Clone)]
pub struct FileWitness {
    path: PathBuf,
}

impl FileWitness {
    /// A witness file at `path` (created on first publish).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Every record in the file, checked: each line parses, its head's signature verifies, and
    /// each record is consistent with those before it (the same rules as [`judge`]). A last
    /// line without its newline is a write torn by a crash: it is not a record (the next
    /// publish replaces it).
    pub fn records(&self) -> Result<Vec<PublishedHead>> {
        Ok(self.read()?.0)
    }

    /// The records and the length of the file's complete lines.
    fn read(&self) -> Result<(Vec<PublishedHead>, u64)> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(e.into()),
        };
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut out: Vec<PublishedHead> = Vec::new();
        let mut held: Vec<SignedTreeHead> = Vec::new();
        for (i, line) in bytes[..complete]
            .split_inclusive(|b| *b == b'\n')
            .enumerate()
        {
            let line_no = i as u64 + 1;
            let corrupt = |reason: String| AuditError::WitnessCorrupt {
                line: line_no,
                reason,
            };
            let record: PublishedHead =
                serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
            match judge(&held, &record) {
                Ok(false) => {}
                Ok(true) => return Err(corrupt("duplicate head".into())),
                Err(e) => return Err(corrupt(e.to_string())),
            }
            held.push(record.head.clone());
            out.push(record);
        }
        Ok((out, complete as u64))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The latest head held, if any.
    pub fn latest(&self) -> Result<Option<SignedTreeHead>> {
        Ok(self.records()?.pop().map(|r| r.head))
    }
}

impl Witness for FileWitness {
    fn describe(&self) -> String {
        format!("witness file {}", self.path.display())
    }

    fn latest(&self) -> Result<Option<SignedTreeHead>> {
        FileWitness::latest(self)
    }

    fn publish(
        &self,
        head: &SignedTreeHead,
        consistency: Option<&ConsistencyProof>,
    ) -> Result<WitnessReceipt> {
        let (records, complete) = self.read()?;
        let held: Vec<SignedTreeHead> = records.into_iter().map(|r| r.head).collect();
        let record = PublishedHead {
            version: PUBLISHED_HEAD_VERSION,
            head: head.clone(),
            consistency: consistency.cloned(),
        };
        let duplicate = judge(&held, &record)?;
        if !duplicate {
            let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
            line.push(b'\n');
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            if file.metadata()?.len() > complete {
                // Drop a line torn by a crash before appending after it.
                file.set_len(complete)?;
            }
            file.write_all(&line)?;
            file.sync_all()?;
        }
        Ok(WitnessReceipt {
            witness: self.path.display().to_string(),
            tree_size: head.tree_size,
            root: head.root,
            duplicate,
        })
    }
}

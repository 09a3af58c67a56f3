//! Key epochs: `audit.key_epoch` events that introduce each head-signing key in the log.
//!
//! Fields: `epoch` (integer, 0, 1, 2, ...), `key_id` (string, [`AgentPublicKey::key_id`]),
//! `public_key` (32 bytes), `previous_key_id` (string; absent in epoch 0, else the key id of
//! the epoch before) and `certificate` (64 bytes; absent in epoch 0): the previous key's
//! Ed25519 signature over [`handover_message`], which binds the new key to this log's root
//! just before the announcement. Only the holder of the previous key can write it, so a key
//! inserted into the file by anyone else is refused by signers and verifiers alike.
//!
//! Logs written before certificates existed hold uncertified epochs; such an epoch is accepted
//! only if the first head covering it is the hand-over head signed by the previous key (the
//! old rule; sessions no longer sign such heads, see `docs/audit-log.md` §5).

use aim_crypto::{AgentPublicKey, AgentSignature};

use crate::event::{Event, FieldValue};
use crate::hash::Hash;
use crate::head::HeadSigner;

/// Domain-separation tag of the key hand-over certificate.
pub const HANDOVER_DOMAIN: &[u8] = b"aim-vault-audit-key-handover-v1";

/// The bytes the previous key signs to certify `key` as epoch `epoch`, announced at leaf
/// `leaf_index` of a log whose first `leaf_index` leaves have root `root_before`:
/// `"aim-vault-audit-key-handover-v1" ‖ 0x00 ‖ epoch u64 BE ‖ leaf_index u64 BE ‖ root_before
/// (32) ‖ public key (32) ‖ previous key id`.
pub fn handover_message(
    epoch: u64,
    leaf_index: u64,
    root_before: &Hash,
    key: &AgentPublicKey,
    previous_key_id: &str,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(HANDOVER_DOMAIN.len() + 1 + 16 + 64 + previous_key_id.len());
    m.extend_from_slice(HANDOVER_DOMAIN);
    m.push(0x00);
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(&leaf_index.to_be_bytes());
    m.extend_from_slice(root_before);
    m.extend_from_slice(key.as_bytes());
    m.extend_from_slice(previous_key_id.as_bytes());
    m
}

/// The certificate `previous` writes for `key` (see [`handover_message`]).
pub(crate) fn certify(
    previous: &dyn HeadSigner,
    epoch: u64,
    leaf_index: u64,
    root_before: &Hash,
    key: &AgentPublicKey,
) -> AgentSignature {
    previous.sign(&handover_message(
        epoch,
        leaf_index,
        root_before,
        key,
        &previous.public_key().key_id(),
    ))
}

/// The reserved kind of a key announcement.
pub const KEY_EPOCH_KIND: &str = "audit.key_epoch";

/// One key epoch as read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEpoch {
    /// 0-based epoch number.
    pub epoch: u64,
    /// Index of the announcing leaf.
    pub leaf_index: u64,
    /// The key's id.
    pub key_id: String,
    /// The key.
    pub public_key: AgentPublicKey,
    /// The previous epoch's key id (`None` for epoch 0).
    pub previous_key_id: Option<String>,
    /// The previous key's hand-over certificate (`None` for epoch 0 and for epochs written
    /// before certificates existed).
    pub certificate: Option<AgentSignature>,
}

impl KeyEpoch {
    /// True if this epoch needs a certificate (it is not the first) but has none: a legacy
    /// announcement, valid only with a hand-over head signed by the previous key.
    pub fn uncertified(&self) -> bool {
        self.epoch > 0 && self.certificate.is_none()
    }
}

/// The announcement event for `key` as epoch `epoch`.
pub(crate) fn epoch_event(
    epoch: u64,
    key: &AgentPublicKey,
    previous: Option<(&str, &AgentSignature)>,
    time_ms: i64,
) -> Event {
    let mut e = Event::new(KEY_EPOCH_KIND, time_ms)
        .with("epoch", i64::try_from(epoch).unwrap_or(i64::MAX))
        .with("key_id", key.key_id())
        .with("public_key", *key.as_bytes());
    if let Some((p, cert)) = previous {
        e = e
            .with("previous_key_id", p)
            .with("certificate", cert.to_bytes().to_vec());
    }
    e
}

/// Parses an `audit.key_epoch` event found at `leaf_index`, checking its own consistency
/// (field set, key validity, id matching key). Chain rules are checked by the caller.
pub(crate) fn parse_epoch(
    event: &Event,
    leaf_index: u64,
) -> std::result::Result<KeyEpoch, &'static str> {
    let allowed = [
        "certificate",
        "epoch",
        "key_id",
        "previous_key_id",
        "public_key",
    ];
    if event.fields.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err("unexpected field in key epoch event");
    }
    let epoch = event
        .get("epoch")
        .and_then(FieldValue::as_int)
        .and_then(|e| u64::try_from(e).ok())
        .ok_or("key epoch event lacks a non-negative integer `epoch`")?;
    let key_id = event
        .get("key_id")
        .and_then(FieldValue::as_str)
        .ok_or("key epoch event lacks a string `key_id`")?;
    let raw: [u8; 32] = event
        .get("public_key")
        .and_then(FieldValue::as_bytes)
        .and_then(|b| b.try_into().ok())
        .ok_or("key epoch event lacks a 32-byte `public_key`")?;
    let public_key =
        AgentPublicKey::from_bytes(&raw).map_err(|_| "key epoch public key is not a valid key")?;
    if public_key.key_id() != key_id {
        return Err("key epoch key_id does not match its public key");
    }
    let previous_key_id = match event.get("previous_key_id") {
        None => None,
        Some(FieldValue::Str(s)) => Some(s.clone()),
        Some(_) => return Err("key epoch `previous_key_id` is not a string"),
    };
    let certificate = match event.get("certificate") {
        None => None,
        Some(v) => {
            let raw: [u8; 64] = v
                .as_bytes()
                .and_then(|b| b.try_into().ok())
                .ok_or("key epoch `certificate` is not 64 bytes")?;
            Some(AgentSignature::from_bytes(raw))
        }
    };
    Ok(KeyEpoch {
        epoch,
        leaf_index,
        key_id: key_id.to_owned(),
        public_key,
        previous_key_id,
        certificate,
    })
}

/// Checks that `next` extends the chain `so_far` (numbering, previous id, no reused key, and
/// the previous key's certificate over `root_before`, the root of the leaves before `next`).
pub(crate) fn check_chain(
    so_far: &[KeyEpoch],
    next: &KeyEpoch,
    root_before: &Hash,
) -> std::result::Result<(), &'static str> {
    if next.epoch != so_far.len() as u64 {
        return Err("key epoch number is not the next one");
    }
    match (so_far.last(), &next.previous_key_id) {
        (None, None) => {}
        (None, Some(_)) => return Err("first key epoch names a previous key"),
        (Some(_), None) => return Err("key epoch does not name the previous key"),
        (Some(last), Some(prev)) if &last.key_id != prev => {
            return Err("key epoch's previous_key_id is not the current key");
        }
        (Some(_), Some(_)) => {}
    }
    if so_far.iter().any(|e| e.key_id == next.key_id) {
        return Err("key was already announced in an earlier epoch");
    }
    match (so_far.last(), &next.certificate) {
        (None, Some(_)) => Err("first key epoch carries a certificate"),
        (Some(last), Some(cert)) => {
            let msg = handover_message(
                next.epoch,
                next.leaf_index,
                root_before,
                &next.public_key,
                &last.key_id,
            );
            last.public_key
                .verify(&msg, cert)
                .map_err(|_| "key epoch's certificate is not the previous key's signature")
        }
        (_, None) => Ok(()),
    }
}

/// Which epoch keys may sign a head of `tree_size`, given the epochs of the log: the newest
/// epoch announced below `tree_size` (the current key), and — only for the first head that
/// covers that announcement — the epoch before it (the hand-over head).
pub(crate) fn allowed_signers(
    epochs: &[KeyEpoch],
    tree_size: u64,
    first_to_cover_newest: bool,
) -> (Option<&KeyEpoch>, Option<&KeyEpoch>) {
    let covered = epochs
        .iter()
        .take_while(|e| e.leaf_index < tree_size)
        .count();
    if covered == 0 {
        return (None, None);
    }
    let current = &epochs[covered - 1];
    let handover = if covered >= 2 && first_to_cover_newest {
        Some(&epochs[covered - 2])
    } else {
        None
    };
    (Some(current), handover)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use aim_crypto::AgentKeypair;

    fn kp(n: u8) -> AgentKeypair {
        AgentKeypair::from_seed(&[n; 32])
    }

    fn key(n: u8) -> AgentPublicKey {
        kp(n).public_key()
    }

    fn certified(epoch: u64, new: u8, by: u8, index: u64, root: &Hash) -> Event {
        let cert = certify(&kp(by), epoch, index, root, &key(new));
        epoch_event(epoch, &key(new), Some((&key(by).key_id(), &cert)), 0)
    }

    #[test]
    fn epoch_events_parse_back() {
        let root = leaf_hash(b"r");
        let e = certified(1, 1, 3, 9, &root);
        let parsed = parse_epoch(&e, 9).unwrap();
        assert_eq!(parsed.epoch, 1);
        assert_eq!(parsed.leaf_index, 9);
        assert_eq!(parsed.public_key, key(1));
        assert_eq!(parsed.previous_key_id, Some(key(3).key_id()));
        assert!(parsed.certificate.is_some() && !parsed.uncertified());
        let bad = e.clone().with("key_id", key(2).key_id());
        assert!(parse_epoch(&bad, 0).is_err());
        let extra = e.clone().with("note", "x");
        assert!(parse_epoch(&extra, 0).is_err());
        let short = e.clone().with("public_key", vec![1u8; 31]);
        assert!(parse_epoch(&short, 0).is_err());
        let short_cert = e.with("certificate", vec![1u8; 63]);
        assert!(parse_epoch(&short_cert, 0).is_err());
    }

    #[test]
    fn chain_rules() {
        let r0 = leaf_hash(b"before");
        let e0 = parse_epoch(&epoch_event(0, &key(1), None, 0), 0).unwrap();
        check_chain(&[], &e0, &r0).unwrap();
        let e1 = parse_epoch(&certified(1, 2, 1, 5, &r0), 5).unwrap();
        check_chain(std::slice::from_ref(&e0), &e1, &r0).unwrap();
        assert!(check_chain(&[], &e1, &r0).is_err());
        // The certificate binds the root before the announcement and the leaf index.
        assert!(check_chain(std::slice::from_ref(&e0), &e1, &leaf_hash(b"other")).is_err());
        let moved = parse_epoch(&certified(1, 2, 1, 5, &r0), 6).unwrap();
        assert!(check_chain(std::slice::from_ref(&e0), &moved, &r0).is_err());
        // Certified by anyone but the previous key: refused.
        let cert = certify(&kp(9), 1, 5, &r0, &key(2));
        let forged = epoch_event(1, &key(2), Some((&key(1).key_id(), &cert)), 0);
        let forged = parse_epoch(&forged, 5).unwrap();
        assert!(check_chain(std::slice::from_ref(&e0), &forged, &r0).is_err());
        let wrong_prev = parse_epoch(&certified(1, 2, 3, 5, &r0), 5).unwrap();
        assert!(check_chain(std::slice::from_ref(&e0), &wrong_prev, &r0).is_err());
        let reuse = parse_epoch(&certified(1, 1, 1, 5, &r0), 5).unwrap();
        assert!(check_chain(std::slice::from_ref(&e0), &reuse, &r0).is_err());
        let epochs = [e0, e1];
        let (cur, hand) = allowed_signers(&epochs, 5, true);
        assert_eq!(cur.unwrap().epoch, 0);
        assert!(hand.is_none());
        let (cur, hand) = allowed_signers(&epochs, 6, true);
        assert_eq!(cur.unwrap().epoch, 1);
        assert_eq!(hand.unwrap().epoch, 0);
        let (_, hand) = allowed_signers(&epochs, 6, false);
        assert!(hand.is_none());
        assert_eq!(allowed_signers(&epochs, 0, true), (None, None));
    }
}

//! Key epochs: `audit.key_epoch` events that introduce each head-signing key in the log.
//!
//! Fields: `epoch` (integer, 0, 1, 2, ...), `key_id` (string, [`AgentPublicKey::key_id`]),
//! `public_key` (32 bytes), and `previous_key_id` (string; absent in epoch 0, else the key id of
//! the epoch before).

use aim_crypto::AgentPublicKey;

use crate::event::{Event, FieldValue};

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
}

/// The announcement event for `key` as epoch `epoch`.
pub(crate) fn epoch_event(
    epoch: u64,
    key: &AgentPublicKey,
    previous: Option<&str>,
    time_ms: i64,
) -> Event {
    let mut e = Event::new(KEY_EPOCH_KIND, time_ms)
        .with("epoch", i64::try_from(epoch).unwrap_or(i64::MAX))
        .with("key_id", key.key_id())
        .with("public_key", *key.as_bytes());
    if let Some(p) = previous {
        e = e.with("previous_key_id", p);
    }
    e
}

/// Parses an `audit.key_epoch` event found at `leaf_index`, checking its own consistency
/// (field set, key validity, id matching key). Chain rules are checked by the caller.
pub(crate) fn parse_epoch(
    event: &Event,
    leaf_index: u64,
) -> std::result::Result<KeyEpoch, &'static str> {
    let allowed = ["epoch", "key_id", "previous_key_id", "public_key"];
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
    Ok(KeyEpoch {
        epoch,
        leaf_index,
        key_id: key_id.to_owned(),
        public_key,
        previous_key_id,
    })
}

/// Checks that `next` extends the chain `so_far` (numbering, previous id, no reused key).
pub(crate) fn check_chain(
    so_far: &[KeyEpoch],
    next: &KeyEpoch,
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
    Ok(())
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
    use aim_crypto::AgentKeypair;

    fn key(n: u8) -> AgentPublicKey {
        AgentKeypair::from_seed(&[n; 32]).public_key()
    }

    #[test]
    fn epoch_events_parse_back() {
        let e = epoch_event(1, &key(1), Some("0011223344556677"), 5);
        let parsed = parse_epoch(&e, 9).unwrap();
        assert_eq!(parsed.epoch, 1);
        assert_eq!(parsed.leaf_index, 9);
        assert_eq!(parsed.public_key, key(1));
        assert_eq!(parsed.previous_key_id.as_deref(), Some("0011223344556677"));
        let bad = e.clone().with("key_id", key(2).key_id());
        assert!(parse_epoch(&bad, 0).is_err());
        let extra = e.clone().with("note", "x");
        assert!(parse_epoch(&extra, 0).is_err());
        let short = e.with("public_key", vec![1u8; 31]);
        assert!(parse_epoch(&short, 0).is_err());
    }

    #[test]
    fn chain_rules() {
        let e0 = parse_epoch(&epoch_event(0, &key(1), None, 0), 0).unwrap();
        check_chain(&[], &e0).unwrap();
        let e1 = parse_epoch(&epoch_event(1, &key(2), Some(&key(1).key_id()), 0), 5).unwrap();
        check_chain(std::slice::from_ref(&e0), &e1).unwrap();
        assert!(check_chain(&[], &e1).is_err());
        let wrong_prev =
            parse_epoch(&epoch_event(1, &key(2), Some(&key(3).key_id()), 0), 5).unwrap();
        assert!(check_chain(std::slice::from_ref(&e0), &wrong_prev).is_err());
        let reuse = parse_epoch(&epoch_event(1, &key(1), Some(&key(1).key_id()), 0), 5).unwrap();
        assert!(check_chain(std::slice::from_ref(&e0), &reuse).is_err());
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

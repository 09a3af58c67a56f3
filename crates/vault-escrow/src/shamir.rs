//! Splitting a 256-bit key into Shamir shares (blahaj, GF(2^8) with polynomial 0x11D) and
//! combining them back, validating everything before any secret is reconstructed.

use aim_crypto::{SecretKey, Zeroizing};
use blahaj::Sharks;
use uuid::Uuid;

use crate::share::{EscrowHeader, KeyFingerprint, MAX_ID_LEN, SHARE_VALUE_LEN, Share};
use crate::{EscrowError, Result};

/// What an escrow is made for: ids and the threshold scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitSpec {
    /// The escrow's id (fresh per escrow).
    pub escrow_id: Uuid,
    /// The vault the key belongs to.
    pub vault_id: String,
    /// The profile whose data key the escrowed key unwraps.
    pub profile_id: String,
    /// Shares needed to recover (K, at least 2).
    pub threshold: u8,
    /// Shares to make (N, at least K).
    pub total: u8,
}

/// Checks `2 ≤ K ≤ N ≤ 255` (given as any integers, so out-of-range input gets a clear error).
pub fn check_parameters(threshold: usize, total: usize) -> Result<(u8, u8)> {
    if threshold < 2 || total < threshold || total > 255 {
        return Err(EscrowError::InvalidParameters { threshold, total });
    }
    // In range, so the casts are exact.
    Ok((threshold as u8, total as u8))
}

/// Splits `key` into `spec.total` shares, any `spec.threshold` of which recover it.
///
/// Share `i` (0-based in the returned vector) has index x = i + 1, as blahaj deals them.
pub fn split(spec: &SplitSpec, key: &SecretKey) -> Result<Vec<Share>> {
    check_parameters(usize::from(spec.threshold), usize::from(spec.total))?;
    for (what, id) in [
        ("vault id", &spec.vault_id),
        ("profile id", &spec.profile_id),
    ] {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(EscrowError::InvalidId {
                what,
                len: id.len(),
            });
        }
    }
    let header = EscrowHeader {
        escrow_id: spec.escrow_id,
        vault_id: spec.vault_id.clone(),
        profile_id: spec.profile_id.clone(),
        fingerprint: KeyFingerprint::of(key),
        threshold: spec.threshold,
        total: spec.total,
    };
    Sharks(spec.threshold)
        .dealer(key.expose())
        .take(usize::from(spec.total))
        .map(|dealt| {
            let bytes = Zeroizing::new(Vec::<u8>::from(&dealt));
            let (x, y) = bytes
                .split_first()
                .ok_or_else(|| EscrowError::Vault("share dealer returned an empty share".into()))?;
            let mut value = Zeroizing::new([0u8; SHARE_VALUE_LEN]);
            if y.len() != SHARE_VALUE_LEN {
                return Err(EscrowError::Vault(
                    "share dealer returned a share of the wrong length".into(),
                ));
            }
            value.copy_from_slice(y);
            Share::new(header.clone(), *x, *value).map_err(|source| EscrowError::BadShare {
                position: usize::from(*x),
                source,
            })
        })
        .collect()
}

/// Parses share texts and combines them (see [`combine`]). Errors name the share by its
/// position in `texts`, counting from 1.
pub fn combine_text<S: AsRef<str>>(texts: &[S]) -> Result<(EscrowHeader, SecretKey)> {
    let shares = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Share::parse(t.as_ref()).map_err(|source| EscrowError::BadShare {
                position: i + 1,
                source,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    combine(&shares)
}

/// Combines shares of one escrow into its key.
///
/// Before anything is reconstructed it checks that every share has the same escrow id, vault,
/// profile, fingerprint, threshold and total as the first, that no index repeats, and that at
/// least K shares are given. After reconstruction it checks the key against the fingerprint;
/// a mismatch returns [`EscrowError::WrongShares`] and no key.
pub fn combine(shares: &[Share]) -> Result<(EscrowHeader, SecretKey)> {
    let Some(first) = shares.first() else {
        return Err(EscrowError::NotEnoughShares {
            got: 0,
            threshold: 0,
        });
    };
    let header = first.header();
    let mut seen: [usize; 256] = [0; 256];
    for (i, share) in shares.iter().enumerate() {
        let position = i + 1;
        if let Some(field) = header.first_difference(share.header()) {
            return Err(EscrowError::MixedEscrows { position, field });
        }
        let slot = &mut seen[usize::from(share.index())];
        if *slot != 0 {
            return Err(EscrowError::DuplicateShare {
                position,
                first: *slot,
                index: share.index(),
            });
        }
        *slot = position;
    }
    if shares.len() < usize::from(header.threshold) {
        return Err(EscrowError::NotEnoughShares {
            got: shares.len(),
            threshold: header.threshold,
        });
    }
    let refs: Vec<&Share> = shares.iter().collect();
    if let Some(key) = reconstruct(&refs, header) {
        return Ok((header.clone(), key));
    }
    // Wrong result. With more than K shares, find a single inconsistent share by leaving
    // each out in turn (N interpolations at most); report it, but still output nothing.
    let mut culprit = String::new();
    if shares.len() > usize::from(header.threshold) {
        let found: Vec<usize> = (0..shares.len())
            .filter(|&skip| {
                let subset: Vec<&Share> = shares
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, s)| s)
                    .collect();
                reconstruct(&subset, header).is_some()
            })
            .collect();
        if let [only] = found[..] {
            culprit = format!(" (share #{} is inconsistent with the others)", only + 1);
        }
    }
    Err(EscrowError::WrongShares { culprit })
}

/// Interpolates at 0 and returns the key only if it matches the header's fingerprint.
fn reconstruct(shares: &[&Share], header: &EscrowHeader) -> Option<SecretKey> {
    let dealt: Vec<blahaj::Share> = shares
        .iter()
        .filter_map(|s| {
            let mut bytes = Zeroizing::new(Vec::with_capacity(1 + SHARE_VALUE_LEN));
            bytes.push(s.index());
            bytes.extend_from_slice(s.expose_value());
            blahaj::Share::try_from(&bytes[..]).ok()
        })
        .collect();
    if dealt.len() != shares.len() {
        return None;
    }
    let secret = Zeroizing::new(Sharks(header.threshold).recover(&dealt).ok()?);
    let key = SecretKey::from_slice(&secret).ok()?;
    header.fingerprint.matches(&key).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(k: u8, n: u8) -> SplitSpec {
        SplitSpec {
            escrow_id: Uuid::new_v4(),
            vault_id: "vault".into(),
            profile_id: "alice".into(),
            threshold: k,
            total: n,
        }
    }

    #[test]
    fn parameters_are_checked() {
        assert!(check_parameters(2, 2).is_ok());
        assert!(check_parameters(255, 255).is_ok());
        for (k, n) in [(1, 3), (0, 0), (3, 2), (2, 256), (300, 300)] {
            assert!(
                matches!(
                    check_parameters(k, n),
                    Err(EscrowError::InvalidParameters { .. })
                ),
                "{k} {n}"
            );
        }
        let key = SecretKey::from_bytes([1; 32]);
        assert!(split(&spec(1, 3), &key).is_err());
        assert!(split(&spec(4, 3), &key).is_err());
        let mut s = spec(2, 3);
        s.profile_id = String::new();
        assert!(matches!(
            split(&s, &key),
            Err(EscrowError::InvalidId {
                what: "profile id",
                ..
            })
        ));
    }

    #[test]
    fn shares_carry_header_and_indices_one_to_n() {
        let key = SecretKey::generate().unwrap();
        let s = spec(3, 5);
        let shares = split(&s, &key).unwrap();
        assert_eq!(shares.len(), 5);
        for (i, share) in shares.iter().enumerate() {
            assert_eq!(usize::from(share.index()), i + 1);
            assert_eq!(share.header().escrow_id, s.escrow_id);
            assert_eq!(share.header().fingerprint, KeyFingerprint::of(&key));
            assert_eq!((share.header().threshold, share.header().total), (3, 5));
        }
        // No share is the key itself (x = 0 is never dealt).
        assert!(shares.iter().all(|sh| sh.expose_value() != key.expose()));
    }
}

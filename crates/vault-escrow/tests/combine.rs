//! Split/combine round trips and every rejection case of issue 5 point 2.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aim_crypto::SecretKey;
use uuid::Uuid;
use vault_escrow::{EscrowError, Share, ShareFormatError, SplitSpec, combine, combine_text, split};

fn spec(k: u8, n: u8) -> SplitSpec {
    SplitSpec {
        escrow_id: Uuid::new_v4(),
        vault_id: "0123456789abcdef0123456789abcdef".into(),
        profile_id: "agent-1".into(),
        threshold: k,
        total: n,
    }
}

fn texts(shares: &[Share]) -> Vec<String> {
    shares.iter().map(|s| s.to_text().to_string()).collect()
}

/// A deterministic "random" subset of `k` distinct positions out of `n`.
fn subset(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (state >> 33) as usize % (i + 1);
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

#[test]
fn round_trips_for_many_k_n_and_subsets_beyond_one_to_k() {
    let cases: &[(u8, u8)] = &[
        (2, 2),
        (2, 3),
        (3, 5),
        (4, 7),
        (5, 5),
        (10, 20),
        (16, 40),
        (2, 255),
        (128, 255),
    ];
    for &(k, n) in cases {
        let key = SecretKey::generate().unwrap();
        let s = spec(k, n);
        let shares = split(&s, &key).unwrap();
        assert_eq!(shares.len(), usize::from(n));
        for seed in 0..4u64 {
            let pick = subset(usize::from(n), usize::from(k), seed + u64::from(k) * 31);
            let chosen: Vec<Share> = pick.iter().map(|&i| shares[i].clone()).collect();
            let (header, got) = combine(&chosen).unwrap();
            assert_eq!(got, key, "K={k} N={n} subset {pick:?}");
            assert_eq!(header.escrow_id, s.escrow_id);
        }
        // The last K shares: x values N-K+1..N, never 1..K unless K = N.
        let tail: Vec<String> = texts(&shares[usize::from(n - k)..]);
        assert_eq!(combine_text(&tail).unwrap().1, key, "K={k} N={n} tail");
        // All N shares also work.
        assert_eq!(combine(&shares).unwrap().1, key);
    }
}

#[test]
fn subset_two_four_five_of_three_of_five() {
    let key = SecretKey::generate().unwrap();
    let shares = split(&spec(3, 5), &key).unwrap();
    let chosen = [shares[1].clone(), shares[3].clone(), shares[4].clone()];
    assert_eq!(
        chosen.iter().map(Share::index).collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    assert_eq!(combine(&chosen).unwrap().1, key);
    // Order does not matter.
    let reversed = [shares[4].clone(), shares[1].clone(), shares[3].clone()];
    assert_eq!(combine(&reversed).unwrap().1, key);
}

#[test]
fn a_corrupted_share_is_rejected_by_position_before_combining() {
    let key = SecretKey::generate().unwrap();
    let mut t = texts(&split(&spec(3, 5), &key).unwrap());
    // Flip one character in the middle of share #2.
    let mid = t[1].len() / 2;
    let c = t[1].as_bytes()[mid];
    let replacement = if c == b'a' { "b" } else { "a" };
    t[1].replace_range(mid..=mid, replacement);
    let err = combine_text(&t[..3]).unwrap_err();
    assert!(
        matches!(
            err,
            EscrowError::BadShare {
                position: 2,
                source: ShareFormatError::ChecksumMismatch
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("share #2: checksum mismatch"),
        "{err}"
    );
    // Truncated share #3.
    let mut t2 = texts(&split(&spec(3, 5), &key).unwrap());
    let cut = t2[2].len() - 5;
    t2[2].truncate(cut);
    assert!(matches!(
        combine_text(&t2[..3]).unwrap_err(),
        EscrowError::BadShare { position: 3, .. }
    ));
    // Not a share at all.
    let err = combine_text(&["hello", "world"]).unwrap_err();
    assert!(matches!(
        err,
        EscrowError::BadShare {
            position: 1,
            source: ShareFormatError::MissingPrefix
        }
    ));
}

#[test]
fn a_duplicate_is_rejected() {
    let key = SecretKey::generate().unwrap();
    let t = texts(&split(&spec(3, 5), &key).unwrap());
    let dup = vec![t[0].clone(), t[2].clone(), t[0].clone()];
    let err = combine_text(&dup).unwrap_err();
    assert!(
        matches!(
            err,
            EscrowError::DuplicateShare {
                position: 3,
                first: 1,
                index: 1
            }
        ),
        "{err}"
    );
    // Even with enough distinct shares besides, a duplicate is an error, not ignored.
    let dup4 = vec![t[0].clone(), t[1].clone(), t[2].clone(), t[1].clone()];
    assert!(matches!(
        combine_text(&dup4).unwrap_err(),
        EscrowError::DuplicateShare {
            position: 4,
            first: 2,
            ..
        }
    ));
}

#[test]
fn shares_from_different_escrows_are_rejected() {
    let key = SecretKey::generate().unwrap();
    let a = texts(&split(&spec(2, 3), &key).unwrap());
    let b = texts(&split(&spec(2, 3), &key).unwrap());
    let err = combine_text(&[a[0].clone(), b[1].clone()]).unwrap_err();
    assert!(
        matches!(
            err,
            EscrowError::MixedEscrows {
                position: 2,
                field: "escrow id"
            }
        ),
        "{err}"
    );
    // Same escrow id but another profile (forged header) is caught as well.
    let mut s = spec(2, 3);
    let same_id = s.escrow_id;
    let c = split(&s, &key).unwrap();
    s.profile_id = "someone-else".into();
    let d = split(&s, &key).unwrap();
    assert_eq!(d[0].header().escrow_id, same_id);
    assert!(matches!(
        combine(&[c[0].clone(), d[1].clone()]).unwrap_err(),
        EscrowError::MixedEscrows {
            position: 2,
            field: "profile id"
        }
    ));
    // Same ids, different key: the fingerprints differ.
    let mut s2 = spec(2, 3);
    s2.escrow_id = same_id;
    let e = split(&s2, &SecretKey::generate().unwrap()).unwrap();
    assert!(matches!(
        combine(&[c[0].clone(), e[1].clone()]).unwrap_err(),
        EscrowError::MixedEscrows {
            position: 2,
            field: "key fingerprint"
        }
    ));
}

#[test]
fn fewer_than_k_is_rejected() {
    let key = SecretKey::generate().unwrap();
    let t = texts(&split(&spec(3, 5), &key).unwrap());
    let err = combine_text(&t[..2]).unwrap_err();
    assert!(
        matches!(
            err,
            EscrowError::NotEnoughShares {
                got: 2,
                threshold: 3
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("needs 3"), "{err}");
    let none: [&str; 0] = [];
    assert!(matches!(
        combine_text(&none).unwrap_err(),
        EscrowError::NotEnoughShares { got: 0, .. }
    ));
}

#[test]
fn well_formed_but_wrong_shares_output_nothing_and_name_the_culprit() {
    let key = SecretKey::generate().unwrap();
    let shares = split(&spec(3, 5), &key).unwrap();
    // Forge share 4: same header and index, different value, valid checksum.
    let mut forged_value = *shares[3].expose_value();
    forged_value[0] ^= 0x5A;
    let forged = Share::new(shares[3].header().clone(), 4, forged_value).unwrap();
    let err = combine(&[shares[0].clone(), shares[1].clone(), forged.clone()]).unwrap_err();
    assert!(
        matches!(err, EscrowError::WrongShares { ref culprit } if culprit.is_empty()),
        "{err}"
    );
    // With one share more than needed, the inconsistent one is identified.
    let err = combine(&[
        shares[0].clone(),
        forged,
        shares[1].clone(),
        shares[2].clone(),
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("share #2 is inconsistent"),
        "{err}"
    );
}

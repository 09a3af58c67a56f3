//! Shamir key escrow and a dead-man switch for the memory vault.
//!
//! | module | what |
//! |---|---|
//! | [`share`] | the `aim-share-v1:` text format of one share, with checksum and escrow header |
//! | [`shamir`] | split a 256-bit key into K-of-N shares (blahaj) and combine them, validating first |
//! | [`deadman`] | the dead-man switch state machine: heirs, deadline, sealed packages, release |
//! | [`holder`] | age encryption of shares and packages to X25519 and ssh-ed25519 holders |
//! | [`vault`] | the same wired to a `vault-store` vault: recovery slots, records, recall, recovery |

mod base32;
pub mod deadman;
mod error;
pub mod holder;
pub mod shamir;
pub mod share;
pub mod vault;

pub use age;
pub use error::{EscrowError, Result};
pub use holder::{HolderIdentities, HolderRecipient, RecipientFingerprint};
pub use shamir::{SplitSpec, combine, combine_text, split};
pub use share::{EscrowHeader, KeyFingerprint, Share, ShareFormatError};

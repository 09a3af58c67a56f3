//! Shamir key escrow and a dead-man switch for the memory vault.

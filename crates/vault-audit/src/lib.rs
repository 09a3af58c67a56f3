//! RFC 6962 Merkle audit log for the memory vault, with signed tree heads and inclusion and consistency proofs.

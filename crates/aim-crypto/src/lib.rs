//! All cryptography of the AIM toolkit: Ed25519 agent identities, AIM request signing, Python-compatible canonical JSON, AES-256-GCM, Argon2id and HKDF.

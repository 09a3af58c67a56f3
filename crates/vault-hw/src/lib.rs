//! Hardware key sources and presence checks for the memory vault: TPM 2.0, FIDO2 and TOTP.

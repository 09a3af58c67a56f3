//! Encrypting shares and packages to their holders with age: X25519 recipients (`age1...`) and
//! `ssh-ed25519` public keys, so an agent's or a person's Ed25519 identity can hold a share.
//!
//! The vault stores only a [`RecipientFingerprint`] of each holder, never a share.

use std::fmt;
use std::io::{BufReader, Read};
use std::str::FromStr;

use aim_crypto::Zeroizing;
use aim_crypto::hash::sha256;
use serde::{Deserialize, Serialize};

use crate::{EscrowError, Result};

/// Largest age file this crate decrypts (shares and dead-man packages are far smaller).
pub const MAX_CIPHERTEXT_LEN: usize = 64 * 1024 * 1024;

/// A holder's public key: who a share or package is encrypted to.
#[derive(Clone)]
pub enum HolderRecipient {
    /// A native age X25519 recipient, `age1...`.
    X25519(age::x25519::Recipient),
    /// An OpenSSH Ed25519 public key, `ssh-ed25519 AAAA...` (the comment is dropped).
    SshEd25519(age::ssh::Recipient),
}

impl HolderRecipient {
    /// The recipient in canonical text form (`age1...` or `ssh-ed25519 <base64>`).
    pub fn canonical(&self) -> String {
        match self {
            Self::X25519(r) => r.to_string(),
            Self::SshEd25519(r) => r.to_string(),
        }
    }

    /// The fingerprint recorded in the vault in place of the recipient's identity.
    pub fn fingerprint(&self) -> RecipientFingerprint {
        RecipientFingerprint::of_canonical(&self.canonical())
    }

    fn as_age(&self) -> &dyn age::Recipient {
        match self {
            Self::X25519(r) => r,
            Self::SshEd25519(r) => r,
        }
    }

    /// Encrypts `plaintext` to this recipient as an ASCII-armored age file.
    pub fn encrypt_armored(&self, plaintext: &[u8]) -> Result<String> {
        use std::io::Write;
        let encryptor = age::Encryptor::with_recipients(std::iter::once(self.as_age()))
            .map_err(|e| EscrowError::Encrypt(e.to_string()))?;
        let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 512);
        let io = |e: std::io::Error| EscrowError::Encrypt(e.to_string());
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .map_err(io)?;
        let mut writer = encryptor.wrap_output(armor).map_err(io)?;
        writer.write_all(plaintext).map_err(io)?;
        writer.finish().and_then(|a| a.finish()).map_err(io)?;
        String::from_utf8(out).map_err(|_| EscrowError::Encrypt("armor is not UTF-8".into()))
    }
}

impl FromStr for HolderRecipient {
    type Err = EscrowError;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let invalid = |reason: &str| EscrowError::InvalidRecipient {
            recipient: s.chars().take(120).collect(),
            reason: reason.to_owned(),
        };
        if s.starts_with("age1") {
            return s
                .parse::<age::x25519::Recipient>()
                .map(Self::X25519)
                .map_err(&invalid);
        }
        if s.starts_with("ssh-ed25519 ") {
            return match s.parse::<age::ssh::Recipient>() {
                Ok(r @ age::ssh::Recipient::SshEd25519(..)) => Ok(Self::SshEd25519(r)),
                Ok(_) => Err(invalid("not an ssh-ed25519 key")),
                Err(_) => Err(invalid("not a valid ssh-ed25519 public key")),
            };
        }
        if s.starts_with("ssh-rsa ") {
            return Err(invalid(
                "ssh-rsa keys are not accepted; use an ssh-ed25519 key or an age1... X25519 recipient",
            ));
        }
        Err(invalid(
            "expected an age X25519 recipient (age1...) or an OpenSSH public key (ssh-ed25519 AAAA...)",
        ))
    }
}

impl fmt::Display for HolderRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl fmt::Debug for HolderRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HolderRecipient({})", self.canonical())
    }
}

/// The first 16 bytes of SHA-256 over a recipient's canonical text, in hex: what the vault
/// records about who holds a share or a package.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecipientFingerprint(String);

impl RecipientFingerprint {
    fn of_canonical(canonical: &str) -> Self {
        let digest = sha256(canonical.as_bytes());
        Self(hex::encode(&digest[..16]))
    }

    /// The fingerprint as 32 hexadecimal digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecipientFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Private keys that can open shares and packages: age X25519 identities (`AGE-SECRET-KEY-1...`,
/// as written by `age-keygen`) and unencrypted OpenSSH Ed25519 private keys.
#[derive(Default)]
pub struct HolderIdentities {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl fmt::Debug for HolderIdentities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HolderIdentities({} keys)", self.identities.len())
    }
}

impl HolderIdentities {
    /// No identities yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many identities are loaded.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// True when none are loaded.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Adds an age X25519 identity.
    pub fn add_x25519(&mut self, identity: age::x25519::Identity) {
        self.identities.push(Box::new(identity));
    }

    /// Adds the identities in `text`, the contents of an age identity file or an OpenSSH
    /// private key file. `source_name` (a file name) appears in errors; the key never does.
    pub fn add_text(&mut self, text: &str, source_name: Option<&str>) -> Result<()> {
        let invalid = |reason: &str| EscrowError::InvalidIdentity {
            source_name: source_name.map(str::to_owned),
            reason: reason.to_owned(),
        };
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            let id = age::ssh::Identity::from_buffer(BufReader::new(text.as_bytes()), None)
                .map_err(|_| invalid("not a readable OpenSSH private key"))?;
            return match &id {
                age::ssh::Identity::Unencrypted(_) => {
                    match age::ssh::Recipient::try_from(id.clone()) {
                        Ok(age::ssh::Recipient::SshEd25519(..)) => {
                            self.identities.push(Box::new(id));
                            Ok(())
                        }
                        _ => Err(invalid("only ssh-ed25519 keys can hold vault shares")),
                    }
                }
                age::ssh::Identity::Encrypted(_) => Err(invalid(
                    "the SSH key is passphrase-protected; make an unprotected copy in a private \
                     directory (`ssh-keygen -p -N '' -f COPY`) and pass that",
                )),
                age::ssh::Identity::Unsupported(_) => Err(invalid("unsupported SSH key type")),
            };
        }
        let file = age::IdentityFile::from_buffer(BufReader::new(text.as_bytes()))
            .map_err(|e| invalid(&e.to_string()))?;
        let ids = file
            .into_identities()
            .map_err(|e| invalid(&e.to_string()))?;
        if ids.is_empty() {
            return Err(invalid("no identity found (expected AGE-SECRET-KEY-1...)"));
        }
        self.identities.extend(ids);
        Ok(())
    }

    /// Reads identities from a file (see [`HolderIdentities::add_text`]).
    pub fn add_file(&mut self, path: &std::path::Path) -> Result<()> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| EscrowError::Io {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        self.add_text(&text, Some(&path.display().to_string()))
    }

    /// Decrypts an age file (armored or binary) with any of the identities.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.identities.is_empty() {
            return Err(EscrowError::Decrypt("no identity given".into()));
        }
        let reader = age::armor::ArmoredReader::new(ciphertext);
        let decryptor = age::Decryptor::new_buffered(reader).map_err(describe)?;
        let mut plain = Zeroizing::new(Vec::new());
        let stream = decryptor
            .decrypt(
                self.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map_err(describe)?;
        stream
            .take(MAX_CIPHERTEXT_LEN as u64)
            .read_to_end(&mut plain)
            .map_err(|e| EscrowError::Decrypt(format!("damaged age file: {e}")))?;
        Ok(plain)
    }
}

fn describe(e: age::DecryptError) -> EscrowError {
    EscrowError::Decrypt(match e {
        age::DecryptError::NoMatchingKeys => {
            "none of the given identities is a recipient of this file".to_owned()
        }
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway OpenSSH Ed25519 key pair made for these tests with `ssh-keygen -t ed25519`.
    pub(crate) const SSH_PRIVATE: &str = include_str!("../tests/data/test_ed25519");
    pub(crate) const SSH_PUBLIC: &str = include_str!("../tests/data/test_ed25519.pub");

    #[test]
    fn x25519_round_trip_and_wrong_key() {
        let alice = age::x25519::Identity::generate();
        let bob = age::x25519::Identity::generate();
        let recipient: HolderRecipient = alice.to_public().to_string().parse().unwrap();
        let armored = recipient.encrypt_armored(b"share text").unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        let mut ids = HolderIdentities::new();
        ids.add_x25519(alice);
        assert_eq!(
            ids.decrypt(armored.as_bytes()).unwrap().as_slice(),
            b"share text"
        );
        let mut wrong = HolderIdentities::new();
        wrong.add_x25519(bob);
        let err = wrong.decrypt(armored.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("none of the given identities"), "{err}");
        assert!(HolderIdentities::new().decrypt(armored.as_bytes()).is_err());
    }

    #[test]
    fn identity_file_text_is_accepted() {
        let alice = age::x25519::Identity::generate();
        let file = format!(
            "# created: today\n# public key: {}\n{}\n",
            alice.to_public(),
            aim_crypto::Zeroizing::new(
                age::secrecy::ExposeSecret::expose_secret(&alice.to_string()).to_owned()
            )
            .as_str()
        );
        let mut ids = HolderIdentities::new();
        ids.add_text(&file, Some("alice.key")).unwrap();
        assert_eq!(ids.len(), 1);
        let r: HolderRecipient = alice.to_public().to_string().parse().unwrap();
        let ct = r.encrypt_armored(b"x").unwrap();
        assert_eq!(ids.decrypt(ct.as_bytes()).unwrap().as_slice(), b"x");
        let err = HolderIdentities::new()
            .add_text("not a key", Some("junk.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("junk.txt"), "{err}");
        assert!(
            !err.contains("not a key"),
            "error must not echo the file: {err}"
        );
    }

    #[test]
    fn ssh_ed25519_round_trip() {
        let r: HolderRecipient = SSH_PUBLIC.parse().unwrap();
        assert!(matches!(r, HolderRecipient::SshEd25519(_)));
        // The comment is not part of the canonical form or the fingerprint.
        let no_comment: String = SSH_PUBLIC
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(r.canonical(), no_comment);
        let r2: HolderRecipient = format!("{no_comment} other-comment").parse().unwrap();
        assert_eq!(r.fingerprint(), r2.fingerprint());
        let ct = r.encrypt_armored(b"for the ssh key").unwrap();
        let mut ids = HolderIdentities::new();
        ids.add_text(SSH_PRIVATE, Some("id_ed25519")).unwrap();
        assert_eq!(
            ids.decrypt(ct.as_bytes()).unwrap().as_slice(),
            b"for the ssh key"
        );
        let mut other = HolderIdentities::new();
        other.add_x25519(age::x25519::Identity::generate());
        assert!(other.decrypt(ct.as_bytes()).is_err());
    }

    #[test]
    fn recipients_are_validated() {
        for bad in [
            "",
            "age1notavalidkey",
            "ssh-ed25519 AAAAnotbase64!!",
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
            "hello",
        ] {
            let err = bad.parse::<HolderRecipient>().unwrap_err();
            assert!(
                matches!(err, EscrowError::InvalidRecipient { .. }),
                "{bad}: {err}"
            );
        }
        let err = "ssh-rsa AAAA"
            .parse::<HolderRecipient>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssh-ed25519"), "{err}");
    }

    #[test]
    fn fingerprints_differ_per_recipient_and_are_hex() {
        let a: HolderRecipient = age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap();
        let b: HolderRecipient = age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().as_str().len(), 32);
        assert!(
            a.fingerprint()
                .as_str()
                .bytes()
                .all(|c| c.is_ascii_hexdigit())
        );
        let expected = hex::encode(&sha256(a.canonical().as_bytes())[..16]);
        assert_eq!(a.fingerprint().as_str(), expected);
    }
}

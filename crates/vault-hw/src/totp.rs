//! RFC 6238 time-based one-time passwords as a presence check, with replay protection.
//!
//! Defaults: HMAC-SHA1, 30-second steps, 6 digits, one step of clock skew either way (what
//! every authenticator app implements). A code is accepted at most once: the last accepted
//! time step is remembered and any code for that step or an earlier one is refused.
//!
//! The secret is never a plaintext file: [`TotpPresence::enroll`] stores it as a sealed record
//! of the profile (`hw/totp`), and [`TotpPresence::load`] reads it back through an unlocked
//! session. This is a second factor held in software (an authenticator app), not a hardware
//! token; see `docs/hardware.md`.

use std::sync::{Arc, Mutex};

use aim_crypto::hash::hmac_sha256;
use aim_crypto::legacy::hmac_sha1;
use aim_crypto::{SecretBytes, Zeroizing};
use serde::{Deserialize, Serialize};
use vault_store::{Clock, GateError, Presence, PresenceRequest, Sealing, Session};

use crate::{HwError, Result};

/// Record namespace and key of the sealed TOTP secret.
pub const RECORD_NAMESPACE: &str = "hw";
/// Record key of the sealed TOTP secret.
pub const RECORD_KEY: &str = "totp";

/// The HMAC of a TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TotpAlgorithm {
    /// HMAC-SHA1 (the RFC 6238 default and what authenticator apps use).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
}

/// TOTP parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpParams {
    /// The HMAC.
    pub algorithm: TotpAlgorithm,
    /// Code length, 6 to 8.
    pub digits: u32,
    /// Step length in seconds.
    pub step_secs: u64,
    /// Steps of clock skew accepted either way.
    pub skew_steps: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            step_secs: 30,
            skew_steps: 1,
        }
    }
}

impl TotpParams {
    fn validate(&self) -> Result<()> {
        if !(6..=8).contains(&self.digits) {
            return Err(HwError::Invalid("TOTP codes have 6 to 8 digits".into()));
        }
        if self.step_secs == 0 || self.step_secs > 3600 {
            return Err(HwError::Invalid(
                "the TOTP step must be 1 to 3600 seconds".into(),
            ));
        }
        if self.skew_steps > 10 {
            return Err(HwError::Invalid("accept at most 10 steps of skew".into()));
        }
        Ok(())
    }
}

/// A TOTP generator and verifier. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Totp {
    secret: SecretBytes,
    params: TotpParams,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Totp {
    /// A TOTP over `secret` (at least 16 bytes).
    pub fn new(secret: SecretBytes, params: TotpParams) -> Result<Self> {
        params.validate()?;
        if secret.len() < 16 || secret.len() > 128 {
            return Err(HwError::Invalid("a TOTP secret has 16 to 128 bytes".into()));
        }
        Ok(Self { secret, params })
    }

    /// A fresh random 20-byte secret (160 bits, as RFC 4226 recommends).
    pub fn generate(params: TotpParams) -> Result<Self> {
        let bytes = aim_crypto::random::random_array::<20>()?;
        Self::new(SecretBytes::new(bytes.to_vec()), params)
    }

    /// The parameters.
    pub fn params(&self) -> TotpParams {
        self.params
    }

    /// The time step containing `unix_secs`.
    pub fn step(&self, unix_secs: u64) -> u64 {
        unix_secs / self.params.step_secs
    }

    /// The code for time step `step` (RFC 4226 dynamic truncation).
    pub fn code_for_step(&self, step: u64) -> Zeroizing<String> {
        let counter = step.to_be_bytes();
        let mac: Zeroizing<Vec<u8>> = Zeroizing::new(match self.params.algorithm {
            TotpAlgorithm::Sha1 => hmac_sha1(self.secret.expose(), &counter).to_vec(),
            TotpAlgorithm::Sha256 => hmac_sha256(self.secret.expose(), &counter).to_vec(),
        });
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let bin = (u32::from(mac[offset] & 0x7f) << 24)
            | (u32::from(mac[offset + 1]) << 16)
            | (u32::from(mac[offset + 2]) << 8)
            | u32::from(mac[offset + 3]);
        let modulus = 10u32.pow(self.params.digits);
        Zeroizing::new(format!(
            "{:0width$}",
            bin % modulus,
            width = self.params.digits as usize
        ))
    }

    /// The code at `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> Zeroizing<String> {
        self.code_for_step(self.step(unix_secs))
    }

    /// Checks `code` at `unix_secs` within the skew window, refusing any step at or before
    /// `last_accepted` (replay). Returns the step it matched, to remember.
    pub fn verify(&self, code: &str, unix_secs: u64, last_accepted: Option<u64>) -> Result<u64> {
        let code = code.trim();
        if code.len() != self.params.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HwError::BadCode("wrong format"));
        }
        let now = self.step(unix_secs);
        let mut matched = None;
        // Check every step in the window (no early exit) so timing does not say which matched.
        for step in
            now.saturating_sub(self.params.skew_steps)..=now.saturating_add(self.params.skew_steps)
        {
            if aim_crypto::kdf::ct_eq(self.code_for_step(step).as_bytes(), code.as_bytes()) {
                matched = Some(step);
            }
        }
        let step = matched.ok_or(HwError::BadCode("wrong or expired code"))?;
        if last_accepted.is_some_and(|last| step <= last) {
            return Err(HwError::BadCode(
                "this code (or a later one) was already used",
            ));
        }
        Ok(step)
    }

    /// An `otpauth://` URI for authenticator apps (contains the secret: show it once).
    pub fn provisioning_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        char::from(b).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let alg = match self.params.algorithm {
            TotpAlgorithm::Sha1 => "SHA1",
            TotpAlgorithm::Sha256 => "SHA256",
        };
        Zeroizing::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={alg}&digits={}&period={}",
            enc(issuer),
            enc(account),
            base32_upper(self.secret.expose()).as_str(),
            enc(issuer),
            self.params.digits,
            self.params.step_secs
        ))
    }
}

fn base32_upper(bytes: &[u8]) -> Zeroizing<String> {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Zeroizing::new(String::new());
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(A[((buf >> bits) & 31) as usize]));
        }
        buf &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(A[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Where a presence check gets the code from.
pub trait CodeSource: Send + Sync {
    /// The code the user typed for `request`.
    fn code(&self, request: &PresenceRequest) -> std::result::Result<Zeroizing<String>, GateError>;
}

/// Asks on the controlling terminal; unavailable without one (a piped agent cannot answer).
#[derive(Debug, Default, Clone, Copy)]
pub struct TtyCodeSource;

impl CodeSource for TtyCodeSource {
    fn code(&self, request: &PresenceRequest) -> std::result::Result<Zeroizing<String>, GateError> {
        if !std::path::Path::new("/dev/tty").exists() {
            return Err(GateError::Unavailable(
                "no terminal to ask for a TOTP code".into(),
            ));
        }
        rpassword::prompt_password(format!(
            "Presence check for {} of memory {} (level {}): TOTP code: ",
            request.purpose, request.memory_id, request.classification
        ))
        .map(Zeroizing::new)
        .map_err(|e| {
            GateError::Unavailable(format!("cannot read a TOTP code from the terminal: {e}"))
        })
    }
}

type CodeFn =
    dyn Fn(&PresenceRequest) -> std::result::Result<Zeroizing<String>, GateError> + Send + Sync;

/// Takes the code from a callback (a GUI, a test).
pub struct CallbackCodeSource(Box<CodeFn>);

impl CallbackCodeSource {
    /// Wraps `f`.
    pub fn new(
        f: impl Fn(&PresenceRequest) -> std::result::Result<Zeroizing<String>, GateError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self(Box::new(f))
    }
}

impl CodeSource for CallbackCodeSource {
    fn code(&self, request: &PresenceRequest) -> std::result::Result<Zeroizing<String>, GateError> {
        (self.0)(request)
    }
}

#[derive(Serialize, Deserialize)]
struct TotpRecord {
    format: String,
    secret_b64: String,
    params: TotpParams,
    last_step: Option<u64>,
}

const RECORD_FORMAT: &str = "aim-hw-totp-v1";

/// A TOTP presence check for the vault's level-5 gate.
pub struct TotpPresence {
    totp: Totp,
    last_step: Mutex<Option<u64>>,
    codes: Arc<dyn CodeSource>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TotpPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpPresence")
            .field("totp", &self.totp)
            .finish_non_exhaustive()
    }
}

impl TotpPresence {
    /// A presence check over `totp` (the caller provides the secret), remembering replays
    /// from `last_step` on.
    pub fn new(
        totp: Totp,
        last_step: Option<u64>,
        codes: Arc<dyn CodeSource>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            totp,
            last_step: Mutex::new(last_step),
            codes,
            clock,
        }
    }

    /// Makes a new secret, stores it sealed in `session`'s profile (`hw/totp`) and returns the
    /// provisioning URI to show the user once. Replacing an enrolled presence factor needs a
    /// human factor ([`Session::take_admin`]).
    pub fn enroll(
        session: &mut Session<'_>,
        params: TotpParams,
        issuer: &str,
    ) -> Result<Zeroizing<String>> {
        if crate::presence_enrolled(session)? {
            session.take_admin("presence.enroll")?;
        }
        let totp = Totp::generate(params)?;
        let uri = totp.provisioning_uri(issuer, session.profile());
        save(session, &totp, None)?;
        Ok(uri)
    }

    /// Whether `session`'s profile has a TOTP secret enrolled.
    pub fn is_enrolled(session: &Session<'_>) -> Result<bool> {
        Ok(session.get_record(RECORD_NAMESPACE, RECORD_KEY)?.is_some())
    }

    /// Loads the sealed secret and replay state from `session`'s profile.
    pub fn load(
        session: &Session<'_>,
        codes: Arc<dyn CodeSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>> {
        let Some(rec) = session.get_record(RECORD_NAMESPACE, RECORD_KEY)? else {
            return Ok(None);
        };
        let r: TotpRecord = serde_json::from_slice(rec.value.expose())
            .map_err(|e| HwError::BadBlob(format!("TOTP record: {e}")))?;
        if r.format != RECORD_FORMAT {
            return Err(HwError::BadBlob(format!(
                "unknown TOTP record format {:?}",
                r.format
            )));
        }
        let secret = SecretBytes::new(aim_crypto::b64::decode(&r.secret_b64, "TOTP secret")?);
        Ok(Some(Self::new(
            Totp::new(secret, r.params)?,
            r.last_step,
            codes,
            clock,
        )))
    }

    /// Writes the replay state back (call after a session in which codes were accepted, so
    /// another process cannot reuse them).
    pub fn persist(&self, session: &mut Session<'_>) -> Result<()> {
        save(session, &self.totp, self.last_accepted_step())
    }

    /// The last accepted time step.
    pub fn last_accepted_step(&self) -> Option<u64> {
        match self.last_step.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// Checks `code` now and remembers its step.
    pub fn check(&self, code: &str) -> Result<()> {
        let now = u64::try_from(self.clock.now_ms() / 1000).unwrap_or(0);
        let mut last = self
            .last_step
            .lock()
            .map_err(|_| HwError::Invalid("TOTP state lock poisoned".into()))?;
        let step = self.totp.verify(code, now, *last)?;
        *last = Some(step);
        Ok(())
    }
}

/// A TOTP enrolment that is stored only once the user proves their authenticator has the
/// secret: show [`PendingTotp::provisioning_uri`] (or [`PendingTotp::secret_base32`]) once,
/// ask for the first code, then [`PendingTotp::confirm`]. The confirming code's step is
/// remembered, so it cannot be replayed afterwards.
pub struct PendingTotp {
    totp: Totp,
}

impl std::fmt::Debug for PendingTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTotp")
            .field("totp", &self.totp)
            .finish()
    }
}

impl PendingTotp {
    /// A fresh random secret with `params`.
    pub fn generate(params: TotpParams) -> Result<Self> {
        Ok(Self {
            totp: Totp::generate(params)?,
        })
    }

    /// The `otpauth://` URI for authenticator apps (contains the secret: show it once).
    pub fn provisioning_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        self.totp.provisioning_uri(issuer, account)
    }

    /// The secret in base32 (for typing into an app by hand; show it once).
    pub fn secret_base32(&self) -> Zeroizing<String> {
        base32_upper(self.totp.secret.expose())
    }

    /// Checks the user's first `code` at `unix_secs` and, only if it is right, stores the
    /// secret sealed in `session`'s profile (replacing any earlier one). Returns the step.
    /// Replacing an enrolled presence factor needs a human factor: ask for it with
    /// [`Session::authorize_admin`] before showing the secret; this uses it up.
    pub fn confirm(self, session: &mut Session<'_>, code: &str, unix_secs: u64) -> Result<u64> {
        let step = self.totp.verify(code, unix_secs, None)?;
        if crate::presence_enrolled(session)? {
            session.take_admin("presence.enroll")?;
        }
        save(session, &self.totp, Some(step))?;
        Ok(step)
    }
}

fn save(session: &mut Session<'_>, totp: &Totp, last_step: Option<u64>) -> Result<()> {
    let rec = TotpRecord {
        format: RECORD_FORMAT.to_owned(),
        secret_b64: aim_crypto::b64::encode(totp.secret.expose()),
        params: totp.params,
        last_step,
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&rec)
            .map_err(|e| HwError::Invalid(format!("cannot encode TOTP record: {e}")))?,
    );
    drop(Zeroizing::new(rec.secret_b64));
    session.put_record(RECORD_NAMESPACE, RECORD_KEY, &json, Sealing::Sealed)?;
    Ok(())
}

impl Presence for TotpPresence {
    fn confirm(&self, request: &PresenceRequest) -> std::result::Result<(), GateError> {
        let code = self.codes.code(request)?;
        self.check(&code)
            .map_err(|e| GateError::Refused(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(secret: &[u8], algorithm: TotpAlgorithm) -> Totp {
        Totp::new(
            SecretBytes::new(secret.to_vec()),
            TotpParams {
                algorithm,
                digits: 8,
                ..TotpParams::default()
            },
        )
        .unwrap()
    }

    /// RFC 6238 Appendix B.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = rfc(b"12345678901234567890", TotpAlgorithm::Sha1);
        let sha256 = rfc(b"12345678901234567890123456789012", TotpAlgorithm::Sha256);
        for (t, c1, c256) in [
            (59u64, "94287082", "46119246"),
            (1_111_111_109, "07081804", "68084774"),
            (1_111_111_111, "14050471", "67062674"),
            (1_234_567_890, "89005924", "91819424"),
            (2_000_000_000, "69279037", "90698825"),
            (20_000_000_000, "65353130", "77737706"),
        ] {
            assert_eq!(sha1.code_at(t).as_str(), c1, "SHA1 T={t}");
            assert_eq!(sha256.code_at(t).as_str(), c256, "SHA256 T={t}");
        }
    }

    #[test]
    fn six_digit_default_and_window() {
        let t = Totp::new(
            SecretBytes::new(b"12345678901234567890".to_vec()),
            TotpParams::default(),
        )
        .unwrap();
        // RFC 4226 Appendix D, counter 1 (= T 30..59 at 30 s steps): 287082.
        assert_eq!(t.code_at(59).as_str(), "287082");
        let code = t.code_at(1_000_000).to_string();
        assert_eq!(t.verify(&code, 1_000_000, None).unwrap(), 1_000_000 / 30);
        // One step of skew either way is accepted; two are not.
        assert!(t.verify(&code, 1_000_000 + 30, None).is_ok());
        assert!(t.verify(&code, 1_000_000 - 30, None).is_ok());
        assert!(t.verify(&code, 1_000_000 + 61, None).is_err());
        assert!(matches!(
            t.verify("12345", 0, None),
            Err(HwError::BadCode("wrong format"))
        ));
        assert!(t.verify("abcdef", 0, None).is_err());
    }

    #[test]
    fn a_code_is_accepted_once() {
        let t = Totp::generate(TotpParams::default()).unwrap();
        let now = 1_700_000_000;
        let code = t.code_at(now).to_string();
        let step = t.verify(&code, now, None).unwrap();
        let err = t.verify(&code, now, Some(step)).unwrap_err();
        assert!(matches!(err, HwError::BadCode(m) if m.contains("already used")));
        // The previous step's code is refused after a later one was used.
        let prev = t.code_for_step(step - 1).to_string();
        assert!(t.verify(&prev, now, Some(step)).is_err());
        // The next step's code is fine.
        let next = t.code_for_step(step + 1).to_string();
        assert_eq!(t.verify(&next, now + 30, Some(step)).unwrap(), step + 1);
    }

    #[test]
    fn provisioning_uri_and_debug() {
        let t = Totp::new(
            SecretBytes::new(b"12345678901234567890".to_vec()),
            TotpParams::default(),
        )
        .unwrap();
        let uri = t.provisioning_uri("Memory Vault", "agent");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Memory%20Vault:agent?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Memory%20Vault&algorithm=SHA1&digits=6&period=30"
        );
        assert!(!format!("{t:?}").contains("GEZD"));
        assert!(Totp::new(SecretBytes::new(vec![1; 10]), TotpParams::default()).is_err());
        assert!(
            Totp::new(
                SecretBytes::new(vec![1; 20]),
                TotpParams {
                    digits: 9,
                    ..TotpParams::default()
                }
            )
            .is_err()
        );
    }
}

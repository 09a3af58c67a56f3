//! Level-5 presence for `aim vault`: the profile's enrolled factor (TOTP, `vault-hw`), asked
//! on the controlling terminal only. Without an enrolled factor, or without a terminal, the
//! presence gate denies.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use vault_hw::totp::{PendingTotp, TotpParams, TotpPresence, TtyCodeSource};
use vault_store::{Clock, GateError, Presence, PresenceRequest, Session, SystemClock};

/// Issuer shown by authenticator apps.
const ISSUER: &str = "AIM Memory Vault";

/// The presence gate the CLI plugs in before unlocking; [`EnrolledPresence::load`] fills it
/// from the unlocked profile.
#[derive(Default)]
pub(crate) struct EnrolledPresence {
    totp: Mutex<Option<Loaded>>,
}

struct Loaded {
    presence: Arc<TotpPresence>,
    step_at_load: Option<u64>,
}

impl std::fmt::Debug for EnrolledPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolledPresence(..)")
    }
}

impl EnrolledPresence {
    fn current(&self) -> Option<Arc<TotpPresence>> {
        match self.totp.lock() {
            Ok(g) => g.as_ref().map(|l| l.presence.clone()),
            Err(_) => None,
        }
    }

    /// Loads the profile's enrolled TOTP (codes asked on the terminal).
    pub(crate) fn load(&self, s: &Session<'_>) -> Result<()> {
        let loaded = TotpPresence::load(s, Arc::new(TtyCodeSource), Arc::new(SystemClock))
            .context("cannot load the profile's TOTP presence factor")?
            .map(|p| Loaded {
                step_at_load: p.last_accepted_step(),
                presence: Arc::new(p),
            });
        if let Ok(mut g) = self.totp.lock() {
            *g = loaded;
        }
        Ok(())
    }

    /// Writes the TOTP replay state back if a code was accepted, so the code cannot be used
    /// again by another process.
    pub(crate) fn persist(&self, s: &mut Session<'_>) -> Result<()> {
        let Ok(g) = self.totp.lock() else {
            bail!("the presence state lock is poisoned");
        };
        if let Some(l) = g.as_ref()
            && l.presence.last_accepted_step() != l.step_at_load
        {
            l.presence
                .persist(s)
                .context("cannot record the used TOTP code")?;
        }
        Ok(())
    }
}

impl Presence for EnrolledPresence {
    fn confirm(&self, request: &PresenceRequest) -> std::result::Result<(), GateError> {
        match self.current() {
            Some(p) => p.confirm(request),
            None => Err(GateError::Unavailable(format!(
                "profile `{}` has no presence factor enrolled; enrol one with `aim vault presence enroll-totp`",
                request.profile
            ))),
        }
    }
}

/// `aim vault presence enroll-totp`: shows a new secret on the terminal once, asks for the first
/// code and stores the secret sealed in the profile only if the code is right.
pub(crate) fn enroll_totp(s: &mut Session<'_>, replace: bool) -> Result<()> {
    if TotpPresence::is_enrolled(s)? && !replace {
        bail!(
            "profile `{}` already has a TOTP enrolled; pass --replace to enrol a new one (the old one stops working)",
            s.profile()
        );
    }
    // The secret goes to the controlling terminal only: never stdout (which may be a pipe or
    // a log), never argv or the environment.
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("enrolling a TOTP needs a terminal: the secret is shown there and nowhere else")?;
    let pending = PendingTotp::generate(TotpParams::default())?;
    let uri = pending.provisioning_uri(ISSUER, s.profile());
    let secret = pending.secret_base32();
    writeln!(
        tty,
        "Add this account to your authenticator app (shown once; it is stored only sealed in the vault):\n  {}\n  secret: {}",
        uri.as_str(),
        secret.as_str()
    )
    .and_then(|()| tty.flush())
    .context("cannot write to the terminal")?;
    drop((uri, secret));
    let code = zeroize::Zeroizing::new(
        rpassword::prompt_password("First code shown by the app: ")
            .context("cannot read the code from the terminal")?,
    );
    let now = u64::try_from(SystemClock.now_ms() / 1000).unwrap_or(0);
    pending.confirm(s, code.trim(), now).map_err(|e| {
        anyhow::anyhow!(
            "{e}; nothing was enrolled (run the command again and type the current code)"
        )
    })?;
    println!(
        "TOTP enrolled for profile {}: level-5 recalls and `backup --include-black` now ask for a code on the terminal",
        s.profile()
    );
    Ok(())
}

/// `aim vault presence show`.
pub(crate) fn show(s: &Session<'_>) -> Result<()> {
    if TotpPresence::is_enrolled(s)? {
        println!("totp: enrolled (codes are asked on the terminal)");
    } else {
        println!(
            "no presence factor enrolled: level-5 recalls are denied (enrol one with `aim vault presence enroll-totp`)"
        );
    }
    Ok(())
}

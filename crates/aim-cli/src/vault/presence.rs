//! Level-5 presence for `aim vault`: the profile's enrolled factors (`vault-hw`): a FIDO2 key
//! (touch) and/or a TOTP (code asked on the controlling terminal only). Without an enrolled
//! factor, or without its device or terminal, the presence gate denies. The same factor
//! authorizes administrative changes (gates, re-enrolment, leaving lockdown).

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use vault_hw::fido2::{Authenticator, DEFAULT_RP_ID, Fido2Presence};
use vault_hw::totp::{PendingTotp, TotpParams, TotpPresence, TtyCodeSource};
use vault_store::{Clock, GateError, Presence, PresenceRequest, Session, SystemClock};

/// Issuer shown by authenticator apps.
const ISSUER: &str = "AIM Memory Vault";

/// The presence gate the CLI plugs in before unlocking; [`EnrolledPresence::load`] fills it
/// from the unlocked profile.
#[derive(Default)]
pub(crate) struct EnrolledPresence {
    totp: Mutex<Option<Loaded>>,
    fido2: Mutex<Option<LoadedKey>>,
}

struct LoadedKey {
    presence: Arc<Fido2Presence>,
    counter_at_load: u32,
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

    fn current_key(&self) -> Option<Arc<Fido2Presence>> {
        match self.fido2.lock() {
            Ok(g) => g.as_ref().map(|l| l.presence.clone()),
            Err(_) => None,
        }
    }

    /// Loads the profile's enrolled factors: the FIDO2 credential (when this build can reach
    /// an authenticator) and the TOTP (codes asked on the terminal).
    pub(crate) fn load(&self, s: &Session<'_>) -> Result<()> {
        let key = match Fido2Presence::is_enrolled(s)? {
            false => None,
            true => match authenticator() {
                Ok(a) => Fido2Presence::load(s, a)
                    .context("cannot load the profile's FIDO2 presence credential")?
                    .map(|p| LoadedKey {
                        counter_at_load: p.counter(),
                        presence: Arc::new(p),
                    }),
                // Enrolled, but this build has no FIDO2 support: the factor stays unavailable
                // (presence then denies unless a TOTP is enrolled too).
                Err(_) => None,
            },
        };
        if let Ok(mut g) = self.fido2.lock() {
            *g = key;
        }
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
        drop(g);
        let Ok(k) = self.fido2.lock() else {
            bail!("the presence state lock is poisoned");
        };
        if let Some(l) = k.as_ref()
            && l.presence.counter() != l.counter_at_load
        {
            l.presence
                .persist(s)
                .context("cannot record the FIDO2 signature counter")?;
        }
        Ok(())
    }
}

impl Presence for EnrolledPresence {
    /// The FIDO2 key first (touch); if it is not enrolled or fails, the TOTP.
    fn confirm(&self, request: &PresenceRequest) -> std::result::Result<(), GateError> {
        let mut errors = Vec::new();
        if let Some(k) = self.current_key() {
            eprintln!(
                "Touch your FIDO2 key to confirm {} ({})",
                request.purpose, request.profile
            );
            match k.confirm(request) {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(format!("FIDO2: {e}")),
            }
        }
        if let Some(p) = self.current() {
            match p.confirm(request) {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(format!("TOTP: {e}")),
            }
        }
        if errors.is_empty() {
            return Err(GateError::Unavailable(format!(
                "profile `{}` has no presence factor enrolled; enrol one with `aim vault presence enroll-fido2` or `enroll-totp`",
                request.profile
            )));
        }
        Err(GateError::Refused(errors.join("; ")))
    }
}

/// The FIDO2 authenticator this build uses: a USB/NFC key (feature `fido2`), or, in builds with
/// the test-only feature `soft-fido2`, the software authenticator kept in the file named by
/// `AIM_VAULT_SOFT_FIDO2` when that is set (not a security device).
pub(crate) fn authenticator() -> Result<Arc<dyn Authenticator>> {
    #[cfg(feature = "soft-fido2")]
    if let Some(path) = std::env::var_os("AIM_VAULT_SOFT_FIDO2") {
        return Ok(Arc::new(
            vault_hw::fido2::SoftAuthenticator::open_state_file(path)
                .context("cannot open the software FIDO2 authenticator")?,
        ));
    }
    #[cfg(feature = "fido2")]
    {
        Ok(Arc::new(vault_hw::fido2::HidAuthenticator::new()))
    }
    #[cfg(not(feature = "fido2"))]
    {
        bail!("this `aim` was built without FIDO2 support (cargo feature `fido2`)")
    }
}

/// Refuses to replace an enrolled factor without `--replace`, and asks for a human factor
/// (the enrolled presence factor, an AIM approval, or the recovery key) before replacing one.
fn check_replace(s: &mut Session<'_>, replace: bool, what: &str) -> Result<()> {
    if !vault_hw::presence_enrolled(s)? {
        return Ok(());
    }
    if !replace {
        bail!(
            "profile `{}` already has a presence factor enrolled; pass --replace to enrol {what} (this needs the enrolled factor or an AIM approval)",
            s.profile()
        );
    }
    s.authorize_admin("presence.enroll")
        .context("replacing the presence factor needs a person")?;
    Ok(())
}

/// `aim vault presence enroll-fido2`: registers a credential on the FIDO2 key (touch) and
/// stores it sealed in the profile.
pub(crate) fn enroll_fido2(s: &mut Session<'_>, replace: bool) -> Result<()> {
    check_replace(s, replace, "a FIDO2 key")?;
    let auth = authenticator()?;
    eprintln!(
        "Touch your FIDO2 key to register it for profile {}",
        s.profile()
    );
    Fido2Presence::enroll(s, auth, DEFAULT_RP_ID).context("cannot enrol the FIDO2 key")?;
    println!(
        "FIDO2 key enrolled for profile {}: level-5 recalls, `backup --include-black` and administrative changes now ask for a touch",
        s.profile()
    );
    Ok(())
}

/// `aim vault presence enroll-totp`: shows a new secret on the terminal once, asks for the first
/// code and stores the secret sealed in the profile only if the code is right.
pub(crate) fn enroll_totp(s: &mut Session<'_>, replace: bool) -> Result<()> {
    // Before anything is shown: replacing needs a person, never only the agent's key.
    check_replace(s, replace, "a new TOTP")?;
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
    if Fido2Presence::is_enrolled(s)? {
        println!("fido2: enrolled (a touch of the key is asked)");
    }
    if TotpPresence::is_enrolled(s)? {
        println!("totp: enrolled (codes are asked on the terminal)");
    }
    if !vault_hw::presence_enrolled(s)? {
        println!(
            "no presence factor enrolled: level-5 recalls are denied (enrol one with `aim vault presence enroll-fido2` or `enroll-totp`)"
        );
    }
    Ok(())
}

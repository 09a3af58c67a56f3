//! `aim vault escrow ...` and `aim vault deadman ...`: Shamir key escrow of a profile's
//! recovery key and the dead-man switch (library: `vault-escrow`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use vault_escrow::deadman::{DeadmanConfig, Heir, ReleaseSpec, human_duration};
use vault_escrow::vault::{
    self as ev, EscrowStatus, HolderSpec, create_escrow, deadman_check_in, deadman_release,
    deadman_set, deadman_status, list_escrows, recover, write_packages, write_shares,
};
use vault_escrow::{HolderIdentities, HolderRecipient, Share};
use vault_store::{Argon2Params, SystemClock};

use super::{VaultArgs, fmt_time, secrets};

/// Key escrow: split the profile's recovery key among holders; recover with K shares.
#[derive(Debug, Subcommand)]
pub(crate) enum EscrowCommand {
    /// Split a new recovery key of the (unlocked) profile into one share per holder, any
    /// THRESHOLD of which recover the profile. Each share is encrypted to its holder's age
    /// recipient and written to its own file (mode 0600). The vault records only the holders'
    /// fingerprints, never a share.
    ///
    /// Example: `aim vault escrow create -k 2 --holder alice=age1... --holder 'bob=ssh-ed25519 AAAA...' --holder carol=@carol.pub`
    Create {
        /// Shares needed to recover (K, at least 2).
        #[arg(long, short = 'k')]
        threshold: u8,
        /// A holder as LABEL=RECIPIENT (age1..., ssh-ed25519 ..., or @FILE holding one). Repeat
        /// for each holder; N is the number of holders.
        #[arg(long = "holder", value_name = "LABEL=RECIPIENT")]
        holders: Vec<String>,
        /// A holder whose share is written in plain text (keep it offline, e.g. printed).
        #[arg(long = "plain-holder", value_name = "LABEL")]
        plain_holders: Vec<String>,
        /// Directory for the share files.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// List the profile's escrows: id, K of N, status, holders (fingerprints). Needs no key.
    List,
    /// Recover the profile from K shares and set a new passphrase (asked twice, or read
    /// from --passphrase-fd). The escrow is then superseded: its shares stop working.
    ///
    /// Example: `aim vault escrow recover --share alice.age --share bob.share --identity ~/.age/key.txt`
    Recover {
        /// A share file: an age file (decrypted with --identity) or plain `aim-share-v1:` text.
        #[arg(long = "share", value_name = "FILE", required = true)]
        shares: Vec<PathBuf>,
        /// An age identity file or unencrypted OpenSSH ed25519 private key able to open shares.
        #[arg(long = "identity", short = 'i', value_name = "FILE")]
        identities: Vec<PathBuf>,
        /// Argon2id parameter set for the new passphrase (default: the profile's current one).
        #[arg(long)]
        kdf: Option<String>,
        /// Explicit Argon2id parameters, for tests.
        #[arg(long, hide = true)]
        kdf_params: Option<String>,
    },
}

/// Dead-man switch: release chosen memories and/or escrow shares to heirs if the owner stops
/// checking in.
#[derive(Debug, Subcommand)]
pub(crate) enum DeadmanCommand {
    /// Set (or replace) the switch of the unlocked profile: heirs, interval, what is released.
    /// Packages are prepared now, each encrypted to its heir.
    ///
    /// Example: `aim vault deadman set --heir alice=age1... --heir bob=@bob.pub --interval 30d --memory 0190f4c2-... --shares 2`
    Set {
        /// An heir as NAME=RECIPIENT (age1..., ssh-ed25519 ..., or @FILE). Repeatable.
        #[arg(long = "heir", value_name = "NAME=RECIPIENT", required = true)]
        heirs: Vec<String>,
        /// Check-in interval: a number with unit s, m, h or d (e.g. 30d).
        #[arg(long)]
        interval: String,
        /// A memory id to release to every heir. Repeatable.
        #[arg(long = "memory", value_name = "ID")]
        memories: Vec<String>,
        /// Also split a fresh recovery key among the heirs with this threshold.
        #[arg(long = "shares", value_name = "K")]
        share_threshold: Option<u8>,
        /// Replace a switch whose deadline already passed (its packages may be out).
        #[arg(long)]
        replace_overdue: bool,
    },
    /// Check in (unlocked profile): push the deadline to now + interval and refresh packages.
    CheckIn,
    /// Show armed/released, deadline and time remaining. Needs no key.
    Status,
    /// After the deadline, write one package per heir (age, mode 0600). Needs no key.
    Release {
        /// Directory for the package files.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
}

/// Runs `aim vault escrow ...`.
pub(crate) fn run_escrow(args: &VaultArgs, cmd: &EscrowCommand) -> Result<()> {
    let clock = SystemClock;
    match cmd {
        EscrowCommand::Create {
            threshold,
            holders,
            plain_holders,
            out_dir,
        } => {
            let mut specs = Vec::new();
            for h in holders {
                let (label, recipient) = parse_named_recipient(h)?;
                specs.push(HolderSpec {
                    label,
                    recipient: Some(recipient),
                });
            }
            for label in plain_holders {
                specs.push(HolderSpec {
                    label: label.clone(),
                    recipient: None,
                });
            }
            if specs.len() < 2 {
                bail!(
                    "name at least two holders (--holder LABEL=RECIPIENT or --plain-holder LABEL)"
                );
            }
            let vault = args.open()?;
            let mut s = vault.unlock(&args.profile, args.key_source()?)?;
            let created = create_escrow(&mut s, *threshold, &specs, &clock);
            let closed = s.close();
            let created = created?;
            closed?;
            let paths = write_shares(out_dir, &created).with_context(|| {
                format!(
                    "escrow {} was created but its shares could not be written; \
                     the escrow is unusable without them: create a new one",
                    created.record.escrow_id
                )
            })?;
            println!(
                "escrow {} of profile {}: {} of {} shares recover the profile",
                created.record.escrow_id,
                args.profile,
                created.record.threshold,
                created.record.total
            );
            for (share, path) in created.shares.iter().zip(&paths) {
                println!(
                    "  share {} -> {} ({})",
                    share.index,
                    path.display(),
                    match &share.recipient {
                        Some(fp) => format!("encrypted to {} [{fp}]", share.label),
                        None => format!("PLAIN TEXT for {}: keep it offline", share.label),
                    }
                );
            }
            println!("hand each file to its holder, then delete your copies");
            Ok(())
        }
        EscrowCommand::List => {
            let vault = args.open()?;
            let list = list_escrows(&vault, &args.profile)?;
            if list.is_empty() {
                println!("no escrows for profile {}", args.profile);
            }
            for e in list {
                println!(
                    "{}\t{} of {}\t{}\t{:?}\tcreated {}\tfingerprint {}",
                    e.escrow_id,
                    e.threshold,
                    e.total,
                    status_text(&e.status),
                    e.purpose,
                    fmt_time(e.created_at_ms),
                    e.fingerprint
                );
                for h in &e.holders {
                    println!(
                        "    share {}\t{}\t{}",
                        h.index,
                        h.label,
                        h.recipient
                            .as_ref()
                            .map_or_else(|| "plain text".to_owned(), |f| f.to_string())
                    );
                }
            }
            Ok(())
        }
        EscrowCommand::Recover {
            shares,
            identities,
            kdf,
            kdf_params,
        } => {
            let mut ids = HolderIdentities::new();
            for path in identities {
                ids.add_file(path)?;
            }
            let mut texts = Vec::with_capacity(shares.len());
            for path in shares {
                texts.push(read_share_file(path, &ids)?);
            }
            let params = match (kdf_params, kdf) {
                (Some(p), _) => Some(Argon2Params::parse(p)?),
                (None, Some(name)) => Some(Argon2Params::named(name)?),
                (None, None) => None,
            };
            // Validate the shares before asking for a passphrase.
            let (header, _) = vault_escrow::combine_text(&texts)?;
            let vault = args.open()?;
            let pw = secrets::read_new(
                args.source(),
                &format!("New passphrase for profile `{}`", header.profile_id),
            )?;
            let (s, recovery) = recover(&vault, &texts, pw, params, &clock)?;
            s.close()?;
            println!(
                "recovered profile {} with escrow {}; its new passphrase is set and the old one no longer works",
                recovery.record.profile_id, recovery.record.escrow_id
            );
            println!(
                "the escrow is now superseded: create a new one with `aim vault escrow create`"
            );
            Ok(())
        }
    }
}

/// Runs `aim vault deadman ...`.
pub(crate) fn run_deadman(args: &VaultArgs, cmd: &DeadmanCommand) -> Result<()> {
    let clock = SystemClock;
    match cmd {
        DeadmanCommand::Set {
            heirs,
            interval,
            memories,
            share_threshold,
            replace_overdue,
        } => {
            let heirs = heirs
                .iter()
                .map(|h| {
                    let (name, r) = parse_named_recipient(h)?;
                    Ok(Heir::new(&name, &r.canonical())?)
                })
                .collect::<Result<Vec<_>>>()?;
            let config = DeadmanConfig {
                heirs,
                interval_ms: parse_interval(interval)?,
                release: ReleaseSpec {
                    memory_ids: memories.clone(),
                    share_threshold: *share_threshold,
                },
            };
            config.validate()?;
            let vault = args.open()?;
            let mut s = args.unlock(&vault)?;
            let r = deadman_set(&mut s, config, *replace_overdue, &clock);
            let closed = args.close(s);
            let state = r?;
            closed?;
            println!(
                "dead-man switch set for profile {}: {} heir(s), deadline {} (check in every {})",
                args.profile,
                state.config.heirs.len(),
                fmt_time(state.deadline_ms),
                human_duration(state.config.interval_ms)
            );
            Ok(())
        }
        DeadmanCommand::CheckIn => {
            let vault = args.open()?;
            let mut s = args.unlock(&vault)?;
            let r = deadman_check_in(&mut s, &clock);
            let closed = args.close(s);
            let state = r?;
            closed?;
            println!("checked in; next deadline {}", fmt_time(state.deadline_ms));
            Ok(())
        }
        DeadmanCommand::Status => {
            let vault = args.open()?;
            match deadman_status(&vault, &args.profile, &clock)? {
                None => println!("no dead-man switch for profile {}", args.profile),
                Some(st) => {
                    let state = match (st.released_at_ms, st.due) {
                        (Some(at), _) => {
                            let heirs = st.releases.first().map_or(st.heirs.len(), |r| r.heirs);
                            let again = match st.releases.len() {
                                0 | 1 => String::new(),
                                n => format!(" (re-issued {} time(s) since)", n - 1),
                            };
                            format!(
                                "released {} to {heirs} heir(s){again}; check-ins are refused from now on",
                                fmt_time(at)
                            )
                        }
                        (None, true) => "DUE: the deadline passed; `aim vault deadman release` writes the packages".into(),
                        (None, false) => "armed".into(),
                    };
                    println!("state:      {state}");
                    println!("deadline:   {}", fmt_time(st.deadline_ms));
                    println!("remaining:  {}", human_duration(st.remaining_ms));
                    println!("last check-in: {}", fmt_time(st.last_checkin_ms));
                    println!("interval:   {}", human_duration(st.interval_ms));
                    println!("heirs:      {}", st.heirs.join(", "));
                    println!(
                        "releases:   {} memor{}{}",
                        st.memory_count,
                        if st.memory_count == 1 { "y" } else { "ies" },
                        st.share_threshold.map_or_else(String::new, |k| format!(
                            ", escrow shares ({k} of {})",
                            st.heirs.len()
                        ))
                    );
                }
            }
            Ok(())
        }
        DeadmanCommand::Release { out_dir } => {
            let vault = args.open()?;
            let packages = deadman_release(&vault, &args.profile, &clock)?;
            let paths = write_packages(out_dir, &args.profile, &packages)?;
            for (p, path) in packages.iter().zip(&paths) {
                println!(
                    "{} -> {} (only {}'s key opens it)",
                    p.heir,
                    path.display(),
                    p.heir
                );
            }
            Ok(())
        }
    }
}

/// After a data-key rotation: marks the invalidated escrows and offers to re-escrow.
pub(crate) fn after_rotation(
    s: &mut vault_store::Session<'_>,
    report: &vault_store::RotationReport,
) -> Result<()> {
    let invalidated = ev::record_rotation(s, report, &SystemClock)?;
    for e in &invalidated {
        println!(
            "escrow {} ({} of {}) is now invalid: its shares no longer recover the profile",
            e.escrow_id, e.threshold, e.total
        );
    }
    if !invalidated.is_empty() {
        println!(
            "re-escrow with `aim vault escrow create -k K --holder LABEL=RECIPIENT ...`{}",
            if invalidated
                .iter()
                .any(|e| e.purpose == ev::EscrowPurpose::Deadman)
            {
                "; a dead-man switch that releases shares gets fresh ones at the next `aim vault deadman check-in`"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn status_text(s: &EscrowStatus) -> String {
    match s {
        EscrowStatus::Active => "active".into(),
        EscrowStatus::Superseded { at_ms, reason } => {
            format!("superseded {} ({reason})", fmt_time(*at_ms))
        }
        EscrowStatus::Invalidated { at_ms, reason } => format!(
            "invalidated{} ({reason})",
            at_ms.map_or_else(String::new, |t| format!(" {}", fmt_time(t)))
        ),
    }
}

/// `LABEL=RECIPIENT` or `LABEL=@FILE`.
fn parse_named_recipient(s: &str) -> Result<(String, HolderRecipient)> {
    let (label, rest) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("expected LABEL=RECIPIENT, got {s:?}"))?;
    let text = match rest.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the recipient file {file}"))?
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| anyhow!("{file} holds no recipient"))?
            .to_owned(),
        None => rest.to_owned(),
    };
    Ok((label.trim().to_owned(), text.parse()?))
}

/// `30d`, `12h`, `90m`, `3600s`.
fn parse_interval(s: &str) -> Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        anyhow!("interval {s:?}: expected a number with unit s, m, h or d (e.g. 30d)")
    })?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" | "" => 86_400_000,
        other => bail!("interval {s:?}: unknown unit {other:?} (use s, m, h or d)"),
    };
    n.checked_mul(ms)
        .ok_or_else(|| anyhow!("interval {s:?} is too long"))
}

/// Reads a share: plain `aim-share-` text, or an age file opened with `ids`.
fn read_share_file(path: &Path, ids: &HolderIdentities) -> Result<String> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path)
            .with_context(|| format!("cannot read share file {}", path.display()))?,
    );
    let is_age = bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        || bytes.starts_with(b"age-encryption.org/");
    let plain = if is_age {
        if ids.is_empty() {
            bail!(
                "{} is encrypted: pass the holder's key with --identity FILE",
                path.display()
            );
        }
        ids.decrypt(&bytes)
            .with_context(|| format!("cannot decrypt {}", path.display()))?
    } else {
        zeroize::Zeroizing::new(bytes.to_vec())
    };
    let text =
        std::str::from_utf8(&plain).map_err(|_| anyhow!("{} is not a share", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("aim-share-"))
        .ok_or_else(|| anyhow!("{} holds no aim-share-v1 line", path.display()))?;
    // Parse here for a message naming the file; combine checks everything again.
    Share::parse(line).with_context(|| format!("share file {}", path.display()))?;
    Ok(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_interval("12h").unwrap(), 12 * 3_600_000);
        assert_eq!(parse_interval("90m").unwrap(), 90 * 60_000);
        assert_eq!(parse_interval("3600s").unwrap(), 3_600_000);
        assert_eq!(parse_interval("7").unwrap(), 7 * 86_400_000);
        assert!(parse_interval("x").is_err());
        assert!(parse_interval("3w").is_err());
        assert!(parse_interval("99999999999999999d").is_err());
    }

    #[test]
    fn named_recipients() {
        let id = vault_escrow::age::x25519::Identity::generate();
        let (l, r) = parse_named_recipient(&format!("alice={}", id.to_public())).unwrap();
        assert_eq!(l, "alice");
        assert_eq!(r.canonical(), id.to_public().to_string());
        assert!(parse_named_recipient("alice").is_err());
        assert!(parse_named_recipient("alice=nope").is_err());
    }
}

//! `aim vault`: the encrypted memory vault.

pub(crate) mod aim_approver;
mod escrow;
mod presence;
pub(crate) mod secrets;
mod witness;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use vault_store::backup::{BackupKey, BackupOptions, BackupProtection};
use vault_store::{
    Argon2Params, Enrollment, GateConfig, Gates, KeySource, ListFilter, MemoryId, MemoryInput,
    RecallRequest, SearchQuery, Session, TerminalApprover, Vault, VaultError,
};

use secrets::Source;

/// Keep memories encrypted, classified and audited.
#[derive(Debug, Args)]
#[command(
    after_help = "Secrets are read from a terminal prompt or from --passphrase-fd N (or a key file with --keyfile); \
never from the command line or the environment.\n\nExamples:\n  \
aim vault init\n  aim vault profile create agent\n  echo 'the user prefers tea' | aim vault store --classification 1 --tag prefs\n  \
aim vault recall 0190f4c2-... --justification 'answering a drinks question'\n  aim vault search tea\n  \
aim vault lockdown enter --reason 'suspected compromise'\n  aim vault backup /backups/vault-2026-11.bak"
)]
pub(crate) struct VaultArgs {
    /// The vault file.
    #[arg(long, env = "AIM_VAULT", global = true, value_name = "PATH")]
    vault: Option<PathBuf>,
    /// The profile to unlock.
    #[arg(long, short = 'p', default_value = "agent", global = true)]
    profile: String,
    /// Read the passphrase from this file descriptor instead of prompting (e.g. `3` with `3<file`).
    #[arg(long, global = true, value_name = "N")]
    passphrase_fd: Option<u32>,
    /// Unlock with this key file (exactly 32 bytes, mode 0600) instead of a passphrase.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        conflicts_with = "passphrase_fd"
    )]
    keyfile: Option<PathBuf>,
    /// Unlock with the TPM the profile was sealed to (TCTI from `AIM_TPM_TCTI`, e.g.
    /// `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`).
    #[cfg(feature = "tpm")]
    #[arg(long, global = true, conflicts_with_all = ["passphrase_fd", "keyfile"])]
    tpm: bool,
    /// Ask the AIM server, as this registered agent, for a person's approval of recalls that
    /// need one (level 3 and up) instead of the terminal, and of administrative changes. The
    /// recommended approver: the terminal one is for local use and no defence against an agent
    /// (which can run `aim` under a pseudo-terminal). The server URL and key protection come
    /// from the usual AIM client settings (`AIM_SERVER`, `AIM_HOME`, `AIM_PASSPHRASE`, ...).
    #[arg(long, env = "AIM_AGENT", global = true, value_name = "NAME")]
    aim_agent: Option<String>,
    /// Keep the vault's witness file (every signed head, published automatically) here instead
    /// of beside the vault (`<vault>.witness`); best on another disk or machine.
    #[arg(long, env = "AIM_VAULT_WITNESS", global = true, value_name = "PATH")]
    witness_file: Option<PathBuf>,
    /// Also publish signed heads to the AIM server's witness, as the agent `--aim-agent`
    /// (the vault's head key is declared to the server on first use), and check the log
    /// against the heads it holds.
    #[arg(
        long,
        env = "AIM_VAULT_AIM_WITNESS",
        global = true,
        requires = "aim_agent"
    )]
    aim_witness: bool,
    /// The log name at the AIM server's witness.
    #[arg(long, global = true, default_value = "vault", value_name = "NAME")]
    witness_log: String,
    /// The presence gate, filled from the profile once it is unlocked.
    #[arg(skip)]
    presence: Arc<presence::EnrolledPresence>,
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    /// Create a new, empty vault file (mode 0600, directory 0700).
    ///
    /// Example: `aim vault --vault ~/.aim/vault.db init`
    Init,
    /// Manage profiles (each has its own data key and key slots).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Store a memory read from stdin (or --file); prints its id.
    ///
    /// Example: `echo 'api token rotates monthly' | aim vault store -c 2 --tag ops --intent INT-42`
    Store {
        /// Read the content from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Classification 0–5 (ephemeral, working, private, sealed, vaulted, black).
        #[arg(long, short = 'c', default_value = "1")]
        classification: String,
        /// A tag (repeatable; stored sealed, indexed as a keyed token).
        #[arg(long)]
        tag: Vec<String>,
        /// An intent id to link (repeatable).
        #[arg(long)]
        intent: Vec<String>,
        /// Private metadata (sealed), e.g. JSON.
        #[arg(long)]
        metadata: Option<String>,
        /// Minimum seconds between two allowed recalls.
        #[arg(long, default_value_t = 0)]
        cooldown: u64,
        /// Seconds until the memory expires (level 0 is then purged).
        #[arg(long)]
        expires: Option<u64>,
    },
    /// Recall a memory through its classification's gates; prints the content to stdout.
    /// Exits non-zero with the reason on stderr when denied.
    ///
    /// Example: `aim vault recall 0190f4c2-7c1e-7d4a-9a51-3c2f1b7e9d10 -j 'user asked'`
    Recall {
        /// The memory id.
        id: String,
        /// Why (required from level 2).
        #[arg(long, short = 'j', default_value = "")]
        justification: String,
        /// Who asks.
        #[arg(long, default_value = "cli")]
        requester: String,
    },
    /// Search memories by words (keyed tokens); prints ids, levels, times and scores, never content.
    /// Covers levels 0–2 unless --max-class is higher: levels 3–5 are searched only after their
    /// gates allow it (justification, boundary daemon, approval, presence), like a recall.
    ///
    /// Example: `aim vault search green tea --tag prefs`, `aim vault search zebra --max-class 5 -j 'incident 42'`
    Search {
        /// Words to find.
        #[arg(required = true)]
        words: Vec<String>,
        /// Match any word instead of all.
        #[arg(long)]
        any: bool,
        /// Only memories with this tag.
        #[arg(long)]
        tag: Vec<String>,
        /// Only memories linked to this intent.
        #[arg(long)]
        intent: Option<String>,
        /// Lowest classification.
        #[arg(long, default_value_t = 0)]
        min_class: u8,
        /// Highest classification (above 2 runs those levels' gates first).
        #[arg(long, default_value_t = 2)]
        max_class: u8,
        /// Why (needed for levels 3 and up).
        #[arg(long, short = 'j', default_value = "")]
        justification: String,
        /// Who asks.
        #[arg(long, default_value = "cli")]
        requester: String,
        /// Most results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// List memories (newest first) without content.
    ///
    /// Example: `aim vault list --intent INT-42`
    List {
        /// Only memories with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only memories linked to this intent.
        #[arg(long)]
        intent: Option<String>,
        /// Include tombstoned memories.
        #[arg(long)]
        tombstoned: bool,
        /// Most results.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Erase a memory's content and search tokens for good; its record and audit history stay.
    /// An armed dead-man switch carrying it is re-sealed without it. Backups written before
    /// still hold it (see docs/vault.md).
    ///
    /// Example: `aim vault tombstone 0190f4c2-... --reason 'user asked to forget'`
    Tombstone {
        /// The memory id.
        id: String,
        /// Why (recorded only as a keyed MAC).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Enter lockdown (no secret needed) or show its status.
    #[command(subcommand)]
    Lockdown(LockdownCommand),
    /// Leave lockdown for the profile; needs the profile's real passphrase or key file AND a
    /// person: the enrolled presence factor (FIDO2 touch, TOTP code) or an approval through the
    /// AIM server (--aim-agent).
    ///
    /// Example: `aim vault unlock --profile agent`
    Unlock,
    /// Write an encrypted backup of the whole vault.
    ///
    /// Example: `aim vault backup /backups/v1.bak` then `aim vault backup /backups/v2.bak --incremental`
    Backup {
        /// Output file (must not exist; created 0600).
        out: PathBuf,
        /// Only what changed since the latest backup.
        #[arg(long)]
        incremental: bool,
        /// Include level-5 memories (needs physical presence).
        #[arg(long)]
        include_black: bool,
        /// Protect with the profile's key instead of a separate backup passphrase.
        #[arg(long)]
        profile_key: bool,
        /// Read the backup passphrase from this file descriptor.
        #[arg(long, value_name = "N")]
        backup_passphrase_fd: Option<u32>,
    },
    /// Restore a backup chain (full, then incrementals in order) into a NEW vault at --vault.
    ///
    /// Example: `aim vault --vault ~/restored.db restore v1.bak v2.bak`
    Restore {
        /// Backup files, full first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The backups are protected by the profile's key (unlock with --passphrase-fd / --keyfile).
        #[arg(long)]
        profile_key: bool,
        /// Read the backup passphrase from this file descriptor.
        #[arg(long, value_name = "N")]
        backup_passphrase_fd: Option<u32>,
    },
    /// Rotate the profile's data key: re-encrypt every memory in batches (resumable).
    /// Recovery (escrow) keys stop working; other key slots must be re-enrolled.
    ///
    /// Example: `aim vault rotate --profile agent`
    Rotate {
        /// Memories per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Verify the audit log, every signed head and every record against the log, and the log
    /// against every head held outside the file (the witnesses, `--head`). Nothing is signed
    /// before the checks pass. Also lists store events whose commitments were written
    /// unsalted by older versions (see docs/vault.md).
    ///
    /// Example: `aim vault verify --deep --head saved-head.json --pubkey <base64>`
    Verify {
        /// Also decrypt and authenticate every sealed record and content commitment.
        #[arg(long)]
        deep: bool,
        /// A head kept outside the file (the JSON of `aim vault head`, a published-head
        /// record, or a witness file): the log must extend it. Repeatable.
        #[arg(long, value_name = "FILE")]
        head: Vec<PathBuf>,
        /// A pinned head-signing public key (standard base64, as `aim vault head` prints): it
        /// must be a signing key of this log, and heads it vouches for are trusted. Repeatable.
        #[arg(long, value_name = "BASE64")]
        pubkey: Vec<String>,
    },
    /// Print the latest signed tree head (JSON) to keep outside the file for `verify --head`.
    ///
    /// Example: `aim vault head > ~/offsite/vault-head.json`
    Head,
    /// Print a self-contained existence proof (JSON) of a memory's store event.
    ///
    /// Example: `aim vault prove 0190f4c2-... --open -j 'auditor request' > proof.json`
    Prove {
        /// The memory id.
        id: String,
        /// Include the opening (salt and content): the memory is recalled through its gates.
        #[arg(long)]
        open: bool,
        /// Justification for the gated recall of --open.
        #[arg(long, short = 'j', default_value = "")]
        justification: String,
    },
    /// Show or change the profile's gate configuration (changes need a person: the enrolled
    /// presence factor or an approval through the AIM server).
    #[command(subcommand)]
    Gates(GatesCommand),
    /// Shamir key escrow of the profile's recovery key: create, list, recover.
    #[command(subcommand)]
    Escrow(escrow::EscrowCommand),
    /// Dead-man switch: set, check-in, status, release.
    #[command(subcommand)]
    Deadman(escrow::DeadmanCommand),
    /// Physical-presence factors for level-5 recalls and administrative changes: enrol a FIDO2
    /// key or a TOTP, show what is enrolled.
    #[command(subcommand)]
    Presence(PresenceCommand),
}

#[derive(Debug, Subcommand)]
enum PresenceCommand {
    /// Enrol a TOTP authenticator app as the profile's presence factor. The secret is shown
    /// once on the terminal (never on stdout), and stored sealed only after you type the
    /// first code. Level-5 recalls and `backup --include-black` then ask for a code on the
    /// terminal; without a terminal they are denied.
    ///
    /// Example: `aim vault presence enroll-totp --profile agent`
    EnrollTotp {
        /// Replace (or add to) an enrolled presence factor; needs that factor (or an AIM
        /// approval, or the recovery key) first.
        #[arg(long)]
        replace: bool,
    },
    /// Enrol a FIDO2 security key (USB/NFC; a touch registers it) as the profile's presence
    /// factor, stored sealed in the vault. Level-5 recalls, `backup --include-black` and
    /// administrative changes then ask for a touch.
    ///
    /// Example: `aim vault presence enroll-fido2 --profile agent`
    EnrollFido2 {
        /// Replace (or add to) an enrolled presence factor; needs that factor (or an AIM
        /// approval, or the recovery key) first.
        #[arg(long)]
        replace: bool,
    },
    /// Show the profile's enrolled presence factors.
    Show,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Create a profile with a passphrase (default) or a key file.
    ///
    /// Example: `aim vault profile create agent --kdf sensitive`
    Create {
        /// Profile name.
        name: String,
        /// Use (or with --new-keyfile create) this key file instead of a passphrase.
        #[arg(long = "with-keyfile", value_name = "PATH")]
        with_keyfile: Option<PathBuf>,
        /// Create the key file (32 random bytes, mode 0600).
        #[arg(long, requires = "with_keyfile")]
        new_keyfile: bool,
        /// Seal the profile's key to the TPM (TCTI from `AIM_TPM_TCTI`); unlock with `--tpm`.
        #[cfg(feature = "tpm")]
        #[arg(long, conflicts_with = "with_keyfile")]
        with_tpm: bool,
        /// Argon2id parameter set for a passphrase: interactive, moderate, sensitive.
        #[arg(long, default_value = "moderate")]
        kdf: String,
        /// Explicit Argon2id parameters (`argon2id$v=19$m=KiB,t=N,p=N`), for tests.
        #[arg(long, hide = true)]
        kdf_params: Option<String>,
    },
    /// List profiles and their key slots.
    List,
}

#[derive(Debug, Subcommand)]
enum LockdownCommand {
    /// Deny every recall and search until a profile leaves with its key (`aim vault unlock`).
    Enter {
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Show the lockdown state.
    Status,
}

#[derive(Debug, Subcommand)]
enum GatesCommand {
    /// Print the gate requirements per level.
    Show,
    /// Name the boundary daemon's socket (levels 2–3 then consult it; 4–5 always do).
    Boundary {
        /// Socket path.
        socket: Option<PathBuf>,
        /// Remove the configured daemon.
        #[arg(long, conflicts_with = "socket")]
        clear: bool,
    },
}

/// The gate implementations the CLI plugs in: the approver (the AIM server as `aim_agent`
/// when given, else the terminal) and the profile's enrolled presence factor (`presence`,
/// filled at unlock). Boundary daemons come from the profile's authenticated configuration
/// (`aim vault gates boundary`).
pub(crate) fn build_gates(
    presence: Arc<presence::EnrolledPresence>,
    aim_agent: Option<&str>,
) -> Gates {
    let approver: Arc<dyn vault_store::Approver> = match aim_agent {
        Some(agent) => Arc::new(aim_approver::AimServerApprover::new(agent)),
        None => Arc::new(TerminalApprover),
    };
    Gates::new().approver(approver).presence(presence)
}

fn default_path() -> Result<PathBuf> {
    let home =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set; pass --vault PATH"))?;
    Ok(PathBuf::from(home).join(".aim").join("vault.db"))
}

impl VaultArgs {
    fn path(&self) -> Result<PathBuf> {
        self.vault.clone().map_or_else(default_path, Ok)
    }

    fn source(&self) -> Source {
        self.passphrase_fd.map_or(Source::Prompt, Source::Fd)
    }

    fn key_source(&self) -> Result<KeySource> {
        if let Some(k) = &self.keyfile {
            return Ok(KeySource::key_file(k));
        }
        #[cfg(feature = "tpm")]
        if self.tpm {
            return Ok(KeySource::external(Arc::new(
                vault_hw::tpm::TpmKeySource::from_env(),
            )));
        }
        Ok(KeySource::passphrase(secrets::read(
            self.source(),
            &format!("Passphrase for profile `{}`", self.profile),
        )?))
    }

    fn open(&self) -> Result<Vault> {
        let path = self.path()?;
        let mut options = Vault::options().gates(build_gates(
            self.presence.clone(),
            self.aim_agent.as_deref(),
        ));
        if let Some(w) = &self.witness_file {
            options = options.witness_file(w);
        }
        if self.aim_witness
            && let Some(agent) = &self.aim_agent
        {
            options = options.witness(Arc::new(witness::AimServerWitness::new(
                agent,
                &self.witness_log,
            )));
        }
        options
            .open_existing(&path)
            .with_context(|| format!("cannot open the vault at {}", path.display()))
    }

    /// Unlocks the profile with `key` and loads its presence factor into the gates.
    fn unlock_with<'v>(&self, vault: &'v Vault, key: KeySource) -> Result<Session<'v>> {
        let s = vault.unlock(&self.profile, key)?;
        self.presence.load(&s)?;
        Ok(s)
    }

    /// Unlocks the profile (asking for its key) and loads its presence factor.
    fn unlock<'v>(&self, vault: &'v Vault) -> Result<Session<'v>> {
        self.unlock_with(vault, self.key_source()?)
    }

    /// Records used presence codes, then closes the session.
    fn close(&self, mut s: Session<'_>) -> Result<()> {
        let persisted = self.presence.persist(&mut s);
        let closed = s.close();
        persisted?;
        Ok(closed?)
    }
}

fn aim_crypto_key(b64: &str) -> Result<aim_crypto::AgentPublicKey> {
    Ok(aim_crypto::AgentPublicKey::from_b64(b64.trim())?)
}

fn parse_id(s: &str) -> Result<MemoryId> {
    s.parse().map_err(|e: VaultError| anyhow!("{e}"))
}

fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Runs `aim vault ...`.
pub(crate) fn run(args: VaultArgs) -> Result<()> {
    match &args.command {
        VaultCommand::Init => {
            let path = args.path()?;
            Vault::options()
                .create(&path)
                .with_context(|| format!("cannot create a vault at {}", path.display()))?;
            println!("created vault {}", path.display());
            Ok(())
        }
        VaultCommand::Profile(ProfileCommand::Create {
            name,
            with_keyfile,
            new_keyfile,
            kdf,
            kdf_params,
            #[cfg(feature = "tpm")]
            with_tpm,
        }) => {
            let vault = args.open()?;
            #[cfg(feature = "tpm")]
            if *with_tpm {
                let source = Arc::new(vault_hw::tpm::TpmKeySource::from_env());
                vault
                    .create_profile(name, Enrollment::External(source))?
                    .close()?;
                println!("created profile {name} (sealed to the TPM; unlock with --tpm)");
                return Ok(());
            }
            let enrollment = match with_keyfile {
                Some(kf) => {
                    if *new_keyfile {
                        vault_store::create_key_file(kf)?;
                    }
                    Enrollment::key_file(kf)
                }
                None => {
                    let params = match kdf_params {
                        Some(p) => Argon2Params::parse(p)?,
                        None => Argon2Params::named(kdf)?,
                    };
                    let pw = secrets::read_new(
                        args.source(),
                        &format!("New passphrase for profile `{name}`"),
                    )?;
                    Enrollment::passphrase_with(pw, params)
                }
            };
            vault.create_profile(name, enrollment)?.close()?;
            println!("created profile {name}");
            Ok(())
        }
        VaultCommand::Profile(ProfileCommand::List) => {
            let vault = args.open()?;
            for p in vault.profiles()? {
                println!(
                    "{}\tepoch {}\tslots {}{}",
                    p.profile_id,
                    p.key_epoch,
                    p.slots.join(","),
                    if p.rotation_pending {
                        "\trotation pending"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        VaultCommand::Lockdown(LockdownCommand::Enter { reason }) => {
            let vault = args.open()?;
            let epoch = vault.enter_lockdown(reason)?;
            println!(
                "lockdown {epoch} entered: recalls and searches are denied until `aim vault unlock`"
            );
            Ok(())
        }
        VaultCommand::Lockdown(LockdownCommand::Status) => {
            let vault = args.open()?;
            let st = vault.lockdown_status()?;
            if st.epoch == 0 {
                println!("never locked down");
            } else {
                println!(
                    "lockdown {} entered {} ({}); left by: {}",
                    st.epoch,
                    st.entered_at_ms.map_or_else(String::new, fmt_time),
                    st.reason.unwrap_or_default(),
                    if st.exited_profiles.is_empty() {
                        "nobody".into()
                    } else {
                        st.exited_profiles.join(", ")
                    }
                );
            }
            Ok(())
        }
        VaultCommand::Unlock => {
            let vault = args.open()?;
            let mut s = args.unlock(&vault)?;
            let r = s.leave_lockdown();
            let closed = args.close(s);
            r?;
            closed?;
            println!("profile {} left lockdown", args.profile);
            Ok(())
        }
        VaultCommand::Restore {
            files,
            profile_key,
            backup_passphrase_fd,
        } => {
            let key = if *profile_key {
                BackupKey::Profile(args.key_source()?)
            } else {
                BackupKey::Passphrase(secrets::read(
                    backup_passphrase_fd.map_or(Source::Prompt, Source::Fd),
                    "Backup passphrase",
                )?)
            };
            let target = args.path()?;
            let r = Vault::restore(&target, files, &key)?;
            println!(
                "restored {} rows from {} file(s) into {}",
                r.rows,
                r.files,
                target.display()
            );
            Ok(())
        }
        VaultCommand::Escrow(cmd) => escrow::run_escrow(&args, cmd),
        VaultCommand::Deadman(cmd) => escrow::run_deadman(&args, cmd),
        _ => {
            let vault = args.open()?;
            let key = args.key_source()?;
            let mut s = args.unlock_with(&vault, key.clone())?;
            let r = session_command(&args, &mut s, &key);
            let closed = args.close(s);
            r.and(closed)
        }
    }
}

fn session_command(args: &VaultArgs, s: &mut Session<'_>, key: &KeySource) -> Result<()> {
    match &args.command {
        VaultCommand::Store {
            file,
            classification,
            tag,
            intent,
            metadata,
            cooldown,
            expires,
        } => {
            let mut content = zeroize::Zeroizing::new(Vec::new());
            match file {
                Some(f) => {
                    std::fs::File::open(f)
                        .and_then(|mut h| h.read_to_end(&mut content))
                        .with_context(|| format!("cannot read {}", f.display()))?;
                }
                None => {
                    std::io::stdin()
                        .read_to_end(&mut content)
                        .context("cannot read stdin")?;
                }
            }
            let class: vault_store::Classification = classification.parse()?;
            let mut input = MemoryInput::bytes(std::mem::take(&mut *content))
                .classification(class)
                .cooldown_ms(cooldown.saturating_mul(1000));
            for t in tag {
                input = input.tag(t);
            }
            for i in intent {
                input = input.intent(i);
            }
            if let Some(m) = metadata {
                input = input.metadata(m.as_bytes().to_vec());
            }
            if let Some(e) = expires {
                let now = chrono::Utc::now().timestamp_millis();
                input = input.expires_at_ms(
                    now.saturating_add(i64::try_from(e.saturating_mul(1000)).unwrap_or(i64::MAX)),
                );
            }
            println!("{}", s.store(input)?);
            Ok(())
        }
        VaultCommand::Recall {
            id,
            justification,
            requester,
        } => {
            let m = s.recall(
                parse_id(id)?,
                RecallRequest::new(justification.clone()).requester(requester.clone()),
            )?;
            let mut out = std::io::stdout().lock();
            out.write_all(m.content.expose())?;
            out.flush()?;
            Ok(())
        }
        VaultCommand::Search {
            words,
            any,
            tag,
            intent,
            min_class,
            max_class,
            justification,
            requester,
            limit,
        } => {
            let mut q = SearchQuery::new(words.join(" "))
                .classifications(*min_class, *max_class)
                .justification(justification.clone())
                .requester(requester.clone())
                .limit(*limit);
            q.any_word = *any;
            q.tags = tag.clone();
            q.intent = intent.clone();
            for h in s.search(&q)? {
                println!(
                    "{}\t{}\t{}\t{:.3}",
                    h.memory_id,
                    h.classification.level(),
                    fmt_time(h.created_at_ms),
                    h.score
                );
            }
            Ok(())
        }
        VaultCommand::List {
            tag,
            intent,
            tombstoned,
            limit,
        } => {
            let f = ListFilter {
                tag: tag.clone(),
                intent: intent.clone(),
                include_tombstoned: *tombstoned,
                limit: *limit,
                ..ListFilter::default()
            };
            for m in s.list(&f)? {
                println!(
                    "{}\t{}\t{}\t{}{}",
                    m.memory_id,
                    m.classification.level(),
                    fmt_time(m.created_at_ms),
                    m.created_by,
                    if m.tombstoned_at_ms.is_some() {
                        "\ttombstoned"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        VaultCommand::Tombstone { id, reason } => {
            let id = parse_id(id)?;
            let out = vault_escrow::vault::tombstone(s, id, reason, &vault_store::SystemClock)?;
            if out.tombstoned {
                println!("tombstoned {id}");
            } else {
                println!("{id} was already tombstoned");
            }
            if out.deadman_resealed {
                println!("the dead-man switch's packages were re-sealed without it");
            }
            if out.deadman_removed {
                println!("the dead-man switch had nothing else to release and was removed");
            }
            Ok(())
        }
        VaultCommand::Backup {
            out,
            incremental,
            include_black,
            profile_key,
            backup_passphrase_fd,
        } => {
            let protection = if *profile_key {
                BackupProtection::ProfileKey
            } else {
                BackupProtection::Passphrase {
                    passphrase: secrets::read_new(
                        backup_passphrase_fd.map_or(Source::Prompt, Source::Fd),
                        "Backup passphrase",
                    )?,
                    params: Argon2Params::MODERATE,
                }
            };
            let r = s.backup(
                out,
                &BackupOptions {
                    protection,
                    incremental: *incremental,
                    include_black: *include_black,
                },
            )?;
            println!(
                "wrote {} backup {}: {} rows, {} memories, {} level-5 left out, sha256 {}",
                if *incremental { "incremental" } else { "full" },
                out.display(),
                r.rows,
                r.memories,
                r.excluded_black,
                r.file_hash
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            Ok(())
        }
        VaultCommand::Rotate { batch } => rotate(args, s, key, *batch),
        VaultCommand::Verify { deep, head, pubkey } => {
            let known = head
                .iter()
                .map(|p| witness::read_head(p).map(|h| (format!("head file {}", p.display()), h)))
                .collect::<Result<Vec<_>>>()?;
            let pinned = pubkey
                .iter()
                .map(|k| {
                    aim_crypto_key(k).with_context(|| format!("--pubkey {k} is not a public key"))
                })
                .collect::<Result<Vec<_>>>()?;
            let r = s.verify_against(*deep, &pinned, &known)?;
            println!(
                "head-signing key {} ({})",
                s.head_public_key().to_b64(),
                s.head_public_key().key_id()
            );
            println!(
                "{} leaves, {} heads verified, {} records checked, {} sealed records authenticated",
                r.audit.tree_size, r.audit.heads_verified, r.records_checked, r.sealed_checked
            );
            for (source, size) in &r.outside_heads {
                println!("extends the head of {size} events held by {source}");
            }
            if !r.unsalted_commitments.is_empty() {
                eprintln!(
                    "warning: {} memory.store events were written before commitments were salted; \
                     each holds an unsalted fingerprint of its memory's content that anyone with the \
                     file can test guesses against (events {}). See docs/vault.md, \
                     \"Unsalted commitments\", for what leaked and what to do.",
                    r.unsalted_commitments.len(),
                    r.unsalted_commitments
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            match r.first_problem {
                None => {
                    println!("ok");
                    Ok(())
                }
                Some(p) => bail!("verification failed: {p}"),
            }
        }
        VaultCommand::Head => {
            s.sign_head()?;
            let head = vault_audit::AuditLog::latest_head(s.vault().connection())?
                .ok_or_else(|| anyhow!("the log has no signed head yet"))?;
            println!("{}", serde_json::to_string_pretty(&head)?);
            Ok(())
        }
        VaultCommand::Prove {
            id,
            open,
            justification,
        } => {
            let req = open.then(|| RecallRequest::new(justification.clone()).requester("prove"));
            let proof = s.prove(parse_id(id)?, req)?;
            println!("{}", serde_json::to_string_pretty(&proof)?);
            Ok(())
        }
        VaultCommand::Gates(GatesCommand::Show) => {
            let c = s.gate_config()?;
            println!("level\tjustification\tboundary\tapproval\tpresence\tmin cooldown (s)");
            for (i, l) in c.levels.iter().enumerate() {
                println!(
                    "{i}\t{}\t{:?}\t{}\t{}\t{}",
                    l.justification,
                    l.boundary,
                    l.approval,
                    l.presence,
                    l.min_cooldown_ms / 1000
                );
            }
            println!(
                "boundary daemon: {}",
                c.boundary_socket.as_deref().unwrap_or("none")
            );
            Ok(())
        }
        VaultCommand::Gates(GatesCommand::Boundary { socket, clear }) => {
            let mut c: GateConfig = s.gate_config()?;
            c.boundary_socket = if *clear {
                None
            } else {
                Some(
                    socket
                        .as_deref()
                        .ok_or_else(|| anyhow!("give a socket path or --clear"))?
                        .to_string_lossy()
                        .into_owned(),
                )
            };
            s.set_gate_config(&c)?;
            println!(
                "boundary daemon: {}",
                c.boundary_socket.as_deref().unwrap_or("none")
            );
            Ok(())
        }
        VaultCommand::Presence(PresenceCommand::EnrollTotp { replace }) => {
            presence::enroll_totp(s, *replace)
        }
        VaultCommand::Presence(PresenceCommand::EnrollFido2 { replace }) => {
            presence::enroll_fido2(s, *replace)
        }
        VaultCommand::Presence(PresenceCommand::Show) => presence::show(s),
        _ => Err(anyhow!("internal: command not handled")),
    }
}

fn rotate(args: &VaultArgs, s: &mut Session<'_>, key: &KeySource, batch: usize) -> Result<()> {
    // The new data key is wrapped for the same passphrase or key file that unlocked it.
    let enrollment = match key {
        _ if s.rotation_pending() => None,
        KeySource::KeyFile(k) => Some(Enrollment::key_file(k)),
        KeySource::External(source) => Some(Enrollment::External(source.clone())),
        KeySource::Passphrase(p) => Some(Enrollment::passphrase_with(
            p.clone(),
            s.passphrase_params()?.unwrap_or(Argon2Params::MODERATE),
        )),
        _ => bail!("rotate with a passphrase, a key file or the TPM"),
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} re-encrypting [{bar:40}] {pos}/{len} memories ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let enrollments: Vec<Enrollment> = enrollment.into_iter().collect();
    let report = s.rotate(&enrollments, batch, &mut |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    })?;
    bar.finish_and_clear();
    println!(
        "rotated profile {} from key epoch {} to {}: {} memories re-encrypted",
        args.profile, report.from_epoch, report.to_epoch, report.memories
    );
    escrow::after_rotation(s, &report)
}

//! Recall gates: what each classification level requires, the pluggable checks (human
//! approval, boundary daemon, physical presence) and the reasons a recall is denied.
//!
//! Default requirements (configurable per profile with [`GateConfig`]):
//!
//! | level | justification | boundary daemon     | human approval | cooldown (min) | presence |
//! |-------|---------------|---------------------|----------------|----------------|----------|
//! | 0     | –             | –                   | –              | –              | –        |
//! | 1     | –             | –                   | –              | –              | –        |
//! | 2     | required      | if one is configured| –              | –              | –        |
//! | 3     | required      | if one is configured| required       | –              | –        |
//! | 4     | required      | required            | required       | 5 min          | –        |
//! | 5     | required      | required            | required       | 5 min          | required |
//!
//! Lockdown, tombstones, expiry and record integrity apply at every level. A gate that is
//! required but has no implementation plugged in denies. Nothing (no flag, no environment
//! variable) skips a gate.

use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use crate::codec::{Reader, Writer};
use crate::model::{Classification, MemoryId};
use crate::{Result, VaultError};

/// Why a gate could not say yes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The gate said no.
    #[error("refused: {0}")]
    Refused(String),
    /// The gate could not be asked (no terminal, daemon down, device absent, ...).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The gate did not answer in time.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The gate answered something that is not a valid answer.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// What a gate is told about a recall. Never carries content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRequest {
    /// The memory.
    pub memory_id: MemoryId,
    /// Its classification.
    pub classification: Classification,
    /// The profile it belongs to.
    pub profile: String,
    /// Who asks (free text given by the caller).
    pub requester: String,
    /// Why (free text given by the caller).
    pub justification: String,
    /// What is being done: `recall`, `backup-include-black`, ...
    pub purpose: String,
}

/// Request for human approval.
pub type ApprovalRequest = GateRequest;
/// Request to the boundary daemon.
pub type BoundaryRequest = GateRequest;
/// Request for physical presence.
pub type PresenceRequest = GateRequest;

/// A human's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who approved (as reported by the approver; recorded in the audit log).
    pub approver: String,
}

/// The boundary daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundaryDecision {
    /// Whether the recall may proceed.
    pub permitted: bool,
    /// The daemon's reason.
    pub reason: String,
    /// The daemon's operational mode (`online`, `offline`, `airgap`, `coldroom`), if given.
    pub operational_mode: Option<String>,
}

/// Asks a human to approve a recall. Return `Err(GateError::Refused)` to deny.
pub trait Approver: Send + Sync {
    /// Approves or refuses.
    fn approve(&self, request: &ApprovalRequest) -> std::result::Result<Approval, GateError>;

    /// Whether an approval from this approver proves that a person outside the agent's
    /// control decided (for example through the AIM server, where the agent's own key cannot
    /// approve). Only such approvers count as a human factor for changing gates, re-enrolling
    /// presence and leaving lockdown ([`crate::Session::authorize_admin`]). Default: `false`.
    fn vouches_for_person(&self) -> bool {
        false
    }
}

/// Asks the boundary daemon whether a recall may proceed.
pub trait Boundary: Send + Sync {
    /// The daemon's decision; any error denies.
    fn check_recall(
        &self,
        request: &BoundaryRequest,
    ) -> std::result::Result<BoundaryDecision, GateError>;
}

/// Confirms that a person is physically present (FIDO2 touch, ... in `vault-hw`).
pub trait Presence: Send + Sync {
    /// `Ok(())` when presence was confirmed.
    fn confirm(&self, request: &PresenceRequest) -> std::result::Result<(), GateError>;
}

/// The gate implementations plugged into a vault. Missing ones deny where required.
#[derive(Clone, Default)]
pub struct Gates {
    pub(crate) approver: Option<Arc<dyn Approver>>,
    pub(crate) boundary: Option<Arc<dyn Boundary>>,
    pub(crate) presence: Option<Arc<dyn Presence>>,
}

impl Gates {
    /// No gates plugged in (levels 0–2 without a boundary daemon work; higher levels deny).
    pub fn new() -> Self {
        Self::default()
    }

    /// Plugs in a human approver.
    pub fn approver(mut self, a: Arc<dyn Approver>) -> Self {
        self.approver = Some(a);
        self
    }

    /// Plugs in a boundary daemon client.
    pub fn boundary(mut self, b: Arc<dyn Boundary>) -> Self {
        self.boundary = Some(b);
        self
    }

    /// Plugs in a presence check.
    pub fn presence(mut self, p: Arc<dyn Presence>) -> Self {
        self.presence = Some(p);
        self
    }
}

impl fmt::Debug for Gates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gates")
            .field("approver", &self.approver.is_some())
            .field("boundary", &self.boundary.is_some())
            .field("presence", &self.presence.is_some())
            .finish()
    }
}

/// An approver that asks on the terminal; it refuses when stdin or stderr is not a TTY, so
/// a non-interactive agent cannot answer its own prompt through a pipe.
///
/// **No defence against the agent itself**: an agent can run the command under a
/// pseudo-terminal (`script`, pexpect) and type `yes`. It is meant for a person working
/// locally; it never counts as a human factor for administrative changes
/// ([`Approver::vouches_for_person`] is `false`). Use an approver that reaches a person
/// outside the agent's control (the AIM server's approvals) to gate recalls against the agent.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalApprover;

impl Approver for TerminalApprover {
    fn approve(&self, r: &ApprovalRequest) -> std::result::Result<Approval, GateError> {
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return Err(GateError::Unavailable(
                "human approval needs an interactive terminal (stdin and stderr are not both TTYs)"
                    .into(),
            ));
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "Approve {} of memory {} (classification {}) for `{}`?\nJustification: {}\nType `yes` to approve: ",
            r.purpose, r.memory_id, r.classification, r.requester, r.justification
        );
        let _ = err.flush();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| GateError::Unavailable(format!("cannot read the answer: {e}")))?;
        if line.trim() == "yes" {
            Ok(Approval {
                approver: "terminal".into(),
            })
        } else {
            Err(GateError::Refused(
                "the person at the terminal did not approve".into(),
            ))
        }
    }
}

type ApproveFn = dyn Fn(&ApprovalRequest) -> std::result::Result<Approval, GateError> + Send + Sync;

/// An approver backed by a closure (an application's own approval flow).
#[derive(Clone)]
pub struct CallbackApprover {
    f: Arc<ApproveFn>,
    person: bool,
}

impl CallbackApprover {
    /// Wraps `f` (not counted as a human factor for administrative changes).
    pub fn new(
        f: impl Fn(&ApprovalRequest) -> std::result::Result<Approval, GateError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            f: Arc::new(f),
            person: false,
        }
    }

    /// Wraps `f`, a flow that reaches a person the agent does not control: its approvals
    /// also count as a human factor for administrative changes.
    pub fn person(
        f: impl Fn(&ApprovalRequest) -> std::result::Result<Approval, GateError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            f: Arc::new(f),
            person: true,
        }
    }
}

impl Approver for CallbackApprover {
    fn approve(&self, request: &ApprovalRequest) -> std::result::Result<Approval, GateError> {
        (self.f)(request)
    }

    fn vouches_for_person(&self) -> bool {
        self.person
    }
}

impl fmt::Debug for CallbackApprover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackApprover(..)")
    }
}

/// When the boundary daemon is consulted for a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryRule {
    /// Never.
    Never,
    /// When the profile's configuration names a boundary daemon.
    IfConfigured,
    /// Always; without a daemon the recall is denied.
    Required,
}

/// What one classification level requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelGates {
    /// A non-empty justification.
    pub justification: bool,
    /// The boundary daemon.
    pub boundary: BoundaryRule,
    /// Human approval.
    pub approval: bool,
    /// Physical presence.
    pub presence: bool,
    /// Minimum cooldown between two allowed recalls of one memory (ms).
    pub min_cooldown_ms: u64,
}

/// A profile's gate configuration, stored with a MAC under the profile's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// Requirements per level, indexed by level.
    pub levels: [LevelGates; 6],
    /// The boundary daemon's socket when one is configured.
    pub boundary_socket: Option<String>,
}

const CONFIG_VERSION: u8 = 1;
const MAX_SOCKET_LEN: usize = 4096;

impl Default for GateConfig {
    fn default() -> Self {
        let open = LevelGates {
            justification: false,
            boundary: BoundaryRule::Never,
            approval: false,
            presence: false,
            min_cooldown_ms: 0,
        };
        let private = LevelGates {
            justification: true,
            boundary: BoundaryRule::IfConfigured,
            ..open
        };
        let sealed = LevelGates {
            approval: true,
            ..private
        };
        let vaulted = LevelGates {
            boundary: BoundaryRule::Required,
            min_cooldown_ms: 5 * 60 * 1000,
            ..sealed
        };
        let black = LevelGates {
            presence: true,
            ..vaulted
        };
        Self {
            levels: [open, open, private, sealed, vaulted, black],
            boundary_socket: None,
        }
    }
}

impl GateConfig {
    /// Checks what [`GateConfig::decode`] would refuse (a socket path over 4,096 bytes), so an
    /// unreadable configuration is never stored (it would deny every recall).
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = &self.boundary_socket
            && (s.is_empty() || s.len() > MAX_SOCKET_LEN)
        {
            return Err(VaultError::InvalidInput(format!(
                "the boundary socket path must be 1–{MAX_SOCKET_LEN} bytes (got {})",
                s.len()
            )));
        }
        Ok(())
    }

    /// The requirements of `level`.
    pub fn level(&self, level: Classification) -> &LevelGates {
        &self.levels[usize::from(level.level())]
    }

    /// Canonical bytes (versioned).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(CONFIG_VERSION);
        for l in &self.levels {
            let flags = u8::from(l.justification)
                | (u8::from(l.approval) << 1)
                | (u8::from(l.presence) << 2);
            let rule = match l.boundary {
                BoundaryRule::Never => 0,
                BoundaryRule::IfConfigured => 1,
                BoundaryRule::Required => 2,
            };
            w.u8(flags).u8(rule).u64(l.min_cooldown_ms);
        }
        w.opt_bytes(self.boundary_socket.as_deref().map(str::as_bytes));
        w.into_vec()
    }

    /// Parses [`GateConfig::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "gate configuration");
        let v = r.u8()?;
        if v != CONFIG_VERSION {
            return Err(VaultError::corrupt(
                "gate configuration",
                format!("unknown version {v}"),
            ));
        }
        let mut levels = Self::default().levels;
        for l in &mut levels {
            let flags = r.u8()?;
            if flags & !0b111 != 0 {
                return Err(VaultError::corrupt(
                    "gate configuration",
                    format!("unknown flags {flags:#x}"),
                ));
            }
            let boundary = match r.u8()? {
                0 => BoundaryRule::Never,
                1 => BoundaryRule::IfConfigured,
                2 => BoundaryRule::Required,
                x => {
                    return Err(VaultError::corrupt(
                        "gate configuration",
                        format!("unknown boundary rule {x}"),
                    ));
                }
            };
            *l = LevelGates {
                justification: flags & 1 != 0,
                approval: flags & 2 != 0,
                presence: flags & 4 != 0,
                boundary,
                min_cooldown_ms: r.u64()?,
            };
        }
        let socket = match r.opt_bytes()? {
            None => None,
            Some(b) if b.len() <= MAX_SOCKET_LEN => {
                Some(String::from_utf8(b.to_vec()).map_err(|_| {
                    VaultError::corrupt("gate configuration", "socket path is not UTF-8")
                })?)
            }
            Some(_) => {
                return Err(VaultError::corrupt(
                    "gate configuration",
                    "socket path too long",
                ));
            }
        };
        r.finish()?;
        Ok(Self {
            levels,
            boundary_socket: socket,
        })
    }
}

/// Why a recall (or another gated operation) was denied. The code is recorded in the audit
/// log; the details are for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// The vault is in lockdown for this profile.
    Lockdown,
    /// The memory was tombstoned.
    Tombstoned,
    /// The memory's expiry has passed.
    Expired,
    /// A stored record failed authentication (tampering or corruption).
    Integrity(String),
    /// The level requires a justification and none was given.
    JustificationRequired,
    /// The memory is cooling down.
    Cooldown {
        /// Milliseconds left.
        remaining_ms: u64,
    },
    /// The clock is earlier than the last allowed recall: cooldown cannot be trusted.
    ClockRegressed,
    /// The boundary daemon refused.
    BoundaryDenied(String),
    /// The boundary daemon could not be asked or answered garbage.
    BoundaryError(String),
    /// A boundary check is required but no daemon is configured or plugged in.
    BoundaryUnavailable,
    /// The human approver refused or could not be asked.
    ApprovalDenied(String),
    /// Approval is required but no approver is plugged in.
    ApproverUnavailable,
    /// Physical presence was not confirmed.
    PresenceDenied(String),
    /// Presence is required but no presence check is plugged in.
    PresenceUnavailable,
    /// An administrative change (gates, presence re-enrolment, leaving lockdown) needs a
    /// human factor the agent does not hold, and none confirmed.
    HumanFactorRequired(String),
}

impl DenyReason {
    /// A stable short code, recorded in the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Lockdown => "lockdown",
            Self::Tombstoned => "tombstoned",
            Self::Expired => "expired",
            Self::Integrity(_) => "integrity",
            Self::JustificationRequired => "justification_required",
            Self::Cooldown { .. } => "cooldown",
            Self::ClockRegressed => "clock_regressed",
            Self::BoundaryDenied(_) => "boundary_denied",
            Self::BoundaryError(_) => "boundary_error",
            Self::BoundaryUnavailable => "boundary_unavailable",
            Self::ApprovalDenied(_) => "approval_denied",
            Self::ApproverUnavailable => "approver_unavailable",
            Self::PresenceDenied(_) => "presence_denied",
            Self::PresenceUnavailable => "presence_unavailable",
            Self::HumanFactorRequired(_) => "human_factor_required",
        }
    }

    /// Details for the audit record, bounded in length (reasons reported by gates).
    pub(crate) fn detail(&self) -> String {
        let d = match self {
            Self::Integrity(s)
            | Self::BoundaryDenied(s)
            | Self::BoundaryError(s)
            | Self::ApprovalDenied(s)
            | Self::PresenceDenied(s)
            | Self::HumanFactorRequired(s) => s.clone(),
            Self::Cooldown { remaining_ms } => format!("{remaining_ms} ms left"),
            _ => String::new(),
        };
        d.chars().take(200).collect()
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lockdown => {
                f.write_str("the vault is in lockdown (leave it with `aim vault unlock`)")
            }
            Self::Tombstoned => f.write_str("the memory was tombstoned"),
            Self::Expired => f.write_str("the memory has expired"),
            Self::Integrity(d) => write!(f, "the stored record failed authentication: {d}"),
            Self::JustificationRequired => {
                f.write_str("this classification requires a justification")
            }
            Self::Cooldown { remaining_ms } => {
                write!(f, "cooling down: {} s left", remaining_ms.div_ceil(1000))
            }
            Self::ClockRegressed => {
                f.write_str("the clock is earlier than the last allowed recall")
            }
            Self::BoundaryDenied(r) => write!(f, "the boundary daemon refused: {r}"),
            Self::BoundaryError(r) => write!(f, "the boundary daemon could not be consulted: {r}"),
            Self::BoundaryUnavailable => {
                f.write_str("a boundary check is required but no boundary daemon is configured")
            }
            Self::ApprovalDenied(r) => write!(f, "human approval was not given: {r}"),
            Self::ApproverUnavailable => {
                f.write_str("human approval is required but no approver is available")
            }
            Self::PresenceDenied(r) => write!(f, "physical presence was not confirmed: {r}"),
            Self::PresenceUnavailable => {
                f.write_str("physical presence is required but no presence check is available")
            }
            Self::HumanFactorRequired(r) => write!(
                f,
                "this change needs a person: confirm the enrolled presence factor, a person's \
                 approval through the AIM server (--aim-agent), or the profile's recovery key ({r})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_match_the_documented_table() {
        let c = GateConfig::default();
        let l = |n: u8| *c.level(Classification::try_from(n).unwrap());
        assert!(!l(0).justification && !l(1).justification && l(2).justification);
        assert_eq!(l(2).boundary, BoundaryRule::IfConfigured);
        assert!(!l(2).approval && l(3).approval);
        assert_eq!(l(4).boundary, BoundaryRule::Required);
        assert!(l(4).min_cooldown_ms > 0 && l(3).min_cooldown_ms == 0);
        assert!(l(5).presence && !l(4).presence);
    }

    #[test]
    fn config_rejects_garbage() {
        let mut b = GateConfig::default().encode();
        assert!(GateConfig::decode(&b[..b.len() - 1]).is_err());
        b.push(0);
        assert!(GateConfig::decode(&b).is_err());
        let mut b = GateConfig::default().encode();
        b[0] = 9;
        assert!(GateConfig::decode(&b).is_err());
        let mut b = GateConfig::default().encode();
        b[1] = 0xff;
        assert!(GateConfig::decode(&b).is_err());
    }

    #[test]
    fn callback_approver_calls_back() {
        let a = CallbackApprover::new(|r| {
            if r.justification == "ok" {
                Ok(Approval {
                    approver: "cb".into(),
                })
            } else {
                Err(GateError::Refused("no".into()))
            }
        });
        let mut r = GateRequest {
            memory_id: MemoryId::from_bytes([0; 16]),
            classification: Classification::Sealed,
            profile: "p".into(),
            requester: "agent".into(),
            justification: "ok".into(),
            purpose: "recall".into(),
        };
        assert_eq!(a.approve(&r).unwrap().approver, "cb");
        r.justification = "nope".into();
        assert!(a.approve(&r).is_err());
        // Under the test harness stdin is not a terminal: the terminal approver refuses.
        if !std::io::stdin().is_terminal() {
            assert!(matches!(
                TerminalApprover.approve(&r),
                Err(GateError::Unavailable(_))
            ));
        }
    }

    fn level() -> impl Strategy<Value = LevelGates> {
        (
            any::<bool>(),
            0u8..3,
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|(j, b, a, p, c)| LevelGates {
                justification: j,
                boundary: [
                    BoundaryRule::Never,
                    BoundaryRule::IfConfigured,
                    BoundaryRule::Required,
                ][usize::from(b)],
                approval: a,
                presence: p,
                min_cooldown_ms: c,
            })
    }

    proptest! {
        #[test]
        fn config_round_trips(levels in proptest::array::uniform6(level()), sock in proptest::option::of(".{0,40}")) {
            let c = GateConfig { levels, boundary_socket: sock };
            prop_assert_eq!(GateConfig::decode(&c.encode()).unwrap(), c);
        }

        #[test]
        fn config_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = GateConfig::decode(&bytes);
        }
    }
}

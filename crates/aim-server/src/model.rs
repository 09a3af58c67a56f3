//! Enumerations shared by storage, the decision engine and the HTTP API, with their wire
//! spellings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the wire spelling.
            pub fn parse(text: &str) -> Result<Self> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::bad_request(format!(
                        concat!("invalid ", stringify!($name), " `{}`; expected one of: {}"),
                        other,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// A person's role in an organization; an API key carries one too.
    /// Order: registration < viewer < member < admin. `registration` is for API keys only: such
    /// a key registers agents (the SDK's API-key mode) and can do nothing else, not even read.
    Role {
        /// API keys only: registers agents, nothing else.
        Registration => "registration",
        /// Read-only.
        Viewer => "viewer",
        /// Registers agents, approves or denies pending verifications (never those of an agent
        /// the same key registered).
        Member => "member",
        /// Everything: grants, policies, risk levels, users, keys.
        Admin => "admin",
    }
}

wire_enum! {
    /// Lifecycle of an agent.
    AgentStatus {
        /// Registered, not yet allowed to act.
        Pending => "pending",
        /// Active: may authenticate and act.
        Verified => "verified",
        /// Temporarily blocked by a person; can be reactivated.
        Suspended => "suspended",
        /// Permanently blocked.
        Revoked => "revoked",
    }
}

wire_enum! {
    /// Risk level of an action.
    Risk {
        /// Reads.
        Low => "low",
        /// Writes, e-mail, configuration.
        Medium => "medium",
        /// Deletion, command execution, administration.
        High => "high",
        /// Anything an organization marks critical.
        Critical => "critical",
    }
}

wire_enum! {
    /// Persisted state of a verification.
    VerificationStatus {
        /// Waiting for a person.
        Pending => "pending",
        /// Allowed.
        Approved => "approved",
        /// Refused.
        Denied => "denied",
        /// Nobody decided before the pending deadline.
        Expired => "expired",
    }
}

wire_enum! {
    /// What a policy does when it matches.
    PolicyEffect {
        /// Allow (still subject to `min_trust`).
        Allow => "allow",
        /// Deny.
        Deny => "deny",
        /// Hold for a person.
        RequireApproval => "require_approval",
    }
}

wire_enum! {
    /// What happens when the agent's trust is below a policy's `min_trust`.
    BelowTrust {
        /// Deny.
        Deny => "deny",
        /// Hold for a person.
        RequireApproval => "require_approval",
    }
}

wire_enum! {
    /// State of a capability request.
    RequestStatus {
        /// Waiting for a person.
        Pending => "pending",
        /// Granted.
        Approved => "approved",
        /// Refused.
        Rejected => "rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_errors_list_choices() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), *r);
        }
        for s in AgentStatus::ALL {
            assert_eq!(AgentStatus::parse(s.as_str()).unwrap(), *s);
        }
        assert!(Role::Admin > Role::Member && Role::Member > Role::Viewer);
        assert!(Role::Viewer > Role::Registration);
        let e = Role::parse("root").unwrap_err().to_string();
        assert!(e.contains("registration, viewer, member, admin"), "{e}");
        assert_eq!(
            serde_json::to_string(&PolicyEffect::RequireApproval).unwrap(),
            "\"require_approval\""
        );
        assert_eq!(Risk::parse("high").unwrap(), Risk::High);
    }
}

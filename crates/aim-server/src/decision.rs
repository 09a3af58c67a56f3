//! The decision engine: a pure function from (agent, granted capabilities, policies, risk
//! configuration, trust score, action, resource, context) to approved, denied or pending, with a
//! reason that says what to change.
//!
//! Order of evaluation:
//! 1. The agent must be active (`verified`); otherwise denied.
//! 2. The action's risk level comes from the organization's overrides, else the defaults
//!    (backend spec §4.1): `read_*`/`query_api` low; `write_*`, `send_email`, `modify_config`
//!    medium; `delete_*`, `execute_command`, `admin_action` high; anything else medium. The
//!    required trust follows from the risk (low 0.3, medium 0.5, high 0.7, critical 0.8).
//! 3. The first enabled policy (highest priority first, then name) whose action, resource and
//!    agent patterns match decides: `deny` denies, `require_approval` holds for a person, `allow`
//!    approves without a capability provided the trust is at least the policy's `min_trust`
//!    (default: the risk's required trust); below it the policy's `below_min_trust` applies.
//! 4. Without a matching policy the agent needs a capability granted by a person (exact, or a
//!    `prefix*` wildcard): none ⇒ denied. With one: trust below the required minimum ⇒ pending;
//!    high or critical risk ⇒ pending (a person approves); otherwise approved.
//!
//! Patterns: `*` matches everything (including a missing resource), `prefix*` matches values
//! starting with `prefix`, anything else matches exactly.
//!
//! Agents are selected by a policy's agent selector ([`agent_selected`]): `*` (every agent), an
//! agent id, or `label:NAME` (agents an admin gave that label). Never by name: members choose
//! names, so a name pattern would let a member opt an agent into an admin's `allow` policy.
//! Name patterns stored before schema version 2 keep restricting (`deny`, `require_approval`)
//! but never allow.

use crate::model::{AgentStatus, BelowTrust, PolicyEffect, Risk};

/// The facts about the agent the engine needs.
#[derive(Debug, Clone, Copy)]
pub struct AgentFacts<'a> {
    /// Agent id.
    pub id: &'a str,
    /// Agent name (unique in its organization).
    pub name: &'a str,
    /// Lifecycle status.
    pub status: AgentStatus,
    /// Labels an admin gave the agent.
    pub labels: &'a [String],
}

/// One organization policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Policy id.
    pub id: String,
    /// Policy name (unique in its organization).
    pub name: String,
    /// Higher first.
    pub priority: i64,
    /// Action pattern.
    pub action_pattern: String,
    /// Resource pattern.
    pub resource_pattern: String,
    /// Agent selector: `*`, an agent id, or `label:NAME` (or a legacy name pattern, see
    /// [`agent_selected`]).
    pub agent_pattern: String,
    /// What the policy does when it matches.
    pub effect: PolicyEffect,
    /// Minimum trust for `allow` (defaults to the risk's required trust).
    pub min_trust: Option<f64>,
    /// What happens below `min_trust`.
    pub below_min_trust: BelowTrust,
    /// Disabled policies never match.
    pub enabled: bool,
}

/// An organization's risk level for an action pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskOverride {
    /// Action pattern (exact or `prefix*`).
    pub action_pattern: String,
    /// Risk level.
    pub risk: Risk,
}

/// Everything a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The agent.
    pub agent: AgentFacts<'a>,
    /// Capabilities granted by people (active grants only).
    pub grants: &'a [String],
    /// The organization's policies (any order).
    pub policies: &'a [Policy],
    /// The organization's risk overrides.
    pub risk_overrides: &'a [RiskOverride],
    /// The agent's trust score (0–1).
    pub trust_score: f64,
    /// The action type.
    pub action: &'a str,
    /// The resource, if any.
    pub resource: Option<&'a str>,
    /// The request context (not used by the built-in rules; part of the input so policies can
    /// grow conditions on it without changing the signature).
    pub context: &'a serde_json::Value,
}

/// The three answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed now.
    Approved,
    /// Refused.
    Denied,
    /// Held for a person.
    Pending,
}

/// A decision with its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The answer.
    pub outcome: Outcome,
    /// Why; for denials and pending answers it says what to change.
    pub reason: String,
    /// Risk level of the action.
    pub risk: Risk,
    /// Trust the action required.
    pub required_trust: f64,
    /// Name of the policy that decided, if one did.
    pub policy: Option<String>,
    /// The grant that matched, if one did.
    pub capability: Option<String>,
}

/// Default action risk levels (backend spec §4.1).
pub const DEFAULT_RISKS: &[(&str, Risk)] = &[
    ("read_*", Risk::Low),
    ("query_api", Risk::Low),
    ("write_*", Risk::Medium),
    ("send_email", Risk::Medium),
    ("modify_config", Risk::Medium),
    ("delete_*", Risk::High),
    ("execute_command", Risk::High),
    ("admin_action", Risk::High),
];

/// Risk of actions no rule mentions.
pub const FALLBACK_RISK: Risk = Risk::Medium;

/// Trust an action of `risk` requires.
pub fn required_trust(risk: Risk) -> f64 {
    match risk {
        Risk::Low => 0.3,
        Risk::Medium => 0.5,
        Risk::High => 0.7,
        Risk::Critical => 0.8,
    }
}

/// True when `pattern` matches `value`: `*` matches everything, `prefix*` matches by prefix,
/// anything else exactly.
pub fn pattern_matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// How specific a matching pattern is: exact beats any wildcard, longer prefixes beat shorter.
fn specificity(pattern: &str) -> usize {
    match pattern.strip_suffix('*') {
        Some(prefix) => prefix.len(),
        None => usize::MAX,
    }
}

/// Checks a pattern's syntax: 1–200 characters, at most one `*`, only at the end, no control
/// characters.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.chars().count() > 200 {
        return Err("a pattern must be 1 to 200 characters".into());
    }
    if pattern.chars().any(char::is_control) {
        return Err("a pattern must not contain control characters".into());
    }
    if let Some(pos) = pattern.find('*')
        && pos != pattern.len() - 1
    {
        return Err(format!(
            "pattern `{pattern}`: `*` is only allowed once, at the end (e.g. `read_*`)"
        ));
    }
    Ok(())
}

/// The risk of `action`: the most specific organization override, else the most specific
/// default, else [`FALLBACK_RISK`].
pub fn risk_of(action: &str, overrides: &[RiskOverride]) -> Risk {
    let best_override = overrides
        .iter()
        .filter(|o| pattern_matches(&o.action_pattern, action))
        .max_by_key(|o| specificity(&o.action_pattern));
    if let Some(o) = best_override {
        return o.risk;
    }
    DEFAULT_RISKS
        .iter()
        .filter(|(p, _)| pattern_matches(p, action))
        .max_by_key(|(p, _)| specificity(p))
        .map_or(FALLBACK_RISK, |(_, r)| *r)
}

/// The prefix of a label selector.
pub const LABEL_SELECTOR: &str = "label:";

/// What a policy's agent selector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSelector<'a> {
    /// `*`: every agent.
    All,
    /// `label:NAME`: agents carrying the label.
    Label(&'a str),
    /// An agent id (or, from before schema version 2, an id or name pattern).
    Pattern(&'a str),
}

impl<'a> AgentSelector<'a> {
    /// Reads a stored selector.
    pub fn parse(text: &'a str) -> Self {
        if text == "*" {
            AgentSelector::All
        } else if let Some(label) = text.strip_prefix(LABEL_SELECTOR) {
            AgentSelector::Label(label)
        } else {
            AgentSelector::Pattern(text)
        }
    }
}

/// True when policy `p` selects `agent`. An id pattern matches the agent's id (ids are chosen
/// by the server). A name pattern (accepted before schema version 2, refused since) matches the
/// agent's name only for policies that restrict (`deny`, `require_approval`): a member who
/// names an agent to fit it can only restrict that agent, never have it allowed.
pub fn agent_selected(p: &Policy, agent: &AgentFacts<'_>) -> bool {
    match AgentSelector::parse(&p.agent_pattern) {
        AgentSelector::All => true,
        AgentSelector::Label(label) => agent.labels.iter().any(|l| l == label),
        AgentSelector::Pattern(pattern) => {
            pattern_matches(pattern, agent.id)
                || (p.effect != PolicyEffect::Allow && pattern_matches(pattern, agent.name))
        }
    }
}

fn resource_matches(pattern: &str, resource: Option<&str>) -> bool {
    match resource {
        Some(r) => pattern_matches(pattern, r),
        None => pattern == "*",
    }
}

fn describe_resource(resource: Option<&str>) -> String {
    match resource {
        Some(r) => format!(" on '{r}'"),
        None => String::new(),
    }
}

/// Decides. Pure: same input, same output.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    let agent = input.agent;
    let risk = risk_of(input.action, input.risk_overrides);
    let required = required_trust(risk);
    let decision = |outcome, reason: String| Decision {
        outcome,
        reason,
        risk,
        required_trust: required,
        policy: None,
        capability: None,
    };

    match agent.status {
        AgentStatus::Verified => {}
        AgentStatus::Suspended => {
            return decision(
                Outcome::Denied,
                format!(
                    "agent '{}' is suspended; reactivate it with: aim agent reactivate {}",
                    agent.name, agent.name
                ),
            );
        }
        AgentStatus::Revoked => {
            return decision(
                Outcome::Denied,
                format!(
                    "agent '{}' is revoked and can no longer act; register a new agent",
                    agent.name
                ),
            );
        }
        AgentStatus::Pending => {
            return decision(
                Outcome::Denied,
                format!(
                    "agent '{}' is pending verification; activate it with: aim agent reactivate {}",
                    agent.name, agent.name
                ),
            );
        }
    }

    let trust = input.trust_score;
    let action = input.action;
    let on = describe_resource(input.resource);

    let policy = input
        .policies
        .iter()
        .filter(|p| {
            p.enabled
                && pattern_matches(&p.action_pattern, action)
                && resource_matches(&p.resource_pattern, input.resource)
                && agent_selected(p, &agent)
        })
        .min_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });

    if let Some(p) = policy {
        let with_policy = |outcome, reason: String| Decision {
            policy: Some(p.name.clone()),
            ..decision(outcome, reason)
        };
        return match p.effect {
            PolicyEffect::Deny => with_policy(
                Outcome::Denied,
                format!(
                    "policy '{}' denies '{action}'{on} for agent '{}'; change or disable it with: aim policies update {}",
                    p.name, agent.name, p.name
                ),
            ),
            PolicyEffect::RequireApproval => with_policy(
                Outcome::Pending,
                format!(
                    "policy '{}' requires a person to approve '{action}'{on}; approve with: aim approvals approve <id>",
                    p.name
                ),
            ),
            PolicyEffect::Allow => {
                let min = p.min_trust.unwrap_or(required);
                if trust + 1e-9 >= min {
                    with_policy(
                        Outcome::Approved,
                        format!(
                            "allowed by policy '{}' (trust {trust:.2} >= {min:.2})",
                            p.name
                        ),
                    )
                } else {
                    let outcome = match p.below_min_trust {
                        BelowTrust::Deny => Outcome::Denied,
                        BelowTrust::RequireApproval => Outcome::Pending,
                    };
                    let then = match outcome {
                        Outcome::Denied => "denied",
                        _ => "held for a person's approval",
                    };
                    Decision {
                        required_trust: min,
                        ..with_policy(
                            outcome,
                            format!(
                                "trust score {trust:.2} of agent '{}' is below the {min:.2} that policy '{}' requires for '{action}', so it is {then}; raise the agent's trust or lower min_trust with: aim policies update {}",
                                agent.name, p.name, p.name
                            ),
                        )
                    }
                }
            }
        };
    }

    let grant = input
        .grants
        .iter()
        .filter(|g| pattern_matches(g, action))
        .max_by_key(|g| specificity(g));
    let Some(grant) = grant else {
        return decision(
            Outcome::Denied,
            format!(
                "agent '{}' has no capability '{action}'; grant it with: aim capabilities grant {} {action}",
                agent.name, agent.name
            ),
        );
    };
    let with_grant = |outcome, reason: String| Decision {
        capability: Some(grant.clone()),
        ..decision(outcome, reason)
    };
    if trust + 1e-9 < required {
        return with_grant(
            Outcome::Pending,
            format!(
                "trust score {trust:.2} of agent '{}' is below the {required:.2} required for {risk}-risk action '{action}'; a person must approve (aim approvals approve <id>), or raise the agent's trust",
                agent.name
            ),
        );
    }
    if matches!(risk, Risk::High | Risk::Critical) {
        return with_grant(
            Outcome::Pending,
            format!(
                "'{action}' is a {risk}-risk action and needs a person's approval: aim approvals approve <id>; to approve it automatically add an allow policy (aim policies create --action {action} --effect allow)"
            ),
        );
    }
    with_grant(
        Outcome::Approved,
        format!(
            "agent '{}' holds capability '{grant}' for {risk}-risk action '{action}' (trust {trust:.2} >= {required:.2})",
            agent.name
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, priority: i64, action: &str, effect: PolicyEffect) -> Policy {
        Policy {
            id: format!("id-{name}"),
            name: name.into(),
            priority,
            action_pattern: action.into(),
            resource_pattern: "*".into(),
            agent_pattern: "*".into(),
            effect,
            min_trust: None,
            below_min_trust: BelowTrust::RequireApproval,
            enabled: true,
        }
    }

    struct Case {
        status: AgentStatus,
        grants: Vec<String>,
        policies: Vec<Policy>,
        overrides: Vec<RiskOverride>,
        trust: f64,
        action: &'static str,
        resource: Option<&'static str>,
        labels: Vec<String>,
    }

    impl Case {
        fn new(action: &'static str) -> Self {
            Self {
                status: AgentStatus::Verified,
                grants: vec![],
                policies: vec![],
                overrides: vec![],
                trust: 0.9,
                action,
                resource: Some("users_table"),
                labels: vec!["billing".into()],
            }
        }
        fn grant(mut self, g: &str) -> Self {
            self.grants.push(g.into());
            self
        }
        fn decide(&self) -> Decision {
            let ctx = serde_json::json!({});
            decide(&DecisionInput {
                agent: AgentFacts {
                    id: "7d9f0000-0000-4000-8000-000000000001",
                    name: "billing-bot",
                    status: self.status,
                    labels: &self.labels,
                },
                grants: &self.grants,
                policies: &self.policies,
                risk_overrides: &self.overrides,
                trust_score: self.trust,
                action: self.action,
                resource: self.resource,
                context: &ctx,
            })
        }
    }

    #[test]
    fn inactive_agents_are_denied_with_what_to_do() {
        for (status, hint) in [
            (AgentStatus::Suspended, "aim agent reactivate billing-bot"),
            (AgentStatus::Revoked, "register a new agent"),
            (AgentStatus::Pending, "pending verification"),
        ] {
            let mut c = Case::new("read_database").grant("read_*");
            c.status = status;
            let d = c.decide();
            assert_eq!(d.outcome, Outcome::Denied, "{status}");
            assert!(d.reason.contains(hint), "{}", d.reason);
        }
    }

    #[test]
    fn no_capability_is_denied_with_the_grant_command() {
        let d = Case::new("delete_file").grant("read_*").decide();
        assert_eq!(d.outcome, Outcome::Denied);
        assert_eq!(
            d.reason,
            "agent 'billing-bot' has no capability 'delete_file'; grant it with: aim capabilities grant billing-bot delete_file"
        );
    }

    #[test]
    fn exact_and_wildcard_grants_approve_low_and_medium_risk() {
        let d = Case::new("read_database").grant("read_*").decide();
        assert_eq!(d.outcome, Outcome::Approved);
        assert_eq!(d.risk, Risk::Low);
        assert_eq!(d.capability.as_deref(), Some("read_*"));
        let d = Case::new("send_email").grant("send_email").decide();
        assert_eq!(d.outcome, Outcome::Approved);
        assert_eq!(d.risk, Risk::Medium);
        // A wildcard grant does not cover other prefixes.
        assert_eq!(
            Case::new("write_file").grant("read_*").decide().outcome,
            Outcome::Denied
        );
        // The most specific grant is reported.
        let d = Case::new("read_file")
            .grant("read_*")
            .grant("read_file")
            .decide();
        assert_eq!(d.capability.as_deref(), Some("read_file"));
    }

    #[test]
    fn high_risk_is_pending_not_impossible() {
        let d = Case::new("delete_file").grant("delete_file").decide();
        assert_eq!(d.outcome, Outcome::Pending);
        assert_eq!(d.risk, Risk::High);
        assert!(d.reason.contains("aim approvals approve"), "{}", d.reason);
        let d = Case::new("execute_command").grant("*").decide();
        assert_eq!(d.outcome, Outcome::Pending);
    }

    #[test]
    fn low_trust_is_pending_by_default() {
        let mut c = Case::new("write_file").grant("write_*");
        c.trust = 0.45;
        let d = c.decide();
        assert_eq!(d.outcome, Outcome::Pending);
        assert!(
            d.reason.contains("0.45") && d.reason.contains("0.50"),
            "{}",
            d.reason
        );
        c.trust = 0.5;
        assert_eq!(c.decide().outcome, Outcome::Approved);
    }

    #[test]
    fn default_risk_table_and_overrides() {
        assert_eq!(risk_of("read_database", &[]), Risk::Low);
        assert_eq!(risk_of("query_api", &[]), Risk::Low);
        assert_eq!(risk_of("write_database", &[]), Risk::Medium);
        assert_eq!(risk_of("send_email", &[]), Risk::Medium);
        assert_eq!(risk_of("modify_config", &[]), Risk::Medium);
        assert_eq!(risk_of("delete_data", &[]), Risk::High);
        assert_eq!(risk_of("execute_command", &[]), Risk::High);
        assert_eq!(risk_of("admin_action", &[]), Risk::High);
        assert_eq!(risk_of("make_coffee", &[]), Risk::Medium);
        let overrides = vec![
            RiskOverride {
                action_pattern: "read_*".into(),
                risk: Risk::Medium,
            },
            RiskOverride {
                action_pattern: "read_secrets".into(),
                risk: Risk::Critical,
            },
        ];
        assert_eq!(risk_of("read_file", &overrides), Risk::Medium);
        assert_eq!(risk_of("read_secrets", &overrides), Risk::Critical);
        assert_eq!(risk_of("delete_file", &overrides), Risk::High);
        let mut c = Case::new("read_secrets").grant("read_*");
        c.overrides = overrides;
        let d = c.decide();
        assert_eq!(d.outcome, Outcome::Pending);
        assert_eq!(d.risk, Risk::Critical);
        assert!((d.required_trust - 0.8).abs() < 1e-9);
    }

    #[test]
    fn deny_policy_overrides_grants_and_names_itself() {
        let mut c = Case::new("read_database").grant("read_*");
        c.policies = vec![policy("no-db", 10, "read_database", PolicyEffect::Deny)];
        let d = c.decide();
        assert_eq!(d.outcome, Outcome::Denied);
        assert_eq!(d.policy.as_deref(), Some("no-db"));
        assert!(
            d.reason.contains("aim policies update no-db"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn allow_policy_needs_no_grant_and_can_auto_approve_high_risk() {
        let mut c = Case::new("delete_file");
        c.policies = vec![policy("cleanup", 5, "delete_*", PolicyEffect::Allow)];
        let d = c.decide();
        assert_eq!(d.outcome, Outcome::Approved, "{}", d.reason);
        assert_eq!(d.policy.as_deref(), Some("cleanup"));
    }

    #[test]
    fn allow_policy_min_trust_holds_or_denies() {
        let mut c = Case::new("write_file");
        let mut p = policy("writes", 5, "write_*", PolicyEffect::Allow);
        p.min_trust = Some(0.95);
        c.policies = vec![p.clone()];
        let d = c.decide();
        assert_eq!(d.outcome, Outcome::Pending);
        assert!((d.required_trust - 0.95).abs() < 1e-9);
        p.below_min_trust = BelowTrust::Deny;
        c.policies = vec![p];
        let d = c.decide();
        assert_eq!(d.outcome, Outcome::Denied);
        assert!(d.reason.contains("lower min_trust"), "{}", d.reason);
    }

    #[test]
    fn require_approval_policy_holds() {
        let mut c = Case::new("read_database").grant("read_*");
        c.policies = vec![policy(
            "four-eyes",
            1,
            "read_*",
            PolicyEffect::RequireApproval,
        )];
        assert_eq!(c.decide().outcome, Outcome::Pending);
    }

    #[test]
    fn highest_priority_then_name_wins_and_disabled_never_match() {
        let mut c = Case::new("read_database").grant("read_*");
        let mut disabled = policy("a-disabled", 100, "*", PolicyEffect::Deny);
        disabled.enabled = false;
        c.policies = vec![
            policy("b-low", 1, "*", PolicyEffect::Deny),
            disabled,
            policy("z-high", 50, "read_*", PolicyEffect::Allow),
            policy("a-high", 50, "read_*", PolicyEffect::RequireApproval),
        ];
        let d = c.decide();
        assert_eq!(d.policy.as_deref(), Some("a-high"));
        assert_eq!(d.outcome, Outcome::Pending);
    }

    #[test]
    fn policies_match_resource_and_agent() {
        let mut c = Case::new("read_database").grant("read_*");
        let mut p = policy("pii", 10, "read_*", PolicyEffect::Deny);
        p.resource_pattern = "pii_*".into();
        c.policies = vec![p.clone()];
        assert_eq!(c.decide().outcome, Outcome::Approved);
        c.resource = Some("pii_customers");
        assert_eq!(c.decide().outcome, Outcome::Denied);
        // A missing resource matches only `*`.
        c.resource = None;
        assert_eq!(c.decide().outcome, Outcome::Approved);
        // Agent selectors: id, label; legacy name patterns only restrict.
        let mut p2 = policy("other-agent", 10, "*", PolicyEffect::Deny);
        p2.agent_pattern = "support-*".into();
        c.policies = vec![p2.clone()];
        assert_eq!(c.decide().outcome, Outcome::Approved);
        p2.agent_pattern = "billing-*".into();
        c.policies = vec![p2.clone()];
        assert_eq!(c.decide().outcome, Outcome::Denied);
        p2.agent_pattern = "7d9f0000-0000-4000-8000-000000000001".into();
        c.policies = vec![p2.clone()];
        assert_eq!(c.decide().outcome, Outcome::Denied);
        p2.agent_pattern = "label:billing".into();
        c.policies = vec![p2.clone()];
        assert_eq!(c.decide().outcome, Outcome::Denied);
        p2.agent_pattern = "label:support".into();
        c.policies = vec![p2];
        assert_eq!(c.decide().outcome, Outcome::Approved);
    }

    #[test]
    fn name_patterns_never_allow() {
        let mut c = Case::new("deploy_prod");
        let mut p = policy("trusted", 10, "deploy_*", PolicyEffect::Allow);
        p.agent_pattern = "billing-*".into();
        c.policies = vec![p.clone()];
        assert_eq!(c.decide().outcome, Outcome::Denied, "no grant, no allow");
        p.agent_pattern = "label:billing".into();
        c.policies = vec![p];
        assert_eq!(c.decide().outcome, Outcome::Approved);
    }

    #[test]
    fn patterns_validate() {
        assert!(validate_pattern("read_*").is_ok());
        assert!(validate_pattern("*").is_ok());
        assert!(validate_pattern("exact").is_ok());
        assert!(validate_pattern("").is_err());
        assert!(validate_pattern("a*b").is_err());
        assert!(validate_pattern("**").is_err());
        assert!(validate_pattern("a\nb").is_err());
        assert!(pattern_matches("*", ""));
        assert!(!pattern_matches("read", "read_file"));
    }

    #[test]
    fn decisions_are_deterministic() {
        let c = Case::new("write_file").grant("write_*");
        assert_eq!(c.decide(), c.decide());
    }
}

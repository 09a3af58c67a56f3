//! Trust score: the 8 weighted factors of backend spec §5 on one 0–1 scale, each computed from
//! recorded events instead of upstream's constants.
//!
//! | factor | weight | input | formula |
//! |---|---|---|---|
//! | `verification_status` | 0.25 | agent status | verified 1.0, pending 0.3, suspended 0.1, revoked 0.0 |
//! | `verification_outcomes` | 0.15 | automatic decisions | (approved + 4.5) / (approved + denied + 5) |
//! | `success_rate` | 0.15 | reported results | (success + 4.5) / (success + failure + 5) |
//! | `security_alerts` | 0.15 | alerts raised for the agent | max(0, 1 − 0.2 × alerts) |
//! | `compliance` | 0.10 | results reported for approved actions | min(1, (results + 4.5) / (approved + 5)) |
//! | `age` | 0.10 | days since registration | < 7 → 0.3, < 30 → 0.5, < 90 → 0.75, else 1.0 |
//! | `drift_detection` | 0.05 | undeclared MCP servers detected | max(0, 1 − 0.25 × drift events) |
//! | `user_feedback` | 0.05 | people's approvals vs denials of pending actions | (approvals + 1.5) / (approvals + denials + 2) |
//!
//! The smoothed ratios start near 0.9 (0.75 for people's feedback) and move with evidence, so
//! one early failure does not sink a new agent and a long good record is needed to reach 1.0.
//! A new verified agent scores 0.8775.

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::AgentStatus;

/// The recorded events a score is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrustInputs {
    /// Days since the agent registered.
    pub age_days: i64,
    /// Automatic approvals.
    pub approved: i64,
    /// Denials (automatic and by people).
    pub denied: i64,
    /// Results reported as success.
    pub results_success: i64,
    /// Results reported as failure.
    pub results_failure: i64,
    /// Pending verifications people approved.
    pub human_approvals: i64,
    /// Pending verifications people denied.
    pub human_denials: i64,
    /// Alerts raised for the agent.
    pub alerts: i64,
    /// Detections of MCP servers the agent had not declared.
    pub drift_events: i64,
}

/// The eight factors, each 0–1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct TrustFactors {
    /// Agent status.
    pub verification_status: f64,
    /// Approved vs denied automatic decisions.
    pub verification_outcomes: f64,
    /// Successful vs failed reported results.
    pub success_rate: f64,
    /// Alerts raised.
    pub security_alerts: f64,
    /// Share of approved actions whose result was reported.
    pub compliance: f64,
    /// Time since registration.
    pub age: f64,
    /// Undeclared MCP servers detected.
    pub drift_detection: f64,
    /// People's approvals vs denials.
    pub user_feedback: f64,
}

/// The weights, in the order of [`TrustFactors`]' fields; they sum to 1.
pub const WEIGHTS: [f64; 8] = [0.25, 0.15, 0.15, 0.15, 0.10, 0.10, 0.05, 0.05];

fn smoothed(good: i64, total: i64, prior: f64, weight: f64) -> f64 {
    let good = good.max(0) as f64;
    let total = total.max(0) as f64;
    ((good + prior * weight) / (total + weight)).clamp(0.0, 1.0)
}

/// Computes the factors.
pub fn factors(status: AgentStatus, i: &TrustInputs) -> TrustFactors {
    let verification_status = match status {
        AgentStatus::Verified => 1.0,
        AgentStatus::Pending => 0.3,
        AgentStatus::Suspended => 0.1,
        AgentStatus::Revoked => 0.0,
    };
    let age = match i.age_days {
        d if d < 7 => 0.3,
        d if d < 30 => 0.5,
        d if d < 90 => 0.75,
        _ => 1.0,
    };
    let results = i.results_success.max(0) + i.results_failure.max(0);
    TrustFactors {
        verification_status,
        verification_outcomes: smoothed(i.approved, i.approved + i.denied, 0.9, 5.0),
        success_rate: smoothed(i.results_success, results, 0.9, 5.0),
        security_alerts: (1.0 - 0.2 * i.alerts.max(0) as f64).max(0.0),
        compliance: smoothed(results.min(i.approved.max(0)), i.approved, 0.9, 5.0),
        age,
        drift_detection: (1.0 - 0.25 * i.drift_events.max(0) as f64).max(0.0),
        user_feedback: smoothed(
            i.human_approvals,
            i.human_approvals + i.human_denials,
            0.75,
            2.0,
        ),
    }
}

impl TrustFactors {
    /// The weighted sum, clamped to 0–1 and rounded to 4 decimals.
    pub fn score(&self) -> f64 {
        let values = [
            self.verification_status,
            self.verification_outcomes,
            self.success_rate,
            self.security_alerts,
            self.compliance,
            self.age,
            self.drift_detection,
            self.user_feedback,
        ];
        let sum: f64 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
        (sum.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
    }
}

/// The score for `status` and `inputs`.
pub fn score(status: AgentStatus, inputs: &TrustInputs) -> f64 {
    factors(status, inputs).score()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one() {
        assert!((WEIGHTS.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn new_verified_agent() {
        let s = score(AgentStatus::Verified, &TrustInputs::default());
        assert!((s - 0.8775).abs() < 1e-9, "{s}");
        // Status dominates.
        assert!(score(AgentStatus::Suspended, &TrustInputs::default()) < 0.7);
        assert!(
            score(AgentStatus::Revoked, &TrustInputs::default())
                < score(AgentStatus::Suspended, &TrustInputs::default())
        );
    }

    #[test]
    fn every_input_moves_the_score_the_right_way() {
        let base = TrustInputs {
            age_days: 10,
            approved: 10,
            denied: 2,
            results_success: 8,
            results_failure: 1,
            human_approvals: 1,
            human_denials: 1,
            alerts: 1,
            drift_events: 1,
        };
        let s0 = score(AgentStatus::Verified, &base);
        let worse = [
            TrustInputs { denied: 10, ..base },
            TrustInputs {
                results_failure: 9,
                ..base
            },
            TrustInputs { alerts: 3, ..base },
            TrustInputs {
                drift_events: 3,
                ..base
            },
            TrustInputs {
                human_denials: 5,
                ..base
            },
            TrustInputs {
                age_days: 1,
                ..base
            },
            TrustInputs {
                results_success: 0,
                results_failure: 0,
                ..base
            },
        ];
        for (i, w) in worse.iter().enumerate() {
            assert!(score(AgentStatus::Verified, w) < s0, "case {i}");
        }
        let better = [
            TrustInputs {
                approved: 40,
                results_success: 38,
                ..base
            },
            TrustInputs {
                human_approvals: 6,
                ..base
            },
            TrustInputs {
                age_days: 100,
                ..base
            },
            TrustInputs { alerts: 0, ..base },
        ];
        for (i, b) in better.iter().enumerate() {
            assert!(score(AgentStatus::Verified, b) > s0, "case {i}");
        }
    }

    #[test]
    fn factors_stay_in_range_for_extreme_inputs() {
        let extreme = TrustInputs {
            age_days: -5,
            approved: -1,
            denied: i64::MAX / 4,
            results_success: 0,
            results_failure: i64::MAX / 4,
            human_approvals: 0,
            human_denials: 1 << 40,
            alerts: 1000,
            drift_events: 1000,
        };
        let f = factors(AgentStatus::Verified, &extreme);
        for v in [
            f.verification_status,
            f.verification_outcomes,
            f.success_rate,
            f.security_alerts,
            f.compliance,
            f.age,
            f.drift_detection,
            f.user_feedback,
        ] {
            assert!((0.0..=1.0).contains(&v), "{v}");
        }
        let s = f.score();
        assert!((0.0..=1.0).contains(&s));
    }
}

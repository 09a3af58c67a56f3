//! Property tests of the parsers that read what the server (or the environment) says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use aim_client::config::normalize_base_url;
use aim_client::retry::{RetryPolicy, parse_retry_after};
use aim_client::{DegradedMode, VerificationState};
use proptest::prelude::*;

proptest! {
    #[test]
    fn retry_after_never_panics_and_seconds_round_trip(s in ".{0,40}", n in 0u64..1_000_000_000) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_761_317_061);
        let _ = parse_retry_after(&s, now);
        prop_assert_eq!(parse_retry_after(&n.to_string(), now), Some(Duration::from_secs(n)));
    }

    #[test]
    fn backoff_is_always_within_its_ceiling(retry in 0u32..100, random in any::<u64>()) {
        let p = RetryPolicy::default();
        prop_assert!(p.backoff(retry, random) <= p.ceiling(retry));
        prop_assert!(p.ceiling(retry) <= p.max_delay);
    }

    #[test]
    fn verification_answers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            let _ = VerificationState::from_json(&v, "u");
        }
    }

    #[test]
    fn arbitrary_status_objects_map_or_error(status in "[a-z]{0,10}", id in proptest::option::of("[a-f0-9-]{1,36}")) {
        let mut v = serde_json::json!({ "status": status });
        if let Some(id) = &id {
            v["id"] = serde_json::Value::String(id.clone());
        }
        let known = ["approved", "denied", "pending", "expired"].contains(&status.as_str());
        let parsed = VerificationState::from_json(&v, "u");
        // Unknown statuses are never taken for a decision (fail closed).
        if !known {
            prop_assert!(parsed.is_err());
        }
        if matches!(parsed, Ok(VerificationState::Approved(_))) {
            prop_assert!(id.is_some());
        }
    }

    #[test]
    fn base_urls_never_panic(s in ".{0,60}") {
        if let Ok(url) = normalize_base_url(&s) {
            prop_assert!(url.starts_with("http://") || url.starts_with("https://"));
            prop_assert!(!url.ends_with('/'));
        }
    }

    #[test]
    fn degraded_patterns_match_what_they_name(prefix in "[a-z_]{0,10}", rest in "[a-z_]{0,10}") {
        let mode = DegradedMode::AllowListed(vec![format!("{prefix}*")]);
        let action = format!("{prefix}{rest}");
        prop_assert!(mode.allows(&action));
        prop_assert!(!DegradedMode::Off.allows(&action));
    }
}

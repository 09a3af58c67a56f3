//! Fail closed when the server cannot be reached, and the explicit degraded mode.
//! (No server is needed: the port is closed.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aim_client::{
    AgentIdentity, AimClient, ClientConfig, DegradedMode, Error, RetryPolicy, TransportKind,
};
use aim_crypto::AgentKeypair;
use serde_json::json;

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

fn client(mode: DegradedMode) -> AimClient {
    let url = closed_port_url();
    let identity = AgentIdentity::new(
        "offline",
        "550e8400-e29b-41d4-a716-446655440000",
        &url,
        AgentKeypair::generate().unwrap(),
    )
    .unwrap();
    let mut config = ClientConfig::new(&url).degraded_mode(mode);
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    AimClient::new(config, identity).unwrap()
}

fn assert_unreachable(err: &Error) {
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("unreachable") && text.contains("aim server"),
        "{text}"
    );
}

#[tokio::test]
async fn unreachable_server_fails_closed_async() {
    let ran = AtomicUsize::new(0);
    let err = client(DegradedMode::Off)
        .perform_action("read_database", Some("customers"), json!({}), || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(())
        })
        .await
        .unwrap_err();
    assert_unreachable(&err);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "the action ran without approval"
    );
}

#[test]
fn unreachable_server_fails_closed_blocking_outside_a_runtime() {
    let mut ran = false;
    let err = client(DegradedMode::Off)
        .perform_action_blocking("read_database", None, json!(null), || {
            ran = true;
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert_unreachable(&err);
    assert!(!ran);
}

#[tokio::test(flavor = "current_thread")]
async fn unreachable_server_fails_closed_blocking_inside_a_current_thread_runtime() {
    let mut ran = false;
    let err = client(DegradedMode::Off)
        .perform_action_blocking("read_database", None, json!({}), || {
            ran = true;
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert_unreachable(&err);
    assert!(!ran);
}

#[tokio::test]
async fn degraded_mode_runs_only_allow_listed_actions_and_only_when_unreachable() {
    let c = client(DegradedMode::AllowListed(vec!["read_*".into()]));
    let out = c
        .perform_action("read_database", None, json!({}), || async {
            Ok::<_, Error>(7)
        })
        .await
        .unwrap();
    assert_eq!(out, 7);
    let ran = AtomicUsize::new(0);
    let err = c
        .perform_action("delete_data", None, json!({}), || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(())
        })
        .await
        .unwrap_err();
    assert_unreachable(&err);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    // Blocking variant too.
    let out = c
        .perform_action_blocking("read_file", None, json!({}), || Ok::<_, Error>("ok"))
        .unwrap();
    assert_eq!(out, "ok");
}

#[tokio::test]
async fn a_bad_context_is_rejected_before_anything_runs() {
    let ran = AtomicUsize::new(0);
    let err = client(DegradedMode::AllowListed(vec!["*".into()]))
        .perform_action("read_database", None, json!([1, 2]), || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(())
        })
        .await
        .unwrap_err();
    // A configuration error is not "unreachable": degraded mode does not apply.
    assert!(matches!(err, Error::Configuration(_)), "{err:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

mod macro_fail_closed {
    use super::*;

    struct Repo {
        aim: AimClient,
        reads: AtomicUsize,
    }

    impl Repo {
        #[aim_macros::action("read_database", resource = "customers", client = &self.aim, crate = ::aim_client)]
        fn count(&self) -> Result<usize, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(3)
        }

        #[aim_macros::action("read_database", resource = format!("customer/{id}"), client = &self.aim, crate = ::aim_client)]
        async fn fetch(&self, id: u32) -> Result<u32, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let doubled: u32 = id
                .checked_mul(2)
                .ok_or(Error::Configuration("overflow".into()))?;
            Ok(doubled)
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn guarded_methods_do_not_run_when_the_server_is_unreachable() {
        let repo = Repo {
            aim: client(DegradedMode::Off),
            reads: AtomicUsize::new(0),
        };
        assert_unreachable(&repo.fetch(4).await.unwrap_err());
        let repo = tokio::task::spawn_blocking(move || {
            assert_unreachable(&repo.count().unwrap_err());
            repo
        })
        .await
        .unwrap();
        assert_eq!(repo.reads.load(Ordering::SeqCst), 0);
    }

    #[aim_macros::action("read_file", crate = ::aim_client)]
    fn uses_the_default_client() -> std::io::Result<()> {
        Ok(())
    }

    #[test]
    fn without_a_default_client_the_body_does_not_run() {
        // This test binary never installs a default client.
        let err = uses_the_default_client().unwrap_err();
        assert!(err.to_string().contains("install_default"), "{err}");
    }
}

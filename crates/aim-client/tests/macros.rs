//! `#[aim::action]` through the facade crate, on sync and async functions and methods, against
//! the REAL server. This binary installs a process-wide default client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use aim::client::{AimClient, Error};

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[aim::action("read_database", resource = "customers")]
fn count_customers() -> Result<usize, Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(3)
}

#[aim::action("read_database", resource = format!("customer/{id}"), context = serde_json::json!({"id": id}))]
async fn fetch_customer(id: u32) -> Result<String, std::io::Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    let name = format!("customer-{id}");
    if id == 0 {
        return Err(std::io::Error::other("no customer 0"));
    }
    Ok(name)
}

#[aim::action("delete_data", resource = "customers")]
fn delete_everything() -> Result<(), Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

struct Service {
    aim: AimClient,
}

impl Service {
    #[aim::action("read_database", client = &self.aim)]
    async fn list(&self, n: usize) -> Result<Vec<usize>, Error> {
        Ok((0..n).collect())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn guarded_functions_run_only_when_approved() {
    let env = common::start();
    let client = env.agent("macro-agent").await;
    env.grant("macro-agent", "read_database").await;
    AimClient::install_default(client.clone());

    // Sync fn called from inside a current-thread runtime: no deadlock, runs once.
    assert_eq!(count_customers().unwrap(), 3);
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    // And from a plain thread outside any runtime.
    assert_eq!(
        std::thread::spawn(count_customers).join().unwrap().unwrap(),
        3
    );

    // Async fn; its own errors pass through unchanged and are reported as failures.
    assert_eq!(fetch_customer(7).await.unwrap(), "customer-7");
    let err = fetch_customer(0).await.unwrap_err();
    assert_eq!(err.to_string(), "no customer 0");
    assert_eq!(RUNS.load(Ordering::SeqCst), 4);

    // Denied: the body does not run; the error carries the server's reason.
    let err = delete_everything().unwrap_err();
    assert!(
        matches!(&err, Error::Denied { reason, .. } if reason.contains("delete_data")),
        "{err:?}"
    );
    assert_eq!(RUNS.load(Ordering::SeqCst), 4);

    // Method with an explicit client.
    let service = Service {
        aim: client.clone(),
    };
    assert_eq!(service.list(3).await.unwrap(), vec![0, 1, 2]);

    // Results were recorded for the approved calls.
    let v = env
        .admin
        .get(&format!(
            "/api/v1/verifications?agent_id={}",
            client.agent_id()
        ))
        .await
        .unwrap();
    let results: Vec<&str> = v["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["result"].as_str())
        .collect();
    assert_eq!(results.iter().filter(|r| **r == "success").count(), 4);
    assert_eq!(results.iter().filter(|r| **r == "failure").count(), 1);
}

//! Quickstart: register an agent from Rust, then see one verification approved, one denied and
//! one approved by a person.
//!
//! Against a running server (`aim server init` prints the admin key, `aim server` serves):
//!
//! ```text
//! export AIM_SERVER=http://127.0.0.1:8080
//! export AIM_API_KEY=aim_live_...            # the admin key from `aim server init`
//! export AIM_PASSPHRASE='a long passphrase'  # encrypts the agent's key in ~/.aim/agents/
//! cargo run -p aim-client --example quickstart
//! ```
//!
//! The third action waits for a person: run the `aim approvals approve ...` line it prints in
//! another terminal. Pass `--approve-as-admin` to have the example approve it itself.

use std::time::Duration;

use aim_client::{ActionRequest, AdminClient, AimClient, ApiKey, ClientConfig, Error};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let approve_itself = std::env::args().any(|a| a == "--approve-as-admin");
    let config = ClientConfig::from_env()?;
    let admin = AdminClient::new(&config)?;

    // 1. Register (or load) the agent. Its private key is generated here and never sent. The
    //    agent gets a registration key, not the admin key: that key registers agents and does
    //    nothing else, so the agent's process can never approve its own actions (and the server
    //    refuses approvals through the key that registered an agent anyway).
    let registration = admin
        .post(
            "/api/v1/api-keys",
            &json!({ "name": "quickstart agents", "role": "registration" }),
        )
        .await?;
    let mut agent_config = config.clone();
    agent_config.api_key = Some(ApiKey::new(
        registration["api_key"]
            .as_str()
            .ok_or("the server returned no registration key")?,
    )?);
    let agent = AimClient::secure_with("quickstart-agent", agent_config).await?;
    println!(
        "agent {} registered: id {}",
        agent.identity().name(),
        agent.agent_id()
    );

    // 2. Approved: an administrator grants read_database, a low-risk action.
    let _ = admin
        .grant_capability("quickstart-agent", "read_database")
        .await;
    let rows = agent
        .perform_action(
            "read_database",
            Some("customers"),
            json!({"limit": 10}),
            || async { Ok::<_, Error>(10) },
        )
        .await?;
    println!("approved: read_database on customers ran and returned {rows} rows");

    // 3. Denied: nobody granted delete_database.
    match agent
        .perform_action("delete_database", Some("customers"), json!({}), || async {
            Ok::<_, Error>(())
        })
        .await
    {
        Err(Error::Denied { reason, .. }) => println!("denied: {reason}"),
        other => println!("unexpected: {other:?}"),
    }

    // 4. Approved by a person: delete_file is high risk, so even with the capability a person
    //    decides. The client polls (2 s, x1.5, capped at 10 s) until then.
    let _ = admin
        .grant_capability("quickstart-agent", "delete_file")
        .await;
    if approve_itself {
        let admin = admin.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                if let Ok(list) = admin.pending_verifications().await
                    && let Some(id) = list
                        .as_array()
                        .and_then(|l| l.iter().find(|v| v["action_type"] == "delete_file"))
                        .and_then(|v| v["id"].as_str())
                {
                    let _ = admin
                        .decide_verification(id, "approve", "quickstart demo")
                        .await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    } else {
        println!(
            "waiting for a person: run `aim approvals list`, then \
             `aim approvals approve <id> --reason \"cleanup ok\"`"
        );
    }
    let request = ActionRequest::new("delete_file")
        .resource("/tmp/quickstart.log")
        .timeout(Duration::from_secs(300));
    let removed = agent
        .perform(request, || async { Ok::<_, Error>("removed") })
        .await?;
    println!("approved by a person: delete_file {removed}");
    Ok(())
}

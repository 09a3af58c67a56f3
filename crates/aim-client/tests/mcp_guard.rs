//! The rmcp tool guard against the REAL AIM server on loopback, driven by an in-process rmcp
//! client over `tokio::io::duplex`: approved calls run and are reported, denied calls return an
//! MCP error with the reason and the tool body never runs, pending calls wait for a person.

#![cfg(feature = "rmcp")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aim_client::mcp::{CODE_DENIED, CODE_PENDING, GuardedToolRouter, ToolGuard, ToolMapping};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde_json::json;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct PathArg {
    path: String,
}

/// A file server whose tools only count their runs.
struct Files {
    tools: GuardedToolRouter<Files>,
    runs: Arc<AtomicUsize>,
}

#[tool_router]
impl Files {
    #[tool(description = "Read a file")]
    async fn read_file(&self, Parameters(PathArg { path }): Parameters<PathArg>) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("contents of {path}")
    }

    #[tool(description = "Delete a file")]
    async fn delete_file(&self, Parameters(PathArg { path }): Parameters<PathArg>) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("deleted {path}")
    }

    #[tool(description = "Wipe a disk (mapped onto the delete_file capability)")]
    async fn wipe(
        &self,
        Parameters(PathArg { path }): Parameters<PathArg>,
    ) -> Result<String, ErrorData> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(format!("wiped {path}"))
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for Files {}

type Client = RunningService<RoleClient, ()>;

/// Serves `Files` guarded by `guard` and connects an in-process client to it.
async fn connect(guard: ToolGuard) -> (Client, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let server = Files {
        tools: guard.guard(Files::tool_router()),
        runs: runs.clone(),
    };
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let running = server.serve(server_io).await?;
        running.waiting().await?;
        anyhow_ok()
    });
    let client = ().serve(client_io).await.unwrap();
    (client, runs)
}

fn anyhow_ok() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

async fn call(client: &Client, tool: &str, path: &str) -> Result<CallToolResult, ServiceError> {
    let args = json!({ "path": path }).as_object().cloned().unwrap();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
}

fn text(result: &CallToolResult) -> String {
    result.content[0].as_text().unwrap().text.clone()
}

fn mcp_error(result: Result<CallToolResult, ServiceError>) -> ErrorData {
    match result {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected an MCP error, got {other:?}"),
    }
}

async fn verifications(env: &common::Env, agent: &str) -> Vec<serde_json::Value> {
    let id = env.admin.resolve_agent(agent).await.unwrap();
    let v = env
        .admin
        .get(&format!("/api/v1/verifications?agent_id={id}"))
        .await
        .unwrap();
    v["verifications"].as_array().unwrap().clone()
}

#[tokio::test]
async fn approved_tool_call_runs_and_its_outcome_is_reported() {
    let env = common::start();
    let agent = env.agent("mcp-files").await;
    env.grant("mcp-files", "read_file").await;
    let (client, runs) = connect(ToolGuard::new(agent)).await;

    let result = call(&client, "read_file", "/srv/report.txt").await.unwrap();
    assert_eq!(text(&result), "contents of /srv/report.txt");
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // AIM saw the tool as the capability, the path as the resource, and the outcome.
    let all = verifications(&env, "mcp-files").await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["action_type"], "read_file");
    assert_eq!(all[0]["status"], "approved");
    assert_eq!(all[0]["resource"], "/srv/report.txt");
    assert_eq!(all[0]["result"], "success");

    // The tools are listed unchanged.
    let tools = client.list_tools(None).await.unwrap();
    let names: Vec<_> = tools.tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["delete_file", "read_file", "wipe"]);
}

#[tokio::test]
async fn denied_tool_call_is_an_mcp_error_with_the_reason_and_the_body_never_runs() {
    let env = common::start();
    let agent = env.agent("mcp-files").await;
    let (client, runs) = connect(ToolGuard::new(agent)).await;

    // No capability delete_file: the server denies.
    let err = mcp_error(call(&client, "delete_file", "/etc/passwd").await);
    assert_eq!(err.code, CODE_DENIED);
    assert!(
        err.message.contains("no capability 'delete_file'"),
        "{}",
        err.message
    );
    assert_eq!(err.data.as_ref().unwrap()["aim"], "denied");
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    // A mapped tool is verified under its mapped capability, and denied the same way.
    let agent = reload(&env, "mcp-files");
    let guard = ToolGuard::new(agent).map_tool(
        "wipe",
        ToolMapping::capability("delete_disk").resource_arg("path"),
    );
    let (client, runs) = connect(guard).await;
    let err = mcp_error(call(&client, "wipe", "/dev/sda").await);
    assert_eq!(err.code, CODE_DENIED);
    assert!(
        err.message.contains("no capability 'delete_disk'"),
        "{}",
        err.message
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let all = verifications(&env, "mcp-files").await;
    assert!(
        all.iter()
            .any(|v| v["action_type"] == "delete_disk" && v["resource"] == "/dev/sda"),
        "{all:?}"
    );

    // The connection still serves after a refusal; an unknown tool is the router's own error
    // and asks AIM nothing.
    let before = verifications(&env, "mcp-files").await.len();
    let err = mcp_error(call(&client, "no_such_tool", "/x").await);
    assert!(err.message.contains("tool not found"), "{}", err.message);
    assert_eq!(verifications(&env, "mcp-files").await.len(), before);
}

#[tokio::test]
async fn pending_tool_call_waits_and_runs_after_a_person_approves() {
    let env = common::start();
    let agent = env.agent("mcp-files").await;
    env.grant("mcp-files", "delete_file").await; // high risk: a person decides
    let (client, runs) = connect(ToolGuard::new(agent).timeout(Duration::from_secs(30))).await;
    let client = Arc::new(client);

    let c = client.clone();
    let task = tokio::spawn(async move { call(&c, "delete_file", "/tmp/old").await });
    let id = env.wait_pending("delete_file").await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "ran before the approval");
    env.admin
        .decide_verification(&id, "approve", "ticket 42")
        .await
        .unwrap();
    let result = task.await.unwrap().unwrap();
    assert_eq!(text(&result), "deleted /tmp/old");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let v = env.admin.verification(&id).await.unwrap();
    assert_eq!(v["result"], "success");

    // Denied by a person: the reason reaches the MCP client, the body does not run.
    let c = client.clone();
    let task = tokio::spawn(async move { call(&c, "delete_file", "/tmp/keep").await });
    let id = env.wait_pending("delete_file").await;
    env.admin
        .decide_verification(&id, "deny", "not during the freeze")
        .await
        .unwrap();
    let err = mcp_error(task.await.unwrap());
    assert_eq!(err.code, CODE_DENIED);
    assert!(
        err.message.contains("not during the freeze"),
        "{}",
        err.message
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn pending_past_the_guards_deadline_is_refused_and_never_runs() {
    let env = common::start();
    let agent = env.agent("mcp-files").await;
    env.grant("mcp-files", "delete_file").await;
    let guard = ToolGuard::new(agent).timeout(Duration::from_millis(400));
    let (client, runs) = connect(guard).await;
    let err = mcp_error(call(&client, "delete_file", "/tmp/old").await);
    assert_eq!(err.code, CODE_PENDING);
    assert!(
        err.message.contains("needs a person's approval"),
        "{}",
        err.message
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// Loads the stored identity of an agent registered earlier in the test.
fn reload(env: &common::Env, name: &str) -> aim_client::AimClient {
    aim_client::AimClient::load(name, env.config())
        .unwrap()
        .unwrap()
}

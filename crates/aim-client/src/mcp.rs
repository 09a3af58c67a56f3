//! AIM-guarded tools for Rust MCP servers built with `rmcp` (feature `rmcp`).
//!
//! [`ToolGuard::guard`] wraps a server's [`ToolRouter`] into a [`GuardedToolRouter`]: every
//! `tools/call` is first verified by the AIM server (capability = the tool's name or a configured
//! mapping; resource and context taken from the arguments), a denial becomes an MCP error that
//! carries the reason and the tool never runs, a call waiting for a person polls within the
//! guard's deadline (and stops when the MCP client cancels), and the outcome is reported to AIM
//! afterwards. Fail closed: any verification error refuses the call.
//!
//! ```ignore
//! #[tool_handler(router = self.tools)]
//! impl ServerHandler for Files {}
//! let files = Files { tools: ToolGuard::new(aim_client).guard(Files::tool_router()) };
//! ```

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::handler::server::tool::{ToolCallContext, ToolRouter};
use rmcp::model::{CallToolResponse, ErrorCode, Tool};
use serde_json::{Value, json};

use crate::client::AimClient;
use crate::error::Error;
use crate::types::ActionRequest;

/// JSON-RPC error code of a tool call the AIM server (or a person) denied.
pub const CODE_DENIED: ErrorCode = ErrorCode(-32010);
/// JSON-RPC error code of a tool call still waiting for a person's approval at the deadline, or
/// whose pending verification expired: nobody decided, the caller may ask again later.
pub const CODE_PENDING: ErrorCode = ErrorCode(-32011);
/// JSON-RPC error code of a tool call refused because AIM could not verify it (server
/// unreachable, authentication failure, invalid answer): fail closed.
pub const CODE_UNVERIFIED: ErrorCode = ErrorCode(-32012);

/// How one tool maps onto an AIM action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolMapping {
    /// The capability (AIM `action_type`); the tool's name when `None`.
    pub capability: Option<String>,
    /// The argument whose string (or number) value is the AIM resource.
    pub resource_arg: Option<String>,
    /// The risk level sent with the verification.
    pub risk_level: Option<String>,
}

impl ToolMapping {
    /// A mapping onto `capability`.
    pub fn capability(capability: impl Into<String>) -> Self {
        Self {
            capability: Some(capability.into()),
            ..Self::default()
        }
    }

    /// Takes the resource from argument `name`.
    pub fn resource_arg(mut self, name: impl Into<String>) -> Self {
        self.resource_arg = Some(name.into());
        self
    }

    /// Sends `risk` as the verification's risk level.
    pub fn risk_level(mut self, risk: impl Into<String>) -> Self {
        self.risk_level = Some(risk.into());
        self
    }
}

/// The policy that turns MCP tool calls into AIM verifications.
#[derive(Clone)]
pub struct ToolGuard {
    client: AimClient,
    mappings: HashMap<String, ToolMapping>,
    default_resource_args: Vec<String>,
    timeout: Option<Duration>,
    send_arguments: bool,
}

impl fmt::Debug for ToolGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolGuard")
            .field("agent_id", &self.client.agent_id())
            .field("mappings", &self.mappings)
            .field("default_resource_args", &self.default_resource_args)
            .field("timeout", &self.timeout)
            .field("send_arguments", &self.send_arguments)
            .finish()
    }
}

impl ToolGuard {
    /// A guard that verifies every tool call as `client`: capability = tool name, resource = the
    /// first of the arguments `resource`, `path`, `uri`, `url`, `id` that is a string or number,
    /// context = `{"mcp_tool": name, "arguments": {...}}`, deadline = the client's
    /// verification timeout.
    pub fn new(client: AimClient) -> Self {
        Self {
            client,
            mappings: HashMap::new(),
            default_resource_args: ["resource", "path", "uri", "url", "id"]
                .map(String::from)
                .to_vec(),
            timeout: None,
            send_arguments: true,
        }
    }

    /// Maps tool `tool` onto `mapping` (capability, resource argument, risk level).
    pub fn map_tool(mut self, tool: impl Into<String>, mapping: ToolMapping) -> Self {
        self.mappings.insert(tool.into(), mapping);
        self
    }

    /// How long a call may wait for a decision, polling included (the client's default
    /// otherwise). A call still pending then is refused with [`CODE_PENDING`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Leaves the argument values out of the verification context (only their names are sent),
    /// for tools whose arguments must not reach the AIM server's records.
    pub fn without_argument_values(mut self) -> Self {
        self.send_arguments = false;
        self
    }

    /// Wraps `router`: the result serves `#[tool_handler(router = self.<field>)]`.
    pub fn guard<S>(self, router: ToolRouter<S>) -> GuardedToolRouter<S> {
        GuardedToolRouter {
            router,
            guard: self,
        }
    }

    /// The AIM action for a call of `tool` with `arguments`.
    pub fn request_for(
        &self,
        tool: &str,
        arguments: Option<&serde_json::Map<String, Value>>,
    ) -> ActionRequest {
        let mapping = self.mappings.get(tool);
        let capability = mapping
            .and_then(|m| m.capability.clone())
            .unwrap_or_else(|| tool.to_owned());
        let empty = serde_json::Map::new();
        let args = arguments.unwrap_or(&empty);
        let resource = match mapping.and_then(|m| m.resource_arg.as_ref()) {
            Some(name) => scalar(args.get(name)),
            None => self
                .default_resource_args
                .iter()
                .find_map(|name| scalar(args.get(name))),
        };
        let arguments = if self.send_arguments {
            Value::Object(args.clone())
        } else {
            Value::Array(args.keys().cloned().map(Value::String).collect())
        };
        let mut request = ActionRequest::new(capability)
            .context(json!({ "mcp_tool": tool, "arguments": arguments }));
        request.resource = resource;
        request.risk_level = mapping.and_then(|m| m.risk_level.clone());
        request.timeout = self.timeout;
        request
    }
}

/// A string or number argument as text.
fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A [`ToolRouter`] whose calls pass through a [`ToolGuard`] first. Offers the three methods
/// `#[tool_handler(router = ...)]` uses: `call`, `list_all`, `get`.
pub struct GuardedToolRouter<S> {
    router: ToolRouter<S>,
    guard: ToolGuard,
}

impl<S> fmt::Debug for GuardedToolRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedToolRouter")
            .field("router", &self.router)
            .field("guard", &self.guard)
            .finish()
    }
}

impl<S: Send + Sync + 'static> GuardedToolRouter<S> {
    /// The tools, as the inner router lists them.
    pub fn list_all(&self) -> Vec<Tool> {
        self.router.list_all()
    }

    /// One tool's definition.
    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.router.get(name)
    }

    /// The guard in front of the tools.
    pub fn guard(&self) -> &ToolGuard {
        &self.guard
    }

    /// Verifies the call with AIM, runs the tool only when approved, reports the outcome.
    /// Unknown tools go straight to the router's own error (nothing to verify).
    pub async fn call(
        &self,
        context: ToolCallContext<'_, S>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.router.get(context.name()).is_none() {
            return self.router.call(context).await;
        }
        let request = self
            .guard
            .request_for(context.name(), context.arguments.as_ref());
        let cancelled = context.request_context.ct.clone();
        let tool = context.name().to_owned();
        let guarded = self.guard.client.perform(request, || async move {
            match self.router.call(context).await {
                Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
                    Err(Outcome::ToolFailed(CallToolResponse::Complete(result)))
                }
                Ok(response) => Ok(response),
                Err(e) => Err(Outcome::Mcp(e)),
            }
        });
        let outcome = tokio::select! {
            outcome = guarded => outcome,
            () = cancelled.cancelled() => Err(Outcome::Mcp(ErrorData::new(
                CODE_PENDING,
                format!("tool '{tool}': the MCP client cancelled the call"),
                None,
            ))),
        };
        match outcome {
            Ok(response) | Err(Outcome::ToolFailed(response)) => Ok(response),
            Err(Outcome::Mcp(e)) => Err(e),
            Err(Outcome::Aim(e)) => Err(refusal(&tool, &e)),
        }
    }
}

/// Why a guarded call did not complete normally.
enum Outcome {
    /// AIM refused or could not verify the call; the tool did not run.
    Aim(Error),
    /// The router answered with a protocol error.
    Mcp(ErrorData),
    /// The tool ran and reported a failure (`isError: true`): a failure for AIM, but passed on
    /// to the MCP client unchanged.
    ToolFailed(CallToolResponse),
}

impl From<Error> for Outcome {
    fn from(e: Error) -> Self {
        Self::Aim(e)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Aim(e) => write!(f, "{e}"),
            Self::Mcp(e) => write!(f, "MCP error {}: {}", e.code.0, e.message),
            Self::ToolFailed(CallToolResponse::Complete(r)) => {
                let text: Vec<&str> = r
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
                    .collect();
                write!(f, "tool reported an error: {}", text.join(" "))
            }
            Self::ToolFailed(_) => write!(f, "tool reported an error"),
        }
    }
}

/// The MCP error for a call AIM did not let through.
pub fn refusal(tool: &str, error: &Error) -> ErrorData {
    match error {
        Error::Denied {
            reason,
            verification_id,
        } => ErrorData::new(
            CODE_DENIED,
            format!("AIM denied tool '{tool}': {reason}"),
            Some(json!({ "aim": "denied", "reason": reason, "verification_id": verification_id })),
        ),
        Error::Timeout {
            verification_id,
            waited,
        } => ErrorData::new(
            CODE_PENDING,
            format!(
                "tool '{tool}' needs a person's approval in AIM (verification {verification_id} \
                 still pending after {}s); approve it with `aim approvals approve \
                 {verification_id} --reason ...`, then call again",
                waited.as_secs()
            ),
            Some(json!({ "aim": "pending", "verification_id": verification_id })),
        ),
        Error::Expired { verification_id } => ErrorData::new(
            CODE_PENDING,
            format!(
                "tool '{tool}': the AIM approval request {verification_id} expired before a \
                 person decided; call again to ask anew"
            ),
            Some(json!({ "aim": "expired", "verification_id": verification_id })),
        ),
        other => ErrorData::new(
            CODE_UNVERIFIED,
            format!("tool '{tool}' refused: AIM could not verify it: {other}"),
            Some(json!({ "aim": "unverified" })),
        ),
    }
}

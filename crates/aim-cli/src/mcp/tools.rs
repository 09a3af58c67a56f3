//! The vault's MCP tools: store, recall, search, list, tombstone. Each runs on the vault thread
//! through the one unlocked session; gates apply exactly as for `aim vault`.

use rmcp::handler::server::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vault_store::{ListFilter, MemoryId, MemoryInput, RecallRequest, SearchQuery, VaultError};

use super::errors::{CODE_REFUSED_STORE, vault_error};
use super::hygiene::{self, Finding, HygieneRule, Verdict};
use super::worker::VaultHandle;

/// Largest memory content accepted through MCP (bytes).
pub(crate) const MAX_CONTENT: usize = 1 << 20;
/// Largest short text argument (justification, reason, words, tag, intent), in bytes.
const MAX_TEXT: usize = 4096;
/// Most tags per memory.
const MAX_TAGS: usize = 64;
/// Most results per search or list.
const MAX_RESULTS: usize = 1000;

/// Who serves: recorded in every stored memory's provenance.
#[derive(Debug, Clone)]
pub(crate) struct ServerIdentity {
    /// The unlocked profile.
    pub(crate) profile: String,
    /// The AIM agent approvals are asked as, if any.
    pub(crate) aim_agent: Option<String>,
}

/// The MCP server.
pub(crate) struct VaultServer {
    vault: VaultHandle,
    identity: ServerIdentity,
    hygiene: HygieneRule,
    tool_router: ToolRouter<Self>,
}

impl VaultServer {
    /// A server on the unlocked vault behind `vault`.
    pub(crate) fn new(vault: VaultHandle, identity: ServerIdentity, hygiene: HygieneRule) -> Self {
        Self {
            vault,
            identity,
            hygiene,
            tool_router: Self::tool_router(),
        }
    }
}

/// `store` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreArgs {
    /// The memory's text.
    content: String,
    /// Classification 0-5 (0 ephemeral, 1 working, 2 private, 3 sealed, 4 vaulted, 5 black);
    /// default 1. Recalls from 2 need a justification, from 3 a person's approval.
    #[serde(default = "default_class")]
    classification: u8,
    /// Tags (stored sealed; searchable).
    #[serde(default)]
    tags: Vec<String>,
    /// An intent id this memory belongs to.
    #[serde(default)]
    intent: Option<String>,
}

fn default_class() -> u8 {
    1
}

/// `store` answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Stored {
    /// The new memory's id.
    id: String,
    /// The classification it was stored at.
    classification: u8,
    /// The classification asked for.
    requested_classification: u8,
    /// What memory hygiene found (kinds only); non-empty when the level was raised.
    hygiene: Vec<Finding>,
}

/// `recall` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecallArgs {
    /// The memory id.
    id: String,
    /// Why you need it (required from classification 2; recorded in the audit log).
    #[serde(default)]
    justification: String,
}

/// `recall` answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct RecalledOut {
    id: String,
    classification: u8,
    created_at_ms: i64,
    tags: Vec<String>,
    intents: Vec<String>,
    /// The memory's text.
    content: String,
    /// Where the memory came from (agent, MCP client, tool call), as sealed with it.
    provenance: Value,
}

/// `search` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchArgs {
    /// Words to find.
    words: String,
    /// Match any word instead of all.
    #[serde(default)]
    any: bool,
    /// Only memories with this tag.
    #[serde(default)]
    tag: Option<String>,
    /// Most results (default 20).
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

/// One search or list result: metadata only, never content.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Entry {
    id: String,
    classification: u8,
    created_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tombstoned: bool,
}

/// `search` / `list` answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Entries {
    memories: Vec<Entry>,
}

/// `list` arguments.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArgs {
    /// Only memories with this tag.
    #[serde(default)]
    tag: Option<String>,
    /// Only memories linked to this intent.
    #[serde(default)]
    intent: Option<String>,
    /// Include tombstoned memories.
    #[serde(default)]
    include_tombstoned: bool,
    /// Most results (default 20).
    #[serde(default = "default_limit")]
    limit: usize,
}

/// `tombstone` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TombstoneArgs {
    /// The memory id.
    id: String,
    /// Why (recorded only as a keyed MAC).
    #[serde(default)]
    reason: String,
}

/// `tombstone` answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Tombstoned {
    id: String,
    /// `false` when it was already tombstoned.
    tombstoned: bool,
}

fn too_long(what: &str, len: usize, max: usize) -> ErrorData {
    ErrorData::invalid_params(format!("{what} is {len} bytes; the limit is {max}"), None)
}

fn check_text(what: &str, s: &str) -> Result<(), ErrorData> {
    if s.len() > MAX_TEXT {
        return Err(too_long(what, s.len(), MAX_TEXT));
    }
    Ok(())
}

fn parse_id(s: &str) -> Result<MemoryId, ErrorData> {
    check_text("id", s)?;
    s.parse()
        .map_err(|e: VaultError| ErrorData::invalid_params(format!("id: {e}"), None))
}

fn check_limit(limit: usize) -> Result<usize, ErrorData> {
    if limit == 0 || limit > MAX_RESULTS {
        return Err(ErrorData::invalid_params(
            format!("limit must be 1-{MAX_RESULTS}"),
            None,
        ));
    }
    Ok(limit)
}

impl StoreArgs {
    fn validate(&self) -> Result<(), ErrorData> {
        if self.content.len() > MAX_CONTENT {
            return Err(too_long("content", self.content.len(), MAX_CONTENT));
        }
        if self.classification > 5 {
            return Err(ErrorData::invalid_params(
                "classification must be 0-5",
                None,
            ));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(ErrorData::invalid_params(
                format!("at most {MAX_TAGS} tags"),
                None,
            ));
        }
        for t in &self.tags {
            check_text("tag", t)?;
        }
        if let Some(i) = &self.intent {
            check_text("intent", i)?;
        }
        Ok(())
    }
}

impl VaultServer {
    /// The sealed provenance of a store made through `context`.
    fn provenance(&self, context: &RequestContext<RoleServer>, hygiene: &[Finding]) -> Value {
        let client = context.peer.peer_info().map(
            |info| json!({ "name": info.client_info.name, "version": info.client_info.version }),
        );
        json!({
            "provenance": {
                "via": "aim mcp vault",
                "profile": self.identity.profile,
                "aim_agent": self.identity.aim_agent,
                "mcp_client": client,
                "tool": "store",
                "request_id": serde_json::to_value(&context.id).unwrap_or(Value::Null),
                "stored_at": chrono::Utc::now().to_rfc3339(),
            },
            "hygiene": hygiene,
        })
    }
}

#[tool_router]
impl VaultServer {
    /// Stores a memory after the memory-hygiene scan.
    #[tool(
        description = "Store a memory in the encrypted vault. Returns its id. Content that looks like a secret (API keys, private keys, tokens) or carries prompt-injection markers is refused or stored at a higher classification, as configured; the answer says which."
    )]
    async fn store(
        &self,
        Parameters(args): Parameters<StoreArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<Stored>, ErrorData> {
        args.validate()?;
        let (classification, findings) =
            match hygiene::check(&args.content, args.classification, &self.hygiene) {
                Verdict::Clean => (args.classification, Vec::new()),
                Verdict::Elevated {
                    classification,
                    findings,
                } => (classification, findings),
                Verdict::Refused { findings } => return Err(refused(&findings)),
            };
        let metadata = self.provenance(&context, &findings).to_string();
        let mut input = MemoryInput::text(args.content)
            .classification(classification)
            .metadata(metadata.into_bytes());
        for t in args.tags {
            input = input.tag(t);
        }
        if let Some(i) = args.intent {
            input = input.intent(i);
        }
        let id = self
            .vault
            .run(move |s| s.store(input))
            .await?
            .map_err(vault_error)?;
        Ok(Json(Stored {
            id: id.to_string(),
            classification,
            requested_classification: args.classification,
            hygiene: findings,
        }))
    }

    /// Recalls a memory through its classification's gates.
    #[tool(
        description = "Recall a memory by id through its classification's gates. From classification 2 a justification is required; from 3 a person must approve (through the AIM server); level 5 is never released over MCP. A refusal is an error that says what is needed."
    )]
    async fn recall(
        &self,
        Parameters(args): Parameters<RecallArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<RecalledOut>, ErrorData> {
        let id = parse_id(&args.id)?;
        check_text("justification", &args.justification)?;
        let requester = client_name(&context);
        let request = RecallRequest::new(args.justification).requester(requester);
        let m = self
            .vault
            .run(move |s| s.recall(id, request))
            .await?
            .map_err(vault_error)?;
        let content = m
            .text()
            .map_err(|_| {
                ErrorData::invalid_params(
                    "the memory's content is binary; recall it with `aim vault recall`",
                    None,
                )
            })?
            .to_owned();
        let provenance = serde_json::from_slice::<Value>(m.metadata.expose())
            .ok()
            .and_then(|v| v.get("provenance").cloned())
            .unwrap_or(Value::Null);
        Ok(Json(RecalledOut {
            id: m.memory_id.to_string(),
            classification: m.classification.level(),
            created_at_ms: m.created_at_ms,
            tags: m.tags,
            intents: m.intents,
            content,
            provenance,
        }))
    }

    /// Searches by words; ids and metadata only.
    #[tool(
        description = "Search memories by words. Returns ids, classifications, times and scores only, never content: recall an id to read it."
    )]
    async fn search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<Json<Entries>, ErrorData> {
        check_text("words", &args.words)?;
        let mut q = SearchQuery::new(args.words).limit(check_limit(args.limit)?);
        q.any_word = args.any;
        if let Some(t) = args.tag {
            check_text("tag", &t)?;
            q.tags = vec![t];
        }
        let hits = self
            .vault
            .run(move |s| s.search(&q))
            .await?
            .map_err(vault_error)?;
        Ok(Json(Entries {
            memories: hits
                .into_iter()
                .map(|h| Entry {
                    id: h.memory_id.to_string(),
                    classification: h.classification.level(),
                    created_at_ms: h.created_at_ms,
                    score: Some(h.score),
                    created_by: None,
                    tombstoned: false,
                })
                .collect(),
        }))
    }

    /// Lists memories, newest first, without content.
    #[tool(
        description = "List memories (newest first): ids, classifications and times, never content."
    )]
    async fn list(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<Json<Entries>, ErrorData> {
        for t in args.tag.iter().chain(args.intent.iter()) {
            check_text("tag/intent", t)?;
        }
        let f = ListFilter {
            tag: args.tag,
            intent: args.intent,
            include_tombstoned: args.include_tombstoned,
            limit: check_limit(args.limit)?,
            ..ListFilter::default()
        };
        let all = self
            .vault
            .run(move |s| s.list(&f))
            .await?
            .map_err(vault_error)?;
        Ok(Json(Entries {
            memories: all
                .into_iter()
                .map(|m| Entry {
                    id: m.memory_id.to_string(),
                    classification: m.classification.level(),
                    created_at_ms: m.created_at_ms,
                    score: None,
                    created_by: Some(m.created_by.name().to_owned()),
                    tombstoned: m.tombstoned_at_ms.is_some(),
                })
                .collect(),
        }))
    }

    /// Erases a memory's content for good.
    #[tool(description = "Erase a memory's content for good (its record and audit history stay).")]
    async fn tombstone(
        &self,
        Parameters(args): Parameters<TombstoneArgs>,
    ) -> Result<Json<Tombstoned>, ErrorData> {
        let id = parse_id(&args.id)?;
        check_text("reason", &args.reason)?;
        let reason = args.reason;
        let done = self
            .vault
            .run(move |s| s.tombstone(id, &reason))
            .await?
            .map_err(vault_error)?;
        Ok(Json(Tombstoned {
            id: id.to_string(),
            tombstoned: done,
        }))
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "aim-vault",
    instructions = "An encrypted, classified, audited memory vault. Store what is worth remembering with `store`; find it with `search` or `list` (metadata only) and read it with `recall`, giving a justification. Higher classifications need a person's approval."
)]
impl ServerHandler for VaultServer {}

/// The MCP client's name (from `initialize`), as the recall's requester.
fn client_name(context: &RequestContext<RoleServer>) -> String {
    context.peer.peer_info().map_or_else(
        || "mcp".to_owned(),
        |info| format!("mcp:{}", info.client_info.name),
    )
}

/// The MCP error for a store the hygiene rules refused.
fn refused(findings: &[Finding]) -> ErrorData {
    let kinds: Vec<String> = findings
        .iter()
        .map(|f| format!("{} ({})", f.kind, f.category))
        .collect();
    ErrorData::new(
        CODE_REFUSED_STORE,
        format!(
            "store refused by memory hygiene: the content contains {}; remove it (store a \
             reference to where the secret is kept instead), or ask the operator to run \
             `aim mcp vault --on-secret elevate`",
            kinds.join(", ")
        ),
        Some(json!({ "vault": "refused", "hygiene": findings })),
    )
}

//! The data of detection: capability vocabulary, crate → capability table, action → capability
//! tables. The README's tables are generated from these (a test keeps them in sync).

/// The capability vocabulary: the Python SDK's thirteen names plus `send_messages` and
/// `process_payments`. Unmapped action names are reported as-is, outside this list.
pub const CAPABILITIES: &[(&str, &str)] = &[
    ("read_files", "reads local files or directories"),
    ("write_files", "creates, changes or deletes local files"),
    ("send_email", "sends email"),
    ("read_email", "reads a mailbox"),
    ("access_database", "reads or writes a database"),
    (
        "make_api_calls",
        "makes outbound HTTP, gRPC or WebSocket calls",
    ),
    (
        "execute_code",
        "runs processes, shells or embedded interpreters",
    ),
    (
        "access_cloud_services",
        "uses a cloud provider's SDK (AWS, GCP, Azure, object storage)",
    ),
    ("web_scraping", "fetches and parses web pages"),
    ("web_automation", "drives a browser"),
    (
        "data_processing",
        "dataframes, columnar and numeric processing",
    ),
    ("ai_model_access", "calls or runs AI models"),
    (
        "ai_agent_framework",
        "uses an agent framework or the MCP SDK",
    ),
    (
        "send_messages",
        "chat, SMS or message-queue publishing (extension)",
    ),
    ("process_payments", "payment provider APIs (extension)"),
];

/// One row of the crate table: a crate name, or a prefix ending in `*`, and what it grants.
#[derive(Debug, Clone, Copy)]
pub struct CrateRule {
    /// Exact crate name, or a prefix followed by `*` (`aws-sdk-*`).
    pub pattern: &'static str,
    /// Capabilities the crate implies.
    pub capabilities: &'static [&'static str],
    /// What the crate is.
    pub what: &'static str,
}

const fn rule(
    pattern: &'static str,
    capabilities: &'static [&'static str],
    what: &'static str,
) -> CrateRule {
    CrateRule {
        pattern,
        capabilities,
        what,
    }
}

const DB: &[&str] = &["access_database"];
const HTTP: &[&str] = &["make_api_calls"];
const CLOUD: &[&str] = &["access_cloud_services"];
const SEND_MAIL: &[&str] = &["send_email"];
const READ_MAIL: &[&str] = &["read_email"];
const EXEC: &[&str] = &["execute_code"];
const READ: &[&str] = &["read_files"];
const WRITE: &[&str] = &["write_files"];
const RW: &[&str] = &["read_files", "write_files"];
const SCRAPE: &[&str] = &["web_scraping"];
const BROWSER: &[&str] = &["web_automation"];
const DATA: &[&str] = &["data_processing"];
const AI: &[&str] = &["ai_model_access"];
const AGENT: &[&str] = &["ai_agent_framework"];
const MSG: &[&str] = &["send_messages"];
const PAY: &[&str] = &["process_payments"];

/// Crate → capability table, applied to every crate reachable through normal (not dev or
/// build) dependencies. Deliberately absent: `serde_json`, `tokio`, `hyper`, `std`-level
/// crates, which nearly every program uses and which say nothing about intent.
pub const CRATE_RULES: &[CrateRule] = &[
    // Databases.
    rule("rusqlite", DB, "SQLite"),
    rule("sqlx", DB, "SQL toolkit"),
    rule("diesel", DB, "ORM"),
    rule("sea-orm", DB, "ORM"),
    rule("postgres", DB, "PostgreSQL client"),
    rule("tokio-postgres", DB, "PostgreSQL client"),
    rule("mysql", DB, "MySQL client"),
    rule("mysql_async", DB, "MySQL client"),
    rule("tiberius", DB, "SQL Server client"),
    rule("mongodb", DB, "MongoDB driver"),
    rule("redis", DB, "Redis client"),
    rule("fred", DB, "Redis client"),
    rule("sled", DB, "embedded database"),
    rule("rocksdb", DB, "embedded database"),
    rule("redb", DB, "embedded database"),
    rule("heed", DB, "LMDB bindings"),
    rule("duckdb", DB, "DuckDB"),
    rule("libsql", DB, "libSQL / Turso"),
    rule("surrealdb", DB, "SurrealDB"),
    rule("scylla", DB, "ScyllaDB / Cassandra"),
    rule("neo4rs", DB, "Neo4j"),
    rule("elasticsearch", DB, "Elasticsearch"),
    rule("qdrant-client", DB, "vector database"),
    // HTTP and RPC clients.
    rule("reqwest", HTTP, "HTTP client"),
    rule("ureq", HTTP, "HTTP client"),
    rule("isahc", HTTP, "HTTP client"),
    rule("surf", HTTP, "HTTP client"),
    rule("attohttpc", HTTP, "HTTP client"),
    rule("curl", HTTP, "libcurl bindings"),
    rule("awc", HTTP, "actix web client"),
    rule("tonic", HTTP, "gRPC"),
    rule("tungstenite", HTTP, "WebSocket"),
    rule("tokio-tungstenite", HTTP, "WebSocket"),
    rule("graphql_client", HTTP, "GraphQL client"),
    // Cloud SDKs.
    rule("aws-config", CLOUD, "AWS SDK"),
    rule("aws-sdk-*", CLOUD, "AWS SDK service crates"),
    rule("rusoto_*", CLOUD, "AWS (rusoto)"),
    rule("google-cloud-*", CLOUD, "Google Cloud crates"),
    rule("gcp_auth", CLOUD, "Google Cloud auth"),
    rule("azure_*", CLOUD, "Azure SDK crates"),
    rule("object_store", CLOUD, "object storage"),
    rule("opendal", CLOUD, "storage access layer"),
    // Email.
    rule("lettre", SEND_MAIL, "SMTP"),
    rule("mail-send", SEND_MAIL, "SMTP"),
    rule("sendgrid", SEND_MAIL, "SendGrid"),
    rule("imap", READ_MAIL, "IMAP"),
    rule("async-imap", READ_MAIL, "IMAP"),
    // Process execution and embedded interpreters.
    rule("duct", EXEC, "process pipelines"),
    rule("subprocess", EXEC, "processes"),
    rule("xshell", EXEC, "shell scripting"),
    rule("cmd_lib", EXEC, "shell scripting"),
    rule("portable-pty", EXEC, "pseudo-terminals"),
    rule("wasmtime", EXEC, "WebAssembly runtime"),
    rule("wasmer", EXEC, "WebAssembly runtime"),
    rule("pyo3", EXEC, "embedded Python"),
    rule("mlua", EXEC, "embedded Lua"),
    rule("rhai", EXEC, "embedded scripting"),
    rule("deno_core", EXEC, "embedded JavaScript"),
    rule("boa_engine", EXEC, "embedded JavaScript"),
    rule("rquickjs", EXEC, "embedded JavaScript"),
    // Filesystem.
    rule("walkdir", READ, "directory traversal"),
    rule("ignore", READ, "directory traversal"),
    rule("glob", READ, "path globbing"),
    rule("notify", READ, "file watching"),
    rule("memmap2", READ, "memory-mapped files"),
    rule("csv", READ, "CSV files"),
    rule("calamine", READ, "spreadsheets"),
    rule("tempfile", WRITE, "temporary files"),
    rule("fs_extra", WRITE, "file copy and move"),
    rule("fs-err", RW, "filesystem wrappers"),
    rule("zip", RW, "ZIP archives"),
    rule("tar", RW, "tar archives"),
    // Web scraping and browser automation.
    rule("scraper", SCRAPE, "HTML scraping"),
    rule("select", SCRAPE, "HTML scraping"),
    rule("spider", SCRAPE, "web crawler"),
    rule("html5ever", SCRAPE, "HTML parsing"),
    rule("fantoccini", BROWSER, "WebDriver"),
    rule("thirtyfour", BROWSER, "WebDriver"),
    rule("headless_chrome", BROWSER, "Chrome DevTools"),
    rule("chromiumoxide", BROWSER, "Chrome DevTools"),
    // Data processing.
    rule("polars", DATA, "dataframes"),
    rule("arrow", DATA, "Apache Arrow"),
    rule("datafusion", DATA, "query engine"),
    rule("parquet", DATA, "Parquet files"),
    rule("ndarray", DATA, "n-dimensional arrays"),
    // AI models.
    rule("async-openai", AI, "OpenAI client"),
    rule("openai-api-rs", AI, "OpenAI client"),
    rule("ollama-rs", AI, "Ollama client"),
    rule("genai", AI, "multi-provider LLM client"),
    rule("clust", AI, "Anthropic client"),
    rule("candle-core", AI, "local inference"),
    rule("ort", AI, "ONNX Runtime"),
    rule("tch", AI, "PyTorch bindings"),
    rule("llama-cpp-2", AI, "llama.cpp bindings"),
    rule("mistralrs", AI, "local inference"),
    // Agent frameworks.
    rule("rig-core", AGENT, "agent framework"),
    rule("langchain-rust", AGENT, "agent framework"),
    rule("llm-chain", AGENT, "agent framework"),
    rule("rmcp", AGENT, "MCP SDK"),
    // Messaging.
    rule("teloxide", MSG, "Telegram bots"),
    rule("serenity", MSG, "Discord bots"),
    rule("twilight-http", MSG, "Discord API"),
    rule("slack-morphism", MSG, "Slack API"),
    rule("matrix-sdk", MSG, "Matrix"),
    rule("rdkafka", MSG, "Kafka"),
    rule("lapin", MSG, "AMQP / RabbitMQ"),
    rule("async-nats", MSG, "NATS"),
    rule("rumqttc", MSG, "MQTT"),
    rule("paho-mqtt", MSG, "MQTT"),
    rule("zmq", MSG, "ZeroMQ"),
    // Payments.
    rule("async-stripe", PAY, "Stripe"),
    rule("stripe-rust", PAY, "Stripe"),
    rule("paypal-rs", PAY, "PayPal"),
];

/// The capabilities a crate implies (empty when the crate is not in [`CRATE_RULES`]).
pub fn crate_capabilities(name: &str) -> &'static [&'static str] {
    CRATE_RULES
        .iter()
        .find(|r| match r.pattern.strip_suffix('*') {
            Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
            None => r.pattern == name,
        })
        .map_or(&[], |r| r.capabilities)
}

/// Exact action → capability table: the Python SDK's fourteen rows (spec §7) first, then
/// common Rust-side names.
pub const ACTION_EXACT: &[(&str, &str)] = &[
    ("read_database", "access_database"),
    ("write_database", "access_database"),
    ("query_database", "access_database"),
    ("send_email", "send_email"),
    ("read_email", "read_email"),
    ("read_file", "read_files"),
    ("write_file", "write_files"),
    ("delete_file", "write_files"),
    ("execute_command", "execute_code"),
    ("run_code", "execute_code"),
    ("make_request", "make_api_calls"),
    ("call_api", "make_api_calls"),
    ("web_search", "web_scraping"),
    ("browse_web", "web_automation"),
    // Rust idioms and plural forms.
    ("read_files", "read_files"),
    ("write_files", "write_files"),
    ("list_dir", "read_files"),
    ("read_dir", "read_files"),
    ("create_dir", "write_files"),
    ("remove_file", "write_files"),
    ("remove_dir", "write_files"),
    ("rename_file", "write_files"),
    ("spawn_process", "execute_code"),
    ("run_command", "execute_code"),
    ("http_request", "make_api_calls"),
    ("http_get", "make_api_calls"),
    ("http_post", "make_api_calls"),
    ("fetch_url", "make_api_calls"),
    ("sql_query", "access_database"),
    ("send_message", "send_messages"),
    ("send_sms", "send_messages"),
    ("charge_card", "process_payments"),
    ("create_payment", "process_payments"),
    ("refund_payment", "process_payments"),
    ("chat_completion", "ai_model_access"),
    ("call_llm", "ai_model_access"),
];

/// Keyword rules, tried in order when no exact row matches: an action whose words (split on
/// `_ - . : /` and camelCase) include a keyword maps to the capability. `send_email` and
/// `read_files` have a reading-verb variant (see [`READ_VERBS`] / [`WRITE_VERBS`]).
pub const ACTION_KEYWORDS: &[(&[&str], &str)] = &[
    (
        &[
            "email", "emails", "mail", "mailbox", "inbox", "smtp", "imap",
        ],
        "send_email|read_email",
    ),
    (
        &["file", "files", "dir", "dirs", "directory", "folder", "fs"],
        "read_files|write_files",
    ),
    (
        &[
            "database", "db", "sql", "table", "record", "records", "postgres", "mysql", "sqlite",
            "redis", "mongo",
        ],
        "access_database",
    ),
    (
        &[
            "payment", "payments", "charge", "refund", "invoice", "payout", "stripe", "billing",
            "checkout",
        ],
        "process_payments",
    ),
    (
        &[
            "message",
            "messages",
            "sms",
            "slack",
            "discord",
            "telegram",
            "notify",
            "notification",
            "publish",
        ],
        "send_messages",
    ),
    (
        &[
            "llm",
            "model",
            "completion",
            "completions",
            "embedding",
            "embeddings",
            "prompt",
            "inference",
        ],
        "ai_model_access",
    ),
    (
        &[
            "browser",
            "browse",
            "click",
            "navigate",
            "screenshot",
            "webdriver",
        ],
        "web_automation",
    ),
    (
        &["scrape", "scraping", "crawl", "crawler", "search"],
        "web_scraping",
    ),
    (
        &[
            "s3", "bucket", "blob", "gcs", "lambda", "cloud", "aws", "azure", "gcp",
        ],
        "access_cloud_services",
    ),
    (
        &[
            "shell",
            "command",
            "exec",
            "execute",
            "process",
            "subprocess",
            "script",
            "code",
            "eval",
            "spawn",
        ],
        "execute_code",
    ),
    (
        &[
            "http", "https", "api", "request", "webhook", "url", "fetch", "rest", "graphql",
            "endpoint",
        ],
        "make_api_calls",
    ),
];

/// Verbs that make an email action `read_email` (otherwise `send_email`).
pub const READ_VERBS: &[&str] = &[
    "read", "fetch", "list", "get", "search", "receive", "check", "open",
];
/// Verbs that make a file action `write_files` (otherwise `read_files`).
pub const WRITE_VERBS: &[&str] = &[
    "write", "delete", "remove", "create", "rename", "move", "append", "save", "update", "put",
    "upload", "truncate",
];

/// Maps an action name to a capability and says how.
pub fn action_capability(action: &str) -> (String, crate::report::Mapping) {
    use crate::report::Mapping;
    if let Some((_, cap)) = ACTION_EXACT.iter().find(|(a, _)| *a == action) {
        return ((*cap).to_owned(), Mapping::Exact);
    }
    let words = split_words(action);
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    for (keywords, cap) in ACTION_KEYWORDS {
        if has(keywords) {
            let cap = match *cap {
                "send_email|read_email" if has(READ_VERBS) => "read_email",
                "send_email|read_email" => "send_email",
                "read_files|write_files" if has(WRITE_VERBS) => "write_files",
                "read_files|write_files" => "read_files",
                other => other,
            };
            return (cap.to_owned(), Mapping::Keyword);
        }
    }
    (action.to_owned(), Mapping::AsIs)
}

/// Lower-case words of an identifier: split on `_ - . : /`, spaces and camelCase boundaries.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether a crate or package is part of this toolkit (`aim`, `aim-*`, `vault-*`, also with
/// `_`): never evidence, never traversed, never an MCP server.
pub fn is_own_package(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    n == "aim" || n.starts_with("aim-") || n.starts_with("vault-")
}

/// Markdown for the README's crate table (generated; a test keeps the README in sync).
pub fn crate_table_markdown() -> String {
    let mut out = String::from("| crate | capabilities | what |\n|---|---|---|\n");
    for r in CRATE_RULES {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            r.pattern,
            r.capabilities.join(", "),
            r.what
        ));
    }
    out
}

/// Markdown for the README's action tables (generated).
pub fn action_tables_markdown() -> String {
    let mut out = String::from("| action | capability |\n|---|---|\n");
    for (a, c) in ACTION_EXACT {
        out.push_str(&format!("| `{a}` | {c} |\n"));
    }
    out.push_str("\n| any word among | capability |\n|---|---|\n");
    for (words, cap) in ACTION_KEYWORDS {
        let cap = match *cap {
            "send_email|read_email" => "read_email with a reading verb, else send_email".to_owned(),
            "read_files|write_files" => {
                "write_files with a writing verb, else read_files".to_owned()
            }
            other => other.to_owned(),
        };
        out.push_str(&format!("| {} | {cap} |\n", words.join(", ")));
    }
    out.push_str(&format!(
        "\nReading verbs: {}. Writing verbs: {}.\n",
        READ_VERBS.join(", "),
        WRITE_VERBS.join(", ")
    ));
    out
}

/// Markdown for the README's capability vocabulary (generated).
pub fn vocabulary_markdown() -> String {
    let mut out = String::from("| capability | meaning |\n|---|---|\n");
    for (c, what) in CAPABILITIES {
        out.push_str(&format!("| `{c}` | {what} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Mapping;

    #[test]
    fn crate_table_is_at_least_as_broad_as_the_sdk() {
        assert!(CRATE_RULES.len() >= 66, "{} rows", CRATE_RULES.len());
        let vocab: Vec<&str> = CAPABILITIES.iter().map(|(c, _)| *c).collect();
        for r in CRATE_RULES {
            for c in r.capabilities {
                assert!(vocab.contains(c), "{} maps to unknown {c}", r.pattern);
            }
        }
        // Every category of the issue is covered.
        for needed in [
            "access_database",
            "make_api_calls",
            "access_cloud_services",
            "send_email",
            "read_files",
            "execute_code",
            "ai_model_access",
            "send_messages",
            "process_payments",
        ] {
            assert!(
                CRATE_RULES.iter().any(|r| r.capabilities.contains(&needed)),
                "{needed}"
            );
        }
    }

    #[test]
    fn no_crate_pattern_is_listed_twice_or_is_our_own() {
        let mut seen = std::collections::BTreeSet::new();
        for r in CRATE_RULES {
            assert!(seen.insert(r.pattern), "{} twice", r.pattern);
            assert!(
                !is_own_package(r.pattern.trim_end_matches('*')),
                "{}",
                r.pattern
            );
        }
    }

    #[test]
    fn crate_lookup_handles_exact_and_prefix_rows() {
        assert_eq!(crate_capabilities("sqlx"), DB);
        assert_eq!(crate_capabilities("sqlx-core"), &[] as &[&str]);
        assert_eq!(crate_capabilities("aws-sdk-s3"), CLOUD);
        assert_eq!(crate_capabilities("aws-sdk-"), &[] as &[&str]);
        assert_eq!(crate_capabilities("serde_json"), &[] as &[&str]);
    }

    #[test]
    fn sdk_action_table_is_preserved() {
        for (a, c) in &ACTION_EXACT[..14] {
            assert_eq!(action_capability(a), ((*c).to_owned(), Mapping::Exact));
        }
    }

    #[test]
    fn keyword_rules_use_verbs() {
        assert_eq!(action_capability("fetchInbox").0, "read_email");
        assert_eq!(action_capability("notify_by_email").0, "send_email");
        assert_eq!(action_capability("upload-file").0, "write_files");
        assert_eq!(action_capability("stat_file").0, "read_files");
        assert_eq!(
            action_capability("query_postgres"),
            ("access_database".into(), Mapping::Keyword)
        );
        assert_eq!(action_capability("call_llm_api").0, "ai_model_access");
        assert_eq!(
            action_capability("approve_loan"),
            ("approve_loan".into(), Mapping::AsIs)
        );
    }

    #[test]
    fn words_split_on_case_and_punctuation() {
        assert_eq!(
            split_words("fetchHTTPData_now.v2"),
            vec!["fetch", "httpdata", "now", "v2"]
        );
    }

    #[test]
    fn own_packages() {
        for n in ["aim", "aim-client", "aim_sdk", "vault-store", "AIM-Detect"] {
            assert!(is_own_package(n), "{n}");
        }
        for n in ["aims", "aimless", "vaultrs", "claim-x"] {
            assert!(!is_own_package(n), "{n}");
        }
    }
}

//! What the administration commands share: server and key resolution (flags > environment >
//! config file), a runtime, aligned tables, `--json`, and error messages.

use std::path::PathBuf;

use aim_client::{AdminClient, ApiKey, ClientConfig};
use anyhow::Context;
use clap::Args;
use serde_json::Value;

/// Options of every administration command.
#[derive(Debug, Clone, Args)]
pub(crate) struct AdminArgs {
    /// AIM server URL [env: AIM_SERVER; default http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// File holding the admin API key (first line) [else AIM_API_KEY, AIM_API_KEY_FILE or the config file].
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) api_key_file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

impl AdminArgs {
    /// The configuration: defaults < config file < environment < flags.
    pub(crate) fn config(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::from_env()?;
        if let Some(server) = &self.server {
            config.server_url = server.clone();
        }
        if let Some(path) = &self.api_key_file {
            config.api_key = Some(ApiKey::from_file(path)?);
        }
        Ok(config)
    }

    /// The admin client.
    pub(crate) fn client(&self) -> anyhow::Result<AdminClient> {
        Ok(AdminClient::new(&self.config()?)?)
    }
}

/// Runs an async command body on a fresh runtime.
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

/// Prints `value` as JSON (`--json`) or as an aligned table of `columns` (`(header, key)`;
/// keys may be `a.b` paths and `a|b` alternatives).
pub(crate) fn print(value: &Value, json: bool, columns: &[(&str, &str)]) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
        return Ok(());
    }
    let rows: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if rows.is_empty() {
        println!("(none)");
        return Ok(());
    }
    print!("{}", table(&rows, columns));
    Ok(())
}

/// Renders an aligned table.
pub(crate) fn table(rows: &[&Value], columns: &[(&str, &str)]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|(_, key)| cell(row, key)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let mut s = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(columns.iter().map(|(h, _)| *h).collect());
    for r in &cells {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn cell(row: &Value, key: &str) -> String {
    for alt in key.split('|') {
        let mut v = row;
        let mut found = true;
        for part in alt.split('.') {
            match v.get(part) {
                Some(next) => v = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if found && !v.is_null() {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // Control characters from the server never reach the terminal.
            return text.chars().filter(|c| !c.is_control()).collect();
        }
    }
    "-".into()
}

/// Prints a one-line confirmation, or the server's JSON answer with `--json`.
pub(crate) fn done(value: &Value, json: bool, message: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{message}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_fall_back() {
        let rows = [
            json!({"id": "a1", "name": "short", "agent": {"status": "verified"}}),
            json!({"id": "b", "display": "much-longer-name", "agent": {}}),
        ];
        let refs: Vec<&Value> = rows.iter().collect();
        let out = table(
            &refs,
            &[
                ("ID", "id"),
                ("NAME", "name|display"),
                ("STATUS", "agent.status"),
            ],
        );
        assert_eq!(
            out,
            "ID  NAME              STATUS\n\
             a1  short             verified\n\
             b   much-longer-name  -\n"
        );
    }

    #[test]
    fn control_characters_are_stripped() {
        let row = json!({"x": "a\u{1b}[2Jb\n"});
        assert_eq!(cell(&row, "x"), "a[2Jb");
    }
}

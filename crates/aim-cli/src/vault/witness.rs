//! Witnesses for `aim vault`: reading a head kept outside the file (`verify --head`), and the
//! AIM server's witness (`--aim-witness`, as the agent `--aim-agent`).
//!
//! `Witness` is synchronous and aim-client is async: each call runs on its own thread with
//! its own current-thread runtime (as the AIM approver does), so it never nests in a caller's
//! runtime.

use std::path::Path;

use aim_client::{AimClient, ClientConfig, Error};
use anyhow::{Context, Result, anyhow};
use vault_audit::{
    AuditError, ConsistencyProof, FileWitness, PublishedHead, SignedTreeHead, Witness,
    WitnessReceipt, witness::PUBLISHED_HEAD_VERSION,
};

/// Reads a head kept outside the file: the JSON of `aim vault head`, one published-head
/// record, or a witness file (its latest head, every record checked).
pub(crate) fn read_head(path: &Path) -> Result<SignedTreeHead> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the head file {}", path.display()))?;
    if let Ok(h) = serde_json::from_str::<SignedTreeHead>(&text) {
        return Ok(h);
    }
    if let Ok(p) = serde_json::from_str::<PublishedHead>(&text) {
        return Ok(p.head);
    }
    FileWitness::new(path)
        .latest()
        .with_context(|| {
            format!(
                "{} is not a head, a published head or a witness file",
                path.display()
            )
        })?
        .ok_or_else(|| anyhow!("the witness file {} holds no head", path.display()))
}

/// The AIM server as a witness of the vault's heads, asked as a registered agent.
///
/// One client (and runtime) serves every call: the client remembers which requests it signed
/// in the current second, so identical requests are never refused as replays.
#[derive(Debug)]
pub(crate) struct AimServerWitness {
    agent: String,
    log: String,
    conn: std::sync::Mutex<Option<(tokio::runtime::Runtime, AimClient)>>,
}

impl AimServerWitness {
    /// The server's witness for `log`, asked as the stored agent identity `agent`.
    pub(crate) fn new(agent: &str, log: &str) -> Self {
        Self {
            agent: agent.to_owned(),
            log: log.to_owned(),
            conn: std::sync::Mutex::new(None),
        }
    }

    fn connect(&self) -> std::result::Result<(tokio::runtime::Runtime, AimClient), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let config =
            ClientConfig::from_env().map_err(|e| format!("AIM client configuration: {e}"))?;
        let client = AimClient::load(&self.agent, config)
            .map_err(|e| format!("cannot load agent identity `{}`: {e}", self.agent))?
            .ok_or_else(|| {
                format!(
                    "no stored identity for agent `{}`; register it with `aim agent register {}`",
                    self.agent, self.agent
                )
            })?;
        Ok((rt, client))
    }

    /// Runs `f` with the client, on a thread of its own (never inside a caller's runtime).
    fn run<T: Send>(
        &self,
        f: impl AsyncFnOnce(AimClient) -> std::result::Result<T, String> + Send,
    ) -> std::result::Result<T, AuditError> {
        let unavailable =
            |m: String| AuditError::Io(std::io::Error::other(format!("AIM server witness: {m}")));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
                    if guard.is_none() {
                        *guard = Some(self.connect()?);
                    }
                    let Some((rt, client)) = guard.as_ref() else {
                        return Err("no client".to_owned());
                    };
                    rt.block_on(f(client.clone()))
                })
                .join()
                .unwrap_or_else(|_| Err("the witness thread panicked".into()))
        })
        .map_err(unavailable)
    }
}

impl Witness for AimServerWitness {
    fn describe(&self) -> String {
        format!(
            "the AIM server's witness (agent `{}`, log `{}`)",
            self.agent, self.log
        )
    }

    fn latest(&self) -> vault_audit::Result<Option<SignedTreeHead>> {
        let log = self.log.clone();
        // The server accepts each signature once and signatures carry one-second timestamps:
        // the same GET from another `aim` process in the same second is refused as a replay.
        // Reading is harmless to repeat, so wait for the next second and ask again.
        let list = self.run(async move |c| {
            let mut tries = 0;
            loop {
                match c.tree_heads(Some(&log)).await {
                    Err(Error::Authentication {
                        status: 401,
                        message,
                    }) if message.contains("replayed") && tries < 2 => {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
                    }
                    other => return other.map_err(|e| e.to_string()),
                }
            }
        })?;
        let Some(last) = list["heads"].as_array().and_then(|a| a.last()).cloned() else {
            return Ok(None);
        };
        let mut last = last;
        if let Some(m) = last.as_object_mut() {
            m.remove("received_at");
        }
        serde_json::from_value(last).map(Some).map_err(|e| {
            AuditError::Io(std::io::Error::other(format!(
                "AIM server witness sent an unreadable head: {e}"
            )))
        })
    }

    fn publish(
        &self,
        head: &SignedTreeHead,
        consistency: Option<&ConsistencyProof>,
    ) -> vault_audit::Result<WitnessReceipt> {
        let record = PublishedHead {
            version: PUBLISHED_HEAD_VERSION,
            head: head.clone(),
            consistency: consistency.cloned(),
        };
        let body = serde_json::to_value(&record).map_err(std::io::Error::other)?;
        let log = self.log.clone();
        let key = head.public_key.to_b64();
        let receipt = self.run(async move |c| {
            match c.publish_tree_head(&body, Some(&log)).await {
                // The vault's head key is not the agent's identity key: declare it (signed
                // as the agent) and publish again.
                Err(
                    Error::Authentication { status: 403, .. } | Error::Http { status: 403, .. },
                ) => {
                    c.declare_tree_head_key(&key)
                        .await
                        .map_err(|e| e.to_string())?;
                    c.publish_tree_head(&body, Some(&log))
                        .await
                        .map_err(|e| e.to_string())
                }
                other => other.map_err(|e| e.to_string()),
            }
        })?;
        Ok(WitnessReceipt {
            witness: self.describe(),
            tree_size: head.tree_size,
            root: head.root,
            duplicate: receipt["duplicate"].as_bool().unwrap_or(false),
        })
    }
}

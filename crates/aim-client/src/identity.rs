//! An agent's identity: its name, server-assigned id, server URL and locally held key pair.

use aim_crypto::AgentKeypair;

use crate::error::{Error, Result};

/// A registered agent as this machine knows it. The private key never leaves this value
/// except encrypted into the credential store.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    name: String,
    agent_id: String,
    server_url: String,
    keypair: AgentKeypair,
}

impl AgentIdentity {
    /// Assembles an identity; `agent_id` must be a UUID (the server checks `X-Agent-ID`).
    pub fn new(
        name: impl Into<String>,
        agent_id: impl Into<String>,
        server_url: impl Into<String>,
        keypair: AgentKeypair,
    ) -> Result<Self> {
        let agent_id = agent_id.into();
        if !is_uuid(&agent_id) {
            return Err(Error::Configuration(format!(
                "agent id `{agent_id}` is not a UUID"
            )));
        }
        Ok(Self {
            name: name.into(),
            agent_id,
            server_url: server_url.into(),
            keypair,
        })
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server-assigned agent id (UUID).
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The server this agent is registered with.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The key pair (for signing; never log it).
    pub fn keypair(&self) -> &AgentKeypair {
        &self.keypair
    }

    /// The public key in the AIM encoding (standard base64).
    pub fn public_key_b64(&self) -> String {
        self.keypair.public_key().to_b64()
    }
}

/// True for the 8-4-4-4-12 hexadecimal UUID text form.
pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_check() {
        assert!(is_uuid("550e8400-e29b-41d4-a716-446655440000"));
        assert!(!is_uuid("550e8400e29b41d4a716446655440000"));
        assert!(!is_uuid("550e8400-e29b-41d4-a716-44665544000g"));
        assert!(!is_uuid("../../etc/passwd"));
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let pair = AgentKeypair::from_seed(&aim_crypto::test_vectors::SEED);
        let id = AgentIdentity::new(
            "a",
            "550e8400-e29b-41d4-a716-446655440000",
            "http://x",
            pair,
        )
        .unwrap();
        let text = format!("{id:?}");
        assert!(!text.contains(aim_crypto::test_vectors::PRIVATE_KEY_32_B64.trim_end_matches('=')));
        assert!(text.contains(aim_crypto::test_vectors::PUBLIC_KEY_B64));
    }
}

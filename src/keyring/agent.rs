//! The identities an ssh-agent holds.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::PublicKey;

/// A hung agent must not stall startup or a login.
const AGENT_TIMEOUT: Duration = Duration::from_secs(3);

/// The agent's plain-key identities with their comments. Certificates are left out: EC2
/// instances authorize keys through authorized_keys, and the plain key is listed separately.
pub(super) async fn agent_identities(socket: &Path) -> Result<Vec<(PublicKey, String)>> {
    let query = async {
        let mut agent = AgentClient::connect_uds(socket).await?;
        agent.request_identities().await
    };
    let ids = tokio::time::timeout(AGENT_TIMEOUT, query)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "ssh-agent at {} did not answer within {}s",
                socket.display(),
                AGENT_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("ssh-agent at {} is unreachable", socket.display()))?;
    Ok(ids
        .into_iter()
        .filter_map(|id| match id {
            AgentIdentity::PublicKey { key, comment } => Some((key, comment)),
            AgentIdentity::Certificate { .. } => None,
        })
        .collect())
}

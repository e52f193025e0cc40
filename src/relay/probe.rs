//! Asking a server whether it would accept a public key, without signing (RFC 4252
//! section 7): a `publickey` request without a signature is answered PK_OK or failure.
//! russh asks its signer for a signature only after PK_OK, so a signer that declines
//! turns "would you accept this key?" into a yes or no, with only the public half.

use std::future::Future;

use russh::client;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PublicKey};

/// How long one question may take; sshd answers in milliseconds.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the probe's signer stopped: the only expected reason is that the server said yes.
#[derive(Debug)]
pub enum Stop {
    /// PK_OK: the server would accept the key.
    Accepted,
    /// The session went away while asking.
    Send,
}

impl From<russh::SendError> for Stop {
    fn from(_: russh::SendError) -> Self {
        Stop::Send
    }
}

/// A signer that never signs.
struct Decline;

impl russh::Signer for Decline {
    type Error = Stop;

    #[allow(clippy::manual_async_fn)]
    fn auth_sign(
        &mut self,
        _key: &AgentIdentity,
        _hash_alg: Option<HashAlg>,
        _to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        async { Err(Stop::Accepted) }
    }
}

/// The server's answer for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    Refused,
    /// The connection ended (sshd's MaxAuthTries, or the host went away).
    Closed,
}

/// Asks whether `user` may log in with `key`. A refusal counts against sshd's MaxAuthTries
/// (6 by default); an acceptance does not (the login is postponed, not failed).
pub async fn ask<H: client::Handler>(
    upstream: &mut client::Handle<H>,
    user: &str,
    key: &PublicKey,
    rsa_hash: Option<HashAlg>,
) -> Answer {
    let mut signer = Decline;
    let question = upstream.authenticate_publickey_with(user, key.clone(), rsa_hash, &mut signer);
    match tokio::time::timeout(ANSWER_TIMEOUT, question).await {
        // A server that does not answer is as good as gone for this connection.
        Err(_) => Answer::Closed,
        Ok(Err(Stop::Accepted)) => Answer::Accepted,
        Ok(Err(Stop::Send)) => Answer::Closed,
        Ok(Ok(client::AuthResult::Success)) => Answer::Accepted,
        Ok(Ok(client::AuthResult::Failure { .. })) if upstream.is_closed() => Answer::Closed,
        Ok(Ok(client::AuthResult::Failure { .. })) => Answer::Refused,
    }
}

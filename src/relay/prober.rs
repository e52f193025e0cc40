//! Asking a host about a list of keys in priority order, within sshd's limits: at most
//! five refusals per connection (MaxAuthTries 6 disconnects on the sixth), then a fresh
//! connection; a bounded number of connections; never a login.

use std::future::Future;

use russh::client;
use russh::keys::{HashAlg, PublicKey};

use crate::relay::probe::{ask, Answer};

/// sshd's default MaxAuthTries is 6 and the 6th refusal disconnects: stay one below.
pub const REFUSALS_PER_CONNECTION: usize = 5;

/// What probing found: one answer per key asked (in order), and the connection the last
/// answer came on, still open and not logged in, when there is one.
pub struct Probing<H: client::Handler> {
    pub answers: Vec<Answer>,
    pub upstream: Option<client::Handle<H>>,
    /// Connections opened beyond the first.
    pub reconnects: usize,
}

/// Asks about `keys` in order until one is accepted. `refused_so_far` is how many
/// refusals the first connection has already taken (a signed attempt that failed counts).
/// `reconnect` opens a fresh connection, at most `max_reconnects` times; a connection that
/// closes mid-question is replaced and the same key asked again.
pub async fn probe_in_order<H, F, Fut>(
    upstream: client::Handle<H>,
    refused_so_far: usize,
    user: &str,
    keys: &[PublicKey],
    rsa_hash: Option<HashAlg>,
    max_reconnects: usize,
    mut reconnect: F,
) -> Probing<H>
where
    H: client::Handler,
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<client::Handle<H>>>,
{
    let mut conn = Some(upstream);
    let mut refused = refused_so_far;
    let mut reconnects = 0;
    let mut answers = Vec::new();
    let mut next = 0;
    while let Some(key) = keys.get(next) {
        if conn.is_none() || refused >= REFUSALS_PER_CONNECTION {
            // Drop the spent connection before opening the next one.
            conn = None;
            if reconnects >= max_reconnects {
                break;
            }
            reconnects += 1;
            conn = reconnect().await;
            refused = 0;
        }
        let Some(handle) = conn.as_mut() else {
            break;
        };
        match ask(handle, user, key, rsa_hash).await {
            Answer::Accepted => {
                answers.push(Answer::Accepted);
                break;
            }
            Answer::Refused => {
                answers.push(Answer::Refused);
                refused += 1;
                next += 1;
            }
            Answer::Closed => conn = None,
        }
    }
    Probing {
        answers,
        upstream: conn,
        reconnects,
    }
}

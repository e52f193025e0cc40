//! The relay: the client-facing SSH server, the upstream SSH client, and the bridging of
//! channels between them. Plumbing only; what to try and what to say lives elsewhere.

pub mod algorithms;
pub mod bridge;
pub mod inner;
pub mod probe;
pub mod prober;
pub mod refusal;
pub mod upstream;

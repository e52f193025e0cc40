//! The decisions behind a login: which keys to try and in what order (`plan`), what the
//! probes mean (`verdict`), and how to say it to the user (`explain`). Pure functions over
//! data, so the relay, `diagnose` and the demo all reach the same verdict from the same facts.

pub mod explain;
pub mod plan;
pub mod verdict;

pub use explain::{explain, Explanation, Fix};
pub use plan::{attempt_plan, default_users, Candidate, CandidateSource, PlanInput};
pub use verdict::{
    decide, exit_code, ConnectError, Evidence, Method, Outcome, ProbeResult, Verdict,
};

#[cfg(test)]
pub(crate) mod fixtures;

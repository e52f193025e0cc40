//! One upstream login, diagnosed: try the expected key; when the host refuses it, ask the
//! host which key it really accepts (queries, within sshd's limits), log in with that one
//! when the keyring can sign it, and decide and explain what happened. The relay, the
//! `diagnose` command and the demo all go through here.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use russh::keys::{HashAlg, PublicKey};
use russh::server;

use crate::auth::{
    attempt_plan, decide, default_users, explain, Candidate, CandidateSource, ConnectError,
    Evidence, Explanation, Method, Outcome, PlanInput, ProbeResult, Verdict,
};
use crate::keyring::KeyEntry;
use crate::keys::links;
use crate::proxy::Proxy;
use crate::relay::probe::{ask, Answer};
use crate::relay::prober::{probe_in_order, REFUSALS_PER_CONNECTION};
use crate::relay::refusal::UpstreamError;
use crate::relay::upstream::{self, Upstream};
use crate::target::Target;
use crate::winners::Winner;

/// Fresh connections the probing may open beyond the first: with five questions each,
/// enough for a keyring of a dozen keys plus EC2's public keys, and still a few seconds.
const MAX_RECONNECTS: usize = 3;

/// The outcome of one login.
pub use record::{
    needs_notice, record, record_refusal, refusal_paragraph, refusal_text, verdict_of,
};

mod record;

pub struct Login {
    /// Logged in and ready for channels, when a key worked.
    pub upstream: Option<Upstream>,
    pub evidence: Evidence,
    pub verdict: Verdict,
    pub explanation: Explanation,
    /// Set when the connection itself failed: its own wording, which names files and both
    /// fingerprints, is what the client is told.
    pub connect_error: Option<UpstreamError>,
    pub duration: Duration,
}

/// Runs the whole plan for `user` on `target`. `first` is the connection already dialled
/// (in parallel with the client's handshake); more are dialled as probing needs them.
pub async fn log_in(
    proxy: &Arc<Proxy>,
    target: &Target,
    inner: &Arc<OnceLock<server::Handle>>,
    user: &str,
    offered: Option<&PublicKey>,
    first: Result<Upstream, UpstreamError>,
) -> Login {
    let started = Instant::now();
    let mut run = Run {
        proxy,
        target,
        inner,
        user,
        evidence: Evidence {
            host: target.host.clone(),
            user: user.to_string(),
            instance: target.ec2.clone(),
            instance_error: target.lookup_error.clone(),
            offered: offered.map(|k| k.fingerprint(HashAlg::Sha256).to_string()),
            account_profile: target
                .ec2
                .as_ref()
                .and_then(|instance| proxy.config.profile_for(&instance.account))
                .map(String::from),
            ..Evidence::default()
        },
    };
    let (upstream, connect_error) = match first {
        Ok(upstream) => (run.attempts(upstream, offered).await, None),
        Err(error) => {
            run.evidence.connect_error = Some(connect_error_of(&error));
            (None, Some(error))
        }
    };
    let evidence = run.evidence;
    let verdict = decide(&evidence);
    let explanation = explain(&evidence, &verdict);
    tracing::info!(host = %target.host, user, verdict = verdict.code(), "upstream login diagnosed");
    Login {
        upstream,
        evidence,
        verdict,
        explanation,
        connect_error,
        duration: started.elapsed(),
    }
}

fn connect_error_of(error: &UpstreamError) -> ConnectError {
    match error {
        UpstreamError::HostKeyChanged {
            pinned,
            presented,
            pin_id,
            file,
            ..
        } => ConnectError::HostKeyChanged {
            pinned: pinned.clone(),
            presented: presented.clone(),
            pin_id: pin_id.clone(),
            file: file.clone(),
        },
        other => ConnectError::Unreachable(other.to_string()),
    }
}

struct Run<'a> {
    proxy: &'a Arc<Proxy>,
    target: &'a Target,
    inner: &'a Arc<OnceLock<server::Handle>>,
    user: &'a str,
    evidence: Evidence,
}

enum Signed {
    In(Upstream),
    Refused(Upstream),
    Lost,
}

impl Run<'_> {
    async fn reconnect(&self) -> Option<Upstream> {
        upstream::connect(self.proxy.clone(), self.target.clone(), self.inner.clone())
            .await
            .ok()
    }

    fn key_of(&self, candidate: &Candidate) -> Option<&KeyEntry> {
        self.proxy
            .keyring
            .keys
            .iter()
            .find(|k| k.fingerprint() == candidate.fingerprint)
    }

    /// A signed attempt with `candidate`, recorded.
    async fn sign(
        &mut self,
        mut upstream: Upstream,
        candidate: &Candidate,
        hash: Option<HashAlg>,
    ) -> Signed {
        let Some(key) = self.key_of(candidate).cloned() else {
            return Signed::Refused(upstream);
        };
        let outcome = upstream::sign_in(&mut upstream, self.user, &key, hash).await;
        let (result, signed) = match outcome {
            Ok(true) => (Outcome::Accepted, true),
            Ok(false) => (Outcome::Refused, false),
            Err(e) => (Outcome::Error(e), false),
        };
        self.evidence.probes.push(ProbeResult {
            candidate: candidate.clone(),
            method: Method::Signature,
            outcome: result,
        });
        if signed {
            self.evidence.logged_in_with = Some(candidate.clone());
            let winner = Winner {
                candidate: candidate.clone(),
                lineage: self.evidence.lineage.clone(),
            };
            self.proxy
                .winners
                .remember(&self.target.pin_id, self.user, &winner);
            Signed::In(upstream)
        } else if upstream.is_closed() {
            Signed::Lost
        } else {
            Signed::Refused(upstream)
        }
    }

    /// The plan: the last working key alone first (a known case costs no EC2 call and no
    /// probe), then the full plan with what EC2 knows.
    async fn attempts(
        &mut self,
        upstream: Upstream,
        offered: Option<&PublicKey>,
    ) -> Option<Upstream> {
        let hash = upstream::rsa_hash(&upstream).await;
        let keys = &self.proxy.keyring.keys;
        let mut upstream = upstream;
        let mut refused = 0;
        let cached = self
            .proxy
            .winners
            .get(&self.target.pin_id, self.user)
            .filter(|w| self.key_of(&w.candidate).is_some());
        if let Some(winner) = &cached {
            // What made it the winner comes along, so the verdict is the same as last
            // time without asking EC2 again.
            let candidate = Candidate {
                source: CandidateSource::CachedWinner,
                ..winner.candidate.clone()
            };
            self.evidence.lineage = winner.lineage.clone();
            match self.sign(upstream, &candidate, hash).await {
                Signed::In(up) => return Some(up),
                Signed::Refused(up) => {
                    // It stopped working: forget it and run the whole plan.
                    self.proxy.winners.forget(&self.target.pin_id, self.user);
                    self.evidence.lineage = None;
                    upstream = up;
                    refused = 1;
                }
                Signed::Lost => return None,
            }
        }

        let (pairs, lineage, problems) = match &self.target.ec2 {
            Some(instance) => self.proxy.resolver.evidence(instance).await,
            None => (Vec::new(), None, Vec::new()),
        };
        if !problems.is_empty() {
            let mut all: Vec<String> = self.evidence.instance_error.take().into_iter().collect();
            all.extend(problems);
            self.evidence.instance_error = Some(all.join("; "));
        }
        if let Some(instance) = &self.target.ec2 {
            self.evidence.key_pairs_in_account = pairs
                .iter()
                .filter(|p| p.account == instance.account && p.region == instance.region)
                .map(|p| p.name.clone())
                .collect();
        }
        self.evidence.lineage = lineage;
        let linked = links::link(keys, &pairs, &self.proxy.config.keys);
        let mut plan = attempt_plan(&PlanInput {
            keys,
            links: &linked,
            key_pairs: &pairs,
            instance: self.target.ec2.as_ref(),
            lineage: self.evidence.lineage.as_ref(),
            offered,
            cached_winner: None,
        });
        // The refused winner was asked already.
        if let Some(winner) = &cached {
            plan.retain(|c| c.fingerprint != winner.candidate.fingerprint);
        }

        // Sign with the first candidate: the expected key. Its refusal is the "server
        // refused key" event; from there the host is only asked.
        let mut rest: &[Candidate] = &plan;
        if let Some(expected) = plan.first().filter(|c| c.can_sign) {
            match self.sign(upstream, expected, hash).await {
                Signed::In(up) => return Some(up),
                Signed::Refused(up) => {
                    upstream = up;
                    refused += 1;
                    rest = &plan[1..];
                }
                Signed::Lost => return None,
            }
        }

        let questions: Vec<PublicKey> = rest.iter().map(|c| c.public_key.clone()).collect();
        let probing = probe_in_order(
            upstream,
            refused,
            self.user,
            &questions,
            hash,
            MAX_RECONNECTS,
            || self.reconnect(),
        )
        .await;
        for (i, candidate) in rest.iter().enumerate() {
            let outcome = match probing.answers.get(i) {
                Some(Answer::Accepted) => Outcome::Accepted,
                Some(Answer::Refused) => Outcome::Refused,
                Some(Answer::Closed) => Outcome::Error("the connection closed".into()),
                None => Outcome::NotAsked,
            };
            self.evidence.probes.push(ProbeResult {
                candidate: candidate.clone(),
                method: Method::Query,
                outcome,
            });
        }
        let accepted = probing
            .answers
            .iter()
            .position(|a| *a == Answer::Accepted)
            .and_then(|i| rest.get(i));
        match (accepted, probing.upstream) {
            (Some(candidate), Some(up)) if candidate.can_sign => {
                let candidate = candidate.clone();
                match self.sign(up, &candidate, hash).await {
                    Signed::In(up) => Some(up),
                    _ => None,
                }
            }
            // Accepted but not ours to sign with (private-key-missing), or nothing accepted.
            (Some(_), _) => None,
            (None, _) => {
                self.ask_other_users(&plan, hash).await;
                None
            }
        }
    }

    /// Nothing was accepted for the login user: maybe the AMI's default user is another one.
    /// Asks (never logs in) with the expected key on a fresh connection.
    async fn ask_other_users(&mut self, plan: &[Candidate], hash: Option<HashAlg>) {
        let Some(expected) = plan.first() else {
            return;
        };
        let image = self
            .evidence
            .lineage
            .as_ref()
            .and_then(|l| l.hops.first())
            .map(|h| &h.image);
        let users = default_users(
            image.and_then(|i| i.name.as_deref()),
            image.and_then(|i| i.platform_details.as_deref()),
        );
        let others: Vec<&str> = users.into_iter().filter(|u| *u != self.user).collect();
        for batch in others.chunks(REFUSALS_PER_CONNECTION) {
            let Some(mut up) = self.reconnect().await else {
                return;
            };
            for other in batch {
                match ask(&mut up, other, &expected.public_key, hash).await {
                    Answer::Accepted => {
                        self.evidence.accepted_for_other_user = Some(other.to_string());
                        return;
                    }
                    Answer::Refused => {}
                    Answer::Closed => break,
                }
            }
        }
    }
}

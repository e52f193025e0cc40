//! What the config says about reaching EC2 (accounts, regions, endpoint, bounds) and the SDK
//! configuration made from it.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Default bound on one EC2 call, retries included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// One `[accounts."ID"]` entry: an account reached through a named profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProfile {
    /// The 12-digit account id.
    pub id: String,
    /// The profile (in the AWS config/credentials files) whose credentials reach it.
    pub profile: String,
    /// Regions to search there; empty = [`Ec2Settings::regions`].
    pub regions: Vec<String>,
}

/// What the config maps to; `Default` is "the standard chain, its region, nothing else".
#[derive(Debug, Clone)]
pub struct Ec2Settings {
    /// Regions searched in every account without regions of its own; empty = the default
    /// profile's region.
    pub regions: Vec<String>,
    /// Accounts beyond the default chain's, where AMI lineage may lead.
    pub accounts: Vec<AccountProfile>,
    /// Use this profile for the default account instead of the standard chain (like
    /// `aws --profile`: it wins over `AWS_ACCESS_KEY_ID`). None = the standard chain.
    pub default_profile: Option<String>,
    /// The EC2 endpoint; None = `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL` or the profile's
    /// `endpoint_url` (empty variables count as unset), else AWS's own endpoint.
    pub endpoint_url: Option<String>,
    /// Explicit AWS config and credentials files instead of `AWS_CONFIG_FILE`,
    /// `AWS_SHARED_CREDENTIALS_FILE` and `~/.aws/` (tests; never both halves needed).
    pub config_file: Option<PathBuf>,
    pub credentials_file: Option<PathBuf>,
    /// Bound on one call, retries included.
    pub timeout: Duration,
    /// Attempts per call (1 = no retry); throttling and connection errors are retried.
    pub max_attempts: u32,
}

impl Default for Ec2Settings {
    fn default() -> Self {
        Ec2Settings {
            regions: Vec::new(),
            accounts: Vec::new(),
            default_profile: None,
            endpoint_url: None,
            config_file: None,
            credentials_file: None,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: 3,
        }
    }
}

/// Which endpoint override to apply, from the setting and the environment. The SDK panics on
/// an empty `AWS_ENDPOINT_URL*` value, so empty values are dropped here and, when one is
/// present, the endpoint is set (or cleared) explicitly so the SDK never reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChoice {
    /// Use this URL for EC2.
    Url(String),
    /// Drop the empty value the SDK read from the environment: the profile's `endpoint_url`
    /// if any, else AWS's endpoint (a profile's per-service `services` section is ignored
    /// in that corner case).
    Clear,
    /// Leave the SDK's own resolution alone (environment, profile, AWS).
    Sdk,
}

pub fn endpoint_choice(
    explicit: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> EndpointChoice {
    let non_empty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if let Some(url) = non_empty(explicit.map(String::from)) {
        return EndpointChoice::Url(url);
    }
    let service = env("AWS_ENDPOINT_URL_EC2");
    let global = env("AWS_ENDPOINT_URL");
    let any_empty = [&service, &global]
        .iter()
        .any(|v| v.as_deref().is_some_and(|s| s.trim().is_empty()));
    match non_empty(service).or(non_empty(global)) {
        Some(url) if any_empty => EndpointChoice::Url(url),
        _ if any_empty => EndpointChoice::Clear,
        _ => EndpointChoice::Sdk,
    }
}

/// The SDK config for one profile (None = the standard chain), bounded in time.
pub(super) async fn load(settings: &Ec2Settings, profile: Option<&str>) -> SdkConfig {
    let attempt = settings.timeout.mul_f32(0.6);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(attempt.min(Duration::from_secs(2)))
                .operation_attempt_timeout(attempt)
                .operation_timeout(settings.timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)));
    let files = profile_files(settings);
    if let Some(files) = &files {
        loader = loader.profile_files(files.clone());
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
        // A named profile means exactly that profile's credentials, not AWS_ACCESS_KEY_ID.
        let mut creds =
            aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(profile);
        if let Some(files) = files {
            creds = creds.profile_files(files);
        }
        loader = loader.credentials_provider(creds.build());
    }
    // The explicit endpoint keeps the SDK from reading (and panicking on) an empty variable.
    if let Some(url) = settings
        .endpoint_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

#[allow(deprecated)] // the loader still takes the aws-config alias of EnvConfigFiles
fn profile_files(
    settings: &Ec2Settings,
) -> Option<aws_config::profile::profile_file::ProfileFiles> {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    if settings.config_file.is_none() && settings.credentials_file.is_none() {
        return None;
    }
    let mut builder = ProfileFiles::builder();
    builder = match &settings.config_file {
        Some(path) => builder.with_file(ProfileFileKind::Config, path),
        None => builder.include_default_config_file(true),
    };
    builder = match &settings.credentials_file {
        Some(path) => builder.with_file(ProfileFileKind::Credentials, path),
        None => builder.include_default_credentials_file(true),
    };
    Some(builder.build())
}

pub(super) fn regions_for(configured: &[String], config: &SdkConfig) -> Vec<String> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    config
        .region()
        .map(|r| vec![r.as_ref().to_string()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn empty_endpoint_variables_count_as_unset() {
        assert_eq!(endpoint_choice(None, env(&[])), EndpointChoice::Sdk);
        assert_eq!(
            endpoint_choice(None, env(&[("AWS_ENDPOINT_URL", "")])),
            EndpointChoice::Clear
        );
        assert_eq!(
            endpoint_choice(
                None,
                env(&[
                    ("AWS_ENDPOINT_URL_EC2", ""),
                    ("AWS_ENDPOINT_URL", "http://x:1")
                ])
            ),
            EndpointChoice::Url("http://x:1".into())
        );
        assert_eq!(
            endpoint_choice(None, env(&[("AWS_ENDPOINT_URL_EC2", "http://ec2:1")])),
            EndpointChoice::Sdk
        );
        assert_eq!(
            endpoint_choice(Some(" "), env(&[("AWS_ENDPOINT_URL", " ")])),
            EndpointChoice::Clear
        );
        assert_eq!(
            endpoint_choice(Some("http://cfg:1"), env(&[("AWS_ENDPOINT_URL", "")])),
            EndpointChoice::Url("http://cfg:1".into())
        );
    }
}

//! The EC2 API inventory: `Inventory` over aws-sdk-ec2, one client per (account, region).
//!
//! Accounts: the default credential chain's account (env vars, `AWS_PROFILE`, SSO, ...) plus
//! each configured `[accounts."ID"] profile = "..."`. The default chain's account id is not
//! asked of STS (one more service, one more call): it comes from the credentials when they
//! carry it (`aws_account_id` in the profile, `AWS_ACCOUNT_ID`, SSO), else from the `OwnerId`
//! of the first `DescribeInstances` answer. Until then the default account is addressed as
//! [`DEFAULT_ACCOUNT`] in a [`Scope`].
//!
//! Every call is bounded (connect, attempt and operation timeouts; few retries), so an API
//! that is down becomes `InventoryError::Unreachable` within seconds, and every call is
//! counted ([`Ec2Inventory::api_calls`]) so callers can log and tests can assert the cost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::ProvideCredentials;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;

use super::{
    HostQuery, Image, Instance, InstanceState, Inventory, InventoryError, InventoryFuture, KeyPair,
    KeyType, Scope, Snapshot,
};

/// The account id a [`Scope`] uses for the default credential chain while its real id is
/// not known yet (see the module docs).
pub const DEFAULT_ACCOUNT: &str = "default";

/// Default bound on one EC2 call, retries included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pages of one `DescribeInstances` filter query at most; a host name matching more than
/// this many pages of instances is not a host name.
const MAX_PAGES: usize = 3;

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

/// Credentials and base config for one account; clients per region are made from it.
struct Account {
    /// None for the default chain.
    profile: Option<String>,
    config: SdkConfig,
    regions: Vec<String>,
}

pub struct Ec2Inventory {
    default: Account,
    /// Configured account id -> its profile.
    accounts: HashMap<String, Account>,
    /// Configured account ids in config order.
    order: Vec<String>,
    endpoint: EndpointChoice,
    /// The default chain's account id once learned.
    default_id: Mutex<Option<String>>,
    clients: Mutex<HashMap<(Option<String>, String), Client>>,
    calls: AtomicU64,
    timeout: Duration,
}

impl std::fmt::Debug for Ec2Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Inventory")
            .field("accounts", &self.order)
            .field("endpoint", &self.endpoint)
            .field("api_calls", &self.api_calls())
            .finish()
    }
}

impl Ec2Inventory {
    /// Loads the credential chains (no API call is made). Fails only when no region can be
    /// found for an account: config `regions`, the account's `regions`, or its profile.
    pub async fn new(settings: Ec2Settings) -> Result<Ec2Inventory> {
        let endpoint = endpoint_choice(settings.endpoint_url.as_deref(), |name| {
            std::env::var(name).ok()
        });
        let default_config = load(&settings, settings.default_profile.as_deref()).await;
        let default_regions = regions_for(&settings.regions, &default_config);
        let mut accounts = HashMap::new();
        let mut order = Vec::new();
        for account in &settings.accounts {
            let config = load(&settings, Some(&account.profile)).await;
            let regions = if !account.regions.is_empty() {
                account.regions.clone()
            } else {
                regions_for(&settings.regions, &config)
            };
            if regions.is_empty() {
                return Err(anyhow!(
                    "account {}: no region; set `regions` in the config or `region` in profile {}",
                    account.id,
                    account.profile
                ));
            }
            order.push(account.id.clone());
            accounts.insert(
                account.id.clone(),
                Account {
                    profile: Some(account.profile.clone()),
                    config,
                    regions,
                },
            );
        }
        if default_regions.is_empty() && accounts.is_empty() {
            return Err(anyhow!(
                "no AWS region: set `regions` in the config, AWS_REGION, or `region` in the AWS profile"
            ));
        }
        Ok(Ec2Inventory {
            default: Account {
                profile: settings.default_profile.clone(),
                config: default_config,
                regions: default_regions,
            },
            accounts,
            order,
            endpoint,
            default_id: Mutex::new(None),
            clients: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
            timeout: settings.timeout,
        })
    }

    /// EC2 API calls made so far (attempts by the SDK's retries count once).
    pub fn api_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Configured account ids, in config order (the `accounts` argument of `lineage::walk`).
    pub fn configured_accounts(&self) -> Vec<String> {
        self.order.clone()
    }

    /// The default chain's account id: known from an earlier answer, or from the
    /// credentials when they carry it. None means it is only learned by a `find_instances`.
    pub async fn default_account(&self) -> Option<String> {
        if let Some(id) = self.default_id.lock().unwrap().clone() {
            return Some(id);
        }
        let provider = self.default.config.credentials_provider()?;
        let creds = provider.provide_credentials().await.ok()?;
        let id = creds.account_id()?.as_str().to_string();
        self.learn_default(&id);
        Some(id)
    }

    /// Where to search for a host: the default account in its regions, then every
    /// configured account in its regions, without duplicates.
    pub fn scopes(&self) -> Vec<Scope> {
        let default_id = self
            .default_id
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string());
        let mut out: Vec<Scope> = Vec::new();
        let mut push = |scope: Scope| {
            if !out.contains(&scope) {
                out.push(scope);
            }
        };
        for region in &self.default.regions {
            push(Scope::new(&default_id, region));
        }
        for id in &self.order {
            for region in &self.accounts[id].regions {
                push(Scope::new(id, region));
            }
        }
        out
    }

    fn learn_default(&self, id: &str) {
        let mut known = self.default_id.lock().unwrap();
        if known.is_none() {
            *known = Some(id.to_string());
        }
    }

    /// The account behind `scope`: a configured one, else the default chain when the scope
    /// names it (or names an account not yet known to be anyone else's).
    fn account(&self, scope: &Scope) -> Result<&Account, InventoryError> {
        if let Some(account) = self.accounts.get(&scope.account) {
            return Ok(account);
        }
        let default_id = self.default_id.lock().unwrap().clone();
        match default_id {
            _ if scope.account == DEFAULT_ACCOUNT => Ok(&self.default),
            Some(id) if id == scope.account => Ok(&self.default),
            _ => Err(InventoryError::NoCredentials {
                account: scope.account.clone(),
            }),
        }
    }

    async fn client(&self, scope: &Scope) -> Result<Client, InventoryError> {
        if !self.accounts.contains_key(&scope.account)
            && scope.account != DEFAULT_ACCOUNT
            && self.default_id.lock().unwrap().is_none()
        {
            // Maybe the default chain's account: its credentials may say so (no API call).
            self.default_account().await;
        }
        let account = self.account(scope)?;
        let key = (account.profile.clone(), scope.region.clone());
        let mut clients = self.clients.lock().unwrap();
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = aws_sdk_ec2::config::Builder::from(&account.config)
            .region(Region::new(scope.region.clone()));
        match &self.endpoint {
            EndpointChoice::Url(url) => builder.set_endpoint_url(Some(url.clone())),
            // What the loader found valid (the profile's `endpoint_url`), else AWS's endpoint.
            EndpointChoice::Clear => {
                builder.set_endpoint_url(account.config.endpoint_url().map(String::from))
            }
            EndpointChoice::Sdk => &mut builder,
        };
        let client = Client::from_conf(builder.build());
        clients.insert(key, client.clone());
        Ok(client)
    }

    fn endpoint_name(&self, region: &str) -> String {
        let from_env = ["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty());
        match (&self.endpoint, from_env) {
            (EndpointChoice::Url(url), _) => url.clone(),
            // The SDK took the endpoint from the environment: name that one, not AWS's.
            (EndpointChoice::Sdk, Some(url)) => url,
            _ => format!("ec2.{region}.amazonaws.com"),
        }
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Maps an SDK failure to the one-line reason the diagnosis shows.
    fn error<E, R>(&self, e: SdkError<E, R>, action: &str, scope: &Scope) -> InventoryError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let endpoint = self.endpoint_name(&scope.region);
        let chain = error_chain(&e);
        match &e {
            SdkError::ServiceError(service) => {
                let err = service.err();
                let code = err.code().unwrap_or("Unknown");
                let message = err.message().unwrap_or("").to_string();
                classify_code(code, &message, action, scope)
            }
            SdkError::TimeoutError(_) => InventoryError::Unreachable {
                endpoint,
                reason: format!("no answer within {}s", self.timeout.as_secs_f32()),
            },
            _ if mentions_credentials(&chain) => InventoryError::NoCredentials {
                account: scope.account.clone(),
            },
            SdkError::DispatchFailure(failure) => {
                let reason = if failure.is_timeout() {
                    format!("no answer within {}s", self.timeout.as_secs_f32())
                } else {
                    last_cause(&chain)
                };
                InventoryError::Unreachable { endpoint, reason }
            }
            SdkError::ResponseError(_) => InventoryError::Other(format!(
                "{action} in {scope}: unreadable answer from {endpoint}: {}",
                last_cause(&chain)
            )),
            _ => InventoryError::Other(format!("{action} in {scope}: {}", last_cause(&chain))),
        }
    }

    async fn describe_instances(
        &self,
        scope: &Scope,
        ids: Option<&str>,
        filter: Option<(&str, String)>,
    ) -> Result<Vec<Instance>, InventoryError> {
        let client = self.client(scope).await?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request = client.describe_instances().set_next_token(token.take());
            if let Some(id) = ids {
                request = request.instance_ids(id);
            }
            if let Some((name, value)) = &filter {
                request = request.filters(Filter::builder().name(*name).values(value).build());
            }
            self.count();
            let answer = match request.send().await {
                Ok(answer) => answer,
                Err(e) => {
                    return match self.error(e, "DescribeInstances", scope) {
                        // Asked by id: absence is an answer, not a failure.
                        InventoryError::NotFound { .. } if ids.is_some() => Ok(out),
                        other => Err(other),
                    };
                }
            };
            for reservation in answer.reservations() {
                let owner = reservation.owner_id().unwrap_or(&scope.account);
                if scope.account == DEFAULT_ACCOUNT && owner != DEFAULT_ACCOUNT {
                    self.learn_default(owner);
                }
                for instance in reservation.instances() {
                    out.push(convert_instance(instance, owner, &scope.region));
                }
            }
            token = answer
                .next_token()
                .map(String::from)
                .filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Describes the snapshots one call for all; when EC2 rejects the batch because one is
    /// missing, one call each so the visible ones are still returned.
    async fn describe_snapshots(
        &self,
        scope: &Scope,
        ids: &[String],
    ) -> Result<Vec<Snapshot>, InventoryError> {
        let client = self.client(scope).await?;
        self.count();
        let answer = client
            .describe_snapshots()
            .set_snapshot_ids(Some(ids.to_vec()))
            .send()
            .await;
        match answer {
            Ok(answer) => Ok(answer.snapshots().iter().map(convert_snapshot).collect()),
            Err(e) => match self.error(e, "DescribeSnapshots", scope) {
                InventoryError::NotFound { .. } if ids.len() > 1 => {
                    let mut out = Vec::new();
                    for id in ids {
                        out.extend(
                            Box::pin(self.describe_snapshots(scope, std::slice::from_ref(id)))
                                .await?,
                        );
                    }
                    Ok(out)
                }
                InventoryError::NotFound { .. } => Ok(Vec::new()),
                other => Err(other),
            },
        }
    }
}

impl Inventory for Ec2Inventory {
    fn find_instances<'a>(
        &'a self,
        scope: &'a Scope,
        query: &'a HostQuery,
    ) -> InventoryFuture<'a, Vec<Instance>> {
        Box::pin(async move {
            match query {
                HostQuery::InstanceId(id)
                | HostQuery::PrivateDns {
                    instance_id: Some(id),
                    ..
                } => self.describe_instances(scope, Some(id), None).await,
                HostQuery::Ipv4(ip) => {
                    // Public first: what users type most; a private address is the fallback.
                    let public = self
                        .describe_instances(scope, None, Some(("ip-address", ip.to_string())))
                        .await?;
                    if !public.is_empty() {
                        return Ok(public);
                    }
                    self.describe_instances(
                        scope,
                        None,
                        Some(("private-ip-address", ip.to_string())),
                    )
                    .await
                }
                // Not supported by moto (untested there); EC2 documents it.
                HostQuery::Ipv6(ip) => {
                    self.describe_instances(scope, None, Some(("ipv6-address", ip.to_string())))
                        .await
                }
                HostQuery::PublicDns { name, .. } => {
                    self.describe_instances(scope, None, Some(("dns-name", name.clone())))
                        .await
                }
                HostQuery::PrivateDns { name, .. } => {
                    self.describe_instances(scope, None, Some(("private-dns-name", name.clone())))
                        .await
                }
                HostQuery::NameTag(name) => {
                    self.describe_instances(scope, None, Some(("tag:Name", name.clone())))
                        .await
                }
            }
        })
    }

    fn instance<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Instance> {
        Box::pin(async move {
            let found = self.describe_instances(scope, Some(id), None).await?;
            found
                .into_iter()
                .find(|i| i.id == id)
                .ok_or_else(|| InventoryError::NotFound {
                    what: format!("instance {id}"),
                    scope: scope.clone(),
                })
        })
    }

    fn image<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Image> {
        Box::pin(async move {
            let client = self.client(scope).await?;
            self.count();
            let answer = client
                .describe_images()
                .image_ids(id)
                .send()
                .await
                .map_err(|e| self.error(e, "DescribeImages", scope))?;
            answer
                .images()
                .iter()
                .find(|i| i.image_id() == Some(id))
                .map(|i| convert_image(i, &scope.region))
                .ok_or_else(|| InventoryError::NotFound {
                    what: format!("image {id}"),
                    scope: scope.clone(),
                })
        })
    }

    fn snapshots<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a [String],
    ) -> InventoryFuture<'a, Vec<Snapshot>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            self.describe_snapshots(scope, ids).await
        })
    }

    fn key_pairs<'a>(&'a self, scope: &'a Scope) -> InventoryFuture<'a, Vec<KeyPair>> {
        Box::pin(async move {
            let client = self.client(scope).await?;
            self.count();
            let answer = client
                .describe_key_pairs()
                .include_public_key(true)
                .send()
                .await
                .map_err(|e| self.error(e, "DescribeKeyPairs", scope))?;
            let account = self
                .default_id
                .lock()
                .unwrap()
                .clone()
                .filter(|_| scope.account == DEFAULT_ACCOUNT)
                .unwrap_or_else(|| scope.account.clone());
            Ok(answer
                .key_pairs()
                .iter()
                .filter_map(|k| convert_key_pair(k, &account, &scope.region))
                .collect())
        })
    }
}

/// The SDK config for one profile (None = the standard chain), bounded in time.
async fn load(settings: &Ec2Settings, profile: Option<&str>) -> SdkConfig {
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

fn regions_for(configured: &[String], config: &SdkConfig) -> Vec<String> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    config
        .region()
        .map(|r| vec![r.as_ref().to_string()])
        .unwrap_or_default()
}

fn classify_code(code: &str, message: &str, action: &str, scope: &Scope) -> InventoryError {
    let scope = scope.clone();
    match code {
        "UnauthorizedOperation"
        | "AccessDenied"
        | "AccessDeniedException"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "OptInRequired" => {
            InventoryError::AccessDenied {
                action: format!("ec2:{action}"),
                scope,
                // EC2 appends a long encoded authorization message; the first sentence says it.
                message: first_sentence(message, code),
            }
        }
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => {
            InventoryError::Throttled { scope }
        }
        _ if code.ends_with(".NotFound") || code == "InvalidAMIID.Unavailable" => {
            InventoryError::NotFound {
                what: not_found_what(code, message),
                scope,
            }
        }
        "AuthFailure.NoCredentials" | "MissingAuthenticationToken" => {
            InventoryError::NoCredentials {
                account: scope.account,
            }
        }
        _ => InventoryError::Other(format!(
            "{action} in {scope}: {code}: {}",
            first_sentence(message, "")
        )),
    }
}

/// "The image id '[ami-1]' does not exist" -> "image ami-1", from the code when possible.
fn not_found_what(code: &str, message: &str) -> String {
    let id = message
        .split(|c: char| c.is_whitespace() || "'[]\",".contains(c))
        .find(|w| w.starts_with("i-") || w.starts_with("ami-") || w.starts_with("snap-"))
        .unwrap_or("");
    let kind = match code {
        c if c.starts_with("InvalidInstanceID") => "instance",
        c if c.starts_with("InvalidAMIID") => "image",
        c if c.starts_with("InvalidSnapshot") => "snapshot",
        c if c.starts_with("InvalidKeyPair") => "key pair",
        _ => code,
    };
    if id.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} {id}")
    }
}

fn first_sentence(message: &str, fallback: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let cut = line
        .find(". Encoded authorization failure message")
        .unwrap_or(line.len());
    let sentence = line[..cut].trim();
    if sentence.is_empty() {
        fallback.to_string()
    } else {
        sentence.to_string()
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

/// The innermost cause, which says what happened ("Connection refused").
fn last_cause(chain: &[String]) -> String {
    chain
        .iter()
        .rev()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default()
}

/// The SDK reports a chain that found no credentials as a request construction failure
/// whose causes say so; there is no typed variant to match.
fn mentions_credentials(chain: &[String]) -> bool {
    chain.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s.contains("no credentials")
            || s.contains("credentials provider")
            || s.contains("failed to load credentials")
            || s.contains("could not load credentials")
            || s.contains("profile file")
    })
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

fn convert_instance(i: &aws_sdk_ec2::types::Instance, owner: &str, region: &str) -> Instance {
    let ip = |s: Option<&str>| s.and_then(|s| s.parse::<IpAddr>().ok());
    let ipv6 = i
        .ipv6_address()
        .or_else(|| {
            i.network_interfaces()
                .iter()
                .flat_map(|n| n.ipv6_addresses())
                .find_map(|a| a.ipv6_address())
        })
        .and_then(|s| s.parse().ok());
    let state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| InstanceState::from(n.as_str().to_string()))
        .unwrap_or(InstanceState::Unknown("unknown".into()));
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        state,
        key_name: non_empty(i.key_name()),
        image_id: non_empty(i.image_id()),
        account: owner.to_string(),
        region: region.to_string(),
        private_ip: ip(i.private_ip_address()),
        public_ip: ip(i.public_ip_address()),
        ipv6,
        public_dns: non_empty(i.public_dns_name()),
        private_dns: non_empty(i.private_dns_name()),
        name_tag: i
            .tags()
            .iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| non_empty(t.value())),
    }
}

fn convert_image(i: &aws_sdk_ec2::types::Image, region: &str) -> Image {
    let mappings = i.block_device_mappings();
    let root = i.root_device_name();
    let root_snapshot = mappings
        .iter()
        .find(|m| root.is_some() && m.device_name() == root)
        .or_else(|| mappings.iter().find(|m| m.ebs().is_some()))
        .and_then(|m| m.ebs())
        .and_then(|e| non_empty(e.snapshot_id()));
    Image {
        id: i.image_id().unwrap_or_default().to_string(),
        owner_account: i.owner_id().unwrap_or_default().to_string(),
        name: non_empty(i.name()),
        description: non_empty(i.description()),
        creation_date: non_empty(i.creation_date()),
        platform_details: non_empty(i.platform_details()),
        source_instance_id: non_empty(i.source_instance_id()),
        source_image_id: non_empty(i.source_image_id()),
        source_image_region: non_empty(i.source_image_region()),
        root_snapshot_id: root_snapshot,
        region: region.to_string(),
    }
}

fn convert_snapshot(s: &aws_sdk_ec2::types::Snapshot) -> Snapshot {
    Snapshot {
        id: s.snapshot_id().unwrap_or_default().to_string(),
        description: non_empty(s.description()),
    }
}

fn convert_key_pair(
    k: &aws_sdk_ec2::types::KeyPairInfo,
    account: &str,
    region: &str,
) -> Option<KeyPair> {
    let key_type = match k.key_type() {
        Some(aws_sdk_ec2::types::KeyType::Ed25519) => KeyType::Ed25519,
        Some(aws_sdk_ec2::types::KeyType::Rsa) => KeyType::Rsa,
        // Older answers omit the type; the public key says it.
        _ if k.public_key().is_some_and(|p| p.starts_with("ssh-ed25519")) => KeyType::Ed25519,
        _ => KeyType::Rsa,
    };
    Some(KeyPair {
        name: non_empty(k.key_name())?,
        id: non_empty(k.key_pair_id()),
        key_type,
        fingerprint: non_empty(k.key_fingerprint()),
        public_key: non_empty(k.public_key()),
        account: account.to_string(),
        region: region.to_string(),
    })
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

    #[test]
    fn error_codes_become_variants() {
        let scope = Scope::new("222222222222", "us-east-1");
        let denied = classify_code(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation. Encoded authorization failure message: abc",
            "DescribeImages",
            &scope,
        );
        assert_eq!(
            denied.to_string(),
            "access denied to ec2:DescribeImages in account 222222222222 (us-east-1): You are not authorized to perform this operation"
        );
        assert_eq!(
            classify_code("RequestLimitExceeded", "", "DescribeInstances", &scope),
            InventoryError::Throttled {
                scope: scope.clone()
            }
        );
        assert_eq!(
            classify_code(
                "InvalidAMIID.NotFound",
                "The image id '[ami-0123456789abcdef0]' does not exist",
                "DescribeImages",
                &scope
            )
            .to_string(),
            "image ami-0123456789abcdef0 not found in account 222222222222 (us-east-1)"
        );
        assert_eq!(
            classify_code(
                "InvalidInstanceID.NotFound",
                "The instance ID 'i-0123abcd' does not exist",
                "DescribeInstances",
                &scope
            )
            .to_string(),
            "instance i-0123abcd not found in account 222222222222 (us-east-1)"
        );
    }
}

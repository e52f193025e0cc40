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

mod convert;
mod errors;
mod settings;

pub use settings::{endpoint_choice, AccountProfile, Ec2Settings, EndpointChoice, DEFAULT_TIMEOUT};

use convert::{convert_image, convert_instance, convert_key_pair, convert_snapshot};
use errors::{classify_code, error_chain, last_cause, mentions_credentials};
use settings::{load, regions_for};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, Result};
use aws_config::{Region, SdkConfig};
use aws_sdk_ec2::config::ProvideCredentials;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;

use super::{
    HostQuery, Image, Instance, Inventory, InventoryError, InventoryFuture, KeyPair, Scope,
    Snapshot,
};

/// The account id a [`Scope`] uses for the default credential chain while its real id is
/// not known yet (see the module docs).
pub const DEFAULT_ACCOUNT: &str = "default";

/// Pages of one `DescribeInstances` filter query at most; a host name matching more than
/// this many pages of instances is not a host name.
const MAX_PAGES: usize = 3;

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
        if let Some(id) = locked(&self.default_id).clone() {
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
        let default_id = locked(&self.default_id)
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
        let mut known = locked(&self.default_id);
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
        let default_id = locked(&self.default_id).clone();
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
            && locked(&self.default_id).is_none()
        {
            // Maybe the default chain's account: its credentials may say so (no API call).
            self.default_account().await;
        }
        let account = self.account(scope)?;
        let key = (account.profile.clone(), scope.region.clone());
        let mut clients = locked(&self.clients);
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
            let account = locked(&self.default_id)
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

/// The guarded value even after a panic elsewhere while it was held: both values here (an
/// account id, a map of clients) stay consistent at every step, so there is nothing to undo.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

//! Name resolution behind the policy: every address a name resolves to is checked, and the
//! client connects only to the addresses returned here, so a name cannot be re-pointed between
//! the check and the connection (DNS rebinding).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::policy::{NetworkPolicy, Refusal, is_metadata_host};

/// Resolves host names to addresses: the system's resolver in production, a table in tests.
#[async_trait]
pub trait HostResolver: Send + Sync {
    /// # Errors
    /// An I/O error when the name does not resolve.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
pub struct SystemResolver;

#[async_trait]
impl HostResolver for SystemResolver {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|address| address.ip())
            .collect())
    }
}

/// A name the policy refused; found again in the client's error chain to answer `blocked`.
#[derive(Debug)]
pub(crate) struct BlockedHost {
    pub(crate) host: String,
    pub(crate) address: Option<IpAddr>,
    pub(crate) refusal: Refusal,
}

impl BlockedHost {
    /// For a person: what was refused, and whether an operator can open it.
    pub(crate) fn detail(&self) -> String {
        match self.refusal {
            Refusal::Metadata => {
                format!("Berth never contacts cloud metadata services, and {self} is one")
            }
            Refusal::NotGlobal => format!(
                "Berth does not contact this registry: {self}, which is not a public address. An \
                 operator can allow private networks with verification.allowed_networks"
            ),
        }
    }
}

impl fmt::Display for BlockedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            Some(address) if address.to_string() != self.host => {
                write!(f, "{} (which resolves to {address})", self.host)
            }
            _ => f.write_str(&self.host),
        }
    }
}

impl std::error::Error for BlockedHost {}

/// The resolver installed in the client: looks up, then refuses the whole name if any of its
/// addresses is refused (an attacker's name must not mix public and private addresses).
pub(crate) struct GuardedResolver {
    pub(crate) inner: Arc<dyn HostResolver>,
    pub(crate) policy: Arc<NetworkPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = self.inner.clone();
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_metadata_host(&host) {
                return Err(Box::new(BlockedHost {
                    host,
                    address: None,
                    refusal: Refusal::Metadata,
                }) as _);
            }
            let addresses = inner.lookup(&host).await?;
            if addresses.is_empty() {
                return Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} has no address"),
                )) as _);
            }
            for &address in &addresses {
                if let Err(refusal) = policy.check(address) {
                    return Err(Box::new(BlockedHost {
                        host,
                        address: Some(address),
                        refusal,
                    }) as _);
                }
            }
            // Port 0: the client puts in the URL's port.
            let addrs: Addrs = Box::new(
                addresses
                    .into_iter()
                    .map(|address| SocketAddr::new(address, 0)),
            );
            Ok(addrs)
        })
    }
}

//! Which addresses and hosts a verification may contact: deny unless globally routable
//! (`reference/registry-auth.md` 3.3), opened only by the operator's `allowed_networks`, with a
//! floor of cloud metadata addresses that nothing opens.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix))
}

const fn v6(segments: [u16; 8], prefix: u8) -> IpNet {
    let [a, b, c, d, e, f, g, h] = segments;
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(a, b, c, d, e, f, g, h),
        prefix,
    ))
}

/// Special-purpose ranges (IANA registries) that are not globally routable.
const BLOCKED: &[IpNet] = &[
    v4(0, 0, 0, 0, 8),
    v4(10, 0, 0, 0, 8),
    v4(100, 64, 0, 0, 10),
    v4(127, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v4(172, 16, 0, 0, 12),
    v4(192, 0, 0, 0, 24),
    v4(192, 0, 2, 0, 24),
    v4(192, 88, 99, 0, 24),
    v4(192, 168, 0, 0, 16),
    v4(198, 18, 0, 0, 15),
    v4(198, 51, 100, 0, 24),
    v4(203, 0, 113, 0, 24),
    v4(224, 0, 0, 0, 4),
    v4(240, 0, 0, 0, 4),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];

/// Cloud instance metadata services: blocked whatever `allowed_networks` says.
const METADATA: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Host names of metadata services, refused before any lookup.
const METADATA_HOSTS: &[&str] = &["metadata.google.internal"];

/// Why a setting was refused; the text names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("'{0}' is not a CIDR such as 10.0.0.0/8 or fd00::/8")]
    Network(String),
    #[error("'{0}' is not a registry host[:port] such as registry.local:5000")]
    InsecureRegistry(String),
}

/// Why an address or host may not be contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A cloud metadata service: never contacted.
    Metadata,
    /// Not globally routable, and not in `allowed_networks`.
    NotGlobal,
}

/// A registry the operator lets Berth reach over plain http: a host, on one port or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsecureRegistry {
    host: String,
    port: Option<u16>,
}

impl InsecureRegistry {
    /// `host`, `host:port`, `[v6]` or `[v6]:port`; the host is compared lowercased.
    ///
    /// # Errors
    /// [`PolicyError::InsecureRegistry`] naming the text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let refuse = || PolicyError::InsecureRegistry(text.to_owned());
        if text.is_empty() || text.contains(['/', '@', '?', '#', ' ']) {
            return Err(refuse());
        }
        let url = url::Url::parse(&format!("http://{text}")).map_err(|_| refuse())?;
        let host = url.host_str().ok_or_else(refuse)?.to_owned();
        // `url` drops a port equal to the scheme's default; keep what was written.
        let written_port = match text.rsplit_once(':') {
            Some((_, port)) if !text.ends_with(']') => {
                Some(port.parse::<u16>().map_err(|_| refuse())?)
            }
            _ => None,
        };
        Ok(Self {
            host,
            port: written_port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.is_none_or(|allowed| allowed == port)
    }
}

impl std::fmt::Display for InsecureRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// The operator's network policy for verification.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    allowed: Vec<IpNet>,
    insecure: Vec<InsecureRegistry>,
}

impl NetworkPolicy {
    pub fn new(allowed: Vec<IpNet>, insecure: Vec<InsecureRegistry>) -> Self {
        Self { allowed, insecure }
    }

    /// Parses the two settings.
    ///
    /// # Errors
    /// The first malformed entry, named.
    pub fn parse(allowed: &[String], insecure: &[String]) -> Result<Self, PolicyError> {
        let allowed = allowed
            .iter()
            .map(|text| {
                text.trim()
                    .parse::<IpNet>()
                    .map_err(|_| PolicyError::Network(text.clone()))
            })
            .collect::<Result<_, _>>()?;
        let insecure = insecure
            .iter()
            .map(|text| InsecureRegistry::parse(text.trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self::new(allowed, insecure))
    }

    pub fn allowed_networks(&self) -> &[IpNet] {
        &self.allowed
    }

    pub fn insecure_registries(&self) -> &[InsecureRegistry] {
        &self.insecure
    }

    /// Whether `ip` may be contacted.
    ///
    /// # Errors
    /// The [`Refusal`] that applies.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if is_metadata(ip) {
            return Err(Refusal::Metadata);
        }
        if !BLOCKED.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        Err(Refusal::NotGlobal)
    }

    /// Whether `host` (as `url` spells it: lowercased, IPv6 in brackets) on `port` may be
    /// spoken to over plain http.
    pub fn allows_http(&self, host: &str, port: u16) -> bool {
        self.insecure
            .iter()
            .any(|registry| registry.matches(host, port))
    }
}

/// Whether a host name names a metadata service (with or without the root's trailing dot).
pub fn is_metadata_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    METADATA_HOSTS
        .iter()
        .any(|name| host.eq_ignore_ascii_case(name))
}

/// An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Metadata addresses, also when embedded in a NAT64 or IPv4-compatible address, so that
/// opening those ranges never opens the metadata service.
fn is_metadata(ip: IpAddr) -> bool {
    if METADATA.contains(&ip) {
        return true;
    }
    let IpAddr::V6(address) = ip else {
        return false;
    };
    let octets = address.octets();
    let embedded = IpAddr::V4(Ipv4Addr::new(
        octets[12], octets[13], octets[14], octets[15],
    ));
    let nat64_or_compat = [v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), v6([0; 8], 96)]
        .iter()
        .any(|net| net.contains(&ip));
    nat64_or_compat && METADATA.contains(&embedded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    #[test]
    fn every_special_purpose_range_is_blocked_by_default() {
        let policy = NetworkPolicy::default();
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::",
            "2001::1",
            "2001:1ff::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert_eq!(
                policy.check(ip(address)),
                Err(Refusal::NotGlobal),
                "{address}"
            );
        }
    }

    #[test]
    fn global_addresses_pass() {
        let policy = NetworkPolicy::default();
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "2600:1f18::1",
            "2a00:1450::1",
        ] {
            assert_eq!(policy.check(ip(address)), Ok(()), "{address}");
        }
    }

    #[test]
    fn metadata_addresses_stay_blocked_whatever_is_allowed() {
        let everything = NetworkPolicy::parse(&["0.0.0.0/0".into(), "::/0".into()], &[]).unwrap();
        for address in [
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:100.100.100.200",
            "64:ff9b::a9fe:a9fe",
            "::169.254.169.254",
        ] {
            assert_eq!(
                everything.check(ip(address)),
                Err(Refusal::Metadata),
                "{address}"
            );
        }
        for host in ["metadata.google.internal", "METADATA.google.internal."] {
            assert!(is_metadata_host(host), "{host}");
        }
        assert!(!is_metadata_host("metadata.google.internal.example.com"));
    }

    #[test]
    fn allowed_networks_open_exactly_what_they_name() {
        let policy = NetworkPolicy::parse(
            &[
                "10.1.0.0/16".into(),
                "127.0.0.0/8".into(),
                "fd00:1::/32".into(),
            ],
            &[],
        )
        .unwrap();
        for (address, allowed) in [
            ("10.1.2.3", true),
            ("10.2.0.1", false),
            ("127.0.0.1", true),
            ("::ffff:127.0.0.1", true),
            ("::1", false),
            ("192.168.1.1", false),
            ("fd00:1::5", true),
            ("fd00:2::5", false),
            ("169.254.169.254", false),
            ("8.8.8.8", true),
        ] {
            assert_eq!(policy.check(ip(address)).is_ok(), allowed, "{address}");
        }
    }

    #[test]
    fn malformed_settings_are_named() {
        for bad in ["10.0.0.0/33", "10.0.0.1", "ten/8", ""] {
            assert_eq!(
                NetworkPolicy::parse(&[bad.into()], &[]).unwrap_err(),
                PolicyError::Network(bad.into()),
                "{bad:?}"
            );
        }
        for bad in [
            "",
            "registry.local/x",
            "https://r.local",
            "r.local:99999",
            "r.local:x",
            "user@r",
        ] {
            assert_eq!(
                NetworkPolicy::parse(&[], &[bad.into()]).unwrap_err(),
                PolicyError::InsecureRegistry(bad.into()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn insecure_registries_match_host_and_port() {
        let policy = NetworkPolicy::parse(
            &[],
            &[
                "Registry.Local:5000".into(),
                "plain.local".into(),
                "[::1]:80".into(),
            ],
        )
        .unwrap();
        for (host, port, allowed) in [
            ("registry.local", 5000, true),
            ("registry.local", 5001, false),
            ("plain.local", 80, true),
            ("plain.local", 8080, true),
            ("other.local", 80, false),
            ("[::1]", 80, true),
            ("[::1]", 81, false),
        ] {
            assert_eq!(policy.allows_http(host, port), allowed, "{host}:{port}");
        }
    }
}

//! Image references and registry hosts as container clients write them: the Docker/OCI grammar of
//! the distribution `reference` package (`[domain/]path[:tag][@digest]`), normalised the way
//! Docker normalises them, so that a credential location can be matched against them.
//!
//! Decisions beyond the reference package, each from SPEC section 7.1:
//! - the Docker Hub aliases `docker.io`, `index.docker.io` and `registry-1.docker.io` are one
//!   registry, written `docker.io` (the package leaves `registry-1.docker.io` alone);
//! - hosts are lowercased (they compare case-insensitively); paths are case-sensitive, and
//!   uppercase in a path is an error, as in the package;
//! - a port is kept as written, `:443` included: Docker and the kubelet key their credentials by
//!   `host[:port]` exactly as the image names it, with no default-port equivalence, so dropping
//!   it would give a key that no client looks up;
//! - a port must be 1..=65535 (the package accepts any digits; no location can hold another).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The name Docker Hub is written as after normalisation.
pub const DOCKER_HUB: &str = "docker.io";
/// Every spelling of Docker Hub's host, [`DOCKER_HUB`] first.
pub const DOCKER_HUB_ALIASES: [&str; 3] = [DOCKER_HUB, "index.docker.io", "registry-1.docker.io"];
/// Longest repository path, `library/` included (the package's `NameTotalLengthMax`).
pub const MAX_PATH_LEN: usize = 255;
/// Longest reference text accepted: a host (253), a port, a path, a tag (128) and a digest.
pub const MAX_REFERENCE_LEN: usize = 1024;
const MAX_TAG_LEN: usize = 128;

/// A domain (`host[:port]`) of the grammar, for the patterns below.
macro_rules! domain_pattern {
    () => {
        concat!(
            r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])",
            r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*",
            r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
        )
    };
}

/// The reference grammar as a regular expression (for the OpenAPI document): every text
/// [`ImageReference::parse`] accepts matches it; a few it matches are still refused (a path over
/// 255 characters, a port over 65535, an unsupported digest algorithm).
pub const IMAGE_REFERENCE_PATTERN: &str = concat!(
    "^(?:",
    domain_pattern!(),
    "/)?",
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*",
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?",
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
);

/// A bare `host[:port]` as a regular expression: every text [`RegistryHost::parse`] accepts
/// matches it.
pub const REGISTRY_HOST_PATTERN: &str = concat!("^", domain_pattern!(), "$");

/// Why an image reference or a registry host was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Can't be blank.
    #[error("can't be blank")]
    Blank,
    /// Is too long (maximum is … characters).
    #[error("is too long (maximum is {MAX_REFERENCE_LEN} characters)")]
    TooLong,
    /// Must not include a protocol such as 'https://'.
    #[error("must not include a protocol such as 'https://'")]
    HasScheme,
    /// Must be a bare `host[:port]`, without a path.
    #[error("must be a bare host[:port], without a path")]
    HasPath,
    /// Has an invalid registry host.
    #[error("has an invalid registry host")]
    InvalidHost,
    /// Has an invalid port (it must be a number from 1 to 65535).
    #[error("has an invalid port (it must be a number from 1 to 65535)")]
    InvalidPort,
    /// Has an empty path component.
    #[error("has an empty path component")]
    EmptyComponent,
    /// Has a repository path with uppercase letters (it must be lowercase).
    #[error("has a repository path with uppercase letters (it must be lowercase)")]
    Uppercase,
    /// Has a repository path longer than … characters.
    #[error("has a repository path longer than {MAX_PATH_LEN} characters")]
    PathTooLong,
    #[error(
        "has an invalid path component (lowercase letters and digits, separated by '.', '_', '__' or '-')"
    )]
    /// Invalid component.
    InvalidComponent,
    /// Has an invalid tag.
    #[error("has an invalid tag")]
    InvalidTag,
    /// Has an invalid digest (sha256, sha384 or sha512 with lowercase hexadecimal).
    #[error("has an invalid digest (sha256, sha384 or sha512 with lowercase hexadecimal)")]
    InvalidDigest,
    /// Is a 64-character hexadecimal string, which is an image id, not a repository name.
    #[error("is a 64-character hexadecimal string, which is an image id, not a repository name")]
    HexName,
}

/// The first rules of both entry kinds: not blank, not over [`MAX_REFERENCE_LEN`], no scheme.
fn refuse_blank_long_or_schemed(text: &str) -> Result<(), ReferenceError> {
    if text.is_empty() {
        return Err(ReferenceError::Blank);
    }
    if text.len() > MAX_REFERENCE_LEN {
        return Err(ReferenceError::TooLong);
    }
    if text.contains("://") {
        return Err(ReferenceError::HasScheme);
    }
    Ok(())
}

/// A registry as a client addresses it: a lowercased host (a DNS name, an IPv4 address or a
/// bracketed IPv6 literal) and an optional port, Docker Hub's aliases written `docker.io`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegistryHost {
    host: String,
    port: Option<u16>,
}

impl RegistryHost {
    /// Parses a bare `host[:port]`, as a credential helper knows a registry.
    ///
    /// # Errors
    /// [`ReferenceError::Blank`], [`ReferenceError::TooLong`], [`ReferenceError::HasScheme`],
    /// [`ReferenceError::HasPath`], [`ReferenceError::InvalidHost`] or
    /// [`ReferenceError::InvalidPort`].
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        refuse_blank_long_or_schemed(text)?;
        if text.contains('/') {
            return Err(ReferenceError::HasPath);
        }
        Self::parse_authority(text)
    }

    fn parse_authority(text: &str) -> Result<Self, ReferenceError> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or(ReferenceError::InvalidHost)?;
            // The grammar's IPv6 literal is hexadecimal digits and colons: no embedded IPv4.
            if inside.contains('.') || inside.parse::<Ipv6Addr>().is_err() {
                return Err(ReferenceError::InvalidHost);
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(ReferenceError::InvalidHost)?),
            };
            (&text[..inside.len() + 2], port)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if !host.starts_with('[') && !is_domain_name(host) {
            return Err(ReferenceError::InvalidHost);
        }
        let port = port.map(parse_port).transpose()?;
        let mut host = host.to_ascii_lowercase();
        if port.is_none() && DOCKER_HUB_ALIASES.contains(&host.as_str()) {
            DOCKER_HUB.clone_into(&mut host);
        }
        Ok(Self { host, port })
    }

    /// The lowercased host, without the port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Docker Hub, whichever alias named it.
    pub fn is_docker_hub(&self) -> bool {
        self.port.is_none() && self.host == DOCKER_HUB
    }

    /// An IPv4 address or an IPv6 literal, which has no parent domains.
    pub fn is_ip_literal(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<Ipv4Addr>().is_ok()
    }
}

impl fmt::Display for RegistryHost {
    /// `host[:port]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn parse_port(text: &str) -> Result<u16, ReferenceError> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ReferenceError::InvalidPort);
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(ReferenceError::InvalidPort),
    }
}

/// `domain-component ('.' domain-component)*`, each `[a-zA-Z0-9]` or
/// `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A parsed image reference: registry, repository path, tag and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    registry: RegistryHost,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageReference {
    /// Parses `[domain/]path[:tag][@digest]` and normalises it: no domain means Docker Hub, and a
    /// one-component Hub path gets `library/`.
    ///
    /// # Errors
    /// A [`ReferenceError`] naming the first broken rule.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        refuse_blank_long_or_schemed(text)?;
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest)?)),
            None => (text, None),
        };
        // A tag is a `:` after the last `/`; an earlier `:` is the domain's port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(index) => {
                let split = last_slash + index;
                (
                    &name_and_tag[..split],
                    Some(parse_tag(&name_and_tag[split + 1..])?),
                )
            }
            None => (name_and_tag, None),
        };
        let (domain, remainder) = split_domain(name);
        let registry = match domain {
            Some(domain) => RegistryHost::parse_authority(domain)?,
            None => RegistryHost {
                host: DOCKER_HUB.to_owned(),
                port: None,
            },
        };
        if domain.is_none() && is_hex_id(remainder) {
            return Err(ReferenceError::HexName);
        }
        let path = if registry.is_docker_hub() && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_owned()
        };
        check_path(&path)?;
        Ok(Self {
            registry,
            path,
            tag,
            digest,
        })
    }

    /// The registry.
    pub fn registry(&self) -> &RegistryHost {
        &self.registry
    }

    /// The repository path, without the registry, the tag or the digest.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `host[:port]/path`, the name matching uses: tag and digest play no part in it.
    pub fn normalized_name(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }
}

/// The domain, when the first component is one: it holds `.` or `:`, is `localhost`, or has
/// uppercase letters (which a path cannot); otherwise the whole name is a Docker Hub path.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn is_hex_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_path(path: &str) -> Result<(), ReferenceError> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::EmptyComponent);
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase);
        }
        if !is_path_component(component) {
            return Err(ReferenceError::InvalidComponent);
        }
    }
    if path.len() > MAX_PATH_LEN {
        return Err(ReferenceError::PathTooLong);
    }
    Ok(())
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `[_.]|__|[-]+`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alphanumeric) || !bytes.last().is_some_and(alphanumeric) {
        return false;
    }
    let mut separator: &[u8] = &[];
    let mut start = 0;
    for (index, b) in bytes.iter().enumerate() {
        if alphanumeric(b) {
            let allowed = matches!(separator, [] | [b'.'] | [b'_'] | [b'_', b'_'])
                || separator.iter().all(|s| *s == b'-');
            if !allowed {
                return false;
            }
            start = index + 1;
            separator = &[];
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator = &bytes[start..=index];
        } else {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
fn parse_tag(text: &str) -> Result<String, ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let valid = !text.is_empty()
        && text.len() <= MAX_TAG_LEN
        && text.bytes().next().is_some_and(word)
        && text.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ReferenceError::InvalidTag)
    }
}

/// `algorithm:hex`, with the algorithms the `go-digest` package validates.
fn parse_digest(text: &str) -> Result<String, ReferenceError> {
    let (algorithm, hex) = text.split_once(':').ok_or(ReferenceError::InvalidDigest)?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::InvalidDigest),
    };
    let valid = hex.len() == length && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ReferenceError::InvalidDigest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Each valid reference, its normalised name, tag and digest.
    #[test]
    fn parses_and_normalises_references() {
        let digest_ref = format!("nginx@{SHA}");
        let tagged_digest = format!("r.example.com/team/app:v1@{SHA}");
        let long_path = format!("r.io/{}", "a".repeat(255));
        let long_hub = format!("{}/{}", "a".repeat(100), "b".repeat(154));
        let cases: Vec<(&str, &str, Option<&str>, Option<&str>)> = vec![
            ("nginx", "docker.io/library/nginx", None, None),
            ("nginx:1.27", "docker.io/library/nginx", Some("1.27"), None),
            ("library/nginx", "docker.io/library/nginx", None, None),
            (
                "bitnami/redis:7",
                "docker.io/bitnami/redis",
                Some("7"),
                None,
            ),
            ("docker.io/nginx", "docker.io/library/nginx", None, None),
            (
                "index.docker.io/nginx",
                "docker.io/library/nginx",
                None,
                None,
            ),
            (
                "registry-1.docker.io/team/app",
                "docker.io/team/app",
                None,
                None,
            ),
            ("Docker.IO/team/app", "docker.io/team/app", None, None),
            ("docker.io:5000/app", "docker.io:5000/app", None, None),
            ("r.example.com/app", "r.example.com/app", None, None),
            (
                "R.Example.COM/team/app:Latest",
                "r.example.com/team/app",
                Some("Latest"),
                None,
            ),
            (
                "r.example.com:5000/team/app:v1",
                "r.example.com:5000/team/app",
                Some("v1"),
                None,
            ),
            ("r.example.com:443/app", "r.example.com:443/app", None, None),
            ("localhost/app", "localhost/app", None, None),
            (
                "localhost:5000/app:dev",
                "localhost:5000/app",
                Some("dev"),
                None,
            ),
            ("myregistry:5000/app", "myregistry:5000/app", None, None),
            ("Foo/app", "foo/app", None, None),
            ("10.0.0.1/app", "10.0.0.1/app", None, None),
            ("10.0.0.1:5000/a/b", "10.0.0.1:5000/a/b", None, None),
            ("[::1]/app", "[::1]/app", None, None),
            ("[::1]:5000/app:v2", "[::1]:5000/app", Some("v2"), None),
            (
                "[2001:DB8::1]:5000/app",
                "[2001:db8::1]:5000/app",
                None,
                None,
            ),
            ("a/b/c/d/e", "docker.io/a/b/c/d/e", None, None),
            (
                "r.io/a__b/c--d/e.f/g_h",
                "r.io/a__b/c--d/e.f/g_h",
                None,
                None,
            ),
            (&digest_ref, "docker.io/library/nginx", None, Some(SHA)),
            (
                &tagged_digest,
                "r.example.com/team/app",
                Some("v1"),
                Some(SHA),
            ),
            (&long_path, &long_path, None, None),
            (&long_hub, "", None, None),
        ];
        for (input, normalized, tag, digest) in cases {
            let parsed = ImageReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let expected = if normalized.is_empty() {
                format!("docker.io/{input}")
            } else {
                normalized.to_owned()
            };
            assert_eq!(parsed.normalized_name(), expected, "{input}");
            assert_eq!(parsed.tag(), tag, "{input}");
            assert_eq!(parsed.digest(), digest, "{input}");
        }
    }

    #[test]
    fn refuses_what_the_grammar_refuses() {
        let too_long_path = format!("r.io/{}", "a".repeat(256));
        // `library/` counts: 248 characters plus it are 256.
        let too_long_hub = "a".repeat(248);
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let bad_hex_digest = format!("nginx@sha256:{}", "A".repeat(64));
        let huge = "a".repeat(MAX_REFERENCE_LEN + 1);
        let long_tag = format!("nginx:{}", "t".repeat(129));
        let cases: Vec<(&str, ReferenceError)> = vec![
            ("", ReferenceError::Blank),
            (&huge, ReferenceError::TooLong),
            ("https://r.io/app", ReferenceError::HasScheme),
            ("Nginx", ReferenceError::Uppercase),
            ("team/App", ReferenceError::Uppercase),
            ("r.io/Team/app", ReferenceError::Uppercase),
            ("r.io//app", ReferenceError::EmptyComponent),
            ("r.io/app/", ReferenceError::EmptyComponent),
            ("r.io/", ReferenceError::EmptyComponent),
            ("/app", ReferenceError::EmptyComponent),
            (&too_long_path, ReferenceError::PathTooLong),
            (&too_long_hub, ReferenceError::PathTooLong),
            ("r.io/-app", ReferenceError::InvalidComponent),
            ("r.io/app-", ReferenceError::InvalidComponent),
            ("r.io/a..b", ReferenceError::InvalidComponent),
            ("r.io/a___b", ReferenceError::InvalidComponent),
            ("r.io/a b", ReferenceError::InvalidComponent),
            ("r.io/a$b", ReferenceError::InvalidComponent),
            ("r.io:0/app", ReferenceError::InvalidPort),
            ("r.io:65536/app", ReferenceError::InvalidPort),
            ("r.io:/app", ReferenceError::InvalidPort),
            ("r.io:abc/app", ReferenceError::InvalidPort),
            ("-r.io/app", ReferenceError::InvalidHost),
            ("r..io/app", ReferenceError::InvalidHost),
            ("r_x.io/app", ReferenceError::InvalidHost),
            ("[zz]:5000/app", ReferenceError::InvalidHost),
            ("[::1/app", ReferenceError::InvalidHost),
            ("[::ffff:1.2.3.4]/app", ReferenceError::InvalidHost),
            ("nginx:", ReferenceError::InvalidTag),
            ("nginx:.v1", ReferenceError::InvalidTag),
            ("nginx:v1+x", ReferenceError::InvalidTag),
            (&long_tag, ReferenceError::InvalidTag),
            ("nginx@", ReferenceError::InvalidDigest),
            ("nginx@sha256:abc", ReferenceError::InvalidDigest),
            (
                "nginx@md5:0123456789abcdef0123456789abcdef",
                ReferenceError::InvalidDigest,
            ),
            (&bad_hex_digest, ReferenceError::InvalidDigest),
            (hex, ReferenceError::HexName),
        ];
        for (input, error) in cases {
            assert_eq!(ImageReference::parse(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn registry_hosts_are_bare_and_normalised() {
        for (input, expected) in [
            ("r.example.com", "r.example.com"),
            ("R.Example.com:5000", "r.example.com:5000"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("DOCKER.IO", "docker.io"),
            ("localhost:5000", "localhost:5000"),
            ("[::1]:5000", "[::1]:5000"),
            ("10.1.2.3", "10.1.2.3"),
        ] {
            assert_eq!(
                RegistryHost::parse(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        for (input, error) in [
            ("", ReferenceError::Blank),
            ("https://r.example.com", ReferenceError::HasScheme),
            ("r.example.com/team", ReferenceError::HasPath),
            ("r.example.com:0", ReferenceError::InvalidPort),
            ("r.example.com:", ReferenceError::InvalidPort),
            ("bad_host", ReferenceError::InvalidHost),
            ("[::1]x", ReferenceError::InvalidHost),
        ] {
            assert_eq!(RegistryHost::parse(input), Err(error), "{input:?}");
        }
        assert!(
            RegistryHost::parse("index.docker.io")
                .unwrap()
                .is_docker_hub()
        );
        assert!(
            !RegistryHost::parse("docker.io:443")
                .unwrap()
                .is_docker_hub()
        );
        assert!(RegistryHost::parse("[::1]").unwrap().is_ip_literal());
        assert!(RegistryHost::parse("10.0.0.1").unwrap().is_ip_literal());
        assert!(
            !RegistryHost::parse("10.0.0.1.example.com")
                .unwrap()
                .is_ip_literal()
        );
    }
}

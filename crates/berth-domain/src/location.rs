//! A registry location: `host[:port][/path]`, no scheme.

use std::fmt;

/// Longest location accepted: a host (253) plus a port and a repository path, bounded so that an
/// index on the column stays small on every database.
pub const MAX_LOCATION_LEN: usize = 512;

/// Why a location was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// Location can't be blank.
    #[error("Location can't be blank")]
    Blank,
    /// Location must not include a protocol such as 'https://'.
    #[error("Location must not include a protocol such as 'https://'")]
    HasScheme,
    /// Location is too long (maximum is … characters).
    #[error("Location is too long (maximum is {MAX_LOCATION_LEN} characters)")]
    TooLong,
    #[error(
        "Location must be a registry host name, optionally with a port and a path, such as 'registry.example.com:5000/team'"
    )]
    /// Malformed.
    Malformed,
}

/// Where a registry lives: a host name (lowercased), an optional port and an optional path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegistryLocation(String);

impl RegistryLocation {
    /// # Errors
    /// A [`LocationError`] naming the broken rule.
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        if text.trim().is_empty() {
            return Err(LocationError::Blank);
        }
        if text.contains("://") {
            return Err(LocationError::HasScheme);
        }
        if text.len() > MAX_LOCATION_LEN {
            return Err(LocationError::TooLong);
        }
        let (authority, path) = match text.split_once('/') {
            Some((authority, path)) => (authority, Some(path)),
            None => (text, None),
        };
        let (host, port) = split_port(authority)?;
        if !is_host(host) {
            return Err(LocationError::Malformed);
        }
        if let Some(port) = port {
            let valid = !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && matches!(port.parse::<u32>(), Ok(1..=65535));
            if !valid {
                return Err(LocationError::Malformed);
            }
        }
        if path.is_some_and(|path| !path.split('/').all(is_path_component)) {
            return Err(LocationError::Malformed);
        }
        let mut normalized = host.to_ascii_lowercase();
        if let Some(port) = port {
            normalized.push(':');
            normalized.push_str(port);
        }
        if let Some(path) = path {
            normalized.push('/');
            normalized.push_str(path);
        }
        Ok(Self(normalized))
    }

    /// Its text form, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistryLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn split_port(authority: &str) -> Result<(&str, Option<&str>), LocationError> {
    if let Some(rest) = authority.strip_prefix('[') {
        // A bracketed IPv6 literal: `[::1]:5000`.
        let (inside, after) = rest.split_once(']').ok_or(LocationError::Malformed)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(LocationError::Malformed)?),
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(LocationError::Malformed);
        }
        return Ok((&authority[..inside.len() + 2], port));
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn is_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true; // checked by `split_port`
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A repository path component as the Docker distribution grammar has it:
/// alphanumerics separated by single `.`, `_`, `__` or runs of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return false;
    }
    let mut separator_run = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() {
            let allowed = separator_run.is_empty()
                || separator_run == "."
                || separator_run == "_"
                || separator_run == "__"
                || separator_run.bytes().all(|s| s == b'-');
            if !allowed {
                return false;
            }
            separator_run.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator_run.push(b as char);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hosts_ports_and_paths() {
        for (input, stored) in [
            ("registry.example.com", "registry.example.com"),
            ("Registry.Example.COM", "registry.example.com"),
            ("registry.example.com:5000", "registry.example.com:5000"),
            ("registry.example.com/team", "registry.example.com/team"),
            (
                "Registry.example.com:443/Team/app",
                "registry.example.com:443/Team/app",
            ),
            (
                "localhost:5000/a__b/c--d/e.f",
                "localhost:5000/a__b/c--d/e.f",
            ),
            ("10.0.0.1:5000", "10.0.0.1:5000"),
            ("[::1]:5000/x", "[::1]:5000/x"),
            ("docker.io", "docker.io"),
        ] {
            assert_eq!(
                RegistryLocation::parse(input).unwrap().as_str(),
                stored,
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_schemes_and_malformed_text() {
        assert_eq!(RegistryLocation::parse(""), Err(LocationError::Blank));
        assert_eq!(RegistryLocation::parse("   "), Err(LocationError::Blank));
        assert_eq!(
            RegistryLocation::parse("https://registry.example.com"),
            Err(LocationError::HasScheme)
        );
        assert_eq!(
            RegistryLocation::parse(&format!("r.example.com/{}", "a".repeat(600))),
            Err(LocationError::TooLong)
        );
        for bad in [
            " registry.example.com",
            "registry.example.com/",
            "registry.example.com//x",
            "registry.example.com:",
            "registry.example.com:0",
            "registry.example.com:65536",
            "registry.example.com:abc",
            "-bad.example.com",
            "bad_host.example.com",
            "registry..example.com",
            "registry.example.com/-x",
            "registry.example.com/a b",
            "registry.example.com/a?b",
            "[zz]:5000",
            "user@registry.example.com",
        ] {
            assert_eq!(
                RegistryLocation::parse(bad),
                Err(LocationError::Malformed),
                "{bad:?}"
            );
        }
    }
}

//! `berth healthcheck`: one `GET /readyz` on the configured listener, for a container's
//! `HEALTHCHECK` in an image that ships no curl. Plain `std` HTTP/1.0: the probe is one request
//! on loopback, and the binary stays free of an HTTP client.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};

/// How long the probe waits to connect, and then for the whole answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The status line and headers fit well within this; the body is not needed.
const MAX_ANSWER: u64 = 16 * 1024;

/// The address to probe for a `listen` setting: an unspecified host (`0.0.0.0`, `::`) is
/// reached on loopback.
///
/// # Errors
/// `listen` is not a `host:port` that resolves.
pub fn probe_address(listen: &str) -> anyhow::Result<SocketAddr> {
    let mut address = listen
        .to_socket_addrs()
        .with_context(|| format!("listen ({listen:?}) is not a host:port"))?
        .next()
        .with_context(|| format!("listen ({listen:?}) resolves to no address"))?;
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    Ok(address)
}

/// `GET /readyz` at `address`: `Ok` on a 200, an error naming the status or the failure
/// otherwise.
///
/// # Errors
/// No connection, no HTTP answer within [`TIMEOUT`], or a status other than 200.
pub fn check(address: SocketAddr) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET /readyz HTTP/1.0\r\nHost: {address}\r\nUser-Agent: berth-healthcheck\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .with_context(|| format!("no answer from {address}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1);
    match status {
        Some("200") => Ok(()),
        Some(status) => bail!("{address}/readyz answered {status}"),
        None => bail!("{address}/readyz gave no HTTP answer"),
    }
}

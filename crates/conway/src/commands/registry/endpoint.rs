//! `ADDRESS:PORT` as `conway register` takes it: `127.0.0.1:9000`, `[::1]:80`,
//! `billing.internal:443`.

use std::net::SocketAddr;
use std::str::FromStr;

/// Where an instance listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// An IP address (IPv6 without brackets) or a host name.
    pub(crate) address: String,
    /// 1 to 65535.
    pub(crate) port: u16,
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str =
            "expected ADDRESS:PORT, like 127.0.0.1:9000, [::1]:9000 or billing.internal:9000";
        if let Ok(socket) = input.parse::<SocketAddr>() {
            return match socket.port() {
                0 => Err(format!("port 0 in {input:?}: the port must be 1 to 65535")),
                port => Ok(Self {
                    address: socket.ip().to_string(),
                    port,
                }),
            };
        }
        if input.starts_with('[') {
            return Err(format!("{input:?}: expected [IPV6]:PORT, like [::1]:9000"));
        }
        let Some((host, port)) = input.rsplit_once(':') else {
            return Err(format!("no port in {input:?}: {EXPECTED}"));
        };
        if host.contains(':') {
            return Err(format!(
                "{input:?}: an IPv6 address goes in brackets, like [::1]:9000"
            ));
        }
        if !is_host_name(host) {
            return Err(format!(
                "{host:?} is neither an IP address nor a host name: {EXPECTED}"
            ));
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(Self {
                address: host.to_owned(),
                port,
            }),
            _ => Err(format!(
                "invalid port {port:?}: the port must be a number from 1 to 65535"
            )),
        }
    }
}

/// Dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_every_kind_parse() {
        for (input, address, port) in [
            ("127.0.0.1:9000", "127.0.0.1", 9000),
            ("[::1]:80", "::1", 80),
            ("[fe80::1]:65535", "fe80::1", 65535),
            ("billing.internal:443", "billing.internal", 443),
            ("localhost:1", "localhost", 1),
        ] {
            assert_eq!(
                input.parse(),
                Ok(Endpoint {
                    address: address.to_owned(),
                    port
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (input, says) in [
            ("127.0.0.1", "no port"),
            ("127.0.0.1:0", "port 0"),
            ("127.0.0.1:65536", "invalid port"),
            ("127.0.0.1:http", "invalid port"),
            ("::1:80", "brackets"),
            ("[::1]", "[IPV6]:PORT"),
            ("[::1]:0", "port 0"),
            ("[nope]:80", "[IPV6]:PORT"),
            (":80", "neither"),
            ("bad_host:80", "neither"),
            ("-x.example:80", "neither"),
            ("", "no port"),
        ] {
            let error = input.parse::<Endpoint>().expect_err(input);
            assert!(error.contains(says), "{input}: {error}");
        }
    }
}

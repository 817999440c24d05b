//! Upstream targets that are the gateway itself or the host's internal services: an API whose
//! upstream is Envoy's admin port (`/quitquitquit`, `/config_dump`), the controller's management or
//! xDS port, or a cloud metadata service would hand anyone who can call the API a way in.
//!
//! Refused, unless listed in [`UpstreamGuard::allowed`]:
//! - link-local addresses (`169.254.0.0/16`, `fe80::/10`, where metadata services such as
//!   `169.254.169.254` live) and unspecified addresses (`0.0.0.0`, `::`, which reach the local host), on
//!   any port;
//! - loopback addresses (`127.0.0.0/8`, `::1`, `localhost`) on one of the gateway's own ports
//!   ([`UpstreamGuard::gateway_ports`]); loopback on other ports is an ordinary co-located backend;
//! - hostnames that are IPv4 numbers in a non-standard form (`2130706433`, `0x7f.1`, `127.1`):
//!   resolvers read them as addresses, which would slip past the rules above.
//!
//! IPv4-mapped IPv6 addresses are judged as their IPv4 address. Other hostnames are not resolved
//! (validation does no I/O), so a name that resolves to an internal address is not caught here.

use std::net::IpAddr;

/// Which upstream targets validation refuses as internal (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamGuard {
    /// The ports the gateway listens on: Envoy's admin port and listeners, the controller's
    /// management, admin, metrics, xDS and ext_authz ports. Refused on a loopback address.
    pub gateway_ports: Vec<u16>,
    /// `host:port` targets allowed even so (IPv6 in brackets: `[::1]:9901`), from the configuration
    /// (`router.allowed_internal_upstreams`). Hosts are compared case-insensitively.
    pub allowed: Vec<String>,
}

/// The configuration file's default ports (Envoy admin 9901, listeners 8080 and 8443, management
/// 9090, metrics 9091, admin 9092, xDS 18000, ext_authz 18001) and nothing allowed.
impl Default for UpstreamGuard {
    fn default() -> Self {
        UpstreamGuard {
            gateway_ports: vec![8080, 8443, 9090, 9091, 9092, 9901, 18000, 18001],
            allowed: Vec::new(),
        }
    }
}

impl UpstreamGuard {
    /// Why `host:port` is refused as an upstream, or `None` when it may be used. `host` is a
    /// hostname or an IP literal (IPv6 without brackets), as the URL parser returns it.
    pub fn refusal(&self, host: &str, port: u16) -> Option<String> {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        if self.allowed.iter().any(|a| a.eq_ignore_ascii_case(&target)) {
            return None;
        }
        let hint = "list it in router.allowed_internal_upstreams to allow it";
        let why = match classify(host) {
            Kind::LinkLocal => "is a link-local address (cloud metadata services live there)",
            Kind::Unspecified => "is an unspecified address (it reaches the gateway's own host)",
            Kind::Loopback if self.gateway_ports.contains(&port) => {
                "is a port of the gateway itself on a loopback address"
            }
            Kind::OddNumber => {
                return Some(format!(
                    "Upstream host '{host}' is an IPv4 number in a non-standard form; write the address as a dotted quad"
                ));
            }
            Kind::Loopback | Kind::Other => return None,
        };
        Some(format!("Upstream {target} {why}; {hint}"))
    }
}

/// What kind of place a host names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    LinkLocal,
    Unspecified,
    Loopback,
    /// A hostname a resolver would read as an IPv4 address.
    OddNumber,
    Other,
}

fn classify(host: &str) -> Kind {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical(),
        Err(_) if host == "localhost" || host.ends_with(".localhost") => return Kind::Loopback,
        Err(_) if numeric_label(host.rsplit('.').next().unwrap_or_default()) => return Kind::OddNumber,
        Err(_) => return Kind::Other,
    };
    if ip.is_unspecified() {
        return Kind::Unspecified;
    }
    if ip.is_loopback() {
        return Kind::Loopback;
    }
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        // fe80::/10
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    };
    if link_local { Kind::LinkLocal } else { Kind::Other }
}

/// A decimal, octal or `0x` hexadecimal number: what `inet_aton` accepts in an IPv4 part. No top-level
/// domain looks like this, so a hostname ending in one is an address in disguise.
fn numeric_label(label: &str) -> bool {
    let hex = label.strip_prefix("0x");
    match hex {
        Some(h) => h.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> UpstreamGuard {
        UpstreamGuard {
            gateway_ports: vec![9901, 9090, 18000],
            allowed: vec!["127.0.0.1:18000".into(), "[FE80::1]:80".into()],
        }
    }

    #[test]
    fn link_local_and_unspecified_are_refused_on_every_port() {
        let g = guard();
        for (host, port) in [
            ("169.254.169.254", 80),
            ("169.254.0.1", 8080),
            ("fe80::1", 443),
            ("febf::1", 80),
            ("::ffff:169.254.169.254", 80),
            ("0.0.0.0", 9000),
            ("::", 9000),
        ] {
            assert!(g.refusal(host, port).is_some(), "{host}:{port}");
        }
        let msg = g.refusal("169.254.169.254", 80).unwrap_or_default();
        assert!(
            msg.contains("169.254.169.254:80") && msg.contains("allowed_internal_upstreams"),
            "{msg}"
        );
        assert!(g.refusal("fe80::1", 443).unwrap_or_default().contains("[fe80::1]:443"));
    }

    #[test]
    fn loopback_is_refused_only_on_gateway_ports() {
        let g = guard();
        for (host, port) in [
            ("127.0.0.1", 9901),
            ("127.9.9.9", 9090),
            ("::1", 9901),
            ("::ffff:127.0.0.1", 9901),
            ("localhost", 9901),
            ("LOCALHOST.", 9090),
            ("api.localhost", 9901),
        ] {
            assert!(g.refusal(host, port).is_some(), "{host}:{port}");
        }
        for (host, port) in [("127.0.0.1", 34567), ("::1", 8081), ("localhost", 3000)] {
            assert_eq!(g.refusal(host, port), None, "{host}:{port}");
        }
    }

    #[test]
    fn the_allow_list_lifts_a_refusal_for_exactly_that_target() {
        let g = guard();
        assert_eq!(g.refusal("127.0.0.1", 18000), None);
        assert!(g.refusal("127.0.0.2", 18000).is_some());
        assert_eq!(g.refusal("fe80::1", 80), None, "IPv6 bracketed, case-insensitive");
        assert!(g.refusal("fe80::1", 81).is_some());
    }

    #[test]
    fn numeric_hostnames_in_disguise_are_refused() {
        let g = guard();
        for host in ["2130706433", "0x7f000001", "127.1", "0177.0.0.1.", "a.0x1f"] {
            assert!(g.refusal(host, 80).is_some(), "{host}");
        }
    }

    #[test]
    fn ordinary_hosts_pass() {
        let g = guard();
        for host in [
            "sample-backend",
            "api.example.com",
            "10.0.0.5",
            "192.168.1.10",
            "2001:db8::1",
            "a1.b2c",
        ] {
            assert_eq!(g.refusal(host, 9901), None, "{host}");
        }
    }
}

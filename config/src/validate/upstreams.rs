//! `[[upstreams]]`: names, `host:port` addresses, timeouts, health checks and TLS.

use std::net::IpAddr;
use std::time::Duration;

use proofgate_core::path::normalize_path;
use proofgate_core::routes::check_host_pattern;

use super::Check;
use crate::config::{
    HealthCheck, Upstream, UpstreamProtocol, UpstreamTls, DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
};
use crate::file::UpstreamFile;

pub(super) fn upstreams(c: &mut Check, files: &[UpstreamFile]) -> Vec<Upstream> {
    if files.is_empty() {
        c.err(
            "upstreams",
            "at least one [[upstreams]] entry is required (name and addresses)",
        );
    }
    let mut out = Vec::new();
    for (i, u) in files.iter().enumerate() {
        let at = format!("upstreams[{i}]");
        let name = c.name(&format!("{at}.name"), u.name.as_ref());
        if u.addresses.is_empty() {
            c.err(
                format!("{at}.addresses"),
                "empty; list at least one \"host:port\"",
            );
        }
        let mut addresses: Vec<String> = Vec::new();
        for (j, a) in u.addresses.iter().enumerate() {
            let loc = format!("{at}.addresses[{j}]");
            if !is_host_port(a) {
                c.err(
                    &loc,
                    format!("{a:?} is not host:port (no scheme or path, e.g. \"10.0.0.5:8080\")"),
                );
            } else if addresses.contains(a) {
                c.err(&loc, format!("{a:?} is listed twice"));
            } else {
                addresses.push(a.clone());
            }
        }
        let connect_timeout = c.duration(
            &format!("{at}.connect_timeout"),
            u.connect_timeout.as_ref(),
            Duration::from_secs(5),
            Duration::from_millis(1),
            Duration::from_secs(300),
        );
        let read_timeout = c.duration(
            &format!("{at}.read_timeout"),
            u.read_timeout.as_ref(),
            Duration::from_secs(60),
            Duration::from_millis(1),
            Duration::from_secs(24 * 3600),
        );
        let protocol = match u.protocol.as_deref() {
            None | Some("h1") => UpstreamProtocol::H1,
            Some("h2") => UpstreamProtocol::H2,
            Some("h2c") => UpstreamProtocol::H2c,
            Some(other) => {
                c.err(
                    format!("{at}.protocol"),
                    format!(
                        "{other:?} is not a protocol; write \"h1\" (HTTP/1.1), \"h2\" (HTTP/2 \
                         over TLS, needs [upstreams.tls]) or \"h2c\" (cleartext HTTP/2)"
                    ),
                );
                UpstreamProtocol::H1
            }
        };
        match (protocol, u.tls.is_some()) {
            (UpstreamProtocol::H2, false) => c.err(
                format!("{at}.protocol"),
                "\"h2\" is HTTP/2 over TLS and needs an [upstreams.tls] table; for cleartext \
                 HTTP/2 write \"h2c\"",
            ),
            (UpstreamProtocol::H2c, true) => c.err(
                format!("{at}.protocol"),
                "\"h2c\" is cleartext HTTP/2; with [upstreams.tls] write \"h2\"",
            ),
            _ => {}
        }
        let websocket_idle_timeout = c.duration(
            &format!("{at}.websocket_idle_timeout"),
            u.websocket_idle_timeout.as_ref(),
            DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        );
        let health_check = u.health_check.as_ref().map(|h| {
            let path = h.path.clone().unwrap_or_else(|| "/healthz".to_string());
            if normalize_path(&path).ok().as_deref() != Some(path.as_str()) || path.contains('?') {
                c.err(
                    format!("{at}.health_check.path"),
                    format!("{path:?} must be a plain absolute path like \"/healthz\""),
                );
            }
            HealthCheck {
                path,
                interval: c.duration(
                    &format!("{at}.health_check.interval"),
                    h.interval.as_ref(),
                    Duration::from_secs(10),
                    Duration::from_millis(100),
                    Duration::from_secs(3600),
                ),
            }
        });
        let tls = u.tls.as_ref().map(|t| {
            let sni = match &t.sni {
                Some(s) if !s.is_empty() && check_host_pattern(s).is_ok() && !s.contains('*') => {
                    s.clone()
                }
                Some(s) => {
                    c.err(format!("{at}.tls.sni"), format!("{s:?} is not a host name"));
                    String::new()
                }
                None => match u.addresses.first().map(|a| host_of(a)) {
                    Some(host) if host.parse::<IpAddr>().is_err() && !host.starts_with('[') => {
                        host.to_string()
                    }
                    _ => {
                        c.err(
                            format!("{at}.tls.sni"),
                            "missing; required when the first address is an IP address",
                        );
                        String::new()
                    }
                },
            };
            UpstreamTls {
                sni,
                verify: t.verify.unwrap_or(true),
            }
        });
        if let Some(name) = name {
            out.push(Upstream {
                name,
                addresses,
                connect_timeout,
                read_timeout,
                protocol,
                websocket_idle_timeout,
                health_check,
                tls,
            });
        }
    }
    c.unique(
        "upstreams",
        files
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((i, u.name.as_ref()?))),
    );
    out
}
fn host_of(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        for ok in [
            "10.0.0.5:8080",
            "app.internal:80",
            "[::1]:3000",
            "localhost:1",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "10.0.0.5",
            "http://x:80",
            "x:0",
            "x:99999",
            ":80",
            "[zz]:80",
            "a b:80",
            "x/y:80",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}

//! `[[listeners]]` and `[admin]`: addresses to bind, TLS files, no address used twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::Check;
use crate::config::{AdminListener, Listener, ListenerTls};
use crate::file::{AdminFile, ListenerFile};

pub(super) fn listeners(c: &mut Check, files: &[ListenerFile]) -> Vec<Listener> {
    if files.is_empty() {
        c.err(
            "listeners",
            "at least one [[listeners]] entry is required, e.g. address = \"0.0.0.0:8080\"",
        );
    }
    let mut out = Vec::new();
    for (i, l) in files.iter().enumerate() {
        let at = format!("listeners[{i}]");
        let address = socket_addr(c, &format!("{at}.address"), l.address.as_deref());
        let tls = l.tls.as_ref().and_then(|t| {
            let cert = path_field(c, &format!("{at}.tls.cert"), t.cert.as_deref());
            let key = path_field(c, &format!("{at}.tls.key"), t.key.as_deref());
            let client_ca = match t.client_ca.as_deref() {
                Some(v) if v.trim().is_empty() => {
                    c.err(format!("{at}.tls.client_ca"), "empty path; write the PEM file of the client CA, or remove the key");
                    None
                }
                other => other.map(PathBuf::from),
            };
            let client_auth_required = match t.client_auth.as_deref() {
                None | Some("required") => true,
                Some("optional") => false,
                Some(other) => {
                    c.err(
                        format!("{at}.tls.client_auth"),
                        format!("{other:?}; use \"required\" or \"optional\""),
                    );
                    true
                }
            };
            if t.client_auth.is_some() && t.client_ca.is_none() {
                c.err(
                    format!("{at}.tls.client_auth"),
                    "needs client_ca: the PEM file of the CA client certificates are verified against",
                );
            }
            Some(ListenerTls {
                cert_path: cert?,
                key_path: key?,
                h2: t.h2.unwrap_or(true),
                client_ca,
                client_auth_required,
            })
        });
        let h2c = l.h2c.unwrap_or(false);
        if h2c && l.tls.is_some() {
            c.err(
                format!("{at}.h2c"),
                "h2c is cleartext HTTP/2, for a listener without TLS; a TLS listener offers \
                 HTTP/2 by ALPN (listeners.tls.h2, on by default): remove h2c here",
            );
        }
        if let Some(address) = address {
            out.push(Listener { address, h2c, tls });
        }
    }
    out
}

/// The admin listener; `None` when its address is bad (reported).
pub(super) fn admin(c: &mut Check, file: &AdminFile) -> Option<AdminListener> {
    let address = match file.address.as_deref() {
        None => SocketAddr::from(([127, 0, 0, 1], 9091)),
        Some(_) => socket_addr(c, "admin.address", file.address.as_deref())?,
    };
    Some(AdminListener { address })
}

pub(super) fn check_address_clash(
    c: &mut Check,
    listeners: &[Listener],
    admin: Option<&AdminListener>,
) {
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    let all = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("listeners[{i}].address"), l.address))
        .chain(admin.map(|a| ("admin.address".to_string(), a.address)));
    for (at, address) in all {
        if address.port() == 0 {
            continue;
        }
        if let Some(first) = seen.get(&address) {
            c.err(&at, format!("{address} is already used by {first}"));
        } else {
            seen.insert(address, at);
        }
    }
}
fn socket_addr(c: &mut Check, at: &str, value: Option<&str>) -> Option<SocketAddr> {
    match value {
        None => {
            c.err(at, "missing; write ip:port, e.g. \"0.0.0.0:8080\"");
            None
        }
        Some(v) => match v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.err(
                    at,
                    format!("{v:?} is not ip:port (e.g. \"0.0.0.0:8080\" or \"[::]:8443\")"),
                );
                None
            }
        },
    }
}

fn path_field(c: &mut Check, at: &str, value: Option<&str>) -> Option<PathBuf> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(PathBuf::from(v)),
        Some(_) => {
            c.err(at, "empty path");
            None
        }
        None => {
            c.err(at, "missing; TLS needs both cert and key (PEM file paths)");
            None
        }
    }
}

//! TLS listener certificates, loaded and matched before any thread starts (and by
//! `proofgate check`), so a bad pair is a start-up error naming the listener.

use crate::error::GatewayError;

/// Loads a TLS listener's certificate chain and key the way Pingora will when the listener
/// starts, so that a missing file, a file without a certificate or key, or a key that does not
/// match the certificate is an error from
/// [`GatewayHandle::start`](crate::server::GatewayHandle::start) (and `proofgate check`).
/// Pingora panics on its own thread instead, leaving a process without its listener. A plain
/// listener passes.
pub fn check_listener_tls(listener: &proofgate_config::Listener) -> Result<(), GatewayError> {
    let Some(tls) = &listener.tls else {
        return Ok(());
    };
    check_tls(
        &tls.cert_path.to_string_lossy(),
        &tls.key_path.to_string_lossy(),
    )
    .map_err(|message| GatewayError::Tls {
        listener: listener.address.to_string(),
        message,
    })
}

fn check_tls(cert: &str, key: &str) -> Result<(), String> {
    use pingora::tls::{version, ServerConfig};
    let (certs, private_key) = match pingora::tls::load_certs_and_key_files(cert, key) {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            return Err(format!(
                "no certificate in {cert} or no private key (PKCS#1, PKCS#8 or SEC1) in {key}"
            ))
        }
        Err(e) => return Err(format!("cannot read {cert} or {key}: {e}")),
    };
    pingora::tls::install_default_crypto_provider();
    ServerConfig::builder_with_protocol_versions(&[&version::TLS12, &version::TLS13])
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| format!("certificate {cert} and key {key} unusable: {e}"))?;
    Ok(())
}

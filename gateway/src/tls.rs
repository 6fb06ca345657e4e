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
    let error = |message| GatewayError::Tls {
        listener: listener.address.to_string(),
        message,
    };
    check_tls(
        &tls.cert_path.to_string_lossy(),
        &tls.key_path.to_string_lossy(),
    )
    .map_err(error)?;
    if let Some(ca) = &tls.client_ca {
        client_verifier(ca, tls.client_auth_required).map_err(error)?;
    }
    Ok(())
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

/// Loads a listener's client CA file (`[listeners.tls] client_ca`) into the rustls verifier of
/// client certificates: required (a handshake without a certificate fails) or optional (a
/// certificate is verified when presented). A certificate that does not chain to the CA always
/// fails the handshake.
pub fn client_verifier(
    ca: &std::path::Path,
    required: bool,
) -> Result<std::sync::Arc<dyn pingora::tls::ClientCertVerifier>, String> {
    use pingora::tls::{RootCertStore, WebPkiClientVerifier};
    pingora::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    pingora::tls::load_ca_file_into_store(ca, &mut roots)
        .map_err(|e| format!("client_ca {}: {e}", ca.display()))?;
    if roots.is_empty() {
        return Err(format!("client_ca {}: no certificate in it", ca.display()));
    }
    let builder = WebPkiClientVerifier::builder(std::sync::Arc::new(roots));
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder
        .build()
        .map_err(|e| format!("client_ca {}: {e}", ca.display()))
}

/// The delegates a client certificate names: the canonical forms of its URI SANs
/// ([`proofgate_core::delegation::ClientDelegates::from_uris`]). A certificate that cannot be
/// parsed names none.
pub fn client_delegates(der: &[u8]) -> proofgate_core::delegation::ClientDelegates {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Default::default();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Default::default();
    };
    proofgate_core::delegation::ClientDelegates::from_uris(
        san.value.general_names.iter().filter_map(|n| match n {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        }),
    )
}

/// Attaches the delegates of the verified client certificate to each TLS connection of a
/// listener with a client CA; the proxy reads them from the session's TLS digest.
pub(crate) struct ClientCertDelegates;

#[async_trait::async_trait]
impl pingora::listeners::TlsAccept for ClientCertDelegates {
    async fn handshake_complete_callback(
        &self,
        ssl: &pingora::protocols::tls::TlsRef,
    ) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        let der = ssl.peer_certificate_der()?;
        Some(std::sync::Arc::new(client_delegates(der)))
    }
}

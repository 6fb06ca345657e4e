//! `proofgate dev`: the sandbox, a demo upstream and the gateway with the demo configuration,
//! in one process, on loopback, with no account and no network.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::routing::any;
use axum::Router;
use proofgate_config::file::ConfigFile;
use proofgate_config::{Config, Secret, Secrets};
use proofgate_sandbox::{Sandbox, SandboxHandle};

use crate::error::GatewayError;
use crate::server::GatewayHandle;

/// The demo configuration (`config/examples/dev.toml`).
pub const DEV_CONFIG: &str = include_str!("../../config/examples/dev.toml");

/// The test API key `proofgate dev` gives the gateway.
pub const DEV_API_KEY: &str = "pk_test_proofgate_dev";

/// The HITL configuration id the demo configuration's approvals name: `proofgate dev` creates a
/// HITL configuration in its sandbox and puts its real id in their place.
pub const DEV_HITL: &str = "hitl_dev";

/// Creates and finalizes the HITL configuration approvals are asked of in the sandbox at
/// `base` (its approvers are the sandbox's hosted page and test endpoints).
async fn dev_hitl(base: &str) -> Result<String, GatewayError> {
    use proofgate_core::client::{CreateHitl, HitlChannel, ProofApiClient};
    let failed = |e: &dyn std::fmt::Display| GatewayError::System {
        what: "the sandbox's HITL configuration",
        source: std::io::Error::other(e.to_string()),
    };
    let api = ProofApiClient::new(base, DEV_API_KEY).map_err(|e| failed(&e))?;
    let request = CreateHitl::new("proofgate dev", vec![HitlChannel::new("browser")]);
    let created = api.create_hitl(&request).await.map_err(|e| failed(&e))?;
    api.finalize_hitl(&created.id)
        .await
        .map_err(|e| failed(&e))?;
    Ok(created.id)
}

/// Where `proofgate dev` listens.
#[derive(Debug, Clone, Copy)]
pub struct DevPorts {
    /// The gateway's proxy listener.
    pub proxy: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    /// The sandbox (`127.0.0.1:0` for any free port).
    pub sandbox: SocketAddr,
}

/// A running dev stack.
pub struct DevStack {
    /// The gateway.
    pub gateway: GatewayHandle,
    /// The sandbox.
    pub sandbox: SandboxHandle,
    /// The demo upstream's address.
    pub upstream: SocketAddr,
    /// The runtime serving the sandbox and the demo upstream.
    pub runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for DevStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevStack")
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

/// The demo upstream: answers every request with the method, path, the `x-proof-*` headers it
/// received, whether an `Authorization` header reached it and the names of the cookies it got,
/// as JSON.
pub fn demo_upstream() -> Router {
    Router::new().fallback(any(
        |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap| async move {
            let identity: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                // Every spelling an application could read as an identity header (`_` or `-`).
                .filter(|(k, _)| {
                    proofgate_core::proof::is_identity_spelling(k.as_str())
                        && k.as_str() != "x-proof-token"
                        && k.as_str() != proofgate_core::delegation::DELEGATION_HEADER
                })
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
                .collect();
            // Cookie names only, never values: what reached the upstream, not what it said.
            let cookies: Vec<&str> = headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|p| p.split_once('=').map(|(k, _)| k.trim()))
                .collect();
            axum::Json(serde_json::json!({
                "upstream": "demo",
                "method": method.as_str(),
                "path": uri.path(),
                "identity": identity,
                "authorization_forwarded": headers.contains_key(axum::http::header::AUTHORIZATION),
                "cookies": cookies,
            }))
        },
    ))
}

/// Starts the sandbox, the demo upstream and the gateway.
pub fn start(ports: DevPorts) -> Result<DevStack, GatewayError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(GatewayError::system("runtime"))?;
    let (sandbox, upstream, hitl) = runtime.block_on(async {
        let sandbox = Sandbox::start(&ports.sandbox.to_string()).await?;
        let hitl = dev_hitl(sandbox.base_url()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(GatewayError::system("demo upstream"))?;
        let upstream = listener
            .local_addr()
            .map_err(GatewayError::system("demo upstream"))?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, demo_upstream()).await;
        });
        Ok::<_, GatewayError>((sandbox, upstream, hitl))
    })?;
    let mut file = ConfigFile::from_toml_str(DEV_CONFIG)?;
    file.issuer.api_base = Some(sandbox.base_url().to_string());
    for u in &mut file.upstreams {
        u.addresses = vec![upstream.to_string()];
    }
    for l in &mut file.listeners {
        l.address = Some(ports.proxy.to_string());
    }
    if let Some(admin) = &mut file.admin {
        admin.address = Some(ports.admin.to_string());
    }
    for approval in file.policies.iter_mut().filter_map(|p| p.approval.as_mut()) {
        if approval.hitl.as_deref() == Some(DEV_HITL) {
            approval.hitl = Some(hitl.clone());
        }
    }
    let config: Config = file.validate()?;
    let cookie_key: String = (0..32)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    let secrets = Secrets {
        api_key: Some(Secret::new(DEV_API_KEY)),
        cookie_key: Some(Secret::new(cookie_key)),
        webhook_secret: Some(Secret::new(sandbox.webhook_secret())),
        ..Secrets::default()
    };
    let gateway = GatewayHandle::start(config, secrets, None)?;
    Ok(DevStack {
        gateway,
        sandbox,
        upstream,
        runtime,
    })
}

/// What `proofgate dev` prints: the URLs and the curl lines to try.
pub fn banner(stack: &DevStack) -> String {
    let proxy = stack
        .gateway
        .proxy_addrs
        .first()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let admin = stack
        .gateway
        .admin_addr
        .map(|a| a.to_string())
        .unwrap_or_default();
    let sandbox = stack.sandbox.base_url();
    format!(
        r#"proofgate dev is running — everything on loopback, no account, no network.

  gateway   http://{proxy}
  admin     http://{admin}/metrics  /healthz  /readyz
  sandbox   {sandbox}   (the Proof API emulator; test key {DEV_API_KEY})
  upstream  http://{upstream}   (echoes the x-proof-* headers it receives)

Try:
  curl -i http://{proxy}/public/hello                 # public: forwarded
  curl -i http://{proxy}/admin                        # no proof: 401 problem+json with a step-up link
  curl -i http://{proxy}/nowhere                      # no route: denied (zero trust)

Get a proof token from the sandbox and use it:
  ID=$(curl -s -X POST {sandbox}/api/v1/verifications -H 'Authorization: Bearer {DEV_API_KEY}' \
        -H 'Content-Type: application/json' \
        -d '{{"type":"email","channel":"email","identifier":"alice@corp.example"}}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
  TOKEN=$(curl -s -X POST {sandbox}/api/v1/verifications/$ID/test-verify \
        -H 'Authorization: Bearer {DEV_API_KEY}' | sed 's/.*"proof_token":"\([^"]*\)".*/\1/')
  curl -i http://{proxy}/admin -H "Authorization: Bearer $TOKEN"   # allowed, identity headers upstream
  proofgate verify "$TOKEN" -c config/examples/dev.toml --issuer {sandbox}   # its claims and verdict

A POST to /transfers/** (as alice) is held until someone approves it: see docs/approvals.md.

Step up in a browser: open http://{proxy}/admin — you are sent to the sandbox's hosted page,
complete the verification there, and come back to /admin holding a proof cookie.
"#,
        upstream = stack.upstream,
    )
}

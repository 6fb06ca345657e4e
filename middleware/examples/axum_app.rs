//! An axum service with a public route, an admin router gated by email/domain proofs (step-up
//! on failure) and a payouts route that demands a phone proof verified in the last 10 minutes.
//!
//! Run it against the local sandbox (started by `proofgate dev`, or any sandbox on :7700):
//!
//! ```sh
//! cargo run -p proofgate -- dev &                      # sandbox on 127.0.0.1:7700
//! cargo run -p proofgate-tower --example axum_app      # this app on 127.0.0.1:3000
//! ```
//!
//! Then try:
//!
//! ```sh
//! curl -i localhost:3000/                              # public: 200
//! curl -i localhost:3000/admin                         # 401 problem+json with a step-up link
//! curl -i -H 'accept: text/html' localhost:3000/admin  # 302 to /.proofgate/start?policy=staff…
//! # A token from the sandbox (test mode): create a verification, then test-verify it.
//! ID=$(curl -s -H 'authorization: Bearer pk_test_example' -H 'content-type: application/json' \
//!   -d '{"type":"email","channel":"email","identifier":"alice@corp.example"}' \
//!   localhost:7700/api/v1/verifications | sed 's/.*"id":"\([^"]*\)".*/\1/')
//! TOKEN=$(curl -s -X POST -H 'authorization: Bearer pk_test_example' \
//!   localhost:7700/api/v1/verifications/$ID/test-verify | sed 's/.*"proof_token":"\([^"]*\)".*/\1/')
//! curl -i -H "authorization: Bearer $TOKEN" localhost:3000/admin           # 200: who you are
//! curl -i -X POST -H "authorization: Bearer $TOKEN" localhost:3000/payouts # 403 policy_unmet
//! # Browser step-up: open http://localhost:3000/admin, complete the sandbox's hosted page, and
//! # you come back with a proof_token cookie.
//! ```
//!
//! `PROOF_API_BASE` (default `http://127.0.0.1:7700`) and `PROOF_API_KEY` (default
//! `pk_test_example`) point it elsewhere.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use proofgate_tower::{require, Proofgate, VerifiedProof};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api_base =
        std::env::var("PROOF_API_BASE").unwrap_or_else(|_| "http://127.0.0.1:7700".into());
    let api_key = std::env::var("PROOF_API_KEY").unwrap_or_else(|_| "pk_test_example".into());
    let gate = Proofgate::builder(&api_base)
        .api_key(api_key)
        .cookie_key(*b"example-cookie-key-of-32-bytes!!")
        .webhook_secret("whsec_sandbox_secret")
        // Plain HTTP on localhost: cookies without `Secure`.
        .secure_cookies(false)
        .build()?;
    let refresher = gate.spawn_refresher();

    // Staff: Alice's or Bob's email, or control of corp.example; otherwise a hosted verification.
    let staff = require::any_of("staff")
        .email(["alice@corp.example", "bob@corp.example"])
        .domain(["corp.example"])
        .step_up();
    let admin = Router::new()
        .route("/admin", get(whoami))
        .route("/admin/{*rest}", get(whoami))
        .route_layer(gate.layer(staff));

    // Payouts: a phone proof verified in the last ten minutes, else 401/403 without step-up.
    let fresh_phone = require::any_of("fresh-phone")
        .phone()
        .channels(["sms", "whatsapp", "telegram"])
        .max_age(Duration::from_secs(600))
        .deny();
    let payouts = Router::new()
        .route("/payouts", post(payout))
        .route_layer(gate.layer(fresh_phone));

    let app = Router::new()
        .route("/", get(|| async { "public: no proof needed\n" }))
        .merge(admin)
        .merge(payouts)
        .merge(gate.step_up_router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000 (issuer {api_base})");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    refresher.shutdown().await;
    Ok(())
}

async fn whoami(proof: VerifiedProof) -> String {
    format!(
        "hello, {} proof {} (verified at {})\n",
        proof.claims.proof_type.as_deref().unwrap_or("?"),
        proof.subject(),
        proof.claims.verified_at.as_deref().unwrap_or("?"),
    )
}

async fn payout(proof: VerifiedProof) -> String {
    format!(
        "payout sent, authorised by phone proof {}\n",
        proof.subject()
    )
}

//! # proofgate-config
//!
//! proofgate's configuration: the TOML file format ([`file`](mod@file)), its validation, and the typed
//! runtime [`Config`] the gateway runs on. The two are kept apart, as River does: the file is
//! what people write (strings, optional keys, names referring to each other), the runtime
//! configuration is what the gateway needs (parsed durations, policies and routes resolved to
//! [`proofgate_core`] types, defaults filled in). [`ConfigFile::validate`] goes from one to the
//! other and reports **every** problem it finds, each with its location, instead of stopping at
//! the first; nothing in this crate panics on any input.
//!
//! ```
//! use proofgate_config::Config;
//!
//! let config = Config::from_toml_str(r#"
//!     default_policy = "deny-all"
//!
//!     [[listeners]]
//!     address = "0.0.0.0:8080"
//!
//!     [[upstreams]]
//!     name = "app"
//!     addresses = ["127.0.0.1:3000"]
//!
//!     [[policies]]
//!     name = "deny-all"
//!     rule = "deny"
//!
//!     [[policies]]
//!     name = "staff"
//!     rule = "any_of"
//!     requirements = [{ types = ["email"], identifiers = ["alice@corp.example"] }]
//!
//!     [[routes]]
//!     name = "admin"
//!     path = "/admin/**"
//!     policy = "staff"
//! "#).unwrap();
//! assert_eq!(config.routes.routes()[0].policy.name, "staff");
//!
//! let errors = Config::from_toml_str(r#"
//!     default_policy = "deny-al"
//!     [[routes]]
//!     name = "admin"
//!     path = "/admin/v*"
//!     policy = "staf"
//! "#).unwrap_err();
//! assert!(errors.has("default_policy") && errors.has("routes[0].path") && errors.has("routes[0].policy"));
//! println!("{errors}");
//! ```
//!
//! Run `proofgate check -c FILE` to validate a file without starting anything.
//!
//! # Configuration reference
//!
//! Durations are strings of whole numbers with units `ms`, `s`, `m` (minutes), `h`, `d`, `w`,
//! which may be combined: `"30s"`, `"10m"`, `"24h"`, `"1h30m"` (see [`parse_duration`]).
//! Unknown keys are errors, so a misspelt key never silently falls back to a default; all of them
//! are reported at once, each with its line and the known key it is probably a misspelling of.
//! Every problem carries the line of its key (see [`Locations`]).
//!
//! ## Top level
//!
//! | key | meaning |
//! | --- | --- |
//! | `default_policy` | **Required.** Name of the policy for requests no route matches. The examples use a `deny` policy: zero trust. |
//! | `default_upstream` | Name of the upstream for the default route and for routes that name none. Defaults to the only upstream when exactly one is declared; required when several are and a route (or a non-deny default policy) needs it. |
//!
//! ## `[[listeners]]` — at least one
//!
//! | key | meaning |
//! | --- | --- |
//! | `address` | **Required.** `ip:port` to bind, e.g. `"0.0.0.0:8080"`, `"[::]:8443"`. |
//! | `tls.cert`, `tls.key` | PEM certificate chain and private key paths; with a `[listeners.tls]` table the listener terminates TLS (rustls). Both required when the table is present. Defaults to plain HTTP. |
//!
//! ## `[admin]` — optional
//!
//! Serves `/metrics`, `/healthz` and `/readyz`. Without the section there is no admin listener.
//!
//! | key | meaning |
//! | --- | --- |
//! | `address` | `ip:port`. Defaults to `127.0.0.1:9091`. |
//!
//! ## `[server]` — Pingora
//!
//! | key | meaning |
//! | --- | --- |
//! | `threads` | Worker threads, 1–1024. Defaults to the number of available CPU cores. |
//! | `work_stealing` | Let Tokio move tasks between threads. Defaults to `false`. |
//! | `upstream_keepalive_pool_size` | Idle upstream connections kept for reuse. Defaults to `128`. |
//! | `grace_period` | Wait after a shutdown signal before the final step, for load balancers to notice. Defaults to `"5m"`. |
//! | `graceful_shutdown_timeout` | How long the final step waits for open requests. Defaults to `"5s"`. |
//! | `upgrade_sock` | Absolute path of the Unix socket on which `proofgate run --upgrade` receives the running process's listening sockets. Defaults to `"/tmp/proofgate-upgrade.sock"`. |
//! | `favicon` | `"not_found"`: `GET /favicon.ico` is answered `404` without a policy decision unless a route names that path. `"policy"`: decided like any request. Defaults to `"not_found"`. |
//!
//! ## `[[upstreams]]` — at least one
//!
//! | key | meaning |
//! | --- | --- |
//! | `name` | **Required**, unique. Letters, digits, `-`, `_`, `.`. |
//! | `addresses` | **Required**, non-empty: `"host:port"` entries, load balanced round robin. |
//! | `connect_timeout` | Defaults to `"5s"`. |
//! | `read_timeout` | Defaults to `"60s"`. |
//! | `health_check.path` | With a `[upstreams.health_check]` table, addresses are probed with `GET` (2xx = healthy). Defaults to `"/healthz"`. |
//! | `health_check.interval` | Defaults to `"10s"`. |
//! | `tls.sni` | With a `[upstreams.tls]` table, proofgate speaks TLS to the upstream, sending and verifying this name. Defaults to the host of the first address (required if that is an IP). |
//! | `tls.verify` | Verify the upstream certificate. Defaults to `true`. |
//!
//! ## `[issuer]` — where proof tokens come from
//!
//! | key | meaning |
//! | --- | --- |
//! | `api_base` | The Proof API. Defaults to `"https://api.proof.holdings"`. Plain `http` is accepted for loopback hosts only (a local sandbox). |
//! | `jwks_url` | Defaults to `{api_base}/.well-known/jwks.json`. |
//! | `revocation_url` | Defaults to `{api_base}/api/v1/proofs/revoked`. |
//! | `status_list_url` | The Token Status List fetched at start and kept fresh; `/readyz` is ready only while it is held and unexpired. `""` for an issuer that publishes none. Must be on `api_base`'s origin or one in `status_list_origins`. Defaults to `{api_base}/api/v1/proofs/status-list`. |
//! | `status_list_origins` | Origins (`"https://cdn.example"`) besides `api_base`'s that status lists may be fetched from — this one and those named by tokens' `status.status_list.uri`. A token naming a list anywhere else is answered `status_unavailable` and nothing is fetched. Defaults to `[]`: status lists come only from `api_base`'s origin. |
//! | `issuer` | The required `iss` claim. Defaults to `"proof.holdings"`. |
//! | `jwks_refresh` | Key refresh interval when the JWKS response has no `Cache-Control: max-age`. Defaults to `"24h"`. |
//! | `jwks_max_staleness` | Beyond this without a successful refresh every decision fails closed with `jwks_stale`, whatever `fail_mode` says. At least `jwks_refresh`. Defaults to `"24h"`. |
//! | `revocation_refresh` | Revocation list refresh interval. Defaults to `"5m"`. |
//! | `revocation_max_staleness` | Beyond this, `fail_mode` applies. At least `revocation_refresh`. Defaults to `"1h"`. |
//! | `unknown_kid_cooldown` | Least time between two JWKS refetches caused by an unknown `kid`. Defaults to `"30s"`. |
//! | `fetch_timeout` | Timeout of one JWKS, revocation list or status list fetch, 1s–2m. Defaults to `"10s"`. |
//! | `retry_max_delay` | After failed fetches the next attempt waits 1 s, 2 s, 4 s, … up to this (1s–1h): the longest a recovered issuer goes unnoticed. Defaults to `"1m"`. |
//! | `leeway` | Clock tolerance for `exp`, `iat` and `verified_at`, at most 5 minutes. Defaults to `"5s"`. |
//! | `fail_mode` | `"closed"`: stale revocation data denies with `status_unavailable`; `"open"`: allows (and counts it). Defaults to `"closed"`. |
//!
//! ## `[tokens]` — where tokens are read
//!
//! | key | meaning |
//! | --- | --- |
//! | `sources` | Tried in order; the first source that has a token is used: `"bearer"` (`Authorization: Bearer`), `"header"`, `"cookie"`. Defaults to `["bearer", "header", "cookie"]`. |
//! | `header` | The header source's name. Defaults to `"x-proof-token"`. |
//! | `cookie` | The cookie source's name. Defaults to `"proof_token"`. |
//! | `max_token_size` | Longest token in bytes (256–65536), refused before any parsing. Defaults to `8192`. |
//! | `cache_capacity` | Verified tokens cached (1–10,000,000). Defaults to `100000`. |
//!
//! ## `[[policies]]`
//!
//! | key | meaning |
//! | --- | --- |
//! | `name` | **Required**, unique. |
//! | `rule` | **Required**: `"public"` (no proof looked at), `"optional"` (verified when present, never required), `"deny"` (nothing passes), `"any_of"` / `"all_of"` (requirements; under `all_of` each may be met by a different token). |
//! | `requirements` | For `any_of` / `all_of`, at least one: `{ types, channels, identifiers, max_age }`, each list meaning "one of" and an absent list "any". |
//! | `on_failure` | `"step_up"` (offer a hosted verification) or `"deny"`. Defaults to `"step_up"` for `any_of` / `all_of`, `"deny"` otherwise. |
//!
//! A requirement's `types` and `channels` are checked against the issuer's verification types
//! (see [`VERIFICATION_TYPES`]): `phone` over `whatsapp`, `telegram`, `viber`, `sms`; `email`
//! over `email`; `domain` over `dns`, `http`, `auto`, `email`; `social` over `github`, `google`,
//! `facebook`, `x`, `linkedin`, `instagram`, `youtube`, `tiktok`; `wallet` over `ethereum`,
//! `solana`, `bitcoin`; `account` over `coinbase`, `kraken`; `waba` over `waba_otp`;
//! `telegram_bot` over `telegram_bot_token`.
//! A channel none of the listed known types offers is an error; types this version does not
//! know pass unchecked. `identifiers` (email addresses, phone numbers, domains, …) need exactly
//! one type, are normalized and hashed like the issuer does, and are compared with the token's
//! `identifier_hash`. `max_age` bounds the age of the proof's `verified_at`, e.g. `"10m"`.
//!
//! ## `[[routes]]` — tried in order, first match wins
//!
//! A route that can never match, because an earlier one has the same path, hosts and methods or
//! covers every request it would (`/admin/**` before `/admin/reports/**`), is an error naming
//! both.
//!
//! | key | meaning |
//! | --- | --- |
//! | `name` | **Required**, unique, not `"default"`. |
//! | `path` | **Required.** A prefix (`"/api"`: `/api` and below, not `/apix`) or a glob where `*` is one segment and `**` any number (`"/admin/**"`). Matched without case on the normalized path (see [`proofgate_core::routes`]). |
//! | `hosts` | `"example.com"` or `"*.example.com"` (any name below it). Defaults to any host. |
//! | `methods` | e.g. `["GET", "POST"]`; `GET` covers `HEAD`. Defaults to any method. |
//! | `policy` | **Required.** A policy name. |
//! | `upstream` | An upstream name. Defaults to `default_upstream`. |
//!
//! ## `[identity_headers]`
//!
//! Incoming `x-proof-*` headers are always removed; on `Allow` the gateway adds
//! `x-proof-subject`, `x-proof-type`, `x-proof-channel`, `x-proof-identifier-hash` and
//! `x-proof-verified-at`.
//!
//! | key | meaning |
//! | --- | --- |
//! | `prefix` | Fixed to `"x-proof-"`; any other value is refused. |
//! | `strip_token` | Remove the token (bearer, header or cookie) before forwarding. Defaults to `false`. |
//!
//! ## `[step_up]`
//!
//! | key | meaning |
//! | --- | --- |
//! | `prefix` | Path prefix of the `start`, `callback`, `webhook` and `logout` endpoints. Defaults to `"/.proofgate/"`. |
//! | `state_ttl` | Lifetime of the signed state cookie, 1–60 minutes. Defaults to `"10m"`. |
//! | `state_cookie` | Name of the state cookie. Defaults to `"proofgate_state"`. |
//! | `per_client_per_minute` | Starts per client address per minute. Defaults to `5`. |
//! | `global_per_minute` | Starts per minute for all clients, below the Proof API's 100/min (1–99). Defaults to `30`. |
//! | `cookie_name` | The proof cookie; must equal `tokens.cookie`. Defaults to `tokens.cookie`. |
//! | `cookie_secure` | `Secure` on cookies; turn off only where people reach the site over plain HTTP (browsers drop `Secure` cookies there). Refused as `true` when a plain-HTTP listener on a non-loopback address lets a step-up start for a non-loopback name (an `http://` `public_url`, `allowed_hosts` or routes' hosts): it could never finish. Defaults to `true`. |
//! | `public_url` | Absolute URL people reach this site at (`"https://app.example"`), for the verification's `redirect_url` back to `callback`; set it whenever a load balancer or TLS terminator sits in front. Defaults to the request's own scheme and `Host`, if that host is allowed (`allowed_hosts`, a route's hosts, or a loopback name); any other `Host` is refused. |
//! | `allowed_hosts` | Host patterns (`"app.example"`, `"*.example.com"`) a step-up may return to when `public_url` is not set. Defaults to `[]` (routes' hosts and loopback names only). |
//!
//! ## `[forward_auth]` — the decision API for another proxy
//!
//! With `enabled`, `path` on the proxy listeners decides the request a fronting proxy (nginx
//! `auth_request`, ingress-nginx, Traefik, Caddy, Envoy `ext_authz`) describes, for the
//! addresses in `trusted_proxies` only (see [`ForwardAuth`]).
//!
//! | key | meaning |
//! | --- | --- |
//! | `enabled` | Answer check requests at `path`. Defaults to `false`. |
//! | `path` | The endpoint; Envoy's check requests come under it. Defaults to `"/.proofgate/auth"`. |
//! | `trusted_proxies` | Addresses and CIDR ranges (`"10.0.0.0/8"`) of the calling proxies, matched against the peer address. Required when `enabled`. Defaults to `[]`. |
//!
//! ## `[cluster]` — optional: replicas that act as one
//!
//! A Redis (or Valkey) the replicas share: webhook revocations fanned out to every replica,
//! step-up start budgets counted together, a step-up state and an approval ticket used once
//! across replicas (see [`ClusterSettings`] and `docs/cluster.md`). Redis being away never
//! fails a request: each replica then decides alone. A restart applies changes.
//!
//! | key | meaning |
//! | --- | --- |
//! | `redis_url` | `redis://host[:port][/db]` or `rediss://…` (TLS), without credentials (refused with them). Required unless `PROOFGATE_REDIS_URL` is set. |
//! | `key_prefix` | Prefix of every key. Defaults to `"proofgate:"`. |
//! | `connect_timeout` | Longest wait for a connection. Defaults to `"1s"`. |
//! | `command_timeout` | Longest a request waits on one command. Defaults to `"50ms"`. |
//!
//! ## `[logging]`
//!
//! | key | meaning |
//! | --- | --- |
//! | `json` | JSON lines instead of text. Defaults to `false`. |
//! | `level` | `trace`, `debug`, `info`, `warn` or `error`. Defaults to `"info"`. |
//!
//! # Secrets
//!
//! Secrets come from the environment only, read by [`Secrets::from_env`]:
//!
//! | variable | needed for |
//! | --- | --- |
//! | `PROOF_API_KEY` | step-up (creating verification requests) |
//! | `PROOFGATE_COOKIE_KEY` | step-up (signing the state cookie; ≥ 32 bytes; the same on every replica) |
//! | `PROOF_WEBHOOK_SECRET` | accepting `proof.revoked` webhooks |
//! | `PROOFGATE_REDIS_USERNAME`, `PROOFGATE_REDIS_PASSWORD` | `[cluster]`: the Redis credentials, added to `cluster.redis_url` |
//! | `PROOFGATE_REDIS_URL` | `[cluster]`: the whole Redis URL, credentials included, instead of `cluster.redis_url` |
//!
//! The file has no key for them; a file that has one (`api_key = …`, `webhook_secret = …`, …)
//! or a value that looks like one (`pk_live_…`, `whsec_…`, a PEM private key) is refused with
//! the variable to use instead, and the value is never repeated in the message.

mod config;
mod duration;
mod error;
pub mod file;
mod secrets;
mod validate;

pub use config::DEFAULT_CLUSTER_KEY_PREFIX;
pub use config::{
    AdminListener, ApprovalsSettings, ClusterSettings, Config, FailMode, FaviconMode, ForwardAuth,
    HealthCheck, IdentityHeaders, IpRange, IssuerSettings, Listener, ListenerTls, LogLevel,
    Logging, ServerSettings, StepUpSettings, TokenSettings, Upstream, UpstreamProtocol,
    UpstreamTls, DEFAULT_FORWARD_AUTH_PATH, DEFAULT_UPGRADE_SOCK, DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
    MAX_FILE_BYTES,
};
pub use duration::{format_duration, parse_duration, DurationError};
pub use error::{ConfigError, ConfigErrors, ErrorKind, Locations};
pub use file::ConfigFile;
pub use secrets::{
    Secret, Secrets, API_KEY_ENV, COOKIE_KEY_ENV, MIN_COOKIE_KEY_BYTES, WEBHOOK_SECRET_ENV,
};
pub use secrets::{REDIS_PASSWORD_ENV, REDIS_URL_ENV, REDIS_USERNAME_ENV};
pub use validate::VERIFICATION_TYPES;

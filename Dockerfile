# syntax=docker/dockerfile:1.7
#
# proofgate container image.
#
#   docker build -t proofgate .
#   docker run --rm -p 8080:8080 -p 9091:9091 \
#     -e PROOF_API_KEY -e PROOFGATE_COOKIE_KEY -e PROOF_WEBHOOK_SECRET \
#     -v "$PWD/proofgate.toml:/etc/proofgate/proofgate.toml:ro" proofgate
#
# Every build step is a call to scripts/container-build.sh, which CI runs too (`ci`): CI has no
# container engine, so that script is how the steps below stay tested. Needs BuildKit (the
# default builder since Docker 23) for the cache mounts.

ARG RUST_VERSION=1.95

# --- build -----------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY scripts/container-build.sh scripts/container-build.sh
RUN scripts/container-build.sh toolchain
COPY . .
# The registry and target/ live in cache mounts: a source change recompiles proofgate's own
# crates, not its ~400 dependencies. `--locked`: Cargo.lock is the only source of versions.
RUN --mount=type=cache,id=proofgate-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=proofgate-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=proofgate-target,target=/src/target,sharing=locked \
    scripts/container-build.sh build release /out/proofgate
# Lays out /rootfs (binary, default config, examples, CA bundle) and runs `proofgate check` on
# every shipped configuration with the binary just built.
RUN scripts/container-build.sh stage /out/proofgate /rootfs

# --- runtime ---------------------------------------------------------------------------------
# debian slim, not distroless: the HEALTHCHECK below needs a shell to probe /healthz (bash's
# /dev/tcp, so no curl or wget is installed), and the Kubernetes preStop hook runs `sleep`.
# The binary links only glibc, libm and libgcc_s, all in the base image.
FROM debian:bookworm-slim AS runtime
COPY --from=build /rootfs/ /
# A numeric non-root user, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
# 8080: the proxy listener; 9091: the admin listener (/healthz, /readyz, /metrics). Both bind
# 0.0.0.0 in the default config /etc/proofgate/proofgate.toml; mount your own over it.
EXPOSE 8080 9091
# Secrets come only from the environment (a config file holding one is refused):
#   PROOF_API_KEY, PROOFGATE_COOKIE_KEY (>= 32 bytes, the same on every replica), PROOF_WEBHOOK_SECRET.
# PROOFGATE_ADMIN_PORT tells the health check where the admin listener is when you move it.
ENV PROOFGATE_ADMIN_PORT=9091
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PROOFGATE_ADMIN_PORT:-9091} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/proofgate"]
CMD ["run", "-c", "/etc/proofgate/proofgate.toml"]

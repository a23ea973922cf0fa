# hearth's container image.
#
# Connected machine (compiles hearth in a Rust image, runtime on Debian slim):
#   docker build -t hearth .
#
# Offline (no registry; what scripts/image does): every base is a local image and the binary is
# prebuilt on the host, so no stage needs a pull:
#   docker build -t hearth:test \
#     --build-arg BUILDER_IMAGE=hearth-base:<hash> --build-arg RUNTIME_BASE=hearth-base:<hash> \
#     --build-arg PREBUILT=hearth -f Dockerfile <dir holding the binary as ./hearth>
# The docker 20.10 classic builder pulls the base of EVERY stage, used or not (measured), so the
# choice between compiling and taking a prebuilt binary is made inside one builder stage, not by
# picking a stage: this Dockerfile builds offline with the classic builder and with BuildKit alike.
#
# Running it: hearth talks to Docker. With the socket mounted, the non-root user (uid 10001) needs
# the socket's group: `docker run --group-add "$(stat -c %g /var/run/docker.sock)" ...`, or in a
# stack `user: "10001:<that gid>"` (manifests/hearth/compose.yml). Against a remote daemon over TLS
# (DOCKER_HOST=tcp://manager:2376, DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH) no group is needed.

# The image the builder stage runs in: a Rust toolchain, or (PREBUILT) any image with a POSIX sh.
ARG BUILDER_IMAGE=rust:1-bookworm
# The runtime base: Debian with glibc matching the builder's. git and ca-certificates are installed
# with apt when missing (the offline base already has them).
ARG RUNTIME_BASE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
# Path, inside the build context, of a hearth binary built elsewhere; empty: compile here.
ARG PREBUILT=
WORKDIR /src
COPY . .
RUN set -eu; \
    if [ -n "$PREBUILT" ]; then \
      install -D -m 0755 "$PREBUILT" /out/hearth; \
    else \
      cargo build --release --locked --bin hearth; \
      install -D -m 0755 target/release/hearth /out/hearth; \
    fi

FROM ${RUNTIME_BASE}
RUN set -eu; \
    if ! command -v git >/dev/null || [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends git ca-certificates; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    # Recipe repos are often mounted from the host, owned by another user: trust them (read-only
    # plumbing only, see src/recipe/git.rs).
    git config --system --add safe.directory '*'; \
    groupadd --system --gid 10001 hearth; \
    useradd --system --uid 10001 --gid hearth --home-dir /var/lib/hearth --no-create-home \
      --shell /usr/sbin/nologin hearth; \
    mkdir -p /var/lib/hearth/snapshots /var/lib/hearth/cache /etc/hearth/manifests; \
    chown -R hearth:hearth /var/lib/hearth
COPY --from=builder /out/hearth /usr/local/bin/hearth
USER 10001:10001
WORKDIR /var/lib/hearth
# Change the port with HEARTH_LISTEN, not `--listen`: the HEALTHCHECK reads the same variable.
# 0.0.0.0 is off loopback: hearth then needs HEARTH_API_TOKEN_FILE (the API and status page want a
# bearer token) or refuses to start (HEARTH_INSECURE_LISTEN=true serves them open on purpose).
ENV HEARTH_LISTEN=0.0.0.0:9480 \
    HEARTH_CACHE=/var/lib/hearth/cache \
    HOME=/var/lib/hearth
EXPOSE 9480
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["hearth", "healthcheck", "--timeout", "5s"]
ENTRYPOINT ["hearth"]
CMD ["run", "-f", "/etc/hearth/manifests"]

# llmux container image: `docker build -t llmux .`, then see docs/deploy.md.
#
# Two stages on debian:bookworm-slim: the first compiles build/llmux with the -dev packages, the second
# holds only the shared libraries it loads, the CA certificates, the binary and a starting config.

# ---- build ----
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libevent-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libssl-dev \
      libsqlite3-dev libhiredis-dev jq \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what `make` reads (the Makefile includes tests/fuzz/fuzz.mk); `make` alone builds build/llmux.
COPY Makefile ./
COPY tests/fuzz/fuzz.mk tests/fuzz/
COPY src/ src/
COPY providers/ providers/
COPY dialects/ dialects/
COPY conf/llmux.json conf/
# Stage the runtime files with fixed owners and modes, whatever the build context's umask was.
RUN make -j"$(nproc)" all build/llmux.installed.json \
 && build/llmux --version \
 && install -D -m 0755 -s build/llmux /out/usr/local/bin/llmux \
 && install -D -m 0644 build/llmux.installed.json /out/etc/llmux/llmux.json

# ---- runtime ----
FROM debian:bookworm-slim
# The binary's own NEEDED libraries (libevent, libmicrohttpd, libcurl with OpenSSL, jansson, OpenSSL's
# libcrypto, SQLite for the conversation store, hiredis for a shared Redis); apt brings what those load
# (gnutls, nghttp2, ...). ca-certificates: TLS to the providers.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libmicrohttpd12 libcurl4 libjansson4 libssl3 libsqlite3-0 libhiredis0.14 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 llmux \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin llmux \
 && install -d -m 0700 -o 10001 -g 10001 /var/lib/llmux
# /usr/local/bin/llmux, and /etc/llmux/llmux.json (conf/llmux.json without its MCP demo server, which
# needs npx: root-owned, read-only to llmux).
# Mount your own config over it (a ConfigMap, a bind mount); SIGHUP reloads it. Provider keys are never
# baked in: the config reads them from the environment (${OPENAI_API_KEY}).
COPY --from=build /out/ /

# The conversation store (stored responses and conversations: /v1/responses, /v1/conversations) lives in
# the state directory, as under systemd's StateDirectory=: mount a volume there to keep it across
# containers (docker run -v llmux-state:/var/lib/llmux). One llmux per volume: a second refuses to start.
ENV STATE_DIRECTORY=/var/lib/llmux
VOLUME /var/lib/llmux

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8080
# SIGTERM drains: no new connections, in-flight requests get up to shutdown_timeout_ms (10 s by default),
# then exit 0. Give the runtime a longer grace period than that (docker stop -t 15, stop_grace_period).
STOPSIGNAL SIGTERM
# No curl in the image: llmux checks itself (exit 0 on a 2xx within 5 s). Docker-format images keep it
# (docker build); OCI-format builds (buildah's default) drop it, and Kubernetes ignores it: use probes.
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
  CMD ["llmux", "--health-check", "http://127.0.0.1:8080/healthz"]

# Listening address: deliberately none on the command line, so the config decides. The shipped config
# listens on 127.0.0.1:8080, which is what a sidecar needs (the app shares the pod's or the compose
# service's network namespace and calls http://127.0.0.1:8080/v1) and exposes nothing unauthenticated.
# To publish the port (docker run -p), mount a config with "listen": "0.0.0.0:8080" and auth.keys:
# without client keys llmux keeps itself on loopback. docs/deploy.md shows both.
ENTRYPOINT ["llmux"]
CMD ["--config", "/etc/llmux/llmux.json"]

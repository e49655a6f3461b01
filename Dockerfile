# Rampart: a multi-stage build to a small Debian runtime, run as a non-root user.
#   docker build -t rampart .
#   docker run -p 8080:8080 -e RAMPART_MASTER_KEY_FILE=/run/secrets/master_key ... rampart
# Deployment files using it: deploy/compose.yaml, deploy/k8s/ (README: "Running in production").

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p rampart \
 && strip target/release/rampart

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/rampart --create-home rampart
COPY --from=build /src/target/release/rampart /usr/local/bin/rampart
USER 10001:10001
WORKDIR /var/lib/rampart
# Listen on every interface inside the container; SQLite (when no database URL is given) and a
# generated master key go to the data directory (mount a volume there, or better: give
# RAMPART_DATABASE__URL and RAMPART_MASTER_KEY_FILE).
ENV RAMPART_SERVER__LISTEN=0.0.0.0:8080 \
    RAMPART_DATA__DIR=/var/lib/rampart \
    RAMPART_LOG__FORMAT=json
EXPOSE 8080
# /readyz answers 200 when the database answers. The slim image has no curl: bash's /dev/tcp.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/rampart"]
CMD ["serve"]

# syntax=docker/dockerfile:1
#
# Tollgate controller image. Build from the repository root:
#   docker build -t tollgate .

# ---- build stage -----------------------------------------------------------
FROM rust:1.95-bookworm AS builder

WORKDIR /src
COPY . .

# The cache mounts keep the cargo registry and build outputs between builds;
# the binary is copied out of the cached target folder before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --bin tollgate \
    && install -D -m 0755 target/release/tollgate /out/tollgate

# ---- runtime stage ---------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

COPY --from=builder /out/tollgate /usr/local/bin/tollgate

RUN mkdir -p /var/lib/tollgate /etc/tollgate
VOLUME ["/var/lib/tollgate"]

# Every configuration key can be set as TOLLGATE_<SECTION>_<KEY> (see the README); a file is
# optional (TOLLGATE_CONFIG or --config). The database and generated secrets go to the volume.
ENV TOLLGATE_DATA_DIR=/var/lib/tollgate

# Tollgate's HTTP ports: management API, metrics, admin API. The xDS (18000) and ext_authz (18001)
# gRPC ports are for Envoy on a private network only and are deliberately not listed here.
EXPOSE 9090 9091 9092

# Ready means: the database answers, xDS listens, and the platform link (when configured) is up.
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 \
    CMD ["tollgate", "probe", "http://127.0.0.1:9092/api/admin/v1/ready"]

ENTRYPOINT ["tollgate"]
CMD ["serve"]

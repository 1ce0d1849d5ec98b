# syntax=docker/dockerfile:1
# Multi-stage build: a full Rust toolchain to build, a small Debian runtime to run.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# berth without the `dev` feature: a production binary links no Harbor emulator (compose runs the
# emulator as its own process, from the same image).
RUN cargo build --release --locked -p berth-server --no-default-features --bin berth \
 && cargo build --release --locked -p harbor-emulator --bin harbor-emulator \
 && strip target/release/berth target/release/harbor-emulator

FROM debian:bookworm-slim AS runtime
# CA certificates: reqwest verifies Harbor and JWKS endpoints against the OS trust store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/berth --create-home --shell /usr/sbin/nologin berth
COPY --from=build /src/target/release/berth /usr/local/bin/berth
COPY --from=build /src/target/release/harbor-emulator /usr/local/bin/harbor-emulator
USER 10001:10001
WORKDIR /var/lib/berth
ENV BERTH_LISTEN=0.0.0.0:8080 \
    BERTH_DATA_DIR=/var/lib/berth/data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["serve"]

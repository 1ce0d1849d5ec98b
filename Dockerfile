# syntax=docker/dockerfile:1
# Multi-stage build: a full Rust toolchain to build, a distroless runtime (glibc, libgcc and CA
# certificates; no shell, no package manager) to run, as a non-root numeric user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# --locked: the image builds exactly Cargo.lock's versions, or fails. berth without the `dev`
# feature: a production binary links no Harbor emulator (compose runs the emulator as its own
# process, from the same image).
RUN cargo build --release --locked -p berth-server --no-default-features --bin berth \
 && cargo build --release --locked -p harbor-emulator --bin harbor-emulator \
 && strip target/release/berth target/release/harbor-emulator

# Debian 12 like the builder, so the binaries find the glibc they were linked against. The CA
# certificates are there: reqwest verifies Harbor and JWKS endpoints against the OS trust store.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /src/target/release/berth /usr/local/bin/berth
COPY --from=build /src/target/release/harbor-emulator /usr/local/bin/harbor-emulator
# distroless's `nonroot` user, by number so a runtime can check it is not root.
USER 65532:65532
WORKDIR /home/nonroot
ENV BERTH_LISTEN=0.0.0.0:8080 \
    BERTH_DATA_DIR=/home/nonroot/.berth
EXPOSE 8080
# No curl in the image: `berth healthcheck` GETs /readyz on BERTH_LISTEN's port and exits 1
# unless it answers 200 (the database, the key ring and Harbor all reachable).
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/berth", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["serve"]

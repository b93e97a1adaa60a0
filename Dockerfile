# The runner in a container, for `runner k8s` (its manifest's default image is aevb:latest)
# or any other scheduler. Build from the repository root:
#   docker build -t aevb:latest .
# Stage 1 compiles the release binary; stage 2 is a slim Debian with only that binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY assets ./assets
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin runner

FROM debian:bookworm-slim
# Python is not needed; git lets rows record the experiments' commit when the volume is a
# checkout.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/runner /usr/local/bin/runner
# The Kubernetes Job mounts the volume holding experiments/ and results/ here.
WORKDIR /work
ENTRYPOINT []
CMD ["runner", "--help"]

# ferroscale: a static binary on a distroless base, running as non-root.
# Build: docker build -t ghcr.io/ferroscale/ferroscale:0.1.0 .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p ferroscale \
 && cp target/x86_64-unknown-linux-musl/release/ferroscale /ferroscale

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /ferroscale /ferroscale
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/ferroscale"]
CMD ["run"]

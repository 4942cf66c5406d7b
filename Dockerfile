# ferroscale: a static binary in an image built from scratch, running as non-root.
# Build: docker build -t ghcr.io/ferroscale/ferroscale:0.1.0 .
# Offline, without a registry: `make image` (hack/image/build.sh) builds the same image with
# buildah; the final stage below COPYs exactly the files listed in hack/image/files (a test checks).
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p ferroscale \
 && cp target/x86_64-unknown-linux-musl/release/ferroscale /ferroscale

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title=ferroscale \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source=https://github.com/ferroscale/ferroscale \
      org.opencontainers.image.licenses=Apache-2.0
COPY --from=build /ferroscale /ferroscale
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY hack/image/passwd /etc/passwd
COPY hack/image/group /etc/group
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/ferroscale"]
CMD ["run"]

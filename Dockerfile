# syntax=docker/dockerfile:1
#
# docker build --build-arg VERSION=0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) \
#   -t ghcr.io/trustchain/trustchain:0.1.0 .
#
# One image for every role: the Deployment picks the role with --role.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
# Static (no cgo) so it runs on distroless/static; -trimpath keeps build
# paths out of the binary. Migrations are embedded: nothing else ships.
# -tags nodemo leaves out `demo` and `certs` and with them the local issuer
# that mints tokens, the demo page and the dev CA (adapters/dev, app/demo).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -tags nodemo -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/trustchain .

# distroless/static: CA certificates (for Auth0's JWKS) and tzdata, no shell,
# runs as uid 65532. The manifests add a read-only root filesystem.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/trustchain /trustchain
# Numeric, so the kubelet can check runAsNonRoot against the image too.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/trustchain"]

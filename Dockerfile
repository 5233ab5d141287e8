# syntax=docker/dockerfile:1
#
# One small image carrying the three services and a health probe; pick the
# service with the command:
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t metricpipe .
#   docker run --rm metricpipe producer --version
#   docker run --rm -e METRICPIPE_KAFKA_BROKERS=kafka:9092 metricpipe consumer
#
# The runtime is distroless (no shell, no package manager) and runs as
# uid/gid 65532. The user is numeric so Kubernetes' runAsNonRoot can verify it.

# Built on the builder's own platform and cross-compiled (pure Go, no cgo), so
# a multi-platform build (docker buildx build --platform linux/amd64,linux/arm64)
# does not run the compiler under emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/metricpipe/metricpipe/shared/service.version=${VERSION}" \
      -o /out/ ./producer ./consumer ./analyzer ./deploy/healthcheck

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="metricpipe" \
      org.opencontainers.image.description="Kafka-native streaming metrics pipeline: producer, consumer and analyzer" \
      org.opencontainers.image.source="https://github.com/metricpipe/metricpipe" \
      org.opencontainers.image.url="https://github.com/metricpipe/metricpipe" \
      org.opencontainers.image.documentation="https://github.com/metricpipe/metricpipe#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# 9101-9103: /healthz, /readyz and /metrics of producer, consumer, analyzer
# (each needs --http-addr 0.0.0.0:PORT in a container); 8186: `producer http`.
EXPOSE 9101 9102 9103 8186
# /usr/local/bin/healthcheck probes /readyz on METRICPIPE_HTTP_ADDR's port
# (deploy/healthcheck); docker-compose.yml uses it as each service's
# healthcheck. No image HEALTHCHECK: one-off commands (alerts tail, options)
# serve no HTTP and would show as unhealthy.
# No default service: the command names it (producer, consumer or analyzer).
ENTRYPOINT []

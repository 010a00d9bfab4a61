# weft's one image: the static weft and weft-proxy binaries, plus iptables.
# Every part runs from it: the control plane (weft control-plane
# --kubernetes) and, from weft-proxy (the data plane alone, a fraction of
# weft's memory), the injected sidecar (weft-proxy proxy) and its init
# container (weft-proxy iptables).
#
#   docker build -t ghcr.io/weft-mesh/weft:$(go run ./cmd/weft version | cut -d' ' -f2) .
#
# Not built in CI: there is no container engine there (see docs/kubernetes.md).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static: it needs no libc. web/dist (the console) is committed,
# so no Node.js step is needed.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/weft ./cmd/weft-proxy

# Not distroless: istio-init (weft iptables) runs iptables-restore and
# ip6tables-restore, so the image carries Debian's iptables; nothing else.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/weft /out/weft-proxy /usr/local/bin/
# The chart and the injector choose the user: 65532 for the control plane,
# 1337 (Istio's proxy UID, exempt from capture) for the sidecar.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/weft"]

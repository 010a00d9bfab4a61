package demo

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// converterTarget is the proxyless API's converter: grpc-go's xds resolver
// asks the control plane for this listener (host:port, Istio's form).
const converterTarget = "xds:///converter.default.svc.cluster.local:50051"

// workloadIPs are the pod IPs startWorkloads gives ws: base+1, base+2, …
func workloadIPs(base netip.Addr, n int) []string {
	ips := make([]string, n)
	ip := base
	for i := range ips {
		ip = ip.Next()
		ips[i] = ip.String()
	}
	return ips
}

// proxylessRun is the command line of workload w as a proxyless gRPC app:
// `weft run --proxyless` (its xDS bootstrap and, with the join token in its
// environment, its mesh certificate on disk, kept renewed) starting the
// app with --proxyless (the API dialing converterTarget).
func proxylessRun(w workload, port, account, ip, xds, exe string) []string {
	args := []string{"run", "--proxyless", "--name", w.name, "--namespace", "default", "--service", w.service,
		"--version", w.version, "--port", port, "--service-account", account, "--ip", ip, "--xds-address", xds, "--", exe}
	args = append(args, w.args...)
	args = append(args, "--proxyless")
	if w.service == "temperature" {
		args = append(args, "--converter", converterTarget)
	}
	return args
}

// proxylessMTLSYAML gives the proxyless converter calls mutual TLS with
// SPIFFE identities: proxyless gRPC has no auto mTLS, so the client's
// DestinationRule asks for ISTIO_MUTUAL (docs/examples/temperature's
// converter-subsets.yaml, which replaces this one, does too), and the
// converters' STRICT PeerAuthentication refuses plaintext (gRPC has no
// PERMISSIVE port).
const proxylessMTLSYAML = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: converter, namespace: default}
spec:
  host: converter
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: converter, namespace: default}
spec:
  selector: {matchLabels: {app: converter}}
  mtls: {mode: STRICT}
`

// proxylessServicesYAML declares the proxyless workloads' services, which
// proxyless apps do not register themselves (Istio's proxyless gRPC has
// Kubernetes' Services and endpoints for that): one MESH_INTERNAL
// ServiceEntry per service, an endpoint per instance with its labels and
// service account, as `weft run --service` would have registered them.
func proxylessServicesYAML(ws []workload, ips []string) string {
	type svc struct {
		port      string
		endpoints []string
	}
	svcs := map[string]*svc{}
	for i, w := range ws {
		s := svcs[w.service]
		if s == nil {
			s = &svc{port: w.port}
			if s.port == "" {
				s.port = "http:9080"
			}
			svcs[w.service] = s
		}
		account := w.account
		if account == "" {
			account = "bookinfo-" + w.service
		}
		s.endpoints = append(s.endpoints, fmt.Sprintf("  - {address: %s, labels: {app: %s, version: %s}, serviceAccount: %s}\n",
			ips[i], w.service, w.version, account))
	}
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		s := svcs[n]
		proto, num, _ := strings.Cut(s.port, ":")
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %s, namespace: default}
spec:
  hosts: [%s.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: %s, name: %s, protocol: %s}
  endpoints:
`, n, n, num, proto, strings.ToUpper(proto))
		for _, e := range s.endpoints {
			b.WriteString(e)
		}
	}
	return b.String()
}

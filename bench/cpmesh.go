package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const benchNS = "bench"

// workloadIP is the pod IP of workload v (1 or 2) of service svc.
func workloadIP(svc, v int) string {
	i := 2*svc + v - 1
	return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
}

// writeMesh writes the bench's config: per service a ServiceEntry, two
// WorkloadEntries (v1, v2), a DestinationRule with subsets v1 and v2 and a
// VirtualService with a header route (end-user jason to v2, the rest to v1).
func writeMesh(dir string, services int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for svc := range services {
		var b strings.Builder
		fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-%[1]d, namespace: bench}
spec:
  hosts: [svc-%[1]d.bench.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: svc-%[1]d}}
`, svc)
		for v := 1; v <= 2; v++ {
			fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: svc-%[1]d-v%[2]d-1, namespace: bench}
spec: {address: %[3]s, labels: {app: svc-%[1]d, version: v%[2]d}, serviceAccount: default}
`, svc, v, workloadIP(svc, v))
		}
		fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-%[1]d, namespace: bench}
spec:
  host: svc-%[1]d
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
`, svc)
		b.WriteString(virtualService(svc, "jason"))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("svc-%d.yaml", svc)), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// virtualService is service svc's VirtualService, whose header route
// matches end-user: user.
func virtualService(svc int, user string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-%[1]d, namespace: bench}
spec:
  hosts: [svc-%[1]d]
  http:
  - match: [{headers: {end-user: {exact: %[2]s}}}]
    route: [{destination: {host: svc-%[1]d, subset: v2}}]
  - route: [{destination: {host: svc-%[1]d, subset: v1}}]
`, svc, user)
}

func cpSectionName(o cpOptions) string {
	return fmt.Sprintf("controlplane %d services / %d proxies", o.services, o.proxies)
}

// renderCP is the Markdown section of one run.
func renderCP(r *cpResult) string {
	var b strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	fmt.Fprintf(&b, "### %d services / %d proxies\n\n", r.o.services, r.o.proxies)
	fmt.Fprintf(&b, "`go run ./bench controlplane -services %d -proxies %d -pushes %d`, %s\n\n",
		r.o.services, r.o.proxies, r.o.pushes, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("| what | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| fully configured | %d of %d |\n", r.configured, r.o.proxies)
	fmt.Fprintf(&b, "| first full config p50 / p99 / max | %s / %s / %s |\n", ms(r.connectP50), ms(r.connectP99), ms(r.connectMax))
	fmt.Fprintf(&b, "| control plane CPU to configure all | %.1f s |\n", r.cpuConnect)
	fmt.Fprintf(&b, "| RSS after connect | %d MB |\n", r.rssConnected>>20)
	if len(r.rssPushes) > 0 {
		fmt.Fprintf(&b, "| one VirtualService push p50 / p99 / max (%d pushes) | %s / %s / %s |\n", r.o.pushes, ms(r.pushP50), ms(r.pushP99), ms(r.pushMax))
		fmt.Fprintf(&b, "| proxies a push missed (timeout) | %d |\n", r.pushMissed)
		fmt.Fprintf(&b, "| bytes per proxy and push | %.0f |\n", r.bytesPerPush)
		fmt.Fprintf(&b, "| control plane CPU for the pushes | %.1f s |\n", r.cpuPushes)
		fmt.Fprintf(&b, "| RSS after each push (MB) | %v |\n", mb(r.rssPushes))
	}
	if r.o.restart && len(r.rssPushes) > 0 {
		done := "yes"
		if !r.restartDone {
			done = "NO (timeout)"
		}
		fmt.Fprintf(&b, "| restart: all reconnected and pushed to | %s, %s |\n", ms(r.restart), done)
	}
	fmt.Fprintf(&b, "| NACKs | %d |\n\n", r.nacks)
	return b.String()
}

// writeSection replaces (or appends) the section named name in the
// Markdown file path, between HTML comment markers, leaving the rest.
func writeSection(path, name, section string) error {
	begin, end := "<!-- begin "+name+" -->\n", "<!-- end "+name+" -->\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := begin + section + end
	if i := strings.Index(s, begin); i >= 0 {
		if j := strings.Index(s[i:], end); j >= 0 {
			s = s[:i] + block + s[i+j+len(end):]
			return os.WriteFile(path, []byte(s), 0o644)
		}
	}
	if s != "" && !strings.HasSuffix(s, "\n\n") {
		s += "\n"
	}
	return os.WriteFile(path, []byte(s+block), 0o644)
}

// writeKeepingSections writes content to path, keeping the sections
// writeSection put there (the control-plane results), after it.
func writeKeepingSections(path, content string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	rest := string(old)
	var kept []string
	for {
		i := strings.Index(rest, "<!-- begin ")
		if i < 0 {
			break
		}
		name, _, _ := strings.Cut(rest[i+len("<!-- begin "):], " -->")
		end := "<!-- end " + name + " -->\n"
		j := strings.Index(rest[i:], end)
		if j < 0 {
			break
		}
		kept = append(kept, rest[i:i+j+len(end)])
		rest = rest[i+j+len(end):]
	}
	if len(kept) > 0 {
		content = strings.TrimRight(content, "\n") + "\n\n" + strings.Join(kept, "\n")
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

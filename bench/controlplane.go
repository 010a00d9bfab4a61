package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

// cpOptions are the flags of "bench controlplane".
type cpOptions struct {
	proxies, services, pushes int
	restart                   bool
	timeout                   time.Duration
	out                       string
	profiles                  string
}

// cpResult is one run of "bench controlplane".
type cpResult struct {
	o                                  cpOptions
	connectP50, connectP99, connectMax time.Duration
	configured                         int
	pushP50, pushP99, pushMax          time.Duration
	pushMissed                         int
	bytesPerPush                       float64 // per proxy and push
	rssConnected, rssLast              int64   // VmRSS after connect and after the last push
	rssPushes                          []int64 // after each push
	cpuConnect, cpuPushes              float64 // seconds
	restart                            time.Duration
	restartDone                        bool
	nacks                              int64
}

// cpAddr is the control plane's loopback IP (-address).
var cpAddr = "127.0.9.30"

func controlPlaneMain(ctx context.Context, args []string) error {
	var o cpOptions
	fs := flag.NewFlagSet("bench controlplane", flag.ContinueOnError)
	fs.IntVar(&o.proxies, "proxies", 200, "simulated sidecars (two per service at most)")
	fs.IntVar(&o.services, "services", 100, "services, each with two workloads, a VirtualService and a DestinationRule")
	fs.IntVar(&o.pushes, "pushes", 10, "VirtualService changes, one after another")
	fs.StringVar(&cpAddr, "address", cpAddr, "loopback IP of the control plane (its xDS on :15010, API on :15014)")
	fs.BoolVar(&o.restart, "restart", true, "restart the control plane under its connected proxies at the end")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "give up on a phase after this long")
	fs.StringVar(&o.out, "out", "bench/RESULTS.md", "Markdown file whose control-plane section gets the result")
	fs.StringVar(&o.profiles, "profiles", "", "save the control plane's heap profile after connect and after each push in this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.proxies > 2*o.services {
		return fmt.Errorf("-proxies %d: at most two per service (-services %d)", o.proxies, o.services)
	}
	dir, err := os.MkdirTemp("", "weft-bench-cp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	weft := filepath.Join(dir, "weft")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", weft, "./cmd/weft").CombinedOutput(); err != nil {
		return fmt.Errorf("building weft: %v\n%s", err, out)
	}
	mesh := filepath.Join(dir, "mesh")
	if err := writeMesh(mesh, o.services); err != nil {
		return err
	}
	procs := &procSet{}
	defer procs.stopAll()
	r, err := runControlPlaneBench(ctx, o, weft, dir, mesh, procs)
	if err != nil {
		return err
	}
	section := renderCP(r)
	fmt.Print(section)
	return writeSection(o.out, cpSectionName(o), section)
}

func startCP(weft, dir, mesh string, procs *procSet) (*exec.Cmd, error) {
	return procs.start(dir, weft, "control-plane", "--config-dir", mesh, "--data-dir", filepath.Join(dir, "cp"),
		"--xds-address", cpAddr+":15010", "--http-address", cpAddr+":15014", "--console-address", "off",
		"--secure-xds-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off", "--log-level", "warn",
		// The simulated proxies have no admin port to scrape metrics from.
		"--prometheus-url", "http://127.0.0.1:9")
}

func runControlPlaneBench(ctx context.Context, o cpOptions, weft, dir, mesh string, procs *procSet) (*cpResult, error) {
	r := &cpResult{o: o}
	cp, err := startCP(weft, dir, mesh, procs)
	if err != nil {
		return nil, err
	}
	client := api.NewClient("http://" + cpAddr + ":15014")
	if err := waitAPI(ctx, client, o.timeout, cp.Process.Pid); err != nil {
		return nil, err
	}
	// Writes need the admin credentials the control plane left in its data dir.
	creds, err := authz.ReadCredentials(filepath.Join(dir, "cp"))
	if err != nil {
		return nil, err
	}
	client = api.NewClientWith("http://"+cpAddr+":15014", api.ClientOptions{Token: creds.Token})
	pinSelf(0) // the control plane has core 1 (procSet.start)
	sims := make([]*simProxy, o.proxies)
	for i := range sims {
		svc, v := i/2, i%2+1
		if sims[i], err = newSimProxy(workloadIP(svc, v), fmt.Sprintf("svc-%d-v%d-1", svc, v), benchNS,
			map[string]string{"app": fmt.Sprintf("svc-%d", svc), "version": fmt.Sprintf("v%d", v)}); err != nil {
			return nil, err
		}
	}
	simCtx, stopSims := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopSims(); wg.Wait() }()
	cpu0 := cpuTicks(cp.Process.Pid)
	start := time.Now()
	for _, s := range sims {
		// A connection each, as every sidecar has.
		cc, err := grpc.NewClient(cpAddr+":15010", grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
		if err != nil {
			return nil, err
		}
		defer cc.Close()
		wg.Add(1)
		go func() { defer wg.Done(); s.run(simCtx, cc) }()
	}
	// Connect: every proxy fully configured.
	last := time.Now()
	waitUntil(ctx, o.timeout, func() bool {
		n := countConfigured(sims)
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			var resp int64
			for _, s := range sims {
				resp += s.responses.Load()
			}
			log.Printf("connecting: %d of %d configured after %v (%d responses, control plane RSS %d MB)", n, len(sims), time.Since(start).Round(time.Second), resp, rss(cp.Process.Pid)>>20)
		}
		return n == len(sims)
	})
	var connects []time.Duration
	for _, s := range sims {
		if c, _ := s.state(); !c.IsZero() {
			connects = append(connects, c.Sub(start))
		}
	}
	r.configured = len(connects)
	r.connectP50, r.connectP99, r.connectMax = percentiles(connects)
	r.cpuConnect = float64(cpuTicks(cp.Process.Pid)-cpu0) / 100
	r.rssConnected = rss(cp.Process.Pid)
	log.Printf("connect: %d/%d configured, p50 %v p99 %v max %v, CPU %.1fs, RSS %d MB", r.configured, len(sims),
		r.connectP50, r.connectP99, r.connectMax, r.cpuConnect, r.rssConnected>>20)
	if r.configured < len(sims) {
		return r, nil
	}
	saveHeap(ctx, o, "connect")
	// Pushes: one VirtualService changed at a time; every proxy sees it.
	cpu1 := cpuTicks(cp.Process.Pid)
	var pushes []time.Duration
	for n := range o.pushes {
		d, missed, bytes, err := push(ctx, client, sims, n, o)
		if err != nil {
			return nil, err
		}
		pushes = append(pushes, d...)
		r.pushMissed += missed
		r.bytesPerPush += float64(bytes) / float64(len(sims)) / float64(o.pushes)
		r.rssPushes = append(r.rssPushes, rss(cp.Process.Pid))
		saveHeap(ctx, o, fmt.Sprintf("push-%d", n+1))
	}
	r.cpuPushes = float64(cpuTicks(cp.Process.Pid)-cpu1) / 100
	r.pushP50, r.pushP99, r.pushMax = percentiles(pushes)
	if len(r.rssPushes) > 0 {
		r.rssLast = r.rssPushes[len(r.rssPushes)-1]
	}
	log.Printf("pushes: p50 %v p99 %v max %v, missed %d, %.0f bytes per proxy and push, RSS %v MB", r.pushP50, r.pushP99, r.pushMax,
		r.pushMissed, r.bytesPerPush, mb(r.rssPushes))
	if o.restart {
		if r.restart, r.restartDone, err = restartCP(ctx, o, cp, weft, dir, mesh, procs, client, sims); err != nil {
			return nil, err
		}
	}
	for _, s := range sims {
		r.nacks += s.nacks.Load()
	}
	return r, nil
}

// push changes VirtualService svc-K (its header route's value) and returns
// how long each proxy took to get the new route configuration.
func push(ctx context.Context, client *api.Client, sims []*simProxy, n int, o cpOptions) ([]time.Duration, int, int64, error) {
	svc := (n * 7) % o.services
	marker := fmt.Sprintf("jason-%d-%d", svc, n)
	var before int64
	for _, s := range sims {
		s.watch(marker)
		before += s.bytes.Load()
	}
	start := time.Now()
	if _, err := client.Apply(ctx, "bench", []byte(virtualService(svc, marker))); err != nil {
		return nil, 0, 0, fmt.Errorf("applying VirtualService svc-%d: %w", svc, err)
	}
	waitUntil(ctx, o.timeout, func() bool {
		for _, s := range sims {
			if _, seen := s.state(); seen.IsZero() {
				return false
			}
		}
		return true
	})
	var ds []time.Duration
	missed := 0
	for _, s := range sims {
		if _, seen := s.state(); seen.IsZero() {
			missed++
		} else {
			ds = append(ds, seen.Sub(start))
		}
	}
	time.Sleep(200 * time.Millisecond) // let the ACKs and stragglers land before the next change
	var after int64
	for _, s := range sims {
		after += s.bytes.Load()
	}
	return ds, missed, after - before, nil
}

// restartCP stops the control plane and starts it again on the same
// config and data; it returns how long until every proxy is connected to
// the new one and has its config again (a VirtualService change reaches
// them all).
func restartCP(ctx context.Context, o cpOptions, cp *exec.Cmd, weft, dir, mesh string, procs *procSet, client *api.Client, sims []*simProxy) (time.Duration, bool, error) {
	_ = syscall.Kill(-cp.Process.Pid, syscall.SIGTERM)
	_ = cp.Wait()
	start := time.Now()
	cp2, err := startCP(weft, dir, mesh, procs)
	if err != nil {
		return 0, false, err
	}
	if err := waitAPI(ctx, client, o.timeout, cp2.Process.Pid); err != nil {
		return 0, false, err
	}
	ok := waitUntil(ctx, o.timeout, func() bool {
		ps, err := client.Proxies(ctx)
		return err == nil && len(ps) == len(sims)
	})
	if !ok {
		return time.Since(start), false, nil
	}
	ds, missed, _, err := push(ctx, client, sims, o.pushes, o)
	if err != nil {
		return 0, false, err
	}
	log.Printf("restart: all %d proxies reconnected and pushed to in %v (%d missed the push)", len(sims)-missed, time.Since(start), missed)
	_ = ds
	return time.Since(start), missed == 0, nil
}

func countConfigured(sims []*simProxy) int {
	n := 0
	for _, s := range sims {
		if c, _ := s.state(); !c.IsZero() {
			n++
		}
	}
	return n
}

// waitUntil polls cond every 50 ms until it holds (true) or bound passes.
func waitUntil(ctx context.Context, bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

func waitAPI(ctx context.Context, client *api.Client, bound time.Duration, pid int) error {
	deadline := time.Now().Add(bound)
	for {
		if !alive(pid) {
			return fmt.Errorf("the control plane (pid %d) exited; is %s taken?", pid, cpAddr)
		}
		_, err := client.Proxies(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("waiting for the control plane's API: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func percentiles(ds []time.Duration) (p50, p99, max time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.5), at(0.99), s[len(s)-1]
}

// rss is VmRSS of a process in bytes.
func rss(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func mb(bs []int64) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b >> 20
	}
	return out
}

// saveHeap saves the control plane's heap profile (/debug/pprof/heap,
// after a GC) as DIR/heap-NAME.pb.gz when -profiles is set.
func saveHeap(ctx context.Context, o cpOptions, name string) {
	if o.profiles == "" {
		return
	}
	if err := os.MkdirAll(o.profiles, 0o755); err != nil {
		log.Printf("heap profile: %v", err)
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cpAddr+":15014/debug/pprof/heap?gc=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Printf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Printf("heap profile: HTTP %d", resp.StatusCode)
		return
	}
	f, err := os.Create(filepath.Join(o.profiles, "heap-"+name+".pb.gz"))
	if err != nil {
		log.Printf("heap profile: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.ReadFrom(resp.Body); err != nil {
		log.Printf("heap profile: %v", err)
	}
}

// alive reports whether a process runs (not exited, not a zombie).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

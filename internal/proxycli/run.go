package proxycli

import (
	"context"
	"errors"
	"fmt"
	"github.com/weft-mesh/weft/internal/cmdline"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weft-mesh/weft/internal/proxy"
)

func runRun(ctx context.Context, env *Env) error {
	fs := newFlags(env, "run")
	f := addProxyFlags(fs, sidecarDefaults)
	readyTimeout := fs.Duration("ready-timeout", 30*time.Second, "how long to wait for the sidecar's config before giving up")
	fs.BoolVar(&f.opts.PodNetns, "netns", false, "run the app in a network namespace of its own, as in a pod (needs root, Linux): "+
		"its ports are reachable only through the sidecar, its only way out is the sidecar's outbound port")
	proxyless := fs.Bool("proxyless", false, "no sidecar: the app is a proxyless gRPC app (its own xDS client); write its xDS bootstrap "+
		"(GRPC_XDS_BOOTSTRAP, GENERATOR=grpc) and, with --token, keep its mesh certificate on disk for its xDS credentials")
	if err := cmdline.ParseFlags(fs, env.Args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		fmt.Fprintln(env.Stderr, "usage: weft run [flags] -- CMD ARGS...")
		return cmdline.ErrUsage
	}
	if f.kubernetes {
		return errors.New("--kubernetes is for weft proxy (the injected sidecar); weft run captures with HTTP_PROXY")
	}
	opts, err := f.options(env)
	if err != nil {
		return err
	}
	// Catch the signals before anything starts, to forward them to the app.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if *proxyless {
		return runProxyless(ctx, env, opts, argv, sigs)
	}

	p, err := proxy.Start(opts)
	if err != nil {
		return err
	}
	readyCtx, cancel := context.WithTimeout(ctx, *readyTimeout)
	err = p.WaitReady(readyCtx)
	cancel()
	if err != nil {
		return errors.Join(err, p.Shutdown())
	}
	trim(env.Stderr) // what start-up and the first config touched
	start := func(cmd *exec.Cmd) error {
		p.ExpectProcess() // the app may connect before Start returns its PID
		if err := p.StartInPod(cmd.Start); err != nil {
			return err
		}
		p.AllowProcess(cmd.Process.Pid) // the outbound capture port serves the app and its children
		return nil
	}
	code, err := runChild(ctx, env, childEnv(os.Environ(), p), p.MarkDraining, start, argv, sigs)
	if serr := p.Shutdown(); serr != nil {
		opts.Logger.Warn("sidecar shutdown", "component", "run", "err", serr)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &cmdline.ExitCodeError{Code: code}
	}
	return nil
}

// runChild runs the app in its own process group with the pod's
// environment, forwards SIGINT/SIGTERM (and a cancelled ctx, as SIGTERM) to
// it, and returns its exit code once it has exited. Processes the app left
// in its group are killed.
func runChild(ctx context.Context, env *Env, childEnv []string, draining func(), start func(*exec.Cmd) error, argv []string, sigs <-chan os.Signal) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, env.Stdout, env.Stderr
	cmd.SysProcAttr = appAttr()
	cmd.WaitDelay = time.Second // a grandchild holding stdout must not block Wait
	if err := start(cmd); err != nil {
		return 0, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	pgid := cmd.Process.Pid
	defer func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }() // no orphans
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctxDone := ctx.Done()
	forwarded := false
	for {
		select {
		case err := <-done:
			if errors.Is(err, exec.ErrWaitDelay) {
				// The app exited but something it started holds its
				// output open; the deferred kill ends that.
				return exitCode(nil, cmd.ProcessState)
			}
			return exitCode(err, cmd.ProcessState)
		case s := <-sigs:
			forwarded = true
			draining()
			_ = syscall.Kill(-pgid, s.(syscall.Signal))
		case <-ctxDone:
			// weft's own signal handling cancels ctx for the same signal
			// that reaches sigs: forward that one rather than both.
			ctxDone = nil
			if forwarded {
				continue
			}
			forwarded = true
			draining()
			sig := syscall.SIGTERM
			select {
			case s := <-sigs:
				sig = s.(syscall.Signal)
			case <-time.After(100 * time.Millisecond):
			}
			_ = syscall.Kill(-pgid, sig)
		}
	}
}

// exitCode turns the app's state into a shell-style exit code (128+N when
// killed by signal N).
func exitCode(err error, st *os.ProcessState) (int, error) {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, fmt.Errorf("waiting for the app: %w", err)
	}
	if st == nil {
		return 0, errors.New("waiting for the app: no exit status")
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return st.ExitCode(), nil
}

// childEnv is the app's environment: weft run's own minus NO_PROXY (the
// sidecar must see every request) and the sidecar's join token
// (WEFT_JOIN_TOKEN: the app must not be able to join as the workload), plus the pod's identity, HTTP_PROXY and
// HTTPS_PROXY (TLS and gRPC clients open CONNECT tunnels through it).
// runProxyless runs a proxyless gRPC app: its bootstrap and certificate
// (proxy.StartProxyless), then the app, with no sidecar.
func runProxyless(ctx context.Context, env *Env, opts proxy.Options, argv []string, sigs <-chan os.Signal) error {
	p, err := proxy.StartProxyless(opts)
	if err != nil {
		return err
	}
	defer p.Close()
	code, err := runChild(ctx, env, mergeEnv(os.Environ(), p.Env()), func() {}, (*exec.Cmd).Start, argv, sigs)
	if err != nil {
		return err
	}
	if code != 0 {
		return &cmdline.ExitCodeError{Code: code}
	}
	return nil
}

// mergeEnv is base with set's variables replacing any of the same name,
// without drop's and never with the join token: the app gets none of the
// sidecar's credentials.
func mergeEnv(base []string, set map[string]string, drop ...string) []string {
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok && k != envJoinToken && !slices.Contains(drop, k) {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

func childEnv(base []string, p *proxy.Proxy) []string {
	o := p.Options()
	port := ""
	if len(o.Ports) > 0 {
		port = strconv.FormatUint(uint64(o.Ports[0].Number), 10)
	}
	set := map[string]string{
		"POD_IP": p.IP().String(), "POD_NAME": o.Name, "POD_NAMESPACE": o.Namespace,
		"SERVICE_ACCOUNT": o.ServiceAccount, "SERVICE_VERSION": o.Version, "PORT": port,
		"HTTP_PROXY": p.OutboundURL(), "http_proxy": p.OutboundURL(),
		"HTTPS_PROXY": p.OutboundURL(), "https_proxy": p.OutboundURL(),
	}
	return mergeEnv(base, set, "NO_PROXY", "no_proxy")
}

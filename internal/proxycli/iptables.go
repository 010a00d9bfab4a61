package proxycli

import (
	"context"
	"fmt"
	"github.com/weft-mesh/weft/internal/cmdline"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/proxy/dnsproxy"
	"github.com/weft-mesh/weft/internal/proxy/iptables"
)

// runIPTables is `weft iptables`, the istio-init container's command: the
// flags are istio-iptables'.
func runIPTables(ctx context.Context, env *Env) error {
	fs := newFlags(env, "iptables")
	c := iptables.DefaultConfig()
	var outPort, inPort, dnsPort uint32
	uint32Var(fs, &outPort, "p", 15001, "port outbound TCP is redirected to")
	uint32Var(fs, &inPort, "z", 15006, "port inbound TCP is redirected to")
	uint32Var(fs, &dnsPort, "dns-port", 15053, "port DNS is redirected to (--redirect-dns)")
	uid := fs.String("u", "1337", "UID(s) of the proxy, comma-separated: never redirected")
	gid := fs.String("g", "1337", "GID(s) of the proxy, comma-separated: never redirected")
	fs.StringVar(&c.Mode, "m", iptables.ModeRedirect, "interception mode (REDIRECT)")
	include := fs.String("i", "*", "outbound CIDRs to redirect, comma-separated ('*': all, '': none)")
	exclude := fs.String("x", "", "outbound CIDRs never redirected, comma-separated")
	inbound := fs.String("b", "*", "inbound ports to redirect, comma-separated ('*': all, '': none)")
	excludeIn := fs.String("d", "", "inbound ports never redirected, comma-separated (15090, 15021, 15020 never are)")
	excludeOut := fs.String("o", "", "outbound ports never redirected, comma-separated")
	fs.BoolVar(&c.RedirectDNS, "redirect-dns", false, "redirect DNS (UDP and TCP 53) to the proxy's DNS port")
	fs.BoolVar(&c.CaptureAllDNS, "capture-all-dns", false, "with --redirect-dns: all DNS, not only to the name servers of --resolv-conf")
	resolvConf := fs.String("resolv-conf", "/etc/resolv.conf", "where the pod's name servers are (--redirect-dns)")
	ipv6 := fs.Bool("ipv6", true, "apply the IPv6 rules too (ip6tables) when the pod has a global IPv6 address")
	dryRun := fs.Bool("dry-run", false, "print the iptables-restore input and change nothing")
	cleanup := fs.Bool("cleanup", false, "remove weft's chains and the jumps to them")
	if err := cmdline.ParseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	c.OutboundPort, c.InboundPort, c.DNSPort = uint16(outPort), uint16(inPort), uint16(dnsPort)
	c.ProxyUIDs, c.ProxyGIDs = splitList(*uid), splitList(*gid)
	c.IncludeOutboundCIDRs, c.ExcludeOutboundCIDRs = splitList(*include), splitList(*exclude)
	c.IncludeInboundPorts = splitList(*inbound)
	var err error
	if c.ExcludeInboundPorts, err = portList("-d", *excludeIn); err != nil {
		return err
	}
	if c.ExcludeOutboundPorts, err = portList("-o", *excludeOut); err != nil {
		return err
	}
	if c.RedirectDNS && !c.CaptureAllDNS {
		rc, err := dnsproxy.ReadResolvConf(*resolvConf)
		if err != nil {
			return fmt.Errorf("--redirect-dns: %w (or pass --capture-all-dns)", err)
		}
		c.DNSServers = rc.Nameservers
	}
	families := []iptables.Family{iptables.IPv4, iptables.IPv6}
	if !*ipv6 {
		families = families[:1]
	}
	if *dryRun {
		if *cleanup {
			return fmt.Errorf("--dry-run prints the rules to install; --cleanup needs the current table")
		}
		for _, f := range families {
			out, err := iptables.Rules(c, f, "")
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "# %s (%s)\n%s", f, map[iptables.Family]string{iptables.IPv4: "iptables-restore --noflush", iptables.IPv6: "ip6tables-restore --noflush"}[f], out)
		}
		return nil
	}
	if err := c.Validate(); err != nil {
		return err
	}
	logger, err := cmdline.NewLogger(env.Stderr, "info", "text")
	if err != nil {
		return err
	}
	r := iptables.Runner{Logger: logger}
	if !*ipv6 {
		r.Families = families
	}
	if *cleanup {
		return r.Cleanup(ctx)
	}
	return r.Apply(ctx, c)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func portList(flagName, s string) ([]uint16, error) {
	var out []uint16
	for _, v := range splitList(s) {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%s %q: want port numbers 1-65535, comma-separated", flagName, s)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

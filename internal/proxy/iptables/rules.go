// Package iptables builds and applies the nat rules that redirect a pod's
// traffic to its sidecar, as Istio's istio-iptables does: outbound TCP to
// the outbound capture port, inbound TCP to the inbound capture port, DNS to
// the proxy's DNS port, the proxy's own UID/GID exempt. Rule generation is
// pure (Rules, Cleanup); Apply runs iptables-restore.
package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Chains weft creates in the nat table (Istio's names).
const (
	ChainInbound    = "ISTIO_INBOUND"
	ChainInRedirect = "ISTIO_IN_REDIRECT"
	ChainOutput     = "ISTIO_OUTPUT"
	ChainRedirect   = "ISTIO_REDIRECT"
	// ChainOutputDNS holds the UDP DNS capture (TCP DNS is in ChainOutput).
	ChainOutputDNS = "ISTIO_OUTPUT_DNS"
)

// chains lists weft's chains in the order they are declared.
var chains = []string{ChainInbound, ChainRedirect, ChainInRedirect, ChainOutput, ChainOutputDNS}

// All is the wildcard of IncludeOutboundCIDRs and IncludeInboundPorts.
const All = "*"

// ModeRedirect is the only interception mode weft supports (Istio's
// default; TPROXY is not implemented).
const ModeRedirect = "REDIRECT"

// InboundPassthroughSource is the source address the proxy binds when it
// forwards inbound traffic to its own pod IP, so that connection is not
// captured again (Istio's 127.0.0.6).
var (
	InboundPassthroughSource4 = netip.MustParseAddr("127.0.0.6")
	InboundPassthroughSource6 = netip.MustParseAddr("::6")
)

// alwaysExcludedInbound are the proxy's own ports, never redirected
// inbound: Prometheus stats, health and merged metrics.
var alwaysExcludedInbound = []uint16{15090, 15021, 15020}

// Config is what istio-iptables' flags say. The zero value captures nothing;
// DefaultConfig returns Istio's defaults.
type Config struct {
	// OutboundPort receives redirected outbound TCP (-p, 15001).
	OutboundPort uint16
	// InboundPort receives redirected inbound TCP (-z, 15006).
	InboundPort uint16
	// ProxyUIDs and ProxyGIDs own the proxy's traffic, which is never
	// redirected (-u, -g; 1337).
	ProxyUIDs, ProxyGIDs []string
	// Mode is ModeRedirect (-m).
	Mode string
	// IncludeOutboundCIDRs: All, a list of CIDRs, or empty for no outbound
	// capture (-i).
	IncludeOutboundCIDRs []string
	// ExcludeOutboundCIDRs are never redirected (-x).
	ExcludeOutboundCIDRs []string
	// IncludeInboundPorts: All, a list of ports, or empty for no inbound
	// capture (-b).
	IncludeInboundPorts []string
	// ExcludeInboundPorts are not redirected inbound (-d); 15090, 15021 and
	// 15020 never are.
	ExcludeInboundPorts []uint16
	// ExcludeOutboundPorts are not redirected outbound (-o).
	ExcludeOutboundPorts []uint16
	// RedirectDNS sends DNS (UDP and TCP port 53) of every process but the
	// proxy to DNSPort; only to DNSServers unless CaptureAllDNS.
	RedirectDNS   bool
	CaptureAllDNS bool
	DNSServers    []netip.Addr
	// DNSPort is the proxy's DNS port (15053).
	DNSPort uint16
}

// DefaultConfig is Istio's default capture: everything in and out.
func DefaultConfig() Config {
	return Config{
		OutboundPort: 15001, InboundPort: 15006, DNSPort: 15053,
		ProxyUIDs: []string{"1337"}, ProxyGIDs: []string{"1337"}, Mode: ModeRedirect,
		IncludeOutboundCIDRs: []string{All}, IncludeInboundPorts: []string{All},
	}
}

// Family is IPv4 (iptables) or IPv6 (ip6tables).
type Family int

// The two families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string { return "IPv" + strconv.Itoa(int(f)) }

func (f Family) loopback() string {
	if f == IPv6 {
		return "::1/128"
	}
	return "127.0.0.1/32"
}

func (f Family) passthroughSource() string {
	if f == IPv6 {
		return InboundPassthroughSource6.String() + "/128"
	}
	return InboundPassthroughSource4.String() + "/32"
}

func (f Family) has(p netip.Prefix) bool { return p.Addr().Is4() == (f == IPv4) }

// Validate checks the config: ports, CIDRs, mode.
func (c Config) Validate() error {
	if c.Mode != ModeRedirect {
		return fmt.Errorf("interception mode %q: only %s is supported", c.Mode, ModeRedirect)
	}
	if c.OutboundPort == 0 || c.InboundPort == 0 {
		return fmt.Errorf("outbound port %d, inbound port %d: both are required", c.OutboundPort, c.InboundPort)
	}
	if c.RedirectDNS && c.DNSPort == 0 {
		return fmt.Errorf("DNS redirection needs the proxy's DNS port")
	}
	if len(c.ProxyUIDs)+len(c.ProxyGIDs) == 0 {
		return fmt.Errorf("the proxy's UID or GID is required, or its own traffic would be captured")
	}
	for _, id := range append(slices.Clone(c.ProxyUIDs), c.ProxyGIDs...) {
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return fmt.Errorf("proxy UID/GID %q: want a number", id)
		}
	}
	for _, list := range [][]string{c.IncludeOutboundCIDRs, c.ExcludeOutboundCIDRs} {
		if _, err := prefixes(list); err != nil {
			return err
		}
	}
	if _, err := ports(c.IncludeInboundPorts); err != nil {
		return err
	}
	return nil
}

// prefixes parses CIDRs (a bare address is a /32 or /128); All is skipped.
func prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s == All {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("CIDR %q: %w", s, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("CIDR %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ports parses port numbers; All is skipped.
func ports(list []string) ([]uint16, error) {
	var out []uint16
	for _, s := range list {
		if s == All {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("port %q: want a number in 1-65535", s)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

// Rules returns the iptables-restore input (for `iptables-restore
// --noflush`) that installs the capture for one family. existing is the
// current nat table as iptables-save prints it ("" when empty): weft's chains
// are flushed and refilled, and the jumps to them from PREROUTING and OUTPUT
// are added only when missing, so applying twice gives the same table.
func Rules(c Config, f Family, existing string) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	w := &ruleWriter{}
	w.line("*nat")
	for _, ch := range chains {
		w.line(":" + ch + " - [0:0]")
	}
	w.rule(ChainRedirect, "-p tcp -j REDIRECT --to-ports %d", c.OutboundPort)
	w.rule(ChainInRedirect, "-p tcp -j REDIRECT --to-ports %d", c.InboundPort)
	jumps := inboundRules(w, c)
	jumps = append(jumps, outputRules(w, c, f)...)
	if c.RedirectDNS {
		jumps = append(jumps, dnsRules(w, c, f)...)
	}
	have := builtinJumps(existing)
	for _, j := range jumps {
		if !slices.Contains(have, normalize(j)) {
			w.line(j)
		}
	}
	w.line("COMMIT")
	return w.String(), nil
}

// inboundRules fills ISTIO_INBOUND and returns the PREROUTING jump.
func inboundRules(w *ruleWriter, c Config) []string {
	include, _ := ports(c.IncludeInboundPorts)
	all := slices.Contains(c.IncludeInboundPorts, All)
	if !all && len(include) == 0 {
		return nil
	}
	if all {
		excluded := append(slices.Clone(alwaysExcludedInbound), c.ExcludeInboundPorts...)
		for _, p := range dedupe(excluded) {
			w.rule(ChainInbound, "-p tcp -m tcp --dport %d -j RETURN", p)
		}
		w.rule(ChainInbound, "-p tcp -j %s", ChainInRedirect)
	} else {
		for _, p := range dedupe(include) {
			if slices.Contains(alwaysExcludedInbound, p) || slices.Contains(c.ExcludeInboundPorts, p) {
				continue
			}
			w.rule(ChainInbound, "-p tcp -m tcp --dport %d -j %s", p, ChainInRedirect)
		}
	}
	return []string{"-A PREROUTING -p tcp -j " + ChainInbound}
}

// outputRules fills ISTIO_OUTPUT and returns the OUTPUT jump.
func outputRules(w *ruleWriter, c Config, f Family) []string {
	lo := f.loopback()
	// The proxy's inbound forwards to its own pod IP leave from 127.0.0.6.
	w.rule(ChainOutput, "-s %s -o lo -j RETURN", f.passthroughSource())
	// The proxy calling its own pod IP over lo (a service it is an
	// endpoint of) comes back in through the inbound capture.
	for _, u := range c.ProxyUIDs {
		w.rule(ChainOutput, "! -d %s -o lo -m owner --uid-owner %s -j %s", lo, u, ChainInRedirect)
	}
	for _, g := range c.ProxyGIDs {
		w.rule(ChainOutput, "! -d %s -o lo -m owner --gid-owner %s -j %s", lo, g, ChainInRedirect)
	}
	for _, u := range c.ProxyUIDs {
		w.rule(ChainOutput, "-m owner --uid-owner %s -j RETURN", u)
	}
	for _, g := range c.ProxyGIDs {
		w.rule(ChainOutput, "-m owner --gid-owner %s -j RETURN", g)
	}
	if c.RedirectDNS {
		for _, d := range c.dnsDestinations(f) {
			w.rule(ChainOutput, "%s-p tcp -m tcp --dport 53 -j REDIRECT --to-ports %d", d, c.DNSPort)
		}
	}
	// An app talking to itself over loopback stays uncaptured.
	w.rule(ChainOutput, "-o lo -j RETURN")
	w.rule(ChainOutput, "-d %s -j RETURN", lo)
	for _, p := range dedupe(c.ExcludeOutboundPorts) {
		w.rule(ChainOutput, "-p tcp -m tcp --dport %d -j RETURN", p)
	}
	excluded, _ := prefixes(c.ExcludeOutboundCIDRs)
	for _, p := range excluded {
		if f.has(p) {
			w.rule(ChainOutput, "-d %s -j RETURN", p)
		}
	}
	included, _ := prefixes(c.IncludeOutboundCIDRs)
	switch {
	case slices.Contains(c.IncludeOutboundCIDRs, All):
		w.rule(ChainOutput, "-j %s", ChainRedirect)
	default:
		for _, p := range included {
			if f.has(p) {
				w.rule(ChainOutput, "-d %s -j %s", p, ChainRedirect)
			}
		}
	}
	return []string{"-A OUTPUT -p tcp -j " + ChainOutput}
}

// dnsRules fills ISTIO_OUTPUT_DNS (UDP) and returns its OUTPUT jump.
func dnsRules(w *ruleWriter, c Config, f Family) []string {
	dsts := c.dnsDestinations(f)
	if len(dsts) == 0 {
		return nil
	}
	for _, u := range c.ProxyUIDs {
		w.rule(ChainOutputDNS, "-m owner --uid-owner %s -j RETURN", u)
	}
	for _, g := range c.ProxyGIDs {
		w.rule(ChainOutputDNS, "-m owner --gid-owner %s -j RETURN", g)
	}
	for _, d := range dsts {
		w.rule(ChainOutputDNS, "%s-p udp -m udp --dport 53 -j REDIRECT --to-ports %d", d, c.DNSPort)
	}
	return []string{"-A OUTPUT -p udp -m udp --dport 53 -j " + ChainOutputDNS}
}

// dnsDestinations are the "-d NS " matches for DNS capture: one empty match
// for all DNS, else one per name server of the family.
func (c Config) dnsDestinations(f Family) []string {
	if c.CaptureAllDNS {
		return []string{""}
	}
	var out []string
	for _, a := range c.DNSServers {
		a = a.Unmap()
		if a.Is4() == (f == IPv4) {
			out = append(out, fmt.Sprintf("-d %s ", netip.PrefixFrom(a, a.BitLen())))
		}
	}
	return out
}

// Cleanup returns the iptables-restore input (for --noflush) that removes
// what Rules installed, given the current nat table; "" when nothing is there.
func Cleanup(existing string) string {
	w := &ruleWriter{}
	for _, l := range strings.Split(existing, "\n") {
		l = strings.TrimSpace(l)
		if isBuiltinJump(l) {
			w.line("-D" + strings.TrimPrefix(l, "-A"))
		}
	}
	for _, ch := range chains {
		if strings.Contains(existing, "\n:"+ch+" ") || strings.HasPrefix(existing, ":"+ch+" ") {
			w.line(":" + ch + " - [0:0]")
		}
	}
	for _, ch := range chains {
		if strings.Contains(existing, "\n:"+ch+" ") || strings.HasPrefix(existing, ":"+ch+" ") {
			w.line("-X " + ch)
		}
	}
	if w.Len() == 0 {
		return ""
	}
	return "*nat\n" + w.String() + "COMMIT\n"
}

// builtinJumps returns the normalized jumps from PREROUTING/OUTPUT to weft's chains.
func builtinJumps(existing string) []string {
	var out []string
	for _, l := range strings.Split(existing, "\n") {
		if l = strings.TrimSpace(l); isBuiltinJump(l) {
			out = append(out, normalize(l))
		}
	}
	return out
}

func isBuiltinJump(l string) bool {
	if !strings.HasPrefix(l, "-A PREROUTING ") && !strings.HasPrefix(l, "-A OUTPUT ") {
		return false
	}
	for _, ch := range chains {
		if strings.HasSuffix(l, "-j "+ch) {
			return true
		}
	}
	return false
}

// normalize removes the implicit "-m tcp"/"-m udp" iptables-save adds, so
// a generated jump compares equal to the saved one.
func normalize(rule string) string {
	rule = strings.ReplaceAll(rule, " -m tcp ", " ")
	return strings.ReplaceAll(rule, " -m udp ", " ")
}

func dedupe(ps []uint16) []uint16 {
	var out []uint16
	for _, p := range ps {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

type ruleWriter struct{ strings.Builder }

func (w *ruleWriter) line(s string) {
	w.WriteString(s)
	w.WriteByte('\n')
}

func (w *ruleWriter) rule(chain, format string, args ...any) {
	w.line("-A " + chain + " " + fmt.Sprintf(format, args...))
}

package dnsproxy

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
)

var meshHosts = map[string][]netip.Addr{
	"reviews.default.svc.cluster.local": {netip.MustParseAddr("10.96.0.20")},
	"dual.default.svc.cluster.local":    {netip.MustParseAddr("10.96.0.21"), netip.MustParseAddr("fd00::21")},
	"api.example.com":                   {netip.MustParseAddr("240.240.0.1")},
}

func testResolver() *Resolver {
	return &Resolver{
		Hosts:  func() map[string][]netip.Addr { return meshHosts },
		Search: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
	}
}

func query(t testing.TB, id uint16, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answers parses a response into its rcode and answer addresses.
func answers(t testing.TB, resp []byte) (dnsmessage.RCode, []string) {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("unpacking the response: %v", err)
	}
	var out []string
	for _, a := range m.Answers {
		switch r := a.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(r.A).String())
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(r.AAAA).String())
		}
	}
	return m.RCode, out
}

func TestAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		qname string
		typ   dnsmessage.Type
		want  []string // nil with err
		err   error
	}{
		{"fqdn", "reviews.default.svc.cluster.local.", dnsmessage.TypeA, []string{"10.96.0.20"}, nil},
		{"case", "Reviews.Default.svc.cluster.local.", dnsmessage.TypeA, []string{"10.96.0.20"}, nil},
		{"short name", "reviews.", dnsmessage.TypeA, []string{"10.96.0.20"}, nil},
		{"name.namespace", "reviews.default.", dnsmessage.TypeA, []string{"10.96.0.20"}, nil},
		{"service entry host", "api.example.com.", dnsmessage.TypeA, []string{"240.240.0.1"}, nil},
		{"nodata for AAAA", "reviews.", dnsmessage.TypeAAAA, []string{}, nil},
		{"AAAA", "dual.default.svc.cluster.local.", dnsmessage.TypeAAAA, []string{"fd00::21"}, nil},
		{"A of a dual-stack host", "dual.", dnsmessage.TypeA, []string{"10.96.0.21"}, nil},
		{"unknown name", "example.org.", dnsmessage.TypeA, nil, errNotLocal},
		{"other namespace short name", "reviews.prod.", dnsmessage.TypeA, nil, errNotLocal},
		{"MX", "reviews.default.svc.cluster.local.", dnsmessage.TypeMX, nil, errNotLocal},
	}
	r := testResolver()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := r.Answer(query(t, 7, tt.qname, tt.typ))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Answer error = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			rcode, got := answers(t, resp)
			if rcode != dnsmessage.RCodeSuccess {
				t.Errorf("rcode %v", rcode)
			}
			if d := cmp.Diff(tt.want, got, cmp.Transformer("nilEmpty", func(s []string) []string {
				if s == nil {
					return []string{}
				}
				return s
			})); d != "" {
				t.Errorf("answers (-want +got):\n%s", d)
			}
		})
	}
}

func TestAnswerMalformed(t *testing.T) {
	t.Parallel()
	r := testResolver()
	for _, q := range [][]byte{nil, {1, 2, 3}, query(t, 1, "x.", dnsmessage.TypeA)[:14]} {
		if _, err := r.Answer(q); !errors.Is(err, errMalformed) {
			t.Errorf("Answer(%x) error = %v, want errMalformed", q, err)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	t.Parallel()
	rc, err := ParseResolvConf(strings.NewReader(`# kubelet
nameserver 10.96.0.10
nameserver fd00::10
nameserver bogus
domain old.example
search default.svc.cluster.local svc.cluster.local Cluster.Local.
options ndots:5
`))
	if err != nil {
		t.Fatal(err)
	}
	want := ResolvConf{
		Nameservers: []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00::10")},
		Search:      []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
	}
	if d := cmp.Diff(want, rc, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// fakeUpstream answers every UDP and TCP query for upstream.example. with
// 192.0.2.1 and refuses nothing else (NXDOMAIN).
func fakeUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	up, err := Listen([]string{"127.0.0.1:0"}, Options{Resolver: &Resolver{
		Hosts: func() map[string][]netip.Addr {
			return map[string][]netip.Addr{"upstream.example": {netip.MustParseAddr("192.0.2.1")}}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	return up.UDPAddrs()[0].(*net.UDPAddr).AddrPort()
}

func TestServerUDPAndTCP(t *testing.T) {
	t.Parallel()
	s, err := Listen([]string{"127.0.0.1:0"}, Options{Resolver: testResolver(), Upstreams: []netip.AddrPort{fakeUpstream(t)}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tests := []struct {
		name      string
		qname     string
		wantRcode dnsmessage.RCode
		want      []string
	}{
		{"mesh host", "reviews.", dnsmessage.RCodeSuccess, []string{"10.96.0.20"}},
		{"forwarded", "upstream.example.", dnsmessage.RCodeSuccess, []string{"192.0.2.1"}},
		{"forwarded, unknown upstream", "nowhere.example.", dnsmessage.RCodeServerFailure, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for i, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				var addr string
				if network == "udp" {
					addr = s.UDPAddrs()[0].String()
				} else {
					addr = s.TCPAddrs()[0].String()
				}
				resp := exchange(t, network, addr, query(t, uint16(100+i), tt.qname, dnsmessage.TypeA))
				rcode, got := answers(t, resp)
				if rcode != tt.wantRcode || !cmp.Equal(got, tt.want) {
					t.Errorf("got %v %v, want %v %v", rcode, got, tt.wantRcode, tt.want)
				}
			})
		}
	}
}

func exchange(t *testing.T, network, addr string, q []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if network == "tcp" {
		if err := writeTCPMessage(c, q); err != nil {
			t.Fatal(err)
		}
		resp, err := readTCPMessage(c)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, maxMessage)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// FuzzAnswer feeds arbitrary messages to the local resolver and to the
// error responses: no panic, and whatever comes back is a valid DNS
// response to the same ID.
func FuzzAnswer(f *testing.F) {
	f.Add(query(f, 1, "reviews.", dnsmessage.TypeA))
	f.Add(query(f, 2, "dual.default.svc.cluster.local.", dnsmessage.TypeAAAA))
	f.Add(query(f, 3, "example.org.", dnsmessage.TypeMX))
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	r := testResolver()
	f.Fuzz(func(t *testing.T, q []byte) {
		resp, err := r.Answer(q)
		if err != nil {
			resp = failure(q, dnsmessage.RCodeServerFailure)
		}
		if resp == nil {
			return
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		if !m.Response || len(q) < 2 || m.ID != uint16(q[0])<<8|uint16(q[1]) {
			t.Fatalf("response header %+v for query %x", m.Header, q)
		}
	})
}

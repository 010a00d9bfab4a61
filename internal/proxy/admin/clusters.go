package admin

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/weft-mesh/weft/internal/proxy/dataplane"
)

func (s *Server) clusters(w http.ResponseWriter, r *http.Request) {
	cs := s.opts.Data.Clusters()
	switch f := r.URL.Query().Get("format"); f {
	case "json":
		writeJSON(w, ClustersJSON(cs), jsonOptions)
	case "", "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		WriteClustersText(w, cs)
	default:
		http.Error(w, fmt.Sprintf("format %q: want json or text", f), http.StatusBadRequest)
	}
}

// WriteClustersText writes clusters in Envoy's /clusters text format, one
// "cluster::host::stat::value" line per fact.
func WriteClustersText(w io.Writer, cs []dataplane.ClusterStatus) {
	for _, c := range cs {
		fmt.Fprintf(w, "%s::observability_name::%s\n", c.Name, c.Name)
		fmt.Fprintf(w, "%s::added_via_api::true\n", c.Name)
		for _, e := range c.Endpoints {
			p := c.Name + "::" + e.Address + "::"
			fmt.Fprintf(w, "%scx_active::0\n", p)
			fmt.Fprintf(w, "%srq_active::%d\n", p, e.ActiveRequests)
			fmt.Fprintf(w, "%srq_error::%d\n", p, e.FailedRequests)
			fmt.Fprintf(w, "%srq_success::%d\n", p, max(e.TotalRequests-e.FailedRequests-e.ActiveRequests, 0))
			fmt.Fprintf(w, "%srq_total::%d\n", p, e.TotalRequests)
			fmt.Fprintf(w, "%sweight::%d\n", p, e.Weight)
			fmt.Fprintf(w, "%shealth_flags::%s\n", p, healthFlags(e))
		}
	}
}

func healthFlags(e dataplane.EndpointStatus) string {
	if e.Healthy {
		return "healthy"
	}
	return "/failed_outlier_check"
}

// ClustersJSON is /clusters?format=json: Envoy's admin Clusters message.
func ClustersJSON(cs []dataplane.ClusterStatus) *adminv3.Clusters {
	out := &adminv3.Clusters{}
	for _, c := range cs {
		st := &adminv3.ClusterStatus{Name: c.Name, AddedViaApi: true}
		for _, e := range c.Endpoints {
			health := core.HealthStatus_HEALTHY
			if !e.Healthy {
				health = core.HealthStatus_UNHEALTHY
			}
			st.HostStatuses = append(st.HostStatuses, &adminv3.HostStatus{
				Address: socketAddress(e.Address),
				Stats: []*adminv3.SimpleMetric{
					{Name: "cx_active", Type: adminv3.SimpleMetric_GAUGE},
					{Name: "rq_active", Type: adminv3.SimpleMetric_GAUGE, Value: uint64(max(e.ActiveRequests, 0))},
					{Name: "rq_error", Value: uint64(max(e.FailedRequests, 0))},
					{Name: "rq_total", Value: uint64(max(e.TotalRequests, 0))},
				},
				HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: health},
				Weight:       uint32(max(e.Weight, 0)),
			})
		}
		out.ClusterStatuses = append(out.ClusterStatuses, st)
	}
	return out
}

// socketAddress turns "ip:port" into an Envoy address.
func socketAddress(hostport string) *core.Address {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "0"
	}
	n, _ := strconv.ParseUint(port, 10, 32)
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(n)},
	}}}
}

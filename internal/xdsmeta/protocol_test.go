package xdsmeta

import "testing"

func TestProtocolFromPortName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"http", ProtocolHTTP}, {"HTTP", ProtocolHTTP}, {"http-web", ProtocolHTTP}, {"http2", ProtocolHTTP2},
		{"http2-x", ProtocolHTTP2}, {"grpc", ProtocolGRPC}, {"grpc-web", ProtocolGRPCWeb}, {"grpc-web-x", ProtocolGRPCWeb},
		{"grpc-x", ProtocolGRPC}, {"https", ProtocolHTTPS}, {"tls-db", ProtocolTLS}, {"tcp", ProtocolTCP},
		{"mongo", ProtocolMongo}, {"redis-cache", ProtocolRedis}, {"mysql", ProtocolMySQL}, {"udp", ProtocolUDP},
		{"web", ProtocolAuto}, {"", ProtocolAuto}, {"httpx", ProtocolAuto}, {"-http", ProtocolAuto}, {"http_proxy", ProtocolAuto},
	}
	for _, tt := range tests {
		if got := ProtocolFromPortName(tt.name); got != tt.want {
			t.Errorf("ProtocolFromPortName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

package accesslog

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestAppendJSON(t *testing.T) {
	start := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)
	tests := []struct {
		name string
		e    Entry
		want map[string]any
	}{
		{"forwarded", Entry{StartTime: start, Method: "GET", Path: "/reviews/0", Protocol: "HTTP/1.1", ResponseCode: 200,
			BytesSent: 295, Duration: 12 * time.Millisecond, UpstreamTime: 11 * time.Millisecond, UpstreamHost: "127.0.1.7:9080",
			UpstreamCluster: "outbound|9080|v2|reviews.default.svc.cluster.local", RequestID: "abc", Authority: "reviews:9080",
			UserAgent: "Go-http-client/1.1", DownstreamRemote: "127.0.1.1:40000"},
			map[string]any{"start_time": "2026-11-22T10:00:00.123Z", "method": "GET", "path": "/reviews/0", "protocol": "HTTP/1.1",
				"response_code": 200.0, "response_flags": "-", "bytes_sent": 295.0, "duration": 12.0, "upstream_service_time": "11",
				"upstream_host": "127.0.1.7:9080", "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
				"request_id": "abc", "authority": "reviews:9080", "user_agent": "Go-http-client/1.1", "trace_id": nil,
				"downstream_remote_address": "127.0.1.1:40000"}},
		{"local reply", Entry{StartTime: start, Method: "GET", Path: "/", ResponseCode: 503, ResponseFlags: "UH", UpstreamTime: -1},
			map[string]any{"response_code": 503.0, "response_flags": "UH", "upstream_service_time": nil, "upstream_host": nil}},
		{"escaping", Entry{StartTime: start, Path: "/\"q\"\\\n\x01", UserAgent: "bad\xffutf8"},
			map[string]any{"path": "/\"q\"\\\n\x01", "user_agent": "bad\ufffdutf8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.e.AppendJSON(nil)
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, b)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

func TestRingAndFollow(t *testing.T) {
	l := New(Options{Lines: 3})
	lines, stop := l.Follow()
	defer stop()
	for i := range 5 {
		l.Log(&Entry{ResponseCode: 200 + i})
	}
	tail := l.Tail(0)
	if len(tail) != 3 || !bytes.Contains(tail[0], []byte(`"response_code":202`)) || !bytes.Contains(tail[2], []byte(`"response_code":204`)) {
		t.Fatalf("tail = %q", tail)
	}
	if got := l.Tail(1); len(got) != 1 || !bytes.Contains(got[0], []byte("204")) {
		t.Fatalf("tail 1 = %q", got)
	}
	for i := range 5 {
		if line := <-lines; !bytes.Contains(line, []byte{'2', '0', byte('0' + i)}) {
			t.Errorf("followed line %d = %s", i, line)
		}
	}
	var nilLogger *Logger
	nilLogger.Log(&Entry{}) // must not panic
}

func BenchmarkLog(b *testing.B) {
	l := New(Options{})
	e := &Entry{StartTime: time.Now(), Method: "GET", Path: "/reviews/0", Protocol: "HTTP/1.1", ResponseCode: 200,
		UpstreamHost: "127.0.1.7:9080", UpstreamCluster: "outbound|9080|v2|reviews.default.svc.cluster.local",
		RequestID: "6c8d0f5a-1111-4222-8333-444455556666", Authority: "reviews:9080", UserAgent: "Go-http-client/1.1"}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
}

// TestLazyAndEagerLines: entries logged with nobody reading are formatted
// when Tail reads them, in their own format, and give the same lines Out
// and followers get.
func TestLazyAndEagerLines(t *testing.T) {
	custom := NewFormat([]Field{{Key: "code", Op: OpResponseCode}, {Key: "m", Op: OpMethod}})
	var out bytes.Buffer
	eager := New(Options{Lines: 4, Out: &out})
	lazy := New(Options{Lines: 4})
	for _, l := range []*Logger{eager, lazy} {
		l.Log(&Entry{ResponseCode: 200, Method: "GET"})
		l.LogFormat(&Entry{ResponseCode: 503, Method: "POST"}, custom)
	}
	want := []string{`"method":"GET"`, `{"code":503,"m":"POST"}` + "\n"}
	for name, l := range map[string]*Logger{"eager": eager, "lazy": lazy} {
		tail := l.Tail(0)
		if len(tail) != 2 || !bytes.Contains(tail[0], []byte(want[0])) || string(tail[1]) != want[1] {
			t.Errorf("%s Tail = %q, want lines with %q", name, tail, want)
		}
	}
	if lt, et := lazy.Tail(0), eager.Tail(0); !bytes.Equal(bytes.Join(lt, nil), out.Bytes()) || !bytes.Equal(bytes.Join(et, nil), out.Bytes()) {
		t.Errorf("Out got %q, lazy Tail %q, eager Tail %q: want the same lines", out.Bytes(), lt, et)
	}
	lines, stop := lazy.Follow()
	lazy.Log(&Entry{ResponseCode: 201})
	stop()
	if line := <-lines; !bytes.Contains(line, []byte(`"response_code":201`)) {
		t.Errorf("a follower of a lazy logger got %q", line)
	}
}

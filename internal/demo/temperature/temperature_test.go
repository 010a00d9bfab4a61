package temperature

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestConvert(t *testing.T) {
	tests := []struct {
		from, to string
		in, want float64
		err      bool
	}{
		{"Celsius", "Kelvin", 150, 423.15, false},
		{"kelvin", "celsius", 0, -273.15, false},
		{"Fahrenheit", "Celsius", 212, 100, false},
		{"Celsius", "Fahrenheit", -40, -40, false},
		{"Celsius", "Kelvin", -300, 0, true},
		{"Rankine", "Kelvin", 1, 0, true},
	}
	for _, tt := range tests {
		got, err := Convert(tt.from, tt.to, tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("Convert(%s, %s, %v) = %v, %v; want %v (error %v)", tt.from, tt.to, tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestAPIOverGRPC runs the converter and the API for real on loopback.
func TestAPIOverGRPC(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go RunConverter(ctx, addr, ConverterOptions{Version: "v1", Instance: "converter-v1-1"})
	a, err := NewAPI(APIOptions{Converter: "passthrough:///" + addr})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/?from=Celsius&to=Kelvin&temperature=150")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || got["value"] != 423.15 || got["unit"] != "Kelvin" || resp.Header.Get("x-converter") != "v1" {
		t.Fatalf("got %d %v (converter %q)", resp.StatusCode, got, resp.Header.Get("x-converter"))
	}
	resp, err = http.Get(srv.URL + "/?from=Celsius&to=Kelvin&temperature=-300")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("below absolute zero: %d, want 400", resp.StatusCode)
	}
}

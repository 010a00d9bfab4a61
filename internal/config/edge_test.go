package config

import (
	"testing"
)

// TestParseEdgeCases covers values where the path-aware walker and protojson
// must agree, and that must survive a round trip.
func TestParseEdgeCases(t *testing.T) {
	const head = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: r}}]\n"
	tests := []struct{ extra, wantErr string }{
		{"    mirrorPercentage: {value: NaN}\n", "spec.http[0].mirrorPercentage.value: NaN is not a finite 64-bit number"},
		{"    mirrorPercentage: {value: '1e2'}\n", ""},
		{"    mirrorPercentage: {value: 100.5}\n", "spec.http[0].mirrorPercentage.value: 100.5 is not in 0-100"},
		{"    mirrorPercent: 5\n", ""},
		{"    timeout: 9223372036.854775807s\n", ""},
		{"    timeout: 1h2m3.5s\n", ""},
		{"    timeout: -1ns\n", "spec.http[0].timeout: duration -1ns must not be negative"},
		{"    retries: {attempts: '3', perTryTimeout: 0.000000001s}\n", ""},
		{"    match: [{port: 1e3}]\n", ""},
		{"    match: [{port: 1.5}]\n", "spec.http[0].match[0].port: 1.5 is not a non-negative 32-bit integer"},
		{"    match: [{headers: {x: null}}]\n", "spec.http[0].match[0].headers[x]: null is not allowed as a map value"},
		{"    match: [{headers: {x: {}}}]\n", ""},
		{"    match: [null]\n", "spec.http[0].match[0]: null is not allowed in a list"},
		{"    headers: {request: {set: {a: b}}}\n", ""},
		{"    corsPolicy: {allowCredentials: true, maxAge: 24h}\n", ""},
		{"    corsPolicy: {allowCredentials: 'yes'}\n", "spec.http[0].corsPolicy.allowCredentials: want a boolean (true or false), got a string"},
		{"    route: null\n", "spec.http[0]: needs a route (destination), redirect, directResponse or delegate"},
		{"    name: 5\n", "spec.http[0].name: want a string, got a number"},
		{"    match: [{uri: {exact: /a}, ignore_uri_case: true}]\n", ""},
		{"    match: [{ignoreUriCase: true, ignore_uri_case: true}]\n", `spec.http[0].match[0].ignore_uri_case: field "ignore_uri_case" is also set as "ignoreUriCase"`},
	}
	for _, tt := range tests {
		objs, err := Parse("x", []byte(head+tt.extra))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tt.extra, err)
		case tt.wantErr == "":
			assertRoundTrip(t, objs)
		case err == nil:
			t.Errorf("%q: no error, want %s", tt.extra, tt.wantErr)
		case err.Error() != "x: VirtualService default/r: "+tt.wantErr:
			t.Errorf("%q:\n got %v\nwant %s", tt.extra, err, "x: VirtualService default/r: "+tt.wantErr)
		}
	}
}

package xdsmeta

// IstioAccessLogFormat is Istio's JSON access log format: each key with the
// Envoy command operator that fills it. The control plane sends it to
// proxies; weft proxy writes its access log with it.
var IstioAccessLogFormat = [][2]string{
	{"start_time", "%START_TIME%"},
	{"method", "%REQ(:METHOD)%"},
	{"path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
	{"protocol", "%PROTOCOL%"},
	{"response_code", "%RESPONSE_CODE%"},
	{"response_flags", "%RESPONSE_FLAGS%"},
	{"response_code_details", "%RESPONSE_CODE_DETAILS%"},
	{"bytes_received", "%BYTES_RECEIVED%"},
	{"bytes_sent", "%BYTES_SENT%"},
	{"duration", "%DURATION%"},
	{"upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"},
	{"upstream_host", "%UPSTREAM_HOST%"},
	{"upstream_cluster", "%UPSTREAM_CLUSTER%"},
	{"upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"},
	{"upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"},
	{"route_name", "%ROUTE_NAME%"},
	{"x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"},
	{"user_agent", "%REQ(USER-AGENT)%"},
	{"request_id", "%REQ(X-REQUEST-ID)%"},
	{"trace_id", "%TRACE_ID%"},
	{"authority", "%REQ(:AUTHORITY)%"},
	{"downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"},
	{"downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"},
	{"requested_server_name", "%REQUESTED_SERVER_NAME%"},
}

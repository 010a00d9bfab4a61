//go:build !linux

package sysmon

// reexec does nothing off Linux: the proxy runs with the runtime's default.
func reexec([]string) error { return nil }

// Package e2e runs the whole mesh — control plane, sidecars, gateway and
// Bookinfo — as real processes on loopback and checks what users see.
package e2e

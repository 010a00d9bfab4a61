//go:build !linux

package demo

import "syscall"

// childAttr puts a child in its own process group (no parent-death signal
// outside Linux).
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// becomeSubreaper is Linux-only; elsewhere orphans are left to init.
func becomeSubreaper() error { return nil }

// killOrphans finds no orphans outside Linux.
func killOrphans() []int { return nil }

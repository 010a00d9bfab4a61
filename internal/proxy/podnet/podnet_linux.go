package podnet

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace of the app's, held open by the sidecar.
// Its methods may be called from many goroutines.
type Netns struct {
	f *os.File // /proc/thread-self/ns/net of the namespace
}

// New creates a network namespace with its loopback up (127.0.0.0/8 and
// ::1 local to it, so the app binds its pod IP there).
func New() (*Netns, error) {
	var n *Netns
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("creating a network namespace (needs root): %w", err)
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return fmt.Errorf("opening the new network namespace: %w", err)
		}
		if err := loopbackUp(); err != nil {
			f.Close()
			return err
		}
		n = &Netns{f: f}
		return nil
	})
	return n, err
}

// Do runs fn on an OS thread in the namespace. Sockets fn creates stay in
// it; a process fn starts (exec.Cmd.Start) starts in it.
func (n *Netns) Do(fn func() error) error {
	return onThread(func() error {
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering the app's network namespace: %w", err)
		}
		return fn()
	})
}

// Close releases the sidecar's hold on the namespace; it lasts while the
// app's processes or sockets use it.
func (n *Netns) Close() error { return n.f.Close() }

// onThread runs fn on a locked OS thread and puts the thread back in the
// process's network namespace afterwards. If that fails the thread is
// left locked, so the runtime ends it instead of reusing it. The thread
// must live on: a child started on it with Pdeathsig is killed when the
// thread that started it exits.
func onThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- fmt.Errorf("opening the host's network namespace: %w", err)
			return // still locked: the thread ends with the goroutine
		}
		defer home.Close()
		err = fn()
		if rerr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); rerr != nil {
			done <- errors.Join(err, fmt.Errorf("returning to the host's network namespace: %w", rerr))
			return // still locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// loopbackUp brings lo up in the current thread's namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

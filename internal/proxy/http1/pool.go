package http1

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// DialFunc opens a new upstream connection.
type DialFunc func(ctx context.Context) (net.Conn, error)

// PoolOptions configures a Pool.
type PoolOptions struct {
	// MaxIdlePerKey bounds idle connections kept per key (0: 64).
	MaxIdlePerKey int
	// IdleTimeout closes connections idle for longer (0: 60s).
	IdleTimeout time.Duration
	// ProbeIdle is how long a connection must have been idle before Get
	// checks that the server has not closed it (0: DefaultProbeIdle;
	// negative: always). The check is a syscall; a connection back from an
	// exchange a moment ago is handed out without it, as a busy pool
	// reuses connections every few milliseconds and servers close idle ones
	// after seconds. A close the check missed fails that one request
	// (idempotent ones are retried on a fresh connection).
	ProbeIdle time.Duration
}

// DefaultProbeIdle is the idle time after which Get probes a connection.
const DefaultProbeIdle = 100 * time.Millisecond

// Pool keeps idle keep-alive upstream connections by key (for example
// cluster name + endpoint address). It is safe for concurrent use.
type Pool struct {
	maxIdle   int
	timeout   time.Duration
	probeIdle time.Duration

	mu     sync.Mutex
	idle   map[string][]*Conn // most recently used last
	closed bool
	timer  *time.Timer
}

// Conn is an upstream connection with its buffers. It belongs to one
// goroutine between Pool.Get and Pool.Put or Conn.Close.
type Conn struct {
	net.Conn
	// Key is the pool key the connection was dialled for.
	Key string
	// Reused is true when the connection served an earlier request.
	Reused bool
	// Requests counts the requests the connection carried.
	Requests int

	br        *bufio.Reader
	bw        *bufio.Writer
	created   time.Time
	idleSince time.Time
	// idleTimeout is the connection's own idle timeout (0: the pool's).
	idleTimeout time.Duration
	probe       probe // liveness check of an idle connection
}

// Reader returns the connection's buffered reader.
func (c *Conn) Reader() *bufio.Reader { return c.br }

// Writer returns the connection's buffered writer.
func (c *Conn) Writer() *bufio.Writer { return c.bw }

// Close closes the connection and releases its buffers. It must not be
// used after.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// release returns the buffers to their pools.
func (c *Conn) release() {
	if c.br != nil {
		putReader(c.br)
		putWriter(c.bw)
		c.br, c.bw = nil, nil
	}
}

// NewPool returns an empty pool.
func NewPool(opts PoolOptions) *Pool {
	p := &Pool{maxIdle: opts.MaxIdlePerKey, timeout: opts.IdleTimeout, probeIdle: opts.ProbeIdle, idle: map[string][]*Conn{}}
	if p.probeIdle == 0 {
		p.probeIdle = DefaultProbeIdle
	}
	if p.maxIdle <= 0 {
		p.maxIdle = 64
	}
	if p.timeout <= 0 {
		p.timeout = 60 * time.Second
	}
	return p
}

// Get returns an idle connection for key that is still open, or dials a
// new one with dial. Idle connections the server has closed are dropped
// (see PoolOptions.ProbeIdle).
func (p *Pool) Get(ctx context.Context, key string, dial DialFunc) (*Conn, error) {
	for {
		c := p.popIdle(key)
		if c == nil {
			break
		}
		idle := time.Since(c.idleSince)
		if idle < p.idleTimeout(c) && c.br.Buffered() == 0 && (idle < p.probeIdle || c.probe.alive()) {
			c.Reused = true
			return c, nil
		}
		c.Close()
	}
	return p.dial(ctx, key, dial)
}

// idleTimeout is how long c may stay idle.
func (p *Pool) idleTimeout(c *Conn) time.Duration {
	if c.idleTimeout > 0 {
		return c.idleTimeout
	}
	return p.timeout
}

// popIdle takes the most recently used idle connection for key.
func (p *Pool) popIdle(key string) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[key]
	if len(l) == 0 {
		return nil
	}
	c := l[len(l)-1]
	l[len(l)-1] = nil
	p.idle[key] = l[:len(l)-1] // keep the backing array for the next Put
	return c
}

// Put returns a connection whose exchange ended cleanly (response fully
// read, no Connection: close) to the pool, or closes it when the pool is
// full or closed.
func (p *Pool) Put(c *Conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	l := p.idle[c.Key]
	if p.closed || len(l) >= p.maxIdle {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle[c.Key] = append(l, c)
	if t := p.idleTimeout(c); p.timer == nil {
		p.timer = time.AfterFunc(t, p.sweep)
	} else if t < p.timeout {
		p.timer.Reset(min(t, p.timeout/2))
	}
	p.mu.Unlock()
}

// sweep closes connections idle longer than the idle timeout.
func (p *Pool) sweep() {
	now := time.Now()
	var stale []*Conn
	p.mu.Lock()
	next := p.timeout / 2
	for k, l := range p.idle {
		keep := l[:0]
		for _, c := range l {
			if left := p.idleTimeout(c) - now.Sub(c.idleSince); left <= 0 {
				stale = append(stale, c)
			} else {
				keep = append(keep, c)
				next = min(next, left)
			}
		}
		clear(l[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, k)
		} else {
			p.idle[k] = keep
		}
	}
	p.timer = nil
	if len(p.idle) > 0 && !p.closed {
		p.timer = time.AfterFunc(next, p.sweep)
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}

// CloseIdle closes every idle connection; connections in use are not
// affected.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]*Conn{}
	p.mu.Unlock()
	for _, l := range idle {
		for _, c := range l {
			c.Close()
		}
	}
}

// CloseKey closes the idle connections of one key, e.g. when an endpoint
// leaves its cluster.
func (p *Pool) CloseKey(key string) {
	p.mu.Lock()
	l := p.idle[key]
	delete(p.idle, key)
	p.mu.Unlock()
	for _, c := range l {
		c.Close()
	}
}

// Close closes idle connections and makes Put close connections from now on.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	p.CloseIdle()
}

// IdleCount returns the number of idle connections for key.
func (p *Pool) IdleCount(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle[key])
}

// bufio pools shared by downstream and upstream connections.
var (
	readerPool sync.Pool
	writerPool sync.Pool
)

// bufSize is the size of pooled bufio buffers.
const bufSize = 8 << 10

// getReader returns a pooled reader over r.
func getReader(r net.Conn) *bufio.Reader {
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, bufSize)
}

// putReader returns br to the pool.
func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

// getWriter returns a pooled writer over w.
func getWriter(w net.Conn) *bufio.Writer {
	if bw, ok := writerPool.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, bufSize)
}

// putWriter returns bw to the pool.
func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	writerPool.Put(bw)
}

// dial opens a new connection for key, bypassing idle ones.
func (p *Pool) dial(ctx context.Context, key string, dial DialFunc) (*Conn, error) {
	nc, err := dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dialing upstream %s: %w", key, err)
	}
	c := &Conn{Conn: nc, Key: key, br: getReader(nc), bw: getWriter(nc), created: time.Now()}
	c.probe.init(nc)
	return c, nil
}

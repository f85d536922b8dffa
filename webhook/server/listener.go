package server

import (
	"net"
	"sync"

	"github.com/ai-webhook/ai-webhook/webhook/metrics"
)

// limitListener caps open connections. A connection over the cap is closed at once rather than
// left in the accept queue: the client learns immediately and tries another replica, and a
// flood costs the server no memory beyond the cap (each open connection holds ~40 KiB: TLS
// and bufio buffers, a goroutine, its header while being read).
type limitListener struct {
	net.Listener
	slots   chan struct{}
	metrics *metrics.Metrics
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			l.metrics.Connections.Inc()
			return &limitConn{Conn: c, release: func() { <-l.slots; l.metrics.Connections.Dec() }}, nil
		default:
			l.metrics.LimitRejections.WithLabelValues(metrics.LimitConnections).Inc()
			_ = c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

package server

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ai-webhook/ai-webhook/webhook/metrics"
)

// limitListener caps open connections. A connection over the cap is closed at once rather than
// left in the accept queue: the client learns immediately and tries another replica, and a
// flood costs the server no memory beyond the cap (each open connection holds ~40 KiB: TLS
// and bufio buffers, a goroutine, its header while being read).
type limitListener struct {
	net.Listener
	slots chan struct{}
	// open counts connections held (nil: not counted); rejected counts the ones closed at once.
	open     prometheus.Gauge
	rejected prometheus.Counter
}

// newLimitListener caps ln at max connections; over the cap counts in
// ai_webhook_limit_rejections_total{limit}.
func newLimitListener(ln net.Listener, max int, m *metrics.Metrics, limit string, open prometheus.Gauge) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), open: open,
		rejected: m.LimitRejections.WithLabelValues(limit)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			if l.open != nil {
				l.open.Inc()
			}
			return &limitConn{Conn: c, release: l.release}, nil
		default:
			l.rejected.Inc()
			_ = c.Close()
		}
	}
}

func (l *limitListener) release() {
	<-l.slots
	if l.open != nil {
		l.open.Dec()
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

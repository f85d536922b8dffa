// Package server wires the admission handler to TLS, health endpoints, metrics, hot reload
// of the certificate and profiles, and graceful shutdown. Phases: Config (validated options)
// -> New (loads files; fails fast) -> Run (serves until the context ends, then drains).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ai-webhook/ai-webhook/webhook/admission"
	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/metrics"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Config is what the serve command collects from flags.
type Config struct {
	// MaxConnections caps open connections; one over it is closed at once.
	MaxConnections int
	// MaxHeaderBytes caps a request's header block (Go adds 4 KiB of slack).
	MaxHeaderBytes int
	// ReadTimeout bounds reading one request, header and body; the other timeouts follow from
	// it (see Timeouts).
	ReadTimeout time.Duration
	// Limits bound the work of the admission handler.
	Limits admission.Limits

	Listen string
	// MetricsListen is the plain-HTTP address that serves only /metrics ("" serves none; the
	// TLS port serves /metrics either way). Prometheus scrapes it without the webhook's CA.
	MetricsListen  string
	CertFile       string
	KeyFile        string
	ProfilesFile   string
	Domain         string
	ReloadInterval time.Duration
	// ShutdownDelay keeps serving (with /readyz failing) after SIGTERM, so endpoints drop the
	// Pod before it stops accepting connections.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds how long in-flight requests may take to finish.
	ShutdownTimeout time.Duration
	// Cluster supplies cluster facts (--cluster-facts on); nil decides without them.
	Cluster ClusterFacts
}

// ClusterFacts is what the server needs of the cluster watcher (package cluster).
type ClusterFacts interface {
	Facts() inject.Facts
	// Synced gates readiness: a replica does not take reviews before it knows the classes.
	Synced() bool
}

// Validate checks the options and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	for flag, v := range map[string]string{"--tls-cert-file": c.CertFile, "--tls-key-file": c.KeyFile, "--profiles-file": c.ProfilesFile, "--listen": c.Listen} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", flag))
		}
	}
	if c.Domain == "" {
		errs = append(errs, errors.New("--domain must not be empty"))
	}
	if c.ReloadInterval <= 0 {
		errs = append(errs, errors.New("--reload-interval must be positive, e.g. 2s"))
	}
	if c.MetricsListen != "" && c.MetricsListen == c.Listen {
		errs = append(errs, fmt.Errorf("--metrics-listen %s must differ from --listen", c.MetricsListen))
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, errors.New("--shutdown-delay must be >= 0"))
	}
	if c.MaxConnections <= 0 || c.MaxHeaderBytes <= 0 {
		errs = append(errs, errors.New("--max-connections and --max-header-bytes must be positive"))
	}
	if c.ReadTimeout < 2*time.Second {
		errs = append(errs, fmt.Errorf("--read-timeout must be at least 2s, got %s", c.ReadTimeout))
	} else if life := c.Timeouts().RequestLife; c.ShutdownTimeout < life {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %s must be at least the longest a request can live, %s "+
			"(read header %s + write %s, from --read-timeout %s), or shutdown could cut a request", c.ShutdownTimeout,
			life, c.Timeouts().ReadHeader, c.Timeouts().Write, c.ReadTimeout))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Timeouts are derived from ReadTimeout so that they are ordered by construction:
//
//	ReadHeader (ReadTimeout/2, at most 5s) < Read (whole request) < Write (Read + 2*QueueWait + 3s)
//	RequestLife = ReadHeader + Write <= ShutdownTimeout
//	ShutdownDelay + ShutdownTimeout + 1s <= the Pod's terminationGracePeriodSeconds
//
// Go sets the write deadline when the header has been read, so no request outlives
// RequestLife from its first byte: a slow uploader's body read fails at Read, a slow reader's
// write at Write. Shutdown, which waits for active requests only, therefore ends within
// RequestLife, and the process exits 0 before the kubelet's SIGKILL. Defaults: 5s, 10s, 15s,
// 20s; with --shutdown-delay 5s and --shutdown-timeout 20s, exit within 25s of SIGTERM, inside
// the Deployment's 30s grace period.
type Timeouts struct {
	ReadHeader, Read, Write, Idle, RequestLife time.Duration
}

// Timeouts returns the server's timeouts for this configuration.
func (c *Config) Timeouts() Timeouts {
	t := Timeouts{Read: c.ReadTimeout, ReadHeader: min(c.ReadTimeout/2, 5*time.Second)}
	t.Write = t.Read + 2*admission.QueueWait + 3*time.Second
	t.RequestLife = t.ReadHeader + t.Write
	// Longer than the API server's 90s idle timeout for webhook connections, so the client,
	// not the server, closes an idle connection: no request is ever sent on a closing one.
	t.Idle = 120 * time.Second
	return t
}

// Defaults returns the flag defaults.
func Defaults() Config {
	return Config{MaxConnections: 512, MaxHeaderBytes: 16 << 10, ReadTimeout: 10 * time.Second,
		ShutdownDelay: 5 * time.Second, ShutdownTimeout: 20 * time.Second, Limits: admission.DefaultLimits()}
}

// AddLimitFlags registers the flags of the limits and timeouts on fs, defaulting to Defaults.
func (c *Config) AddLimitFlags(fs *flag.FlagSet) {
	d := Defaults()
	fs.IntVar(&c.MaxConnections, "max-connections", d.MaxConnections, "open connections at most; one over is closed at once")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", d.MaxHeaderBytes, "request header bytes at most (431 over it)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", d.ReadTimeout, "time to read one request, header and body; the write and shutdown bounds follow from it")
	fs.Int64Var(&c.Limits.BodyBufferBytes, "max-body-buffer-bytes", d.Limits.BodyBufferBytes, "request body bytes held at once by all requests (each reserves its Content-Length)")
	fs.IntVar(&c.Limits.Concurrent, "max-concurrent-reviews", d.Limits.Concurrent, "reviews decoded and decided at once; others wait up to 1s, then 503")
	fs.IntVar(&c.Limits.JSONNodes, "max-json-nodes", d.Limits.JSONNodes, "JSON objects and arrays in one review")
	fs.IntVar(&c.Limits.Containers, "max-containers", d.Limits.Containers, "containers (all kinds) in one Pod")
	fs.IntVar(&c.Limits.PatchOps, "max-patch-ops", d.Limits.PatchOps, "JSON patch operations in one answer")
	fs.IntVar(&c.Limits.ResponseBytes, "max-response-bytes", d.Limits.ResponseBytes, "bytes of one answer")
	fs.IntVar(&c.Limits.Warnings, "max-warnings", d.Limits.Warnings, "warnings in one answer; the rest are summarised in the last one")
}

// Server is a loaded, ready-to-run webhook server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics.Metrics
	certs    *fileSource[tls.Certificate]
	profiles *fileSource[profile.Set]
	draining atomic.Bool
	// certExpired says why the certificate in use is not valid now (certexpiry.go); nil while it is.
	certExpired atomic.Pointer[string]
	http        *http.Server
	// metricsHTTP serves /metrics on MetricsListen (nil when it is ""); metricsLn, when a test
	// sets it, is used instead of listening on MetricsListen.
	metricsHTTP *http.Server
	metricsLn   net.Listener
}

// metricsMaxConnections caps connections to the metrics port: a few Prometheus replicas
// scrape it, each over one kept-alive connection.
const metricsMaxConnections = 16

// New loads the certificate and profiles; either failing to load is an error, so a
// misconfigured Pod never becomes ready.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = slog.New(capHandler{log.Handler()})
	m := metrics.New()
	s := &Server{cfg: cfg, log: log, metrics: m}
	s.certs = &fileSource[tls.Certificate]{name: metrics.SourceCertificate, paths: []string{cfg.CertFile, cfg.KeyFile},
		parse: s.parseServingPair, log: log, metrics: m, onLoad: func(c *tls.Certificate) {
			m.CertNotAfter.Set(float64(c.Leaf.NotAfter.Unix()))
		}}
	s.profiles = &fileSource[profile.Set]{name: metrics.SourceProfiles, paths: []string{cfg.ProfilesFile},
		parse: func(c [][]byte) (*profile.Set, error) { return profile.Parse(c[0], cfg.Domain) }, log: log, metrics: m, onLoad: func(p *profile.Set) {
			m.ProfilesLoaded.Set(float64(p.Len()))
		}}
	if _, err := s.certs.load(); err != nil {
		return nil, err
	}
	s.checkCertificate(time.Now())
	if _, err := s.profiles.load(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	h := &admission.Handler{
		Profiles: s.profiles.current.Load,
		Keys:     profile.KeysFor(cfg.Domain),
		Log:      log,
		Metrics:  m,
		Limits:   cfg.Limits,
	}
	if cfg.Cluster != nil {
		h.Facts = cfg.Cluster.Facts
	}
	mux.Handle("/mutate", h)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", s.readyz)
	// At most a few scrapes gathered at once, each within the write timeout; more get 503.
	metricsHandler := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry,
		MaxRequestsInFlight: 4, Timeout: 5 * time.Second})
	// Kept on the TLS port for scrape configurations that already use it (scheme https).
	mux.Handle("/metrics", metricsHandler)
	m.Ready(func() bool { return s.notReady() == "" })
	t := cfg.Timeouts()
	if cfg.MetricsListen != "" {
		metricsMux := http.NewServeMux()
		metricsMux.Handle("GET /metrics", metricsHandler)
		s.metricsHTTP = &http.Server{
			Addr:              cfg.MetricsListen,
			Handler:           metricsMux,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ReadHeaderTimeout: t.ReadHeader,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Read,
			IdleTimeout:       t.Idle,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	s.http = &http.Server{
		Addr:      cfg.Listen,
		Handler:   s.closeWhileDraining(mux),
		TLSConfig: s.tlsConfig(),
		// An empty map switches HTTP/2 off: the API server speaks HTTP/1.1 to webhooks.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// tlsConfig allows TLS 1.3, and TLS 1.2 with forward-secret AEAD suites only.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// The certificate is looked up per handshake, so a rotated pair is served at once.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certs.current.Load(), nil },
		NextProtos:     []string{"http/1.1"},
	}
}

// closeWhileDraining adds "Connection: close" to every response written once draining has
// begun, so each client finishes its current request and then moves to another replica. Unlike
// SetKeepAlivesEnabled(false), it never closes an idle connection a client may be writing on.
func (s *Server) closeWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&drainWriter{ResponseWriter: w, draining: &s.draining}, r)
	})
}

// drainWriter decides at the moment the header is written, so a request that began before
// SIGTERM and ends after it also closes its connection.
type drainWriter struct {
	http.ResponseWriter
	draining    *atomic.Bool
	wroteHeader bool
}

func (d *drainWriter) WriteHeader(code int) {
	if !d.wroteHeader {
		d.wroteHeader = true
		if d.draining.Load() {
			d.Header().Set("Connection", "close")
		}
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *drainWriter) Write(b []byte) (int, error) {
	if !d.wroteHeader {
		d.WriteHeader(http.StatusOK)
	}
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (d *drainWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// Metrics exposes the collectors (tests read them).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Profiles is the profile set in use (nil until the file first loads).
func (s *Server) Profiles() *profile.Set { return s.profiles.current.Load() }

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if why := s.notReady(); why != "" {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// notReady says why the replica must not take reviews, or "" when it may: /readyz and the
// ai_webhook_ready gauge both ask it.
func (s *Server) notReady() string {
	switch {
	case s.draining.Load():
		return "draining"
	case s.certs.current.Load() == nil || s.profiles.current.Load() == nil:
		return "not loaded"
	case s.cfg.Cluster != nil && !s.cfg.Cluster.Synced():
		return "cluster facts not synced"
	case s.certExpired.Load() != nil:
		return *s.certExpired.Load()
	}
	return ""
}

// Run serves on ln (or on cfg.Listen when ln is nil) until ctx ends, then drains: readiness
// fails at once and every response carries "Connection: close"; new connections are still
// served for ShutdownDelay (endpoints take time to drop the Pod); then the listener closes,
// idle connections close, active requests finish (within Timeouts.RequestLife <=
// ShutdownTimeout) and Run returns nil.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return err
		}
	}
	ln = newLimitListener(ln, s.cfg.MaxConnections, s.metrics, metrics.LimitConnections, s.metrics.Connections)
	serveErr := make(chan error, 2)
	if s.metricsHTTP != nil {
		mln := s.metricsLn
		if mln == nil {
			var err error
			if mln, err = net.Listen("tcp", s.cfg.MetricsListen); err != nil {
				_ = ln.Close()
				return fmt.Errorf("--metrics-listen: %w", err)
			}
		}
		mln = newLimitListener(mln, metricsMaxConnections, s.metrics, metrics.LimitMetricsConns, nil)
		s.log.Info("serving metrics", "address", mln.Addr().String())
		// Closed after the admission server has drained, so the drain itself can be scraped.
		defer s.metricsHTTP.Close()
		go func() { serveErr <- s.metricsHTTP.Serve(mln) }()
	}
	s.log.Info("serving", "address", ln.Addr().String(), "domain", s.cfg.Domain)
	go func() { serveErr <- s.http.ServeTLS(ln, "", "") }()
	go s.watch(ctx)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("draining", "delay", s.cfg.ShutdownDelay.String())
	time.Sleep(s.cfg.ShutdownDelay)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		_ = s.http.Close()
		return fmt.Errorf("shutdown: requests still active after --shutdown-timeout %s: %w", s.cfg.ShutdownTimeout, err)
	}
	s.log.Info("stopped")
	return nil
}

func (s *Server) watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.certs.load()
			_, _ = s.profiles.load()
			s.checkCertificate(time.Now())
		}
	}
}

// Package server wires the admission handler to TLS, health endpoints, metrics, hot reload
// of the certificate and profiles, and graceful shutdown. Phases: Config (validated options)
// -> New (loads files; fails fast) -> Run (serves until the context ends, then drains).
package server

import (
	"context"
	"crypto/tls"
	"errors"
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
	Listen         string
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
	if c.ShutdownDelay < 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-delay must be >= 0 and --shutdown-timeout > 0"))
	}
	return errors.Join(errs...)
}

// Server is a loaded, ready-to-run webhook server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics.Metrics
	certs    *fileSource[tls.Certificate]
	profiles *fileSource[profile.Set]
	draining atomic.Bool
	http     *http.Server
}

// New loads the certificate and profiles; either failing to load is an error, so a
// misconfigured Pod never becomes ready.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := metrics.New()
	s := &Server{cfg: cfg, log: log, metrics: m}
	s.certs = &fileSource[tls.Certificate]{name: "certificate", paths: []string{cfg.CertFile, cfg.KeyFile},
		parse: parseKeyPair, log: log, metrics: m, onLoad: func(c *tls.Certificate) {
			m.CertNotAfter.Set(float64(c.Leaf.NotAfter.Unix()))
		}}
	s.profiles = &fileSource[profile.Set]{name: "profiles", paths: []string{cfg.ProfilesFile},
		parse: parseProfiles, log: log, metrics: m, onLoad: func(p *profile.Set) {
			m.ProfilesLoaded.Set(float64(p.Len()))
		}}
	if _, err := s.certs.load(); err != nil {
		return nil, err
	}
	if _, err := s.profiles.load(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", &admission.Handler{
		Profiles: s.profiles.current.Load,
		Keys:     inject.KeysFor(cfg.Domain),
		Log:      log,
		Metrics:  m,
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	s.http = &http.Server{
		Addr:    cfg.Listen,
		Handler: mux,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The certificate is looked up per handshake, so a rotated pair is served at once.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certs.current.Load(), nil },
			NextProtos:     []string{"http/1.1"},
		},
		// An empty map switches HTTP/2 off: the API server speaks HTTP/1.1 to webhooks.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Metrics exposes the collectors (tests read them).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case s.certs.current.Load() == nil || s.profiles.current.Load() == nil:
		http.Error(w, "not loaded", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ok"))
	}
}

// Run serves on ln (or on cfg.Listen when ln is nil) until ctx ends, then drains: readiness
// fails, keep-alives stop, the server keeps answering for ShutdownDelay, then in-flight
// requests finish and connections close.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return err
		}
	}
	s.log.Info("serving", "address", ln.Addr().String(), "domain", s.cfg.Domain)
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.ServeTLS(ln, "", "") }()
	go s.watch(ctx)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.http.SetKeepAlivesEnabled(false) // each response now closes its connection
	s.log.Info("draining", "delay", s.cfg.ShutdownDelay.String())
	time.Sleep(s.cfg.ShutdownDelay)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
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
		}
	}
}

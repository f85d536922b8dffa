package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/ai-webhook/ai-webhook/webhook/metrics"
)

// fileSource keeps the last good value parsed from one or more files and re-reads them when
// their content changes. A mounted Secret or ConfigMap is updated in place by the kubelet
// (an atomic symlink swap), so comparing content on a short poll catches every update
// without a file-notification dependency. A bad new version keeps the previous value.
type fileSource[T any] struct {
	name    string // "profiles" or "certificate", the metric label
	paths   []string
	parse   func(contents [][]byte) (*T, error)
	current atomic.Pointer[T]
	last    [][]byte
	lastErr string // the failure last reported; the same failure is not reported again
	log     *slog.Logger
	metrics *metrics.Metrics
	onLoad  func(*T)
}

// load reads the files; it reports whether a new value is in use and the error, if any.
func (s *fileSource[T]) load() (bool, error) {
	contents := make([][]byte, len(s.paths))
	for i, p := range s.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			// Forget what was last read, so the next good read is parsed again and clears
			// the failure even when its content is what was in use before.
			s.last = nil
			return false, s.failed(fmt.Errorf("%s: %w", s.name, err))
		}
		contents[i] = b
	}
	if s.unchanged(contents) {
		return false, nil
	}
	v, err := s.parse(contents)
	s.last = contents // a bad version is reported once, not on every poll
	if err != nil {
		return false, s.failed(err)
	}
	s.current.Store(v)
	s.lastErr = ""
	s.metrics.ReloadsTotal.WithLabelValues(s.name, "success").Inc()
	s.metrics.LastReloadError.WithLabelValues(s.name).Set(0)
	if s.onLoad != nil {
		s.onLoad(v)
	}
	s.log.Info("loaded", "source", s.name, "paths", s.paths)
	return true, nil
}

func (s *fileSource[T]) unchanged(contents [][]byte) bool {
	if s.last == nil {
		return false
	}
	for i := range contents {
		if !bytes.Equal(contents[i], s.last[i]) {
			return false
		}
	}
	return true
}

// failed counts and logs a failure once per change of state: a file missing for an hour is one
// failed reload and one log line, not one per poll.
func (s *fileSource[T]) failed(err error) error {
	if err.Error() == s.lastErr {
		return err
	}
	s.lastErr = err.Error()
	s.metrics.ReloadsTotal.WithLabelValues(s.name, "error").Inc()
	if s.current.Load() != nil {
		s.metrics.LastReloadError.WithLabelValues(s.name).Set(1)
		s.log.Error("reload failed; keeping the previous version", "source", s.name, "error", err)
	}
	return err
}

// parseKeyPair refuses a pair that does not match (a half-written rotation: new certificate,
// old key), so the previous pair stays in use. Validity is checked by parseServingPair.
func parseKeyPair(contents [][]byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
	}
	return &cert, nil
}

package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// A serving certificate outside its validity period. At start-up the server still loads and
// serves it, rather than exit: a Pod that exits crash-loops with its reason buried in restarts,
// while one that runs says why on /readyz, in its log and in
// ai_webhook_serving_certificate_expired, and picks up a renewed Secret by hot reload. It is not
// ready meanwhile (the API server would refuse the handshake anyway). A reload never swaps a
// valid pair for one that is not valid now.

// parseServingPair is parseKeyPair, refusing a pair outside its validity period when a pair is
// already in use (a reload).
func (s *Server) parseServingPair(contents [][]byte) (*tls.Certificate, error) {
	cert, err := parseKeyPair(contents)
	if err != nil {
		return nil, err
	}
	if s.certs.current.Load() != nil {
		if why := invalidNow(cert.Leaf, time.Now()); why != "" {
			return nil, fmt.Errorf("certificate: %s", why)
		}
	}
	return cert, nil
}

// invalidNow says why leaf is not valid at now, or "".
func invalidNow(leaf *x509.Certificate, now time.Time) string {
	switch {
	case now.After(leaf.NotAfter):
		return "serving certificate expired at " + leaf.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(leaf.NotBefore):
		return "serving certificate not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// checkCertificate records whether the certificate in use is valid at now: readiness, the
// metric, and one log line per change (at start-up, when it expires in use, when a valid one
// replaces it).
func (s *Server) checkCertificate(now time.Time) {
	cert := s.certs.current.Load()
	if cert == nil {
		return
	}
	why := invalidNow(cert.Leaf, now)
	was := s.certExpired.Load()
	switch {
	case why != "" && (was == nil || *was != why):
		s.certExpired.Store(&why)
		s.metrics.CertExpired.Set(1)
		s.log.Error(why+"; serving it but not ready until a valid certificate is mounted (the API server refuses this one)",
			"notBefore", cert.Leaf.NotBefore.UTC().Format(time.RFC3339), "notAfter", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	case why == "" && was != nil:
		s.certExpired.Store(nil)
		s.metrics.CertExpired.Set(0)
		s.log.Info("serving certificate valid again", "notAfter", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

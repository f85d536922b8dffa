package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// NoopMain is the calibration server, the least a webhook can do: serve TLS and HTTP/1.1
// like the others, read the review, and answer allowed (no patch) with the request's UID,
// which it finds without decoding. Its latency and CPU are those of the transport alone
// (TLS, net/http, the kernel's loopback, scheduling), what every webhook pays before it
// does any work. GET /count tells how many reviews it answered.
//
// With --patch it answers every review with that JSON patch instead (B4 uses it to
// tell the API server's cost of applying ai-webhook's patch from the cost of computing it).
//
//	--listen=127.0.0.1:PORT --cert-dir=DIR (tls.crt, tls.key) [--patch=BASE64]
func NoopMain(args []string) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9443", "host:port to serve TLS on")
	certDir := fs.String("cert-dir", "", "directory with tls.crt and tls.key")
	patch64 := fs.String("patch", "", "answer with this JSON patch, base64-encoded")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var patch string
	if *patch64 != "" {
		patch = `,"patchType":"JSONPatch","patch":"` + *patch64 + `"`
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(*certDir, "tls.crt"), filepath.Join(*certDir, "tls.key"))
	if err != nil {
		return err
	}
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", func(w http.ResponseWriter, r *http.Request) {
		noop(w, r, patch)
		served.Add(1)
	})
	// B4 reads how many reviews were answered, to see whether the API server calls it.
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, served.Load())
	})
	srv := &http.Server{
		Handler:      mux,
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// noop answers allowed, with patch (the encoded JSON members patchType and patch) if set.
// The request's UID is the first "uid" of the review: AdmissionRequest encodes it first.
func noop(w http.ResponseWriter, r *http.Request, patch string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	uid := []byte(nil)
	if _, rest, ok := bytes.Cut(body, []byte(`"uid":"`)); ok {
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			uid = rest[:i]
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"%s","allowed":true%s}}`+"\n", uid, patch)
}

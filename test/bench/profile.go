package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/ai-webhook/ai-webhook/webhook/server"
)

// Profile writes pprof profiles of ai-webhook to dir:
//
//   - handler-cpu.pprof, handler-allocs.pprof: the admission handler alone on the typical
//     Pod's review, in-process, for a few seconds;
//   - server-cpu.pprof, server-allocs.pprof: the whole server (server.New, TLS, net/http)
//     in this process under closed-loop load from this process's generator; look at the
//     server's side with -focus='net/http.\(\*conn\).serve'.
//
// Allocation profiles are cumulative for the process: each is written right after its
// part, so the server's includes the handler's (compare with -diff_base).
func Profile(ctx context.Context, fx *Fixture, dir string, progress func(string)) error {
	runtime.MemProfileRate = 64 << 10
	h := Impls(fx.Profiles)[0].Handler
	body := fx.Bodies[0]
	progress("profiling the handler (5s)")
	if err := profiled(filepath.Join(dir, "handler-cpu.pprof"), func() error {
		w := &discardWriter{h: make(map[string][]string)}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
			for range 100 {
				serveOnce(h, body, w)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := writeAllocs(filepath.Join(dir, "handler-allocs.pprof")); err != nil {
		return err
	}

	progress("profiling the server under load (5s)")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg := server.Defaults()
	cfg.Listen, cfg.CertFile, cfg.KeyFile = ln.Addr().String(), filepath.Join(fx.CertDir, "tls.crt"), filepath.Join(fx.CertDir, "tls.key")
	cfg.ProfilesFile, cfg.Domain, cfg.ReloadInterval = fx.ProfilesFile, Domain, 2*time.Second
	srv, err := server.New(cfg,
		slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx, ln) }()
	t := &Target{URL: "https://" + ln.Addr().String() + "/mutate?timeout=10s", Client: NewClient(fx.CA.Pool), Bodies: fx.Bodies}
	if r := ClosedLoop(ctx, t, 25, time.Second, 1<<20); r.Failed > 0 {
		stop()
		return fmt.Errorf("in-process server: %d failures, first: %v", r.Failed, r.Err)
	}
	err = profiled(filepath.Join(dir, "server-cpu.pprof"), func() error {
		if r := ClosedLoop(ctx, t, 25, 5*time.Second, 1<<22); r.Failed > 0 {
			return fmt.Errorf("in-process server: %d failures, first: %v", r.Failed, r.Err)
		}
		return nil
	})
	stop()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	return writeAllocs(filepath.Join(dir, "server-allocs.pprof"))
}

func profiled(path string, f func() error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		return err
	}
	err = f()
	pprof.StopCPUProfile()
	return err
}

func writeAllocs(path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	runtime.GC()
	return pprof.Lookup("allocs").WriteTo(out, 0)
}

package server

import (
	"context"
	"log/slog"
	"reflect"

	"github.com/ai-webhook/ai-webhook/webhook/internal/text"
)

// maxLogValue caps every string logged: Pod and container names come from the request and can
// be megabytes long.
const maxLogValue = 256

// capHandler shortens long string values (also inside groups) before they are written.
type capHandler struct{ slog.Handler }

func (h capHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, capString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(capAttr(a)); return true })
	return h.Handler.Handle(ctx, out)
}

func (h capHandler) WithAttrs(as []slog.Attr) slog.Handler {
	capped := make([]slog.Attr, len(as))
	for i, a := range as {
		capped[i] = capAttr(a)
	}
	return capHandler{h.Handler.WithAttrs(capped)}
}

func (h capHandler) WithGroup(name string) slog.Handler { return capHandler{h.Handler.WithGroup(name)} }

func capAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if a.Key == "stack" {
		return a // our own panic stack, never request data; needed whole to debug
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, capString(v.String()))
	case slog.KindGroup:
		g := v.Group()
		capped := make([]any, len(g))
		for i, ga := range g {
			capped[i] = capAttr(ga)
		}
		return slog.Group(a.Key, capped...)
	case slog.KindAny:
		// Stringers and errors (a UID, an operation) are rendered as text: cap that text.
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, capString(s.String()))
		}
		if e, ok := v.Any().(error); ok {
			return slog.String(a.Key, capString(e.Error()))
		}
		// Named string types (types.UID, admission.Operation).
		if rv := reflect.ValueOf(v.Any()); rv.Kind() == reflect.String {
			return slog.String(a.Key, capString(rv.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func capString(s string) string { return text.Cap(s, maxLogValue) }

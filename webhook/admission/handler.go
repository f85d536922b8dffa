// Package admission is the HTTP face of the injector: it guards the request (method, content
// type, size, timeout, panics), decodes the AdmissionReview, delegates the decision to package
// inject and encodes the answer. It decides nothing about Pods itself.
package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/metrics"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// MaxBodyBytes caps a request: the API server limits objects to about 3 MiB.
const MaxBodyBytes = 3 << 20

// Handler serves POST /mutate.
type Handler struct {
	// Profiles returns the profiles in use; nil means not loaded yet.
	Profiles func() *profile.Set
	Keys     inject.Keys
	Log      *slog.Logger
	Metrics  *metrics.Metrics
}

var podResource = metav1.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"}

// outcome is what one request did, for the log line and the metrics.
type outcome struct {
	// status is the HTTP status: 200, or a 5xx when the webhook itself failed. A 5xx makes the
	// API server apply the configuration's failurePolicy (Ignore admits the Pod unmutated,
	// Fail refuses it), the operator's choice; a denial inside a 200 would refuse the Pod
	// whatever that choice. The body still carries an AdmissionReview with the UID.
	status   int
	result   string
	skipped  int // profile settings the Pod's own values won over
	review   *admissionv1.AdmissionRequest
	pod      *corev1.Pod
	decision *inject.Result
	message  string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	out := h.serve(w, r)
	elapsed := time.Since(start)
	h.Metrics.RequestsTotal.WithLabelValues(out.result).Inc()
	h.Metrics.Duration.Observe(elapsed.Seconds())
	h.logLine(out, elapsed)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) outcome {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return httpError(w, http.StatusMethodNotAllowed, "use POST with an AdmissionReview")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBodyBytes))
	case err != nil:
		return httpError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
	case len(bytes.TrimSpace(body)) == 0:
		return httpError(w, http.StatusBadRequest, "empty body: expected an AdmissionReview")
	}
	review, objectErr, err := decodeReview(body)
	if err != nil {
		return httpError(w, http.StatusBadRequest, "malformed AdmissionReview: "+err.Error())
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return httpError(w, http.StatusBadRequest, fmt.Sprintf("expected apiVersion %s kind AdmissionReview, got %q %q",
			admissionv1.SchemeGroupVersion, review.APIVersion, review.Kind))
	}
	if review.Request == nil {
		return httpError(w, http.StatusBadRequest, "AdmissionReview has no request")
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	resp, out := h.review(ctx, review.Request, objectErr)
	resp.UID = review.Request.UID
	answer := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	if out.status != 0 {
		w.WriteHeader(out.status)
	}
	if err := json.NewEncoder(w).Encode(&answer); err != nil {
		h.Log.Warn("writing response failed", "uid", resp.UID, "error", err)
	}
	return out
}

// podReview is an AdmissionReview whose object is decoded straight into a Pod: one pass over
// the bytes instead of two (RawExtension first, then the Pod), which was a fifth of the
// handler's time. The Pod field, shallower than the embedded request's RawExtension of the
// same JSON name, takes precedence.
type podReview struct {
	metav1.TypeMeta
	Request *podRequest `json:"request,omitempty"`
}

type podRequest struct {
	admissionv1.AdmissionRequest
	Object *corev1.Pod `json:"object,omitempty"`
}

// decodeReview decodes the review in one pass. When the object does not decode as a Pod (a
// non-Pod kind, or a broken Pod) the review is decoded generically, so the request still gets
// an answer with its UID; objectErr then says why the object is not a Pod.
func decodeReview(body []byte) (review podReview, objectErr, err error) {
	if objectErr = json.Unmarshal(body, &review); objectErr == nil {
		return review, nil, nil
	}
	var generic admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &generic); err != nil {
		return review, nil, err
	}
	review = podReview{TypeMeta: generic.TypeMeta}
	if generic.Request != nil {
		review.Request = &podRequest{AdmissionRequest: *generic.Request}
	}
	return review, objectErr, nil
}

// requestContext honours ?timeout= (the API server's remaining budget, e.g. "10s").
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	if d, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && d > 0 {
		return context.WithTimeout(r.Context(), d)
	}
	return context.WithCancel(r.Context())
}

func httpError(w http.ResponseWriter, code int, msg string) outcome {
	http.Error(w, msg, code)
	return outcome{result: metrics.ResultError, message: msg}
}

// review turns a request into a response; panics become an error response that keeps the UID.
func (h *Handler) review(ctx context.Context, req *podRequest, objectErr error) (resp *admissionv1.AdmissionResponse, out outcome) {
	out.review = &req.AdmissionRequest
	defer func() {
		if p := recover(); p != nil {
			h.Metrics.PanicsTotal.Inc()
			h.Log.Error("panic while mutating", "uid", req.UID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, out = failed(out, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p),
				"ai-webhook failed to mutate this Pod (internal error, see webhook logs)")
		}
	}()
	allow := func(why string) (*admissionv1.AdmissionResponse, outcome) {
		out.result, out.message = metrics.ResultSkipped, why
		return &admissionv1.AdmissionResponse{Allowed: true}, out
	}
	if req.Resource != podResource || req.SubResource != "" {
		return allow(fmt.Sprintf("not a pod: %s %s", req.Resource.String(), req.SubResource))
	}
	if req.Operation != admissionv1.Create {
		// Pod specs are nearly immutable after creation: only CREATE is mutated.
		return allow("operation " + string(req.Operation))
	}
	if objectErr != nil {
		out.result, out.message = metrics.ResultError, "malformed pod: "+objectErr.Error()
		return denied(http.StatusBadRequest, "cannot decode the Pod: "+objectErr.Error()), out
	}
	pod := req.Object
	if pod == nil {
		out.result, out.message = metrics.ResultError, "request has no object"
		return denied(http.StatusBadRequest, "the request carries no Pod object"), out
	}
	out.pod = pod
	set := h.Profiles()
	if set == nil {
		return failed(out, http.StatusServiceUnavailable, "profiles not loaded", "ai-webhook has no profiles loaded yet")
	}
	if err := ctx.Err(); err != nil {
		return failed(out, http.StatusGatewayTimeout, "deadline passed before mutating", "the API server's timeout passed before the Pod was mutated")
	}
	res, err := inject.Mutate(pod, set, h.Keys)
	out.decision = res
	var refused *inject.RefusedError
	switch {
	case errors.As(err, &refused):
		out.result, out.message = metrics.ResultDenied, refused.Reason
		return denied(http.StatusBadRequest, refused.Reason), out
	case err != nil:
		panic(err) // Mutate returns no other error; treat one as a bug.
	case res.Profile == nil:
		return allow(res.Reason)
	}
	resp = &admissionv1.AdmissionResponse{Allowed: true, Warnings: res.Warnings()}
	skipped := res.Skipped()
	out.skipped = len(skipped)
	for _, it := range skipped {
		h.Metrics.SkippedTotal.WithLabelValues(res.Profile.Name, it.Field).Inc()
	}
	out.result = metrics.ResultUnchanged
	if len(res.Patch) > 0 {
		patch, err := json.Marshal(res.Patch)
		if err != nil {
			panic(err)
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
		out.result = metrics.ResultMutated
		h.Metrics.MutationsTotal.WithLabelValues(res.Profile.Name).Inc()
	}
	return resp, out
}

// failed answers a request the webhook could not handle itself, with an HTTP 5xx.
func failed(out outcome, code int, logMsg, msg string) (*admissionv1.AdmissionResponse, outcome) {
	out.status, out.result, out.message = code, metrics.ResultError, logMsg
	return denied(int32(code), msg), out
}

func denied(code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code, Message: msg, Reason: metav1.StatusReason(http.StatusText(int(code))),
	}}
}

// logLine writes one structured line per admission.
func (h *Handler) logLine(out outcome, elapsed time.Duration) {
	attrs := []any{"result", out.result, "duration_ms", float64(elapsed.Microseconds()) / 1000}
	if req := out.review; req != nil {
		attrs = append(attrs, "uid", req.UID, "namespace", req.Namespace, "operation", req.Operation, "dry_run", req.DryRun != nil && *req.DryRun)
	}
	if p := out.pod; p != nil {
		name := p.Name
		if name == "" {
			name = p.GenerateName
		}
		attrs = append(attrs, "pod", name)
	}
	if d := out.decision; d != nil && d.Profile != nil {
		attrs = append(attrs, "profile", d.Profile.Stamp, "ops", len(d.Patch), "skipped", out.skipped)
	}
	if out.message != "" {
		attrs = append(attrs, "reason", out.message)
	}
	level := slog.LevelInfo
	if out.result == metrics.ResultError {
		level = slog.LevelWarn
	}
	h.Log.Log(context.Background(), level, "admission", attrs...)
}

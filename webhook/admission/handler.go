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
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/internal/text"
	"github.com/ai-webhook/ai-webhook/webhook/metrics"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// MaxBodyBytes caps a request: the API server limits objects to about 3 MiB.
const MaxBodyBytes = 3 << 20

// QueueWait is the longest a request waits for body memory or a turn to be decided before it
// is answered 503: overload is reported at once rather than piled up.
const QueueWait = time.Second

// maxUIDBytes caps the request UID that the answer echoes (the API server sends a 36-byte UUID).
const maxUIDBytes = 128

// maxMessageBytes caps a message built from the request (names can be megabytes long).
const maxMessageBytes = 1024

// Handler serves POST /mutate.
type Handler struct {
	// Profiles returns the profiles in use; nil means not loaded yet.
	Profiles func() *profile.Set
	Keys     profile.Keys
	// Facts returns what the cluster holds (--cluster-facts); nil means unknown.
	Facts   func() inject.Facts
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// Limits; the zero value means DefaultLimits.
	Limits Limits

	once   sync.Once
	bodies *budget
	turns  chan struct{}
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

func (h *Handler) init() {
	h.once.Do(func() {
		if h.Limits == (Limits{}) {
			h.Limits = DefaultLimits()
		}
		h.bodies = newBudget(h.Limits.BodyBufferBytes)
		h.turns = make(chan struct{}, h.Limits.Concurrent)
	})
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
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
	if r.ContentLength > MaxBodyBytes {
		return httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBodyBytes))
	}
	// Reserve the body's memory before reading it. A stalled upload holds its reservation until
	// the server's read timeout ends it.
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = MaxBodyBytes
	}
	wait, cancel := context.WithTimeout(r.Context(), QueueWait)
	ok := h.bodies.acquire(wait, reserve)
	cancel()
	if !ok {
		return h.overLimit(w, "", metrics.LimitBodyBuffer, http.StatusServiceUnavailable,
			fmt.Sprintf("overloaded: request bodies in flight hold the %d-byte buffer (--max-body-buffer-bytes)", h.Limits.BodyBufferBytes))
	}
	defer h.bodies.release(reserve)
	body, err := readBody(w, r)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBodyBytes))
	case err != nil:
		return httpError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
	case len(bytes.TrimSpace(body)) == 0:
		return httpError(w, http.StatusBadRequest, "empty body: expected an AdmissionReview")
	}
	if n := jsonNodes(body); n > h.Limits.JSONNodes {
		return h.overLimit(w, uidOf(body), metrics.LimitJSONNodes, http.StatusInternalServerError,
			fmt.Sprintf("the review holds %d JSON objects and arrays, over the limit of %d (--max-json-nodes)", n, h.Limits.JSONNodes))
	}
	wait, cancel = context.WithTimeout(r.Context(), QueueWait)
	defer cancel()
	select {
	case h.turns <- struct{}{}:
		defer func() { <-h.turns }()
	case <-wait.Done():
		return h.overLimit(w, uidOf(body), metrics.LimitConcurrent, http.StatusServiceUnavailable,
			fmt.Sprintf("overloaded: %d reviews being decided (--max-concurrent-reviews)", h.Limits.Concurrent))
	}
	review, objectErr, err := decodeReview(body)
	if err != nil {
		return httpError(w, http.StatusBadRequest, "malformed AdmissionReview: "+err.Error())
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return httpError(w, http.StatusBadRequest, fmt.Sprintf("expected apiVersion %s kind AdmissionReview, got %q %q",
			admissionv1.SchemeGroupVersion, text.Cap(review.APIVersion, 64), text.Cap(review.Kind, 64)))
	}
	if review.Request == nil {
		return httpError(w, http.StatusBadRequest, "AdmissionReview has no request")
	}
	if len(review.Request.UID) > maxUIDBytes {
		// The API server sends a UUID; an answer must echo the UID, so a longer one is refused.
		return httpError(w, http.StatusBadRequest, fmt.Sprintf("request.uid is %d bytes, expected a UUID", len(review.Request.UID)))
	}
	ctx, cancelReq := requestContext(r)
	defer cancelReq()
	resp, out := h.review(ctx, review.Request, objectErr)
	resp.UID = review.Request.UID
	answer, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		panic(err) // an AdmissionReview always encodes
	}
	if len(answer) > h.Limits.ResponseBytes {
		h.Metrics.LimitRejections.WithLabelValues(metrics.LimitResponseBytes).Inc()
		resp, out = failed(out, http.StatusInternalServerError, "response over limit",
			fmt.Sprintf("the answer would be %d bytes, over the limit of %d (--max-response-bytes)", len(answer), h.Limits.ResponseBytes))
		resp.UID = review.Request.UID
		answer, _ = json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	}
	writeJSON(w, out.status, answer)
	return out
}

// readBody reads at most MaxBodyBytes into a buffer sized from Content-Length, so a body is
// held once rather than in doubling copies.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	return buf.Bytes(), err
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.WriteHeader(status)
	}
	_, _ = w.Write(body)
}

// overLimit answers a request refused by a limit: an HTTP 5xx, so failurePolicy applies, with an
// AdmissionReview that keeps the UID when the body was read.
func (h *Handler) overLimit(w http.ResponseWriter, uid types.UID, limit string, code int, msg string) outcome {
	h.Metrics.LimitRejections.WithLabelValues(limit).Inc()
	resp, out := failed(outcome{}, code, msg, msg)
	resp.UID = uid
	answer, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"}, Response: resp})
	writeJSON(w, code, answer)
	return out
}

// uidOf finds the request UID without decoding the object.
func uidOf(body []byte) types.UID {
	var r struct {
		Request struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	_ = json.Unmarshal(body, &r)
	if len(r.Request.UID) > maxUIDBytes {
		return ""
	}
	return r.Request.UID
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
	http.Error(w, text.Cap(msg, maxMessageBytes), code)
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
		return denied(apierrors.NewBadRequest("cannot decode the Pod: " + objectErr.Error())), out
	}
	pod := req.Object
	if pod == nil {
		out.result, out.message = metrics.ResultError, "request has no object"
		return denied(apierrors.NewBadRequest("the request carries no Pod object")), out
	}
	out.pod = pod
	set := h.Profiles()
	if set == nil {
		return failed(out, http.StatusServiceUnavailable, "profiles not loaded", "ai-webhook has no profiles loaded yet")
	}
	if err := ctx.Err(); err != nil {
		return failed(out, http.StatusGatewayTimeout, "deadline passed before mutating", "the API server's timeout passed before the Pod was mutated")
	}
	if n := len(pod.Spec.Containers) + len(pod.Spec.InitContainers) + len(pod.Spec.EphemeralContainers); n > h.Limits.Containers {
		h.Metrics.LimitRejections.WithLabelValues(metrics.LimitContainers).Inc()
		msg := fmt.Sprintf("the Pod has %d containers, over the limit of %d (--max-containers)", n, h.Limits.Containers)
		return failed(out, http.StatusInternalServerError, msg, msg)
	}
	var facts inject.Facts
	if h.Facts != nil {
		facts = h.Facts()
	}
	res, err := inject.MutateWith(pod, set, h.Keys, facts)
	out.decision = res
	var refused *inject.RefusedError
	switch {
	case errors.As(err, &refused):
		out.result, out.message = metrics.ResultDenied, refused.Reason
		return denied(apierrors.NewBadRequest(refused.Reason)), out
	case err != nil:
		panic(err) // Mutate returns no other error; treat one as a bug.
	case res.Profile == nil:
		return allow(res.Reason)
	}
	if len(res.Patch) > h.Limits.PatchOps {
		h.Metrics.LimitRejections.WithLabelValues(metrics.LimitPatchOps).Inc()
		msg := fmt.Sprintf("the patch would have %d operations, over the limit of %d (--max-patch-ops)", len(res.Patch), h.Limits.PatchOps)
		return failed(out, http.StatusInternalServerError, msg, msg)
	}
	resp = &admissionv1.AdmissionResponse{Allowed: true, Warnings: h.warnings(res.Warnings()), AuditAnnotations: audit(res)}
	skipped := res.Skipped()
	out.skipped = len(skipped)
	for _, it := range skipped {
		h.Metrics.SkippedTotal.WithLabelValues(res.Profile.Name, it.Field).Inc()
	}
	for _, o := range res.Missing { // names come from the profiles, so the label set is bounded
		h.Metrics.MissingObjects.WithLabelValues(o.Kind, o.Name).Inc()
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

// warnings keeps the first Limits.Warnings and says how many more there were: a Pod with
// hundreds of conflicts is still admitted, with a bounded answer.
func (h *Handler) warnings(all []string) []string {
	n := h.Limits.Warnings
	if len(all) <= n {
		return all
	}
	h.Metrics.LimitRejections.WithLabelValues(metrics.LimitWarnings).Inc()
	return append(all[:n-1:n-1], fmt.Sprintf("%d more settings kept the Pod's own value (ai-webhook inject --explain lists them)", len(all)-n+1))
}

// audit records the decision in the API server's audit log, where the API server prefixes each
// key with the webhook's name. Values stay short: the stamp and three counts.
func audit(res *inject.Result) map[string]string {
	counts := map[inject.Action]int{}
	for _, it := range res.Items {
		counts[it.Action]++
	}
	return map[string]string{
		"profile":  res.Profile.Stamp,
		"applied":  strconv.Itoa(counts[inject.Applied]),
		"skipped":  strconv.Itoa(counts[inject.Skipped]),
		"enforced": strconv.Itoa(counts[inject.Enforced]),
	}
}

// failed answers a request the webhook could not handle itself, with an HTTP 5xx and the
// apimachinery status of that code.
func failed(out outcome, code int, logMsg, msg string) (*admissionv1.AdmissionResponse, outcome) {
	out.status, out.result, out.message = code, metrics.ResultError, logMsg
	var err *apierrors.StatusError
	switch code {
	case http.StatusServiceUnavailable:
		err = apierrors.NewServiceUnavailable(msg)
	case http.StatusGatewayTimeout:
		err = apierrors.NewTimeoutError(msg, 0)
	default:
		err = apierrors.NewInternalError(errors.New(msg))
	}
	return denied(err), out
}

// denied refuses with a status built by apimachinery, so Reason is a real metav1.StatusReason.
func denied(err *apierrors.StatusError) *admissionv1.AdmissionResponse {
	st := err.ErrStatus
	st.Message = text.Cap(st.Message, maxMessageBytes)
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &st}
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

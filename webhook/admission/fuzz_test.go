package admission

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// FuzzReview sends arbitrary bodies through the whole handler: every answer is an HTTP error
// or a 200 AdmissionReview that keeps the request's UID; nothing panics out of the handler.
func FuzzReview(f *testing.F) {
	t := &testing.T{}
	f.Add(reviewJSON(t, nil))
	f.Add(reviewJSON(t, func(r *admissionv1.AdmissionReview) {
		r.Request.Object.Raw = []byte(`{"metadata":{"annotations":{"ai.example.com/profile":"llm-inference"}}}`)
	}))
	f.Add(reviewJSON(t, func(r *admissionv1.AdmissionReview) { r.Request.Operation = admissionv1.Delete }))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":null}}`))
	f.Add([]byte(`[]`))
	h := newHandler(&testing.T{})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code < 500 {
			return
		}
		var in, out admissionv1.AdmissionReview
		_ = json.Unmarshal(body, &in)
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("200 without a review: %s", rec.Body.Bytes())
		}
		if in.Request != nil && out.Response.UID != in.Request.UID {
			t.Fatalf("UID lost: %q vs %q", out.Response.UID, in.Request.UID)
		}
	})
}

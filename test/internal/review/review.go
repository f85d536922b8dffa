// Package review builds AdmissionReviews as the API server sends them and
// checks the answers, for the benchmarks and the load tests.
package review

import (
	"encoding/json"
	"errors"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Body is the AdmissionReview the API server sends for a CREATE of pod (by a training
// operator's ServiceAccount).
func Body(pod *corev1.Pod, uid string) ([]byte, error) {
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	return json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uid), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Name: pod.Name, Namespace: pod.Namespace, Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kubeflow:training-operator",
				UID: "5d3c2a7e-6c3b-4e61-9d2f-0a4c1f1b2e3d", Groups: []string{"system:serviceaccounts",
					"system:serviceaccounts:kubeflow", "system:authenticated"}},
			Object:  runtime.RawExtension{Raw: raw},
			DryRun:  ptr.To(false),
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"training-operator"}`)},
		},
	})
}

// Allowed verifies an answer to reqBody is an allowed AdmissionReview v1 with the
// request's UID, and returns the request and the response.
func Allowed(reqBody, respBody []byte) (*admissionv1.AdmissionRequest, *admissionv1.AdmissionResponse, error) {
	var req, resp admissionv1.AdmissionReview
	if err := json.Unmarshal(reqBody, &req); err != nil {
		return nil, nil, fmt.Errorf("request: %w", err)
	}
	if err := json.Unmarshal(respBody, &resp); err != nil {
		return nil, nil, fmt.Errorf("response: %w: %.300s", err, respBody)
	}
	r := resp.Response
	switch {
	case resp.APIVersion != "admission.k8s.io/v1" || resp.Kind != "AdmissionReview":
		return nil, nil, fmt.Errorf("response is %q %q, want admission.k8s.io/v1 AdmissionReview", resp.APIVersion, resp.Kind)
	case r == nil:
		return nil, nil, fmt.Errorf("review has no response: %.300s", respBody)
	case r.UID != req.Request.UID:
		return nil, nil, fmt.Errorf("response uid %q, want %q", r.UID, req.Request.UID)
	case !r.Allowed:
		return nil, nil, fmt.Errorf("not allowed: %+v", r.Result)
	}
	return req.Request, r, nil
}

// Patched verifies an answer to reqBody fully: allowed (Allowed), with a JSON Patch that
// applies to the Pod and yields a Pod the profile was applied to (the stamp annotation of
// the default domain is there) with as many containers. It returns the patched Pod.
func Patched(reqBody, respBody []byte) (*corev1.Pod, error) {
	req, r, err := Allowed(reqBody, respBody)
	if err != nil {
		return nil, err
	}
	if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch || len(r.Patch) == 0 {
		return nil, fmt.Errorf("no JSON patch in the response")
	}
	patch, err := jsonpatch.DecodePatch(r.Patch)
	if err != nil {
		return nil, fmt.Errorf("patch does not decode: %w", err)
	}
	patched, err := patch.Apply(req.Object.Raw)
	if err != nil {
		return nil, fmt.Errorf("patch does not apply: %w", err)
	}
	var pod, out corev1.Pod
	if err := errors.Join(json.Unmarshal(req.Object.Raw, &pod), json.Unmarshal(patched, &out)); err != nil {
		return nil, fmt.Errorf("the Pod does not decode: %w", err)
	}
	if stamp := profile.KeysFor(profile.DefaultDomain).Injected; out.Annotations[stamp] == "" {
		return nil, fmt.Errorf("patched Pod has no %s annotation", stamp)
	}
	if len(out.Spec.Containers) != len(pod.Spec.Containers) {
		return nil, fmt.Errorf("patched Pod has %d containers, want %d", len(out.Spec.Containers), len(pod.Spec.Containers))
	}
	return &out, nil
}

package controlplane

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ai-webhook/ai-webhook/webhook/testpki"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
)

const (
	downService = "ai-webhook-down" // its endpoint has nothing listening
	downAddress = "10.250.0.13"
	downPort    = 8444 // not webhookPort: every address of the range reaches the webhook's 0.0.0.0 listener
	slowService = "slow-webhook"
	slowAddress = "10.250.0.12"
	slowPort    = 9444
	slowBudget  = 1 // timeoutSeconds given to the slow webhook
)

// Cases 6, 7 and 8: when the API server gets no answer from the webhook (it
// is down, it is slower than timeoutSeconds, or its certificate does not
// verify against the caBundle), failurePolicy decides: Fail refuses the Pod
// with an error naming the webhook, Ignore admits it unmutated.
func TestFailurePolicyWhenTheWebhookCannotAnswer(t *testing.T) {
	requireControlPlane(t)
	ns := optedInNamespace(t)
	exposeForTest(t, downService, downAddress, downPort)
	var slowTimeoutParam atomic.Value // the ?timeout= the API server sent the slow webhook
	startTestWebhook(t, slowService, slowAddress, slowPort,
		func(r *http.Request, _ *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			slowTimeoutParam.Store(r.URL.Query().Get("timeout"))
			select {
			case <-r.Context().Done(): // the API server gave up
				return nil
			case <-time.After(10 * time.Second):
				return &admissionv1.AdmissionResponse{Allowed: true}
			}
		})
	otherCA, err := testpki.NewCA("some-other-ca", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	for _, mode := range []failureMode{{
		name:    "webhook down",
		opts:    hookOpts(withService(downService)),
		wantErr: regexp.MustCompile(`connection refused`),
	}, {
		name:    "webhook slower than timeoutSeconds",
		opts:    hookOpts(withService(slowService), withTimeout(slowBudget)),
		wantErr: regexp.MustCompile(`deadline exceeded|[Tt]imeout`),
		slow:    true,
	}, {
		name:    "caBundle from another CA",
		opts:    hookOpts(withCABundle(otherCA.CertPEM)),
		wantErr: regexp.MustCompile(`x509: certificate signed by unknown authority`),
	}} {
		t.Run(mode.name, func(t *testing.T) { mode.test(t, ns, &slowTimeoutParam) })
	}
}

// failureMode is a way for the webhook call to fail.
type failureMode struct {
	name string
	// opts turn the stack's configuration into one that fails this way.
	opts []func(*admissionregistrationv1.MutatingWebhook)
	// wantErr matches the cause in the error of a refused create.
	wantErr *regexp.Regexp
	// slow: the call must be cut off after slowBudget seconds.
	slow bool
}

// test runs the failing configuration under both failure policies.
func (m failureMode) test(t *testing.T, ns string, slowTimeoutParam *atomic.Value) {
	t.Run("Fail refuses the Pod", func(t *testing.T) {
		installWebhook(t, stackWebhook(append(m.opts, withFailurePolicy(admissionregistrationv1.Fail))...))
		var (
			name    string
			err     error
			elapsed time.Duration
		)
		cluster.Eventually(t, 30*time.Second, "the create to be refused", func() error {
			name = "refused-" + randSuffix()
			start := time.Now()
			_, err = createPod(ns, trainingPod(name, optInLabel(gpuProfile)), false)
			elapsed = time.Since(start)
			switch {
			case err == nil:
				return fmt.Errorf("admitted (the previous configuration is still in effect?)")
			case !m.wantErr.MatchString(err.Error()):
				return fmt.Errorf("refused, but the error does not match %q: %v", m.wantErr, err)
			}
			return nil
		})
		if want := fmt.Sprintf(`failed calling webhook "%s"`, webhookName); !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name the webhook (%s): %v", want, err)
		}
		if _, err := getPod(ns, name); !apierrors.IsNotFound(err) {
			t.Errorf("refused Pod: get returned %v, want NotFound", err)
		}
		if m.slow {
			checkCutOff(t, elapsed, slowTimeoutParam.Load())
		}
		t.Logf("refused after %v: %v", elapsed.Round(time.Millisecond), err)
	})

	t.Run("Ignore admits the Pod unmutated", func(t *testing.T) {
		installWebhook(t, stackWebhook(append(m.opts, withFailurePolicy(admissionregistrationv1.Ignore))...))
		var (
			sent, got *corev1.Pod
			elapsed   time.Duration
		)
		failOpen := map[string]string{"name": webhookName}
		cluster.Eventually(t, 30*time.Second, "the create to be admitted after a failed call", func() error {
			before := scrapeMetrics(t).counter(metricWebhookFailOpen, failOpen)
			sent = trainingPod("admitted-"+randSuffix(), optInLabel(gpuProfile))
			start := time.Now()
			var err error
			got, err = createPod(ns, sent, false)
			elapsed = time.Since(start)
			if err != nil {
				return err
			}
			if scrapeMetrics(t).counter(metricWebhookFailOpen, failOpen) <= before {
				return fmt.Errorf("admitted, but %s did not count a failed-open call (the configuration is not in effect yet?)", metricWebhookFailOpen)
			}
			return nil
		})
		for _, p := range untouchedProblems(got, sent) {
			t.Error(p)
		}
		if m.slow {
			checkCutOff(t, elapsed, slowTimeoutParam.Load())
		}
	})
}

// checkCutOff checks that a create that waited on the slow webhook took the
// webhook's budget and not the webhook's full (10s) delay.
func checkCutOff(t *testing.T, elapsed time.Duration, timeoutParam any) {
	t.Helper()
	budget := slowBudget * time.Second
	if elapsed < budget-100*time.Millisecond || elapsed > budget+2*time.Second {
		t.Errorf("create took %v, want about the webhook's timeoutSeconds (%v)", elapsed, budget)
	}
	if timeoutParam != fmt.Sprintf("%ds", slowBudget) {
		t.Errorf("the API server sent ?timeout=%v, want %ds", timeoutParam, slowBudget)
	}
}

func hookOpts(opts ...func(*admissionregistrationv1.MutatingWebhook)) []func(*admissionregistrationv1.MutatingWebhook) {
	return opts
}

package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/tools/localcluster/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// The corpus runs its own ai-webhook process (the same binary) with the shipped profiles and an
// "enforce everything" variant of each, behind its own Service, selected by its own namespace
// label, so the fixture's profiles stay as the other tests expect them.
const (
	corpusShapes  = 520  // Pod shapes generated
	corpusSeed    = 2026 // the generator's seed: the same corpus every run
	corpusWorkers = 8    // creates in flight

	corpusService  = "ai-webhook-corpus"
	corpusAddress  = "10.250.0.13"
	corpusPort     = 8444 // the fixture's webhook holds 0.0.0.0:8443
	corpusHookName = "corpus." + domain
	corpusNSLabel  = "test." + domain + "/corpus"

	kataRuntimeClass = "kata" // has a Pod overhead; created by the test
	batchPriority    = "batch-low"
	enforcedSuffix   = "-enforce-all"
)

var kataOverhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("160Mi")}

// corpusJob is one create of a corpus run: a shape asking for a profile variant, with or
// without the sidecar webhook.
type corpusJob struct {
	shape   *podShape
	variant string
	sidecar bool
}

// corpusJobs pairs every shape with every variant; half the shapes also meet the sidecar
// webhook, so the run stays short.
func corpusJobs(shapes []podShape, variants []string) []corpusJob {
	var jobs []corpusJob
	for i := range shapes {
		for _, v := range variants {
			jobs = append(jobs, corpusJob{&shapes[i], v, false})
			if i%2 == 0 {
				jobs = append(jobs, corpusJob{&shapes[i], v, true})
			}
		}
	}
	return jobs
}

// Every generated Pod shape, valid on its own, crossed with every shipped profile and its
// enforce-everything variant, alone and (every other shape) with a second webhook that adds a
// container, is created (dry run) through the real kube-apiserver with ai-webhook in the path
// (failurePolicy Fail). Each is admitted, or refused exactly where the injector means to refuse
// it; the stored Pod gives an empty patch when admitted again (every one through the injector,
// a quarter created again through the server); the added container gets the profile's settings
// as if it had been there, with nothing duplicated; every value the Pod set itself is unchanged
// unless the profile enforces that field; GPU hiding, /dev/shm and OMP_NUM_THREADS are judged
// on their own. Ephemeral containers cannot be set at create (the API refuses them), so the
// corpus has none.
func TestCorpusOfPodShapesIsAdmittedAsTheInjectorIntends(t *testing.T) {
	requireControlPlane(t)
	start := time.Now()
	file, variants := corpusProfiles(t)
	set, err := profile.Parse(file, domain)
	if err != nil {
		t.Fatalf("load the corpus profiles: %v", err)
	}
	createCorpusClasses(t)
	startCorpusWebhook(t, file)
	startTestWebhook(t, sidecarService, sidecarAddress, sidecarPort, addSidecar)
	installWebhook(t, sidecarWebhookConfig())
	installWebhook(t, corpusWebhookConfig())
	plainNS := newNamespace(t, nil) // no webhook: is the generated Pod valid on its own?
	ns := newNamespace(t, map[string]string{corpusNSLabel: "true"})
	cluster.Eventually(t, 30*time.Second, "the API server to call both webhooks", func() error {
		p, err := createPod(ns, trainingPod("probe", optInLabel(variants[0]), withSidecarLabel), true)
		if err != nil {
			return err
		}
		if _, ok := p.Annotations[injectedKey]; !ok || len(p.Spec.Containers) != 2 {
			return fmt.Errorf("probe came back with %s=%q and containers %v", injectedKey, p.Annotations[injectedKey], containerNames(p))
		}
		return nil
	})

	shapes := generateShapes(rand.New(rand.NewPCG(corpusSeed, 1)), corpusShapes)
	t.Logf("corpus: %d Pod shapes x %d profiles (%s), alone and (every other shape) with a container added by a later webhook",
		len(shapes), len(variants), strings.Join(variants, ", "))

	// Phase 1: each shape as the user wrote it, without the webhook.
	invalid := make([]error, len(shapes))
	parallel(len(shapes), func(i int) {
		_, invalid[i] = createPod(plainNS, shapes[i].podFor(variants[0], false), true)
	})
	var valid []podShape
	for i, s := range shapes {
		if invalid[i] != nil {
			t.Errorf("generator bug: shape %s is refused without the webhook: %v\n  features: %s", s.name, invalid[i], s.describe())
			continue
		}
		valid = append(valid, s)
	}
	validated := time.Now()

	// Phase 2: every valid shape with every profile, alone and with the sidecar webhook.
	jobs := corpusJobs(valid, variants)
	got := make([]*corev1.Pod, len(jobs))
	errs := make([]error, len(jobs))
	parallel(len(jobs), func(i int) {
		got[i], errs[i] = createPod(ns, jobs[i].shape.podFor(jobs[i].variant, jobs[i].sidecar), true)
	})
	alone := map[string]*corev1.Pod{} // shape/variant -> the Pod stored without the sidecar
	var firsts []int                  // jobs whose stored Pod is created once more
	for i, j := range jobs {
		if !j.sidecar && errs[i] == nil {
			alone[j.shape.name+"/"+j.variant] = got[i]
			if len(alone)%4 == 1 { // every stored Pod passes the injector again below; a quarter the server too
				firsts = append(firsts, i)
			}
		}
	}
	// The stored Pod created again goes through ai-webhook once more: it must come back as it was.
	again := make([]*corev1.Pod, len(jobs))
	againErrs := make([]error, len(jobs))
	parallel(len(firsts), func(k int) {
		i := firsts[k]
		p := got[i].DeepCopy()
		p.ObjectMeta = metav1.ObjectMeta{Name: p.Name, Labels: p.Labels, Annotations: p.Annotations}
		again[i], againErrs[i] = createPod(ns, p, true)
	})
	created := time.Now()

	report := newCorpusReport()
	keys := profile.KeysFor(domain)
	for i, j := range jobs {
		sent := j.shape.podFor(j.variant, j.sidecar)
		mode := "alone"
		if j.sidecar {
			mode = "sidecar"
		}
		fail := func(check, format string, args ...any) {
			report.fail(j.variant, check, fmt.Sprintf("%s (%s): %s\n      features: %s", j.shape.name, mode, fmt.Sprintf(format, args...), j.shape.describe()))
		}
		// What the injector means to do with this Pod, decided here as the server decides.
		predicted := sent.DeepCopy()
		profile.DefaultPod(predicted)
		res, wantErr := inject.Mutate(predicted, set, keys)
		var refused *inject.RefusedError
		switch {
		case errors.As(wantErr, &refused):
			if errs[i] == nil {
				fail("refusal", "admitted, want refused: %s", refused.Reason)
			} else if !strings.Contains(errs[i].Error(), refused.Reason) {
				fail("refusal", "refused with %v, want the injector's reason %q", errs[i], refused.Reason)
			} else {
				report.count(j.variant, mode, "refused: "+refusalKind(refused.Reason))
			}
			continue
		case wantErr != nil:
			fail("predict", "the injector failed offline: %v", wantErr)
			continue
		case errs[i] != nil:
			fail("admission", "refused: %v", errs[i])
			continue
		}
		stored := got[i]
		var p *profile.Compiled // nil: the Pod was not mutated (opted out)
		if res.Profile != nil {
			p = res.Profile
			if stored.Annotations[injectedKey] != p.Stamp {
				fail("stamp", "%s = %q, want %q", injectedKey, stored.Annotations[injectedKey], p.Stamp)
			}
			report.count(j.variant, mode, "admitted, mutated")
			for _, it := range res.Items { // what the corpus exercised
				if !j.sidecar {
					report.count(j.variant, mode, "  settings "+string(it.Action))
				}
			}
		} else {
			if v, ok := stored.Annotations[injectedKey]; ok {
				fail("opt-out", "%s = %q on a Pod the injector leaves alone (%s)", injectedKey, v, res.Reason)
			}
			report.count(j.variant, mode, "admitted, untouched: "+res.Reason)
		}
		for _, prob := range userValueProblems(sent, stored, p) {
			fail("user value", "%s", prob)
		}
		for _, prob := range gpuHidingProblems(sent, stored, p) {
			fail("gpu hiding", "%s", prob)
		}
		if prob := shmProblem(sent, stored, p); prob != "" {
			fail("shm size", "%s", prob)
		}
		for _, prob := range ompProblems(sent, stored, p) {
			fail("OMP_NUM_THREADS", "%s", prob)
		}
		for _, prob := range addedDuplicates(sent, stored) {
			fail("duplicate", "%s", prob)
		}
		if res2, err := inject.Mutate(stored.DeepCopy(), set, keys); err != nil {
			fail("second pass", "the injector refuses the stored Pod: %v", err)
		} else if len(res2.Patch) > 0 {
			patch, _ := json.Marshal(res2.Patch)
			fail("second pass", "the injector patches the stored Pod: %s", shortJSON(patch))
		}
		switch {
		case again[i] == nil && againErrs[i] == nil: // not in the sample
		case againErrs[i] != nil:
			fail("second pass", "the stored Pod created again is refused: %v", againErrs[i])
		case viewDiff(stored, again[i]) != "":
			fail("second pass", "the stored Pod created again comes back changed (-first +again):\n%s", viewDiff(stored, again[i]))
		}
		if j.sidecar {
			base, ok := alone[j.shape.name+"/"+j.variant]
			if !ok {
				fail("sidecar", "admitted with the sidecar but not alone")
				continue
			}
			if prob := sidecarProblem(base, stored, set, keys); prob != "" {
				fail("sidecar", "%s", prob)
			} else if c := stored.Spec.Containers[len(stored.Spec.Containers)-1]; len(c.Env)+len(c.VolumeMounts) > 0 {
				report.count(j.variant, mode, "  the added container got settings")
			}
		}
	}
	report.log(t, variants)
	t.Logf("corpus: %d shapes valid on their own, %d creates through both webhooks, %d stored Pods created again; %v (validity %v, creates %v)",
		len(valid), len(jobs), len(firsts), time.Since(start).Round(time.Millisecond),
		validated.Sub(start).Round(time.Millisecond), created.Sub(validated).Round(time.Millisecond))
}

// corpusProfiles returns the shipped profiles plus, for each, a variant that enforces every
// field it sets (from the profile package's table of enforceable fields), and their names.
func corpusProfiles(t *testing.T) ([]byte, []string) {
	t.Helper()
	var f profile.File
	if err := yaml.UnmarshalStrict(profile.Examples, &f); err != nil {
		t.Fatalf("read the shipped examples: %v", err)
	}
	var names []string
	shipped := len(f.Profiles)
	for i := range shipped {
		p := f.Profiles[i]
		names = append(names, p.Name)
		all := clone([]profile.Profile{p})[0]
		all.Name = p.Name + enforcedSuffix
		all.Enforce = nil
		for _, field := range profile.EnforceableFields() {
			try := clone([]profile.Profile{all})[0]
			try.Enforce = []string{field}
			data, _ := yaml.Marshal(profile.File{Profiles: []profile.Profile{try}})
			if _, err := profile.Parse(data, domain); err == nil { // refused: the profile sets no such field
				all.Enforce = append(all.Enforce, field)
			}
		}
		if len(all.Enforce) == 0 {
			t.Fatalf("profile %s: no enforceable field accepted", p.Name)
		}
		f.Profiles = append(f.Profiles, all)
		names = append(names, all.Name)
		t.Logf("profile %s enforces %v", all.Name, all.Enforce)
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return data, names
}

// createCorpusClasses makes the classes the corpus names: a RuntimeClass with an overhead (the
// RuntimeClass admission plugin sets and checks spec.overhead from it) and a PriorityClass.
func createCorpusClasses(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: kataRuntimeClass}, Handler: kataRuntimeClass,
		Overhead: &nodev1.Overhead{PodFixed: kataOverhead}}
	if _, err := fx.client.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create RuntimeClass %s: %v", kataRuntimeClass, err)
	}
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: batchPriority}, Value: 100}
	if _, err := fx.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create PriorityClass %s: %v", batchPriority, err)
	}
	t.Cleanup(func() {
		_ = fx.client.NodeV1().RuntimeClasses().Delete(ctx, kataRuntimeClass, metav1.DeleteOptions{})
		_ = fx.client.SchedulingV1().PriorityClasses().Delete(ctx, batchPriority, metav1.DeleteOptions{})
	})
}

// startCorpusWebhook runs `ai-webhook serve` with the corpus profiles behind the Service
// corpusService, and stops it when the test ends.
func startCorpusWebhook(t *testing.T, profiles []byte) {
	t.Helper()
	dir := filepath.Join(os.Getenv(envWorkDir), "corpus")
	serving, err := issueServing(fx.ca, corpusService, webhookNamespace)
	if err != nil {
		t.Fatal(err)
	}
	files := projectedDir{dir: dir}
	if err := files.write(map[string][]byte{"tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM, "profiles.yaml": profiles}); err != nil {
		t.Fatal(err)
	}
	proc, err := cluster.StartProcess(cluster.Command{Name: "ai-webhook (corpus)", Log: filepath.Join(dir, "ai-webhook.log"),
		Argv: []string{os.Getenv(envWebhookBin), "serve", "--listen=" + net.JoinHostPort(corpusAddress, strconv.Itoa(corpusPort)),
			"--tls-cert-file=" + files.path("tls.crt"), "--tls-key-file=" + files.path("tls.key"),
			"--profiles-file=" + files.path("profiles.yaml"), "--domain=" + domain, "--shutdown-delay=0s", "--log-level=warn"}})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, proc, "the corpus webhook")
	addr := net.JoinHostPort(corpusAddress, strconv.Itoa(corpusPort))
	if err := fx.waitReady(context.Background(), addr, corpusService+"."+webhookNamespace+".svc", proc); err != nil {
		t.Fatal(err)
	}
	exposeForTest(t, corpusService, corpusAddress, corpusPort)
}

// corpusWebhookConfig is the stack's configuration pointed at the corpus webhook and at the
// namespaces carrying corpusNSLabel. Its name sorts before the sidecar injector's.
func corpusWebhookConfig() *admissionregistrationv1.MutatingWebhookConfiguration {
	cfg := stackWebhook(withService(corpusService), func(w *admissionregistrationv1.MutatingWebhook) {
		w.Name = corpusHookName
		w.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corpusNSLabel: "true"}}
	})
	cfg.Name = "corpus-ai-webhook"
	return cfg
}

// parallel runs fn(0..n-1) on corpusWorkers goroutines.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range corpusWorkers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// ----- the generator -----

// podShape is one generated Pod as its user writes it, and how it names its profile.
type podShape struct {
	name     string
	features []string // what the generator chose, for failure messages
	pod      *corev1.Pod
	optIn    string // label, annotation, both, inject-yes, opt-out, bad-inject, disagree
}

func (s *podShape) describe() string { return strings.Join(s.features, "; ") }

// podFor returns a fresh copy of the shape naming profile as its optIn says, with the label
// the sidecar webhook selects when sidecar.
func (s *podShape) podFor(profileName string, sidecar bool) *corev1.Pod {
	p := s.pod.DeepCopy()
	p.Name = s.name
	if sidecar {
		p.Name += "-s"
		p.Labels[sidecarLabel] = "true"
	}
	switch s.optIn {
	case "label":
		p.Labels[profileKey] = profileName
	case "annotation":
		setAnnotation(p, profileKey, profileName)
	case "both":
		p.Labels[profileKey] = profileName
		setAnnotation(p, profileKey, profileName)
	case "inject-yes":
		p.Labels[profileKey] = profileName
		setAnnotation(p, injectKey, " Yes")
	case "opt-out":
		p.Labels[profileKey] = profileName
		setAnnotation(p, injectKey, "Off")
	case "bad-inject":
		p.Labels[profileKey] = profileName
		setAnnotation(p, injectKey, "maybe")
	case "disagree":
		p.Labels[profileKey] = profileName
		setAnnotation(p, profileKey, "notebook-v2")
	}
	return p
}

// gen draws choices and records them.
type gen struct {
	r        *rand.Rand
	features []string
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }
func (g *gen) note(format string, args ...any) {
	g.features = append(g.features, fmt.Sprintf(format, args...))
}

func pick[T any](g *gen, items []T) T { return items[g.r.IntN(len(items))] }

// generateShapes makes n valid Pods mixing what makes injection hard: names and paths the
// profiles use, duplicate env names, envFrom, odd quantities, GPU, MIG and zero-GPU requests,
// pod-level resources, runtime classes with overhead, host namespaces, placement.
func generateShapes(r *rand.Rand, n int) []podShape {
	shapes := make([]podShape, 0, n)
	for i := range n {
		g := &gen{r: r}
		s := podShape{name: fmt.Sprintf("c%04d", i)}
		s.optIn = pick(g, []string{"label", "label", "label", "label", "label", "label", "label", "label", "label", "label", "label",
			"annotation", "annotation", "annotation", "annotation", "annotation", "both", "both", "inject-yes",
			"opt-out", "bad-inject", "disagree"})
		g.note("opt-in %s", s.optIn)
		s.pod = g.pod()
		s.features = g.features
		shapes = append(shapes, s)
	}
	return shapes
}

// Volumes a Pod may bring, several under the names the profiles use.
var shapeVolumes = []corev1.Volume{
	{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
	{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
	{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Gi"))}}},
	{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	{Name: "dshm", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/dev/shm"}}},
	{Name: "model-cache", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "models"}}},
	{Name: "model-cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("100Gi"))}}},
	{Name: "model-cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	{Name: "hf-cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	{Name: "hf-cache", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "hf"}}}},
	{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
	{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault"}}}}}},
	{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
	{Name: "weights", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "registry.example/weights/llama:v3"}}},
	{Name: "model-weights", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "registry.example/weights/mistral:v1"}}},
}

// Mount paths, with the profiles' own and trailing-slash spellings of them.
var shapeMountPaths = []string{"/dev/shm", "/dev/shm/", "/models", "/models/", "/models//", "/cache", "/cache/",
	"/scratch", "/data", "/etc/config", "/var/run/secrets/tokens", "/models/huggingface", "/weights", "/models/weights/"}

var shapeEnv = []corev1.EnvVar{
	{Name: "NCCL_DEBUG", Value: "INFO"},
	{Name: "NCCL_DEBUG", Value: "WARN"},
	{Name: "NCCL_SOCKET_IFNAME", Value: "ib0"},
	{Name: "HF_HOME", Value: "/data/hf"},
	{Name: "HF_HOME", Value: "/models/huggingface"},
	{Name: "PYTHONUNBUFFERED", Value: "0"},
	{Name: "OMP_NUM_THREADS", Value: "2"},
	{Name: "NVIDIA_VISIBLE_DEVICES", Value: "all"},
	{Name: "JUPYTER_ENABLE_LAB", Value: "no"},
	{Name: "HF_HUB_OFFLINE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "hf"}, Key: "offline"}}},
	{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	{Name: "CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
	{Name: "HF_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "hf"}, Key: "token"}}},
	{Name: "APP_MODE", Value: "train"},
}

var shapeEnvFrom = []corev1.EnvFromSource{
	{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "env"}}},
	{Prefix: "NCCL_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nccl"}}},
	{Prefix: "APP_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}},
}

var shapeTolerations = []corev1.Toleration{
	{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists},
	{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpEqual, Value: "present", Effect: corev1.TaintEffectNoSchedule},
	{Operator: corev1.TolerationOpExists},
	{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
}

var shapeRequirements = []corev1.NodeSelectorRequirement{
	{Key: "nvidia.com/gpu.present", Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}},
	{Key: "nvidia.com/gpu.product", Operator: corev1.NodeSelectorOpIn, Values: []string{"A100", "H100"}},
	{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}},
	{Key: "node-role.example.com/gpu", Operator: corev1.NodeSelectorOpExists},
	{Key: "nvidia.com/gpu.memory", Operator: corev1.NodeSelectorOpGt, Values: []string{"20000"}},
	{Key: "nvidia.com/gpu.present", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"false"}},
}

func (g *gen) pod() *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "corpus"}},
		Spec:       corev1.PodSpec{ServiceAccountName: "default"}, // a projected token needs one
	}
	spec := &p.Spec
	// Volumes, at most one per name.
	for range g.r.IntN(5) {
		v := pick(g, shapeVolumes)
		if !slices.ContainsFunc(spec.Volumes, func(o corev1.Volume) bool { return o.Name == v.Name }) {
			spec.Volumes = append(spec.Volumes, *v.DeepCopy())
			g.note("volume %s", describeVolume(v))
		}
	}
	// App containers: names the profiles select, and others.
	names := []string{"trainer", "pytorch", "notebook", "server", "app", "worker", "main"}
	g.r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, name := range names[:1+g.r.IntN(3)] {
		spec.Containers = append(spec.Containers, g.container(name, spec, true))
	}
	// Init containers: run-to-completion and native sidecars.
	for i := range g.r.IntN(3) {
		c := g.container(fmt.Sprintf("init-%d", i), spec, false)
		if g.chance(0.5) {
			c.Name = fmt.Sprintf("sidecar-%d", i)
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		}
		spec.InitContainers = append(spec.InitContainers, c)
	}
	g.podLevel(p)
	return p
}

func (g *gen) container(name string, spec *corev1.PodSpec, app bool) corev1.Container {
	c := corev1.Container{Name: name, Image: "registry.example/" + name + ":1"}
	where := "container " + name
	if !app {
		where = "init " + name
	}
	for range g.r.IntN(5) {
		e := pick(g, shapeEnv)
		e = *e.DeepCopy()
		c.Env = append(c.Env, e)
		g.note("%s env %s", where, describeEnvVar(e))
	}
	if g.chance(0.2) {
		f := pick(g, shapeEnvFrom)
		f = *f.DeepCopy()
		c.EnvFrom = append(c.EnvFrom, f)
		g.note("%s envFrom prefix %q", where, f.Prefix)
	}
	// Mounts of the Pod's volumes, one per cleaned path.
	used := map[string]bool{}
	for _, v := range spec.Volumes {
		if !g.chance(0.6) {
			continue
		}
		mp := pick(g, shapeMountPaths)
		if used[path.Clean(mp)] {
			continue
		}
		used[path.Clean(mp)] = true
		m := corev1.VolumeMount{Name: v.Name, MountPath: mp}
		if v.Image != nil || v.ConfigMap != nil || v.Projected != nil || v.DownwardAPI != nil || g.chance(0.1) {
			m.ReadOnly = true
		}
		if g.chance(0.1) && v.Image == nil {
			m.SubPath = "sub"
		}
		c.VolumeMounts = append(c.VolumeMounts, m)
		g.note("%s mounts %s at %q", where, v.Name, mp)
	}
	c.Resources = g.resources(where, app)
	return c
}

func (g *gen) resources(where string, app bool) corev1.ResourceRequirements {
	var r corev1.ResourceRequirements
	set := func(l *corev1.ResourceList, name corev1.ResourceName, q string) {
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = resource.MustParse(q)
	}
	switch g.r.IntN(4) {
	case 0: // none
	case 1: // limits, requests defaulted from them
		set(&r.Limits, corev1.ResourceCPU, pick(g, []string{"1", "1500m", "0.5", "2.0001", "4", "100m"}))
		set(&r.Limits, corev1.ResourceMemory, pick(g, []string{"4Gi", "4096Mi", "1e9", "500M", "1.5Gi", "3Gi", "0"}))
	case 2: // requests below limits
		set(&r.Requests, corev1.ResourceCPU, "250m")
		set(&r.Requests, corev1.ResourceMemory, "1Gi")
		set(&r.Limits, corev1.ResourceCPU, pick(g, []string{"2", "3500m", "8"}))
		set(&r.Limits, corev1.ResourceMemory, pick(g, []string{"2Gi", "16Gi", "2147483648"}))
	case 3: // requests only
		set(&r.Requests, corev1.ResourceCPU, pick(g, []string{"0.25", "3"}))
		set(&r.Requests, corev1.ResourceMemory, pick(g, []string{"512Mi", "8G"}))
	}
	if app && g.chance(0.45) {
		gpu := pick(g, []struct{ name, qty string }{
			{"nvidia.com/gpu", "1"}, {"nvidia.com/gpu", "2"}, {"nvidia.com/gpu", "0"},
			{"nvidia.com/mig-1g.10gb", "1"}, {"nvidia.com/gpu.shared", "1"}, {"example.com/fpga", "1"},
		})
		set(&r.Limits, corev1.ResourceName(gpu.name), gpu.qty)
		if g.chance(0.3) {
			set(&r.Requests, corev1.ResourceName(gpu.name), gpu.qty) // extended resources: request equals limit
		}
	}
	if len(r.Limits)+len(r.Requests) > 0 {
		g.note("%s resources limits %s requests %s", where, describeList(r.Limits), describeList(r.Requests))
	}
	return r
}

func (g *gen) podLevel(p *corev1.Pod) {
	spec := &p.Spec
	if g.chance(0.15) {
		// Pod-level resources cover the containers': bounds are checked by the API server.
		switch g.r.IntN(3) {
		case 0:
			spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("100Gi")}}
		case 1:
			spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi")}}
		case 2: // smaller than some container limits would be: the containers give up memory settings
			spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("3Gi")}}
			for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
				for i := range list {
					delete(list[i].Resources.Limits, corev1.ResourceMemory)
					delete(list[i].Resources.Requests, corev1.ResourceMemory)
				}
			}
		}
		g.note("pod resources limits %s requests %s", describeList(spec.Resources.Limits), describeList(spec.Resources.Requests))
	}
	switch g.r.IntN(10) {
	case 0, 1:
		spec.RuntimeClassName = ptr.To(cluster.GPURuntimeClass)
		g.note("runtimeClassName nvidia")
	case 2, 3:
		spec.RuntimeClassName = ptr.To(kataRuntimeClass)
		if g.chance(0.5) {
			spec.Overhead = kataOverhead.DeepCopy() // as the RuntimeClass says: allowed
		}
		g.note("runtimeClassName kata (overhead set by user: %v)", spec.Overhead != nil)
	}
	if g.chance(0.1) {
		spec.PriorityClassName = batchPriority
		g.note("priorityClassName %s", batchPriority)
	}
	if g.chance(0.1) {
		spec.SchedulerName = "volcano"
		g.note("schedulerName volcano")
	}
	if g.chance(0.1) {
		spec.HostNetwork = true
		g.note("hostNetwork")
	}
	if g.chance(0.1) {
		spec.HostIPC = true
		g.note("hostIPC")
	}
	if g.chance(0.3) {
		for range 1 + g.r.IntN(3) {
			t := pick(g, shapeTolerations)
			if !slices.ContainsFunc(spec.Tolerations, func(o corev1.Toleration) bool { return o.MatchToleration(&t) }) {
				spec.Tolerations = append(spec.Tolerations, t)
				g.note("toleration %s", describeToleration(t))
			}
		}
	}
	if g.chance(0.25) {
		spec.NodeSelector = map[string]string{}
		for range 1 + g.r.IntN(2) {
			kv := pick(g, [][2]string{{"nvidia.com/gpu.present", "false"}, {"nvidia.com/gpu.present", "true"}, {"pool", "ml"}})
			spec.NodeSelector[kv[0]] = kv[1]
		}
		g.note("nodeSelector %v", spec.NodeSelector)
	}
	if g.chance(0.3) {
		spec.Affinity = g.affinity()
	}
	if g.chance(0.2) {
		p.Labels[domain+"/workload"] = pick(g, []string{"inference", "training"})
		g.note("label workload=%s", p.Labels[domain+"/workload"])
	}
	if g.chance(0.1) {
		setAnnotation(p, "team.example.com/owner", "ml-platform")
		g.note("annotation team owner")
	}
}

func (g *gen) affinity() *corev1.Affinity {
	na := &corev1.NodeAffinity{}
	if g.chance(0.8) {
		sel := &corev1.NodeSelector{}
		for range 1 + g.r.IntN(3) {
			var term corev1.NodeSelectorTerm
			for range 1 + g.r.IntN(2) {
				r := pick(g, shapeRequirements)
				term.MatchExpressions = append(term.MatchExpressions, *r.DeepCopy())
			}
			if g.chance(0.2) {
				term.MatchFields = []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"kwok-node-0"}}}
			}
			sel.NodeSelectorTerms = append(sel.NodeSelectorTerms, term)
		}
		na.RequiredDuringSchedulingIgnoredDuringExecution = sel
		g.note("required node affinity %d terms", len(sel.NodeSelectorTerms))
	}
	for range g.r.IntN(3) {
		na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: int32(1 + g.r.IntN(100)), Preference: corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{pickRequirement(g)}}})
	}
	if g.chance(0.2) { // the llm-inference profile's own preferred term
		na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: 50, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: "nvidia.com/gpu.memory", Operator: corev1.NodeSelectorOpGt, Values: []string{"40000"}}}}})
		g.note("the llm-inference preferred term")
	}
	g.note("preferred node affinity %d terms", len(na.PreferredDuringSchedulingIgnoredDuringExecution))
	a := &corev1.Affinity{NodeAffinity: na}
	if g.chance(0.3) {
		a.PodAntiAffinity = &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 10, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "corpus"}}}}}}
		g.note("pod anti-affinity")
	}
	return a
}

func describeVolume(v corev1.Volume) string {
	data, _ := json.Marshal(v.VolumeSource)
	return v.Name + " " + string(data)
}

func describeEnvVar(e corev1.EnvVar) string {
	if e.ValueFrom != nil {
		return e.Name + " (valueFrom)"
	}
	return e.Name + "=" + e.Value
}

func describeList(l corev1.ResourceList) string {
	var parts []string
	for _, k := range sortedNames(l) {
		q := l[corev1.ResourceName(k)]
		parts = append(parts, k+"="+q.String())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func describeToleration(t corev1.Toleration) string {
	return fmt.Sprintf("%s %s %s %s", t.Key, t.Operator, t.Value, t.Effect)
}

func sortedNames(l corev1.ResourceList) []string {
	var out []string
	for k := range l {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// ----- the checks -----

// userValueProblems lists the values sent set itself that differ in stored, though p (nil when
// the Pod was not mutated) does not enforce them.
func userValueProblems(sent, stored *corev1.Pod, p *profile.Compiled) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	enforced := func(field, key string, sets bool) bool { return p != nil && sets && p.Enforced(field, key) }
	want := sent.DeepCopy()
	profile.DefaultPod(want) // compare as the API server stores it
	var ps profile.Profile
	if p != nil {
		ps = p.Profile
	}

	for k, v := range want.Labels {
		if _, sets := ps.Pod.Labels[k]; stored.Labels[k] != v && !enforced("labels", k, sets) {
			bad("label %s = %q, the Pod set %q", k, stored.Labels[k], v)
		}
	}
	for k, v := range want.Annotations {
		if _, sets := ps.Pod.Annotations[k]; stored.Annotations[k] != v && !enforced("annotations", k, sets) {
			bad("annotation %s = %q, the Pod set %q", k, stored.Annotations[k], v)
		}
	}
	for k, v := range want.Spec.NodeSelector {
		if _, sets := ps.Pod.NodeSelector[k]; stored.Spec.NodeSelector[k] != v && !enforced("nodeSelector", k, sets) {
			bad("nodeSelector %s = %q, the Pod set %q", k, stored.Spec.NodeSelector[k], v)
		}
	}
	ws, gs := &want.Spec, &stored.Spec
	runtimeChanged := false
	if ws.RuntimeClassName != nil && ptr.Deref(gs.RuntimeClassName, "") != *ws.RuntimeClassName {
		runtimeChanged = true
		if !enforced("runtimeClassName", "", ps.Pod.RuntimeClassName != "") {
			bad("runtimeClassName = %q, the Pod set %q", ptr.Deref(gs.RuntimeClassName, ""), *ws.RuntimeClassName)
		}
	}
	if ws.Overhead != nil && !runtimeChanged && !apiequality.Semantic.DeepEqual(ws.Overhead, gs.Overhead) {
		bad("overhead = %v, the Pod set %v", gs.Overhead, ws.Overhead)
	}
	if ws.PriorityClassName != "" && gs.PriorityClassName != ws.PriorityClassName && !enforced("priorityClassName", "", ps.Pod.PriorityClassName != "") {
		bad("priorityClassName = %q, the Pod set %q", gs.PriorityClassName, ws.PriorityClassName)
	}
	if ws.SchedulerName != corev1.DefaultSchedulerName && gs.SchedulerName != ws.SchedulerName && !enforced("schedulerName", "", ps.Pod.SchedulerName != "") {
		bad("schedulerName = %q, the Pod set %q", gs.SchedulerName, ws.SchedulerName)
	}
	if ws.HostNetwork != gs.HostNetwork || ws.HostIPC != gs.HostIPC || ws.HostPID != gs.HostPID {
		bad("host namespaces changed: network %v ipc %v pid %v", gs.HostNetwork, gs.HostIPC, gs.HostPID)
	}
	if ws.Resources != nil { // the API server fills in pod-level requests: compare what the Pod set
		if gs.Resources == nil {
			bad("pod-level resources removed")
		} else {
			for _, l := range [][2]corev1.ResourceList{{ws.Resources.Limits, gs.Resources.Limits}, {ws.Resources.Requests, gs.Resources.Requests}} {
				for r, q := range l[0] {
					if have, ok := l[1][r]; !ok || have.Cmp(q) != 0 {
						bad("pod-level %s = %s, the Pod set %s", r, have.String(), q.String())
					}
				}
			}
		}
	}
	for _, t := range ws.Tolerations {
		sets := slices.ContainsFunc(ps.Pod.Tolerations, func(o corev1.Toleration) bool { return o.Key == t.Key })
		if !slices.ContainsFunc(gs.Tolerations, func(o corev1.Toleration) bool { return apiequality.Semantic.DeepEqual(o, t) }) &&
			!enforced("tolerations", t.Key, sets) {
			bad("toleration %s was removed or changed", describeToleration(t))
		}
	}
	probs = append(probs, affinityProblems(ws.Affinity, gs.Affinity)...)

	storedVolumes := byName(gs.Volumes, func(v corev1.Volume) string { return v.Name })
	profileVolumes := mappedNames(ps.Pod.Volumes, func(v corev1.Volume) string { return v.Name })
	if ps.Derived.Shm != nil {
		profileVolumes = append(profileVolumes, ps.Derived.Shm.VolumeName)
	}
	for _, v := range ws.Volumes {
		got, ok := storedVolumes[v.Name]
		if (!ok || !apiequality.Semantic.DeepEqual(got, v)) && !enforced("volumes", v.Name, slices.Contains(profileVolumes, v.Name)) {
			bad("volume %s = %s, the Pod set %s", v.Name, describeVolume(got), describeVolume(v))
		}
	}

	profileEnv := mappedNames(ps.Container.Env, func(e corev1.EnvVar) string { return e.Name })
	if ps.Derived.OMPNumThreadsFromCPU {
		profileEnv = append(profileEnv, profile.EnvOMPNumThreads)
	}
	if ps.Derived.HideGPUsFromNonGPUContainers {
		profileEnv = append(profileEnv, profile.EnvNvidiaVisibleDevices)
	}
	profilePaths := mappedNames(ps.Container.VolumeMounts, func(m corev1.VolumeMount) string { return path.Clean(m.MountPath) })
	if ps.Derived.Shm != nil {
		profilePaths = append(profilePaths, path.Clean(ps.Derived.Shm.MountPath))
	}
	storedContainers := containersByName(gs)
	for _, w := range runContainers(ws) {
		g, ok := storedContainers[w.Name]
		if !ok {
			bad("container %s is gone", w.Name)
			continue
		}
		for _, name := range uniqueEnvNames(w.Env) {
			mine, theirs := envNamed(w.Env, name), envNamed(g.Env, name)
			if !apiequality.Semantic.DeepEqual(mine, theirs) && !enforced("env", name, slices.Contains(profileEnv, name)) {
				bad("container %s env %s = %s, the Pod set %s", w.Name, name, shortJSON(mustJSON(theirs)), shortJSON(mustJSON(mine)))
			}
		}
		if !apiequality.Semantic.DeepEqual(w.EnvFrom, g.EnvFrom) {
			bad("container %s envFrom changed", w.Name)
		}
		// Names the Pod did not list: an env entry would override what its envFrom provides, and
		// on a host network or host IPC the profile's interface name and /dev/shm are wrong.
		for _, name := range uniqueEnvNames(g.Env) {
			if len(envNamed(w.Env, name)) > 0 || enforced("env", name, slices.Contains(profileEnv, name)) {
				continue
			}
			if i := slices.IndexFunc(w.EnvFrom, func(f corev1.EnvFromSource) bool { return strings.HasPrefix(name, f.Prefix) }); i >= 0 {
				bad("container %s env %s added over its envFrom (prefix %q)", w.Name, name, w.EnvFrom[i].Prefix)
			}
			if ws.HostNetwork && strings.HasSuffix(name, "_SOCKET_IFNAME") {
				bad("container %s env %s added to a hostNetwork Pod", w.Name, name)
			}
		}
		if ws.HostIPC && mountIndexAt(g, "/dev/shm") >= 0 && mountIndexAt(w, "/dev/shm") < 0 {
			bad("container %s: /dev/shm mounted in a hostIPC Pod", w.Name)
		}
		for _, m := range w.VolumeMounts {
			if !slices.ContainsFunc(g.VolumeMounts, func(o corev1.VolumeMount) bool { return apiequality.Semantic.DeepEqual(o, m) }) &&
				!enforced("volumeMounts", path.Clean(m.MountPath), slices.Contains(profilePaths, path.Clean(m.MountPath))) {
				bad("container %s mount %s at %q was removed or changed", w.Name, m.Name, m.MountPath)
			}
		}
		for _, list := range []struct {
			what      string
			mine, got corev1.ResourceList
		}{{"limits", w.Resources.Limits, g.Resources.Limits}, {"requests", w.Resources.Requests, g.Resources.Requests}} {
			for r, q := range list.mine {
				_, sets := ps.Container.Limits[r]
				if have, ok := list.got[r]; (!ok || have.Cmp(q) != 0) && !enforced("limits", string(r), sets) {
					bad("container %s %s %s = %s, the Pod set %s", w.Name, list.what, r, have.String(), q.String())
				}
			}
		}
	}
	return probs
}

// affinityProblems: the Pod's node affinity may only be narrowed (requirements added to each
// required term), its preferred terms and pod (anti-)affinity kept.
func affinityProblems(want, got *corev1.Affinity) []string {
	if want == nil {
		return nil
	}
	var probs []string
	if got == nil {
		return []string{"affinity removed"}
	}
	if !apiequality.Semantic.DeepEqual(want.PodAffinity, got.PodAffinity) || !apiequality.Semantic.DeepEqual(want.PodAntiAffinity, got.PodAntiAffinity) {
		probs = append(probs, "pod affinity or anti-affinity changed")
	}
	wn, gn := want.NodeAffinity, got.NodeAffinity
	if wn == nil {
		return probs
	}
	if gn == nil {
		return append(probs, "node affinity removed")
	}
	if req := wn.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		greq := gn.RequiredDuringSchedulingIgnoredDuringExecution
		if greq == nil || len(greq.NodeSelectorTerms) != len(req.NodeSelectorTerms) {
			probs = append(probs, fmt.Sprintf("required node affinity terms: %s, the Pod set %s", shortJSON(mustJSON(greq)), shortJSON(mustJSON(req))))
		} else {
			for i, term := range req.NodeSelectorTerms {
				gt := greq.NodeSelectorTerms[i]
				for _, r := range term.MatchExpressions {
					if !slices.ContainsFunc(gt.MatchExpressions, func(o corev1.NodeSelectorRequirement) bool { return apiequality.Semantic.DeepEqual(o, r) }) {
						probs = append(probs, fmt.Sprintf("required term %d lost %s", i, shortJSON(mustJSON(r))))
					}
				}
				if !apiequality.Semantic.DeepEqual(term.MatchFields, gt.MatchFields) {
					probs = append(probs, fmt.Sprintf("required term %d matchFields changed", i))
				}
			}
		}
	}
	for _, pt := range wn.PreferredDuringSchedulingIgnoredDuringExecution {
		if !slices.ContainsFunc(gn.PreferredDuringSchedulingIgnoredDuringExecution, func(o corev1.PreferredSchedulingTerm) bool { return apiequality.Semantic.DeepEqual(o, pt) }) {
			probs = append(probs, "preferred term lost: "+shortJSON(mustJSON(pt)))
		}
	}
	return probs
}

// sidecarProblem compares the Pod stored through both webhooks with what the injector decides
// for the Pod stored without the sidecar plus the sidecar's container: reinvocation must give
// the container the profile's settings as if it had been there, and change nothing else.
func sidecarProblem(base, withSidecar *corev1.Pod, set *profile.Set, keys profile.Keys) string {
	want := base.DeepCopy()
	want.Labels[sidecarLabel] = "true"
	i := slices.IndexFunc(withSidecar.Spec.Containers, func(c corev1.Container) bool { return c.Name == "log-shipper" })
	if i < 0 {
		return "the sidecar webhook's log-shipper container is missing"
	}
	added := withSidecar.Spec.Containers[i].DeepCopy()
	// The container as the sidecar webhook sent it: what ai-webhook added to it is decided below.
	added.Env, added.VolumeMounts = nil, nil
	added.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")}}
	want.Spec.Containers = append(want.Spec.Containers, *added)
	profile.DefaultPod(want)
	if _, err := inject.Mutate(want, set, keys); err != nil {
		return "the injector refuses the Pod with the sidecar: " + err.Error()
	}
	if d := viewDiff(want, withSidecar); d != "" {
		return "stored with the sidecar differs from one decision on the Pod with it (-want +got):\n" + d
	}
	return ""
}

// podView is what the injector touches: metadata it writes, placement, volumes and each
// container's env, mounts and resources.
func podView(p *corev1.Pod) any {
	type container struct {
		Name         string
		Env          []corev1.EnvVar
		VolumeMounts []corev1.VolumeMount
		Resources    corev1.ResourceRequirements
	}
	v := struct {
		Labels, Annotations map[string]string
		RuntimeClassName    *string
		Overhead            corev1.ResourceList
		NodeSelector        map[string]string
		Tolerations         []corev1.Toleration
		Affinity            *corev1.Affinity
		Volumes             []corev1.Volume
		Containers          []container
	}{Labels: p.Labels, Annotations: p.Annotations, RuntimeClassName: p.Spec.RuntimeClassName, Overhead: p.Spec.Overhead,
		NodeSelector: p.Spec.NodeSelector, Affinity: p.Spec.Affinity, Volumes: p.Spec.Volumes}
	// Tolerations the API server adds after the webhooks (DefaultTolerationSeconds) are no
	// decision of the injector.
	for _, t := range p.Spec.Tolerations {
		if t.Key != corev1.TaintNodeNotReady && t.Key != corev1.TaintNodeUnreachable {
			v.Tolerations = append(v.Tolerations, t)
		}
	}
	for _, c := range runContainers(&p.Spec) {
		v.Containers = append(v.Containers, container{c.Name, c.Env, c.VolumeMounts, c.Resources})
	}
	return v
}

// viewDiff is empty when a and b look the same to the injector, else a unified diff.
func viewDiff(a, b *corev1.Pod) string {
	va, vb := podView(a), podView(b)
	if string(mustJSON(va)) == string(mustJSON(vb)) {
		return ""
	}
	return diff.Diff(va, vb)
}

func uniqueEnvNames(env []corev1.EnvVar) []string {
	var out []string
	for _, e := range env {
		if !slices.Contains(out, e.Name) {
			out = append(out, e.Name)
		}
	}
	return out
}

func envNamed(env []corev1.EnvVar, name string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, e := range env {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func mappedNames[T any](items []T, f func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, f(it))
	}
	return out
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

func shortJSON(data []byte) string {
	if len(data) > 600 {
		return string(data[:600]) + "..."
	}
	return string(data)
}

// refusalKind names a refusal by the start of the injector's reason, for the counts.
func refusalKind(reason string) string {
	switch {
	case strings.HasPrefix(reason, "annotation "+injectKey):
		return "unrecognised " + injectKey + " value"
	case strings.Contains(reason, "disagree"):
		return "label and annotation name different profiles"
	case strings.HasPrefix(reason, "unknown profile"):
		return "unknown profile"
	}
	return reason
}

// corpusReport counts outcomes per profile and gathers failures per profile and check.
type corpusReport struct {
	counts   map[string]map[string]int // variant -> outcome -> n
	failures map[string][]string       // "variant: check" -> messages
}

func newCorpusReport() *corpusReport {
	return &corpusReport{counts: map[string]map[string]int{}, failures: map[string][]string{}}
}

func (r *corpusReport) count(variant, mode, outcome string) {
	if r.counts[variant] == nil {
		r.counts[variant] = map[string]int{}
	}
	r.counts[variant][mode+": "+outcome]++
}

func (r *corpusReport) fail(variant, check, msg string) {
	k := variant + ": " + check
	r.failures[k] = append(r.failures[k], msg)
	if r.counts[variant] == nil {
		r.counts[variant] = map[string]int{}
	}
	r.counts[variant]["FAILED "+check]++
}

// log writes the counts per profile and, per profile and check, the number of failures with the
// first few.
func (r *corpusReport) log(t *testing.T, variants []string) {
	t.Helper()
	for _, v := range variants {
		var lines []string
		for _, k := range slices.Sorted(maps.Keys(r.counts[v])) {
			lines = append(lines, fmt.Sprintf("    %5d  %s", r.counts[v][k], k))
		}
		t.Logf("profile %s:\n%s", v, strings.Join(lines, "\n"))
	}
	for _, k := range slices.Sorted(maps.Keys(r.failures)) {
		msgs := r.failures[k]
		shown := msgs[:min(len(msgs), 3)]
		t.Errorf("%s: %d failure(s), first %d:\n  - %s", k, len(msgs), len(shown), strings.Join(shown, "\n  - "))
	}
}

func pickRequirement(g *gen) corev1.NodeSelectorRequirement {
	r := pick(g, shapeRequirements)
	return *r.DeepCopy()
}

// addedDuplicates finds names that appear more often in stored than in sent, and more than once:
// what a webhook that is not idempotent leaves behind. The Pod's own duplicates are its own.
func addedDuplicates(sent, stored *corev1.Pod) []string {
	var probs []string
	check := func(what string, mine, theirs []string) {
		for _, n := range uniqueStrings(theirs) {
			if c := count(theirs, n); c > 1 && c > count(mine, n) {
				probs = append(probs, fmt.Sprintf("%s %q %d times, the Pod had %d", what, n, c, count(mine, n)))
			}
		}
	}
	volumes := func(p *corev1.Pod) []string {
		return mappedNames(p.Spec.Volumes, func(v corev1.Volume) string { return v.Name })
	}
	tolerations := func(p *corev1.Pod) []string {
		return mappedNames(p.Spec.Tolerations, func(t corev1.Toleration) string { return string(mustJSON(t)) })
	}
	check("volume", volumes(sent), volumes(stored))
	check("toleration", tolerations(sent), tolerations(stored))
	for c, m := range storedWithSent(sent, stored) {
		env := func(c corev1.Container) []string {
			return mappedNames(c.Env, func(e corev1.EnvVar) string { return e.Name })
		}
		paths := func(c corev1.Container) []string {
			return mappedNames(c.VolumeMounts, func(m corev1.VolumeMount) string { return path.Clean(m.MountPath) })
		}
		check("container "+c.Name+" env", env(m), env(c))
		check("container "+c.Name+" mount path", paths(m), paths(c))
	}
	return probs
}

func uniqueStrings(items []string) []string {
	var out []string
	for _, it := range items {
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out
}

func count(items []string, s string) int {
	n := 0
	for _, it := range items {
		if it == s {
			n++
		}
	}
	return n
}

func mountIndexAt(c corev1.Container, mountPath string) int {
	return slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return path.Clean(m.MountPath) == mountPath })
}

// gpuHidingProblems checks what a profile with hideGPUsFromNonGPUContainers promises, judged
// here on its own: every container that asks for no NVIDIA GPU (none, "0", or another device)
// is hidden from the node's GPUs, as the Pod set it or with NVIDIA_VISIBLE_DEVICES=void; a
// container that asks for a GPU, a shared GPU or a MIG slice never gets void from the profile.
func gpuHidingProblems(sent, stored *corev1.Pod, p *profile.Compiled) []string {
	if p == nil || !p.Derived.HideGPUsFromNonGPUContainers {
		return nil
	}
	var probs []string
	for c, sentC := range storedWithSent(sent, stored) {
		vis := envNamed(c.Env, profile.EnvNvidiaVisibleDevices)
		own := envNamed(sentC.Env, profile.EnvNvidiaVisibleDevices)
		voided := len(vis) > 0 && vis[len(vis)-1].Value == "void" && len(own) == 0
		switch {
		case asksForNvidiaGPU(c) && voided:
			probs = append(probs, fmt.Sprintf("container %s asks for a GPU but got %s=void", c.Name, profile.EnvNvidiaVisibleDevices))
		case !asksForNvidiaGPU(c) && len(vis) == 0 && !slices.ContainsFunc(c.EnvFrom, func(f corev1.EnvFromSource) bool {
			return strings.HasPrefix(profile.EnvNvidiaVisibleDevices, f.Prefix)
		}):
			probs = append(probs, fmt.Sprintf("container %s asks for no GPU and is not hidden from the node's GPUs", c.Name))
		}
	}
	return probs
}

// asksForNvidiaGPU: a non-zero limit or request of nvidia.com/gpu, a variant of it
// (gpu.shared) or a MIG slice, or a DRA claim (the DRA profile's devices).
func asksForNvidiaGPU(c corev1.Container) bool {
	if len(c.Resources.Claims) > 0 {
		return true
	}
	for _, l := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		for r, q := range l {
			name := string(r)
			if !q.IsZero() && (strings.HasPrefix(name, "nvidia.com/gpu") || strings.HasPrefix(name, "nvidia.com/mig-")) {
				return true
			}
		}
	}
	return false
}

// shmProblem checks a /dev/shm volume the profile added, judged here on its own: never on a
// hostIPC Pod; bounded, and at most the profile's fraction of the memory limit that applies to
// the containers mounting it (the largest of theirs, as stored with the profile's own limits,
// and the Pod-level limit when lower); without any limit, the profile's default size.
func shmProblem(sent, stored *corev1.Pod, p *profile.Compiled) string {
	if p == nil || p.Derived.Shm == nil {
		return ""
	}
	shm := p.Derived.Shm
	if slices.ContainsFunc(sent.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == shm.VolumeName }) {
		return ""
	}
	i := slices.IndexFunc(stored.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == shm.VolumeName })
	if i < 0 {
		return ""
	}
	if stored.Spec.HostIPC {
		return "a memory /dev/shm volume added to a hostIPC Pod"
	}
	ed := stored.Spec.Volumes[i].EmptyDir
	if ed == nil || ed.Medium != corev1.StorageMediumMemory {
		return "the added " + shm.VolumeName + " volume is not a memory emptyDir: " + describeVolume(stored.Spec.Volumes[i])
	}
	var limit *resource.Quantity
	for _, c := range runContainers(&stored.Spec) {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		mounts := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == shm.VolumeName })
		if ok && !q.IsZero() && mounts && (limit == nil || q.Cmp(*limit) > 0) {
			limit = &q
		}
	}
	if r := stored.Spec.Resources; r != nil {
		if q, ok := r.Limits[corev1.ResourceMemory]; ok && !q.IsZero() && (limit == nil || q.Cmp(*limit) < 0) {
			limit = &q
		}
	}
	switch {
	case ed.SizeLimit == nil || ed.SizeLimit.Sign() <= 0:
		return fmt.Sprintf("the added %s volume is unbounded (sizeLimit %v)", shm.VolumeName, ed.SizeLimit)
	case limit == nil && ed.SizeLimit.Cmp(shm.Default) != 0:
		return fmt.Sprintf("%s sizeLimit %s without a memory limit, want the default %s", shm.VolumeName, ed.SizeLimit, shm.Default.String())
	case limit != nil && float64(ed.SizeLimit.Value()) > shm.Fraction*float64(limit.Value())+1:
		return fmt.Sprintf("%s sizeLimit %s is more than %g of the memory limit %s", shm.VolumeName, ed.SizeLimit, shm.Fraction, limit.String())
	}
	return ""
}

// ompProblems checks OMP_NUM_THREADS where the profile added it, judged here on its own: the
// whole CPUs (at least one) of the container's cpu limit as stored or, without one, of the
// Pod-level cpu limit; never without a limit.
func ompProblems(sent, stored *corev1.Pod, p *profile.Compiled) []string {
	if p == nil || !p.Derived.OMPNumThreadsFromCPU {
		return nil
	}
	var probs []string
	for c, sentC := range storedWithSent(sent, stored) {
		env := envNamed(c.Env, profile.EnvOMPNumThreads)
		if len(env) == 0 || len(envNamed(sentC.Env, profile.EnvOMPNumThreads)) > 0 || slices.ContainsFunc(p.Container.Env,
			func(e corev1.EnvVar) bool { return e.Name == profile.EnvOMPNumThreads }) {
			continue // not added, the Pod's own, or a fixed value of the profile
		}
		limit := c.Resources.Limits[corev1.ResourceCPU]
		if limit.IsZero() && stored.Spec.Resources != nil {
			limit = stored.Spec.Resources.Limits[corev1.ResourceCPU]
		}
		got := env[len(env)-1].Value
		switch want := strconv.FormatInt(max(limit.MilliValue()/1000, 1), 10); {
		case limit.IsZero():
			probs = append(probs, fmt.Sprintf("container %s: %s=%s without a cpu limit", c.Name, profile.EnvOMPNumThreads, got))
		case got != want:
			probs = append(probs, fmt.Sprintf("container %s: %s=%s, want %s (cpu limit %s)", c.Name, profile.EnvOMPNumThreads, got, want, limit.String()))
		}
	}
	return probs
}

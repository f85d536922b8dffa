package cluster

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// runner stands in for kube-scheduler and, for the workload Pods (the
// webhook's), for the kubelet.
//
// It binds every unscheduled Pod that asks for the default scheduler to a
// Ready node, round robin: node selectors, affinity, taints and resources are
// not evaluated.
//
// kwok gives the workload Pods an IP and phase Running; the runner runs the
// real binary for each, on that IP, with the Pod's Secret and ConfigMap
// volumes written to disk and its env (values, and the downward API's
// resource fields), and reports readiness from the Pod's own readiness
// probe. A deleted Pod's process gets SIGTERM once the Pod is reported not
// ready, and SIGKILL after the grace period; how it ended is kept
// (WorkloadExits).
//
// What a kubelet does and the runner does not: liveness probes (a process
// that exits is restarted, with a short backoff), resource limits, security
// contexts, containers other than the first. Probes run every second
// whatever periodSeconds says, so rollouts are quick.
type runner struct {
	client   kubernetes.Interface
	opts     Options
	dir      string
	selector labels.Selector

	pods       corelisters.PodLister
	nodes      corelisters.NodeLister
	secrets    corelisters.SecretLister
	configMaps corelisters.ConfigMapLister
	next       int // the node the next Pod is bound to, round robin

	running sync.WaitGroup // the podProcs' run
	mu      sync.Mutex
	procs   map[types.UID]*podProc
	logs    []string
	exits   []WorkloadExit
}

// WorkloadExit is how a workload Pod's process ended after its Pod was
// deleted (SIGTERM, then SIGKILL after the grace period).
type WorkloadExit struct {
	Pod      string // namespace/name
	Status   string // "exit status 0", "signal: killed", ...
	ExitCode int    // -1 when a signal ended it
	Took     time.Duration
	Grace    time.Duration
}

// WorkloadExits lists, in order, how the processes of deleted workload Pods
// ended.
func (c *Cluster) WorkloadExits() []WorkloadExit {
	if c.runner == nil {
		return nil
	}
	c.runner.mu.Lock()
	defer c.runner.mu.Unlock()
	return slices.Clone(c.runner.exits)
}

func newRunner(client kubernetes.Interface, opts Options, dir string) *runner {
	return &runner{
		client:   client,
		opts:     opts,
		dir:      dir,
		selector: labels.SelectorFromSet(labels.Set{WorkloadLabelKey: WorkloadLabelValue}),
		procs:    map[types.UID]*podProc{},
	}
}

func (r *runner) run(ctx context.Context) {
	factory := informers.NewSharedInformerFactory(r.client, 0)
	podInf, nodeInf := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	secretInf, cmInf := factory.Core().V1().Secrets(), factory.Core().V1().ConfigMaps()
	r.pods, r.nodes, r.secrets, r.configMaps = podInf.Lister(), nodeInf.Lister(), secretInf.Lister(), cmInf.Lister()

	poke := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { nudge(poke) },
		UpdateFunc: func(any, any) { nudge(poke) },
		DeleteFunc: func(any) { nudge(poke) },
	}
	for _, inf := range []cache.SharedIndexInformer{podInf.Informer(), nodeInf.Informer(), secretInf.Informer(), cmInf.Informer()} {
		_, _ = inf.AddEventHandler(handler)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.running.Wait() // each stops its process
			return
		case <-poke:
		case <-tick.C:
		}
		r.bind(ctx)
		if r.opts.WebhookBinary != "" {
			r.sync(ctx)
		}
	}
}

// bind binds the unscheduled Pods (see runner).
func (r *runner) bind(ctx context.Context) {
	pods, err1 := r.pods.List(labels.Everything())
	nodes, err2 := r.nodes.List(labels.Everything())
	nodes = slices.DeleteFunc(nodes, func(n *corev1.Node) bool { return !nodeReady(n) || n.Spec.Unschedulable })
	if err1 != nil || err2 != nil || len(nodes) == 0 {
		return
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	for _, pod := range pods {
		if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || cmp.Or(pod.Spec.SchedulerName, corev1.DefaultSchedulerName) != corev1.DefaultSchedulerName {
			continue
		}
		node := nodes[r.next%len(nodes)]
		r.next++
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node.Name},
		}, metav1.CreateOptions{})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) { // not gone, nor bound meanwhile
			r.opts.Logf("bind pod %s/%s: %v", pod.Namespace, pod.Name, err)
		}
	}
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// sync starts a process for every running workload Pod, keeps their volume
// files current, and terminates the processes of Pods being deleted.
func (r *runner) sync(ctx context.Context) {
	pods, err := r.pods.List(r.selector)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[types.UID]bool{}
	for _, pod := range pods {
		seen[pod.UID] = true
		p := r.procs[pod.UID]
		if pod.DeletionTimestamp != nil {
			if p != nil {
				p.terminate(time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 30)) * time.Second)
			} else {
				go r.deletePod(ctx, pod.Namespace, pod.Name, pod.UID)
			}
			continue
		}
		if pod.Spec.NodeName == "" || pod.Status.PodIP == "" || pod.Status.Phase != corev1.PodRunning || len(pod.Spec.Containers) == 0 {
			continue
		}
		podDir := filepath.Join(r.dir, pod.Namespace, pod.Name+"-"+string(pod.UID)[:8])
		if err := r.writeVolumes(pod, podDir); err != nil {
			// Like a kubelet: the container waits for its volumes.
			continue
		}
		if p == nil {
			p = r.newPodProc(pod, podDir)
			r.procs[pod.UID] = p
			r.logs = append(r.logs, p.logPath)
			r.running.Go(func() { p.run(ctx) })
		}
	}
	for uid, p := range r.procs {
		if !seen[uid] {
			p.terminate(5 * time.Second)
		}
	}
}

func (r *runner) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs, uid)
}

func (r *runner) logFiles() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.logs)
}

// deletePod finishes a Pod's deletion once its process is gone, as the
// kubelet does when a container has stopped.
func (r *runner) deletePod(ctx context.Context, ns, name string, uid types.UID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := r.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		r.opts.Logf("delete pod %s/%s: %v", ns, name, err)
	}
}

// writeVolumes writes the Pod's Secret and ConfigMap volumes under dir, only
// the files whose content changed, each atomically (the server reloads them).
func (r *runner) writeVolumes(pod *corev1.Pod, dir string) error {
	for _, v := range pod.Spec.Volumes {
		files := map[string][]byte{}
		switch {
		case v.Secret != nil:
			s, err := r.secrets.Secrets(pod.Namespace).Get(v.Secret.SecretName)
			if err != nil {
				return err
			}
			files = keyToPath(s.Data, v.Secret.Items)
		case v.ConfigMap != nil:
			cm, err := r.configMaps.ConfigMaps(pod.Namespace).Get(v.ConfigMap.Name)
			if err != nil {
				return err
			}
			data := map[string][]byte{}
			maps.Copy(data, cm.BinaryData)
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			files = keyToPath(data, v.ConfigMap.Items)
		}
		volDir := filepath.Join(dir, "volumes", v.Name)
		if err := os.MkdirAll(volDir, 0o755); err != nil {
			return err
		}
		for rel, data := range files {
			path := filepath.Join(volDir, rel)
			if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				return err
			}
			if err := os.Rename(tmp, path); err != nil {
				return err
			}
		}
	}
	return nil
}

func keyToPath(data map[string][]byte, items []corev1.KeyToPath) map[string][]byte {
	if len(items) == 0 {
		return data
	}
	files := map[string][]byte{}
	for _, it := range items {
		if v, ok := data[it.Key]; ok {
			files[it.Path] = v
		}
	}
	return files
}

// podProc runs one workload Pod's process.
type podProc struct {
	r         *runner
	ns, name  string
	uid       types.UID
	ip        string
	args, env []string
	container corev1.Container
	all       []corev1.Container
	logPath   string

	termOnce sync.Once
	termCh   chan time.Duration
}

func (r *runner) newPodProc(pod *corev1.Pod, dir string) *podProc {
	c := pod.Spec.Containers[0]
	p := &podProc{
		r: r, ns: pod.Namespace, name: pod.Name, uid: pod.UID, ip: pod.Status.PodIP,
		container: c, all: pod.Spec.Containers,
		logPath: filepath.Join(dir, c.Name+".log"),
		termCh:  make(chan time.Duration, 1),
	}
	mounts := slices.Clone(c.VolumeMounts)
	slices.SortFunc(mounts, func(a, b corev1.VolumeMount) int { return len(b.MountPath) - len(a.MountPath) })
	local := func(path string) string {
		for _, m := range mounts {
			if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				return filepath.Join(dir, "volumes", m.Name, m.SubPath, strings.TrimPrefix(path, m.MountPath))
			}
		}
		return path
	}
	for _, a := range c.Args {
		switch name, value, isFlag := strings.Cut(a, "="); {
		case isFlag && (name == "--listen" || name == "--metrics-listen" && value != ""):
			// The Pod's address: the EndpointSlice names it (and Prometheus scrapes it).
			_, port, err := net.SplitHostPort(value)
			if err != nil {
				port = value
			}
			a = name + "=" + net.JoinHostPort(p.ip, port)
		case isFlag && strings.HasPrefix(value, "/"):
			a = name + "=" + local(value)
		case strings.HasPrefix(a, "/"):
			a = local(a)
		}
		p.args = append(p.args, a)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			p.env = append(p.env, e.Name+"="+e.Value)
		case e.ValueFrom.ResourceFieldRef != nil:
			if v, ok := resourceField(c, e.ValueFrom.ResourceFieldRef); ok {
				p.env = append(p.env, e.Name+"="+v)
			}
		}
	}
	return p
}

// resourceField resolves a downward-API resource reference from the
// container's own requests and limits, divided and rounded up as the kubelet
// does. Unset (where the kubelet gives the node's allocatable): left out.
func resourceField(c corev1.Container, ref *corev1.ResourceFieldSelector) (string, bool) {
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "", false
	}
	divisor := resource.MustParse("1")
	if !ref.Divisor.IsZero() {
		divisor = ref.Divisor
	}
	d := divisor.MilliValue()
	return strconv.FormatInt((q.MilliValue()+d-1)/d, 10), true
}

func (p *podProc) terminate(grace time.Duration) {
	p.termOnce.Do(func() { p.termCh <- grace })
}

func (p *podProc) run(ctx context.Context) {
	for restarts := 0; ; restarts++ {
		proc, err := StartProcess(Command{Name: p.name, Argv: append([]string{p.r.opts.WebhookBinary}, p.args...), Env: p.env, Log: p.logPath})
		if err == nil {
			p.r.opts.Logf("pod %s/%s: started %s on %s", p.ns, p.name, filepath.Base(p.r.opts.WebhookBinary), p.ip)
			if p.supervise(ctx, proc, restarts) {
				return
			}
			err = proc.Failure()
		}
		p.r.opts.Logf("pod %s/%s: %v; restarting", p.ns, p.name, err)
		select {
		case <-ctx.Done():
			return
		case <-p.termCh:
			p.finish(ctx)
			return
		case <-time.After(time.Duration(min(restarts+1, 10)) * time.Second):
		}
	}
}

// finish deletes the Pod once its process is gone, as the kubelet does.
func (p *podProc) finish(ctx context.Context) {
	p.r.deletePod(ctx, p.ns, p.name, p.uid)
	p.r.forget(p.uid)
}

// supervise probes the process every second and reports the Pod's readiness
// until the process exits (false), or the Pod is deleted or the cluster stops
// (true).
func (p *podProc) supervise(ctx context.Context, proc *Process, restarts int) bool {
	started := time.Now()
	probe := p.container.ReadinessProbe
	threshold := 3
	if probe != nil && probe.FailureThreshold > 0 {
		threshold = int(probe.FailureThreshold)
	}
	ready, reported, failures := false, false, 0
	report := func(now bool) {
		if ready = now; ready != reported && p.setReady(ctx, ready, restarts, started) == nil {
			reported = ready
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			proc.Stop(5 * time.Second)
			return true
		case grace := <-p.termCh:
			// The kubelet's order: out of the endpoints, SIGTERM, then kill
			// after the grace period.
			report(false)
			start := time.Now()
			st := proc.Stop(grace)
			p.r.mu.Lock()
			p.r.exits = append(p.r.exits, WorkloadExit{Pod: p.ns + "/" + p.name, Status: st.String(), ExitCode: st.ExitCode(), Took: time.Since(start), Grace: grace})
			p.r.mu.Unlock()
			p.finish(ctx)
			return true
		case <-proc.done:
			report(false)
			return false
		case <-tick.C:
			if p.probe(ctx, probe) {
				failures = 0
				report(true)
			} else if failures++; failures >= threshold {
				report(false)
			}
		}
	}
}

// probeClient is the kubelet's for HTTP probes: no certificate verification, no kept
// connections.
var probeClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet probe semantics
	DisableKeepAlives: true,
}}

// probe runs the container's HTTP readiness probe once (none, or of another kind: ready).
// The port is given by number or by the name of a container port.
func (p *podProc) probe(ctx context.Context, probe *corev1.Probe) bool {
	if probe == nil || probe.HTTPGet == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(1, probe.TimeoutSeconds))*time.Second)
	defer cancel()
	g := probe.HTTPGet
	port := g.Port.IntValue()
	for _, cp := range p.container.Ports {
		if port == 0 && cp.Name == g.Port.String() {
			port = int(cp.ContainerPort)
		}
	}
	url := cmp.Or(strings.ToLower(string(g.Scheme)), "http") + "://" + net.JoinHostPort(cmp.Or(g.Host, p.ip), strconv.Itoa(port)) + g.Path
	return GetOK(ctx, probeClient, url) == nil
}

// setReady patches the Pod's Ready and ContainersReady conditions and its
// container statuses.
func (p *podProc) setReady(ctx context.Context, ready bool, restarts int, started time.Time) error {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	now := metav1.Now()
	var statuses []corev1.ContainerStatus
	for _, c := range p.all {
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: ready, Started: new(true),
			RestartCount: int32(restarts),
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}},
		})
	}
	patch := map[string]any{"status": map[string]any{
		"conditions": []corev1.PodCondition{
			{Type: corev1.PodReady, Status: status, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now},
		},
		"containerStatuses": statuses,
	}}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err = p.r.client.CoreV1().Pods(p.ns).Patch(ctx, p.name, types.StrategicMergePatchType, data, metav1.PatchOptions{}, "status")
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s status: %w", p.ns, p.name, err)
	}
	return nil
}

package localcluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// binder stands in for kube-scheduler: it binds every unscheduled Pod that
// asks for the default scheduler to a Ready node, round robin. Node
// selectors, affinity, taints and resources are not evaluated.
type binder struct {
	client kubernetes.Interface
	mu     sync.Mutex
	next   int
}

func newBinder(client kubernetes.Interface) *binder { return &binder{client: client} }

func (b *binder) run(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(b.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
		}))
	pods := factory.Core().V1().Pods()
	nodes := informers.NewSharedInformerFactory(b.client, 0).Core().V1().Nodes()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	go pods.Informer().Run(ctx.Done())
	go nodes.Informer().Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, nodes.Informer().HasSynced) {
		return
	}
	go func() { <-ctx.Done(); queue.ShutDown() }()
	for {
		key, quit := queue.Get()
		if quit {
			return
		}
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		pod, err := pods.Lister().Pods(ns).Get(name)
		if err == nil {
			err = b.bind(ctx, pod, nodes.Lister())
		}
		if err != nil && ctx.Err() == nil {
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

func (b *binder) bind(ctx context.Context, pod *corev1.Pod, nodes corelisters.NodeLister) error {
	if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil ||
		(pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName) {
		return nil
	}
	all, err := nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	var ready []*corev1.Node
	for _, n := range all {
		if nodeReady(n) && !n.Spec.Unschedulable {
			ready = append(ready, n)
		}
	}
	if len(ready) == 0 {
		return fmt.Errorf("no Ready node for pod %s/%s", pod.Namespace, pod.Name)
	}
	slices.SortFunc(ready, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	b.mu.Lock()
	node := ready[b.next%len(ready)]
	b.next++
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = b.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node.Name},
	}, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or bound meanwhile
	}
	return err
}

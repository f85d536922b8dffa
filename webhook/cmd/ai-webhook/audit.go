package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/ai-webhook/ai-webhook/webhook/audit"
	"github.com/ai-webhook/ai-webhook/webhook/cluster"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// auditCmd lists the running Pods that today's profiles would change, read-only, with the
// operator's credentials: the webhook's configuration says which namespaces it sees, their
// Pods are decided as the webhook would decide them, and owners are read to name the
// workload to roll. The decision and grouping are package audit; this is the reading.
func auditCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "", "the cluster to read (default: the in-cluster ServiceAccount)")
	profilesFile := fs.String("profiles-file", "", "the profile file the webhook serves (default: the shipped examples)")
	fromCluster := fs.Bool("from-cluster", false, "read the profiles (and --domain) the webhook serves from its Deployment's ConfigMap, found through the configuration's Service")
	domain := fs.String("domain", profile.DefaultDomain, "prefix of the label and annotation keys")
	configName := fs.String("config", "ai-mutating-webhook", "the MutatingWebhookConfiguration whose namespaceSelector says which namespaces to read")
	webhookName := fs.String("webhook", "", "the webhook's name in that configuration (default: its only webhook)")
	output := fs.String("o", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *output != "table" && *output != "json" {
		return usageError{fmt.Errorf("audit: -o must be table or json, got %q", *output)}
	}
	if *fromCluster && *profilesFile != "" {
		return usageError{errors.New("audit: choose one of --profiles-file and --from-cluster")}
	}
	domainSet := false
	fs.Visit(func(f *flag.Flag) { domainSet = domainSet || f.Name == "domain" })
	// A local profile file is checked before the cluster is read.
	var set *profile.Set
	if !*fromCluster {
		var err error
		if set, err = readProfiles(*profilesFile, *domain); err != nil {
			return err
		}
	}
	client, err := cluster.Client(*kubeconfig, "ai-webhook-audit")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mwc, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, *configName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("audit: read MutatingWebhookConfiguration %s: %w", *configName, err)
	}
	hook, err := audit.FindWebhook(mwc, *webhookName)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if *fromCluster {
		profiles, served, err := servedProfiles(ctx, client, hook)
		if err != nil {
			return fmt.Errorf("audit: --from-cluster: %w", err)
		}
		if !domainSet && served != "" {
			*domain = served
		}
		if set, err = profile.Parse(profiles, *domain); err != nil {
			return fmt.Errorf("audit: the served profiles: %w", err)
		}
	}
	in, namespaces, err := readCluster(ctx, client, hook)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	in.Set, in.Keys = set, profile.KeysFor(*domain)
	rep := audit.Run(in)
	if *output == "json" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return printAudit(stdout, rep, namespaces)
}

// pageSize bounds what one list call holds in memory on a large cluster.
const pageSize = 500

// readCluster reads the Pods the webhook would see and the owners that name their workloads.
// It returns the number of namespaces selected.
func readCluster(ctx context.Context, c kubernetes.Interface, hook *admissionregistrationv1.MutatingWebhook) (audit.Input, int, error) {
	var in audit.Input
	nss, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, 0, fmt.Errorf("list namespaces: %w", err)
	}
	selected := 0
	for _, ns := range nss.Items {
		ok, err := audit.Selects(hook, ns.Labels)
		if err != nil {
			return in, 0, fmt.Errorf("webhook %s namespaceSelector: %w", hook.Name, err)
		}
		if !ok {
			continue
		}
		selected++
		opts := metav1.ListOptions{Limit: pageSize}
		for {
			pods, err := c.CoreV1().Pods(ns.Name).List(ctx, opts)
			if err != nil {
				return in, 0, fmt.Errorf("list Pods in %s: %w", ns.Name, err)
			}
			for _, p := range pods.Items {
				ok, err := audit.SelectsObject(hook, p.Labels)
				if err != nil {
					return in, 0, fmt.Errorf("webhook %s objectSelector: %w", hook.Name, err)
				}
				// A Pod that has finished or is going away will not run again as it is.
				if ok && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
					in.Pods = append(in.Pods, p)
				}
			}
			if opts.Continue = pods.Continue; opts.Continue == "" {
				break
			}
		}
	}
	if in.Parents, err = readParents(ctx, c, in.Pods); err != nil {
		return in, 0, err
	}
	return in, selected, nil
}

// servedProfiles reads the profile file the webhook serves: the Service the configuration
// calls, the Deployment in its namespace whose Pods it selects, the ConfigMap behind that
// Deployment's --profiles-file. It returns the file and the Deployment's --domain.
func servedProfiles(ctx context.Context, c kubernetes.Interface, hook *admissionregistrationv1.MutatingWebhook) ([]byte, string, error) {
	ref := hook.ClientConfig.Service
	if ref == nil {
		return nil, "", fmt.Errorf("webhook %s is called by URL, not through a Service: give --profiles-file", hook.Name)
	}
	svc, err := c.CoreV1().Services(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("read Service %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, "", fmt.Errorf("Service %s/%s selects no Pods: give --profiles-file", ref.Namespace, ref.Name)
	}
	deps, err := c.AppsV1().Deployments(ref.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("list Deployments in %s: %w", ref.Namespace, err)
	}
	for _, d := range deps.Items {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		name, key, domain, err := audit.ProfilesSource(&d.Spec.Template.Spec, "")
		if err != nil {
			return nil, "", fmt.Errorf("Deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		cm, err := c.CoreV1().ConfigMaps(ref.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("read ConfigMap %s/%s: %w", ref.Namespace, name, err)
		}
		data, ok := cm.Data[key]
		if !ok {
			return nil, "", fmt.Errorf("ConfigMap %s/%s has no key %s", ref.Namespace, name, key)
		}
		return []byte(data), domain, nil
	}
	return nil, "", fmt.Errorf("no Deployment in %s runs the Pods of Service %s", ref.Namespace, ref.Name)
}

// readParents gets each ReplicaSet and Job that owns a Pod, once, and records the object that
// controls it (its Deployment or CronJob). An owner that is gone leaves its Pods under it.
func readParents(ctx context.Context, c kubernetes.Interface, pods []corev1.Pod) (map[audit.Ref]audit.Ref, error) {
	parents := map[audit.Ref]audit.Ref{}
	seen := map[audit.Ref]bool{}
	for i := range pods {
		o := audit.Owner(pods[i].Namespace, pods[i].OwnerReferences)
		if o == nil || seen[*o] {
			continue
		}
		seen[*o] = true
		var meta metav1.Object
		var err error
		switch o.Kind {
		case "ReplicaSet":
			meta, err = c.AppsV1().ReplicaSets(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
		case "Job":
			meta, err = c.BatchV1().Jobs(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
		default:
			continue
		}
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", o, err)
		}
		if p := audit.Owner(o.Namespace, meta.GetOwnerReferences()); p != nil {
			parents[*o] = *p
		}
	}
	return parents, nil
}

func printAudit(w io.Writer, rep audit.Report, namespaces int) error {
	listed := 0
	for _, g := range rep.Groups {
		listed += len(g.Pods)
	}
	fmt.Fprintf(w, "%d of %d Pods in %d selected namespace(s) would change, in %d workload(s)\n", listed, rep.Checked, namespaces, len(rep.Groups))
	for _, g := range rep.Groups {
		fmt.Fprintf(w, "\n%s\n", g.Workload)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  POD\tWHY\tDETAIL")
		for _, p := range g.Pods {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Name, p.Why, p.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(g.Changes) > 0 {
			fmt.Fprintf(w, "  would change (Pod %s):\n", g.ChangesOf)
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, it := range g.Changes {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", it.Where, it.Field, it.Key, it.Action, it.Detail)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "  roll: %s\n", g.Roll)
	}
	return nil
}

package webhookstack

import (
	"encoding/base64"
	"maps"
	"path"
	"slices"
	"strconv"

	// The p-prefixed packages are the Pulumi SDK's input types; the k8s.io packages give the
	// well-known names and constants.
	pappsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	pcorev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	ppolicyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// appName is the application (label app.kubernetes.io/name, the container, the CA's subject); the
// instance (config name, label app.kubernetes.io/instance) names the objects, so two instances
// can share a cluster and a namespace.
const appName = "ai-webhook"

// What the server binary expects (see webhook/cmd/ai-webhook).
const (
	portName          = "https"
	servicePort       = 443
	tlsDir            = "/etc/ai-webhook/tls"
	profilesDir       = "/etc/ai-webhook/profiles"
	profilesKey       = "profiles.yaml"
	shutdownDelay     = "5s"
	gracePeriodSecond = 30    // must exceed shutdownDelay plus the time to drain in-flight requests
	nonRootID         = 65532 // the hardened default user and group (config.go)
)

// tlsCACertKey is the conventional "ca.crt" entry of a kubernetes.io/tls Secret (as cert-manager
// writes it). k8s.io/api only defines that string for service-account token Secrets
// (corev1.ServiceAccountRootCAKey), so it is spelled out here.
const tlsCACertKey = "ca.crt"

// envMemoryLimit carries the container's memory limit to the server (the downward API), which
// sets the Go runtime's soft memory limit to 90% of it, so the garbage collector works harder as
// the heap nears the limit instead of the kernel killing the container. The server's name for it
// is server.EnvMemoryLimit.
const envMemoryLimit = "AI_WEBHOOK_MEMORY_LIMIT"

// Well-known labels (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels).
const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelComponent = "app.kubernetes.io/component"
	labelManagedBy = "app.kubernetes.io/managed-by"
)

// selectorLabels select one instance's Pods (Service, PodDisruptionBudget, spread, NetworkPolicy).
func selectorLabels(instance string) map[string]string {
	return map[string]string{labelName: appName, labelComponent: "admission-webhook", labelInstance: instance}
}

// deploymentSelector is the Deployment's spec.selector. It cannot change (the API server refuses,
// and Pulumi would delete the Deployment to recreate it: an outage), so the default instance keeps
// the selector it was first created with, without the instance label. The Service and the
// PodDisruptionBudget select by instance: a second instance's Pods in the same namespace match
// this selector too, but its ReplicaSets belong to their own Deployment (owner references), so
// nothing is adopted.
func deploymentSelector(instance string) map[string]string {
	l := selectorLabels(instance)
	if instance == defaultName {
		delete(l, labelInstance)
	}
	return l
}

// commonLabels go on every object.
func commonLabels(instance string) pulumi.StringMap {
	l := pulumi.ToStringMap(selectorLabels(instance))
	l[labelManagedBy] = pulumi.String("pulumi")
	return l
}

// base64Of encodes a PEM output for Secret data and caBundle. A secret input stays secret.
func base64Of(pem pulumi.StringOutput) pulumi.StringOutput {
	return pem.ApplyT(func(s string) string {
		return base64.StdEncoding.EncodeToString([]byte(s))
	}).(pulumi.StringOutput)
}

// newNamespace creates the namespace, or refers to an existing one when createNamespace is false.
// Children take the returned name, so they depend on the Namespace when it is created here.
func newNamespace(ctx *pulumi.Context, name string, cfg Config, opts ...pulumi.ResourceOption) (pulumi.StringOutput, error) {
	if !cfg.CreateNamespace {
		return pulumi.String(cfg.Namespace).ToStringOutput(), nil
	}
	ns, err := pcorev1.NewNamespace(ctx, name, &pcorev1.NamespaceArgs{
		Metadata: &pmetav1.ObjectMetaArgs{
			Name:   pulumi.String(cfg.Namespace),
			Labels: commonLabels(cfg.Name),
		},
	}, opts...)
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	return ns.Metadata.Name().Elem(), nil
}

// workload is what the MutatingWebhookConfiguration waits for.
type workload struct {
	deployment *pappsv1.Deployment
	service    *pcorev1.Service
}

// newWorkload creates the profiles ConfigMap, the ServiceAccount, the Deployment, its Service and
// PodDisruptionBudget; the Pods mount the TLS Secret of the certificate mode (certs.go).
//
// One roll mechanism: the Secret and ConfigMap have generated names. pulumi-kubernetes replaces
// them when their data changes (a renewed certificate, new profiles); with a generated name the
// replacement is created before the old one is deleted, and the new name in the pod template is
// what rolls the Deployment, so running pods never lose their mounted files. No checksum
// annotation is needed: the name changes exactly when the mounted content does. The roll (not
// the server's hot reload of the mounted files) is what this stack relies on, because Pulumi
// waits for it: `pulumi up` ends only once every pod serves the new files, and a server that
// refuses them stops the rollout (maxUnavailable 0) while the old pods keep serving. The hot
// reload serves Secrets and ConfigMaps updated in place by other tools (cert-manager).
func newWorkload(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringOutput, certs *certificates, opts ...pulumi.ResourceOption) (*workload, error) {
	configMap, err := pcorev1.NewConfigMap(ctx, name+"-profiles", &pcorev1.ConfigMapArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Namespace: namespace, Labels: commonLabels(cfg.Name)},
		Data:     pulumi.StringMap{profilesKey: pulumi.String(string(cfg.profilesYAML()))},
	}, opts...)
	if err != nil {
		return nil, err
	}
	// The ServiceAccount mounts no token by default; the Pod asks for one only with clusterFacts.
	sa, err := pcorev1.NewServiceAccount(ctx, name, &pcorev1.ServiceAccountArgs{
		Metadata:                     &pmetav1.ObjectMetaArgs{Name: pulumi.String(cfg.Name), Namespace: namespace, Labels: commonLabels(cfg.Name)},
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, opts...)
	if err != nil {
		return nil, err
	}

	pod, err := podSpec(cfg, sa, certs.secretName, configMap)
	if err != nil {
		return nil, err
	}
	podLabels := pulumi.ToStringMap(cfg.PodLabels)
	maps.Copy(podLabels, commonLabels(cfg.Name))
	var podAnnotations pulumi.StringMap
	if len(cfg.PodAnnotations) > 0 {
		podAnnotations = pulumi.ToStringMap(cfg.PodAnnotations)
	}
	// With an autoscaler, spec.replicas is the autoscaler's: setting it here would undo its
	// scaling on every `pulumi up`.
	var replicas pulumi.IntPtrInput
	if !cfg.Autoscaling.Enabled {
		replicas = pulumi.Int(cfg.Replicas)
	}
	deployment, err := pappsv1.NewDeployment(ctx, name, &pappsv1.DeploymentArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(cfg.Name), Namespace: namespace, Labels: commonLabels(cfg.Name)},
		Spec: &pappsv1.DeploymentSpecArgs{
			Replicas: replicas,
			Selector: &pmetav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(deploymentSelector(cfg.Name))},
			// Bring a new pod up before an old one goes: admission calls keep being served.
			Strategy: &pappsv1.DeploymentStrategyArgs{
				Type: pulumi.String(string(appsv1.RollingUpdateDeploymentStrategyType)),
				RollingUpdate: &pappsv1.RollingUpdateDeploymentArgs{
					MaxUnavailable: pulumi.Int(0),
					MaxSurge:       pulumi.Int(1),
				},
			},
			Template: &pcorev1.PodTemplateSpecArgs{
				Metadata: &pmetav1.ObjectMetaArgs{Labels: podLabels, Annotations: podAnnotations},
				Spec:     pod,
			},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	service, err := pcorev1.NewService(ctx, name, &pcorev1.ServiceArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(cfg.Name), Namespace: namespace, Labels: commonLabels(cfg.Name)},
		Spec: &pcorev1.ServiceSpecArgs{
			Type:     pulumi.String(string(corev1.ServiceTypeClusterIP)),
			Selector: pulumi.ToStringMap(selectorLabels(cfg.Name)),
			Ports: pcorev1.ServicePortArray{&pcorev1.ServicePortArgs{
				Name:       pulumi.String(portName),
				Port:       pulumi.Int(servicePort),
				TargetPort: pulumi.String(portName),
				Protocol:   pulumi.String(string(corev1.ProtocolTCP)),
			}},
		},
		// After the Deployment: when the selector gains a label (the instance label, on the
		// first `pulumi up` after an upgrade), the Pods carry it before the Service needs it, so
		// the Service never has no endpoints.
	}, append(opts, pulumi.DependsOn([]pulumi.Resource{deployment}))...)
	if err != nil {
		return nil, err
	}

	// AlwaysAllow lets a drain evict pods that are not ready anyway.
	_, err = ppolicyv1.NewPodDisruptionBudget(ctx, name, &ppolicyv1.PodDisruptionBudgetArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(cfg.Name), Namespace: namespace, Labels: commonLabels(cfg.Name)},
		Spec: &ppolicyv1.PodDisruptionBudgetSpecArgs{
			MinAvailable:               intOrStringArg(cfg.PDB.MinAvailable),
			MaxUnavailable:             intOrStringArg(cfg.PDB.MaxUnavailable),
			Selector:                   &pmetav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(selectorLabels(cfg.Name))},
			UnhealthyPodEvictionPolicy: pulumi.String(string(policyv1.AlwaysAllow)),
		},
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &workload{deployment: deployment, service: service}, nil
}

func podSpec(cfg Config, sa *pcorev1.ServiceAccount, tlsSecret pulumi.StringOutput, configMap *pcorev1.ConfigMap) (*pcorev1.PodSpecArgs, error) {
	ctr, err := container(cfg)
	if err != nil {
		return nil, err
	}
	spec := &pcorev1.PodSpecArgs{
		ServiceAccountName:            sa.Metadata.Name(),
		AutomountServiceAccountToken:  pulumi.Bool(cfg.readsCluster()), // the token reads the classes or Pods (rbac.go)
		EnableServiceLinks:            pulumi.Bool(false),
		TerminationGracePeriodSeconds: pulumi.Int(gracePeriodSecond),
		Containers:                    pcorev1.ContainerArray{ctr},
		Volumes: pcorev1.VolumeArray{
			&pcorev1.VolumeArgs{
				Name: pulumi.String("tls"),
				Secret: &pcorev1.SecretVolumeSourceArgs{
					SecretName:  tlsSecret.ToStringPtrOutput(),
					DefaultMode: pulumi.Int(0o440),
				},
			},
			&pcorev1.VolumeArgs{
				Name:      pulumi.String("profiles"),
				ConfigMap: &pcorev1.ConfigMapVolumeSourceArgs{Name: configMap.Metadata.Name()},
			},
		},
	}
	if cfg.PriorityClassName != "" {
		spec.PriorityClassName = pulumi.String(cfg.PriorityClassName)
	}
	if cfg.HostNetwork {
		// The node's network: the Pod still resolves Service names through the cluster DNS.
		spec.HostNetwork = pulumi.Bool(true)
		spec.DnsPolicy = pulumi.String(string(corev1.DNSClusterFirstWithHostNet))
	}
	if len(cfg.NodeSelector) > 0 {
		spec.NodeSelector = pulumi.ToStringMap(cfg.NodeSelector)
	}
	if len(cfg.ImagePullSecrets) > 0 {
		refs := pcorev1.LocalObjectReferenceArray{}
		for _, s := range cfg.ImagePullSecrets {
			refs = append(refs, &pcorev1.LocalObjectReferenceArgs{Name: pulumi.String(s)})
		}
		spec.ImagePullSecrets = refs
	}
	if len(cfg.Tolerations) > 0 {
		spec.Tolerations = tolerationsArgs(cfg.Tolerations)
	}
	affinity, spread := podSpread(cfg)
	if affinity != nil {
		spec.Affinity = affinityArgs(*affinity)
	}
	if len(spread) > 0 {
		spec.TopologySpreadConstraints = spreadArgs(spread)
	}
	spec.SecurityContext = podSecurityArgs(cfg.PodSecurityContext)
	return spec, nil
}

// podSpread is the Pod's affinity and topology spread as configured (by default, the replicas
// spread over nodes, so one node going away leaves the webhook serving). A Pod (anti-)affinity
// term or a spread constraint without a labelSelector would select no Pod; it gets the
// instance's, so the defaults spread this instance and no other. An empty affinity is none.
func podSpread(cfg Config) (*corev1.Affinity, []corev1.TopologySpreadConstraint) {
	own := &metav1.LabelSelector{MatchLabels: selectorLabels(cfg.Name)}
	owned := func(terms []corev1.PodAffinityTerm) []corev1.PodAffinityTerm {
		terms = slices.Clone(terms)
		for i := range terms {
			if terms[i].LabelSelector == nil {
				terms[i].LabelSelector = own
			}
		}
		return terms
	}
	ownedWeighted := func(terms []corev1.WeightedPodAffinityTerm) []corev1.WeightedPodAffinityTerm {
		terms = slices.Clone(terms)
		for i := range terms {
			terms[i].PodAffinityTerm = owned([]corev1.PodAffinityTerm{terms[i].PodAffinityTerm})[0]
		}
		return terms
	}
	var affinity *corev1.Affinity
	if a := cfg.Affinity; a != (corev1.Affinity{}) {
		if pa := a.PodAffinity; pa != nil {
			a.PodAffinity = &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution:  owned(pa.RequiredDuringSchedulingIgnoredDuringExecution),
				PreferredDuringSchedulingIgnoredDuringExecution: ownedWeighted(pa.PreferredDuringSchedulingIgnoredDuringExecution),
			}
		}
		if pa := a.PodAntiAffinity; pa != nil {
			a.PodAntiAffinity = &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution:  owned(pa.RequiredDuringSchedulingIgnoredDuringExecution),
				PreferredDuringSchedulingIgnoredDuringExecution: ownedWeighted(pa.PreferredDuringSchedulingIgnoredDuringExecution),
			}
		}
		affinity = &a
	}
	spread := slices.Clone(cfg.TopologySpreadConstraints)
	for i := range spread {
		if spread[i].LabelSelector == nil {
			spread[i].LabelSelector = own
		}
	}
	return affinity, spread
}

// intOrStringArg is a PodDisruptionBudget limit, or nil.
func intOrStringArg(v *intstr.IntOrString) pulumi.Input {
	switch {
	case v == nil:
		return nil
	case v.Type == intstr.Int:
		return pulumi.Int(int(v.IntVal))
	default:
		return pulumi.String(v.StrVal)
	}
}

func container(cfg Config) (*pcorev1.ContainerArgs, error) {
	probe := func(endpoint string, period, failures int) *pcorev1.ProbeArgs {
		return &pcorev1.ProbeArgs{
			HttpGet: &pcorev1.HTTPGetActionArgs{
				Path:   pulumi.String(endpoint),
				Port:   pulumi.String(portName),
				Scheme: pulumi.String(string(corev1.URISchemeHTTPS)),
			},
			PeriodSeconds:    pulumi.Int(period),
			TimeoutSeconds:   pulumi.Int(2),
			FailureThreshold: pulumi.Int(failures),
		}
	}
	resources := func(list map[corev1.ResourceName]string) pulumi.StringMap {
		out := pulumi.StringMap{}
		for name, value := range list {
			if value != "" {
				out[string(name)] = pulumi.String(value)
			}
		}
		return out
	}
	args := []string{
		"serve",
		"--listen=:" + strconv.Itoa(cfg.Port),
		"--tls-cert-file=" + path.Join(tlsDir, corev1.TLSCertKey),
		"--tls-key-file=" + path.Join(tlsDir, corev1.TLSPrivateKeyKey),
		"--profiles-file=" + path.Join(profilesDir, profilesKey),
		"--domain=" + cfg.Domain,
		"--shutdown-delay=" + shutdownDelay,
		"--log-level=" + cfg.LogLevel,
	}
	if cfg.ClusterFacts {
		args = append(args, "--cluster-facts=on") // in-cluster ServiceAccount
	}
	if cfg.PodsOutOfDateMetric {
		args = append(args, "--pods-out-of-date-metric=on")
	}
	args = append(args, metricsArgs(cfg)...)
	args = append(args, cfg.ExtraArgs...)
	port := containerPort(cfg, portName, cfg.Port)
	env := pcorev1.EnvVarArray{&pcorev1.EnvVarArgs{
		Name: pulumi.String(envMemoryLimit),
		ValueFrom: &pcorev1.EnvVarSourceArgs{ResourceFieldRef: &pcorev1.ResourceFieldSelectorArgs{
			ContainerName: pulumi.String(appName),
			Resource:      pulumi.String("limits.memory"),
			Divisor:       pulumi.String("1"), // bytes
		}},
	}}
	for _, e := range cfg.ExtraEnv {
		env = append(env, &pcorev1.EnvVarArgs{Name: pulumi.String(e.Name), Value: pulumi.String(e.Value)})
	}
	return &pcorev1.ContainerArgs{
		Name:            pulumi.String(appName),
		Image:           pulumi.String(cfg.Image),
		ImagePullPolicy: pulumi.String(string(cfg.ImagePullPolicy)),
		Args:            pulumi.ToStringArray(args),
		// The whole limit: the downward API cannot scale a value (memory divisors are units such
		// as 1 or 1Mi), so the server takes the fraction. With no memory limit configured,
		// Kubernetes gives the node's allocatable memory.
		Env:   env,
		Ports: metricsContainerPorts(cfg, pcorev1.ContainerPortArray{port}),
		// /readyz turns 503 as soon as shutdown starts, so the endpoint is dropped before the
		// server stops; /healthz only says the process is alive.
		ReadinessProbe: probe("/readyz", 5, 2),
		LivenessProbe:  probe("/healthz", 10, 3),
		Resources: &pcorev1.ResourceRequirementsArgs{
			Requests: resources(cfg.Resources.Requests),
			Limits:   resources(cfg.Resources.Limits),
		},
		SecurityContext: containerSecurityArgs(cfg.ContainerSecurityContext),
		VolumeMounts: pcorev1.VolumeMountArray{
			&pcorev1.VolumeMountArgs{Name: pulumi.String("tls"), MountPath: pulumi.String(tlsDir), ReadOnly: pulumi.Bool(true)},
			&pcorev1.VolumeMountArgs{Name: pulumi.String("profiles"), MountPath: pulumi.String(profilesDir), ReadOnly: pulumi.Bool(true)},
		},
	}, nil
}

// containerPort is a TCP port of the server container; with hostNetwork it is also the host's
// port, which is what the API server would default it to.
func containerPort(cfg Config, name string, port int) *pcorev1.ContainerPortArgs {
	p := &pcorev1.ContainerPortArgs{
		Name:          pulumi.String(name),
		ContainerPort: pulumi.Int(port),
		Protocol:      pulumi.String(string(corev1.ProtocolTCP)),
	}
	if cfg.HostNetwork {
		p.HostPort = pulumi.Int(port)
	}
	return p
}

// The functions below turn the Kubernetes API values of the knobs into the Pulumi SDK's input
// types, leaving out what is unset (an empty list sent would read as a change on the next
// preview of an object created without it).

func optString[T ~string](s T) pulumi.StringPtrInput {
	if s == "" {
		return nil
	}
	return pulumi.String(string(s))
}

func optBool(b *bool) pulumi.BoolPtrInput {
	if b == nil {
		return nil
	}
	return pulumi.Bool(*b)
}

func optInt64(n *int64) pulumi.IntPtrInput {
	if n == nil {
		return nil
	}
	return pulumi.Int(int(*n))
}

func optStrings(list []string) pulumi.StringArrayInput {
	if len(list) == 0 {
		return nil
	}
	return pulumi.ToStringArray(list)
}

func optSelector(sel *metav1.LabelSelector) *pmetav1.LabelSelectorArgs {
	if sel == nil {
		return nil
	}
	return labelSelectorArgs(*sel)
}

func seccompArgs(p *corev1.SeccompProfile) *pcorev1.SeccompProfileArgs {
	if p == nil {
		return nil
	}
	return &pcorev1.SeccompProfileArgs{Type: pulumi.String(string(p.Type)), LocalhostProfile: optString(ptrValue(p.LocalhostProfile))}
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func podSecurityArgs(c corev1.PodSecurityContext) *pcorev1.PodSecurityContextArgs {
	return &pcorev1.PodSecurityContextArgs{
		RunAsNonRoot:   optBool(c.RunAsNonRoot),
		RunAsUser:      optInt64(c.RunAsUser),
		RunAsGroup:     optInt64(c.RunAsGroup),
		FsGroup:        optInt64(c.FSGroup),
		SeccompProfile: seccompArgs(c.SeccompProfile),
	}
}

func containerSecurityArgs(c corev1.SecurityContext) *pcorev1.SecurityContextArgs {
	out := &pcorev1.SecurityContextArgs{
		RunAsNonRoot:             optBool(c.RunAsNonRoot),
		RunAsUser:                optInt64(c.RunAsUser),
		RunAsGroup:               optInt64(c.RunAsGroup),
		ReadOnlyRootFilesystem:   optBool(c.ReadOnlyRootFilesystem),
		AllowPrivilegeEscalation: optBool(c.AllowPrivilegeEscalation),
		Privileged:               optBool(c.Privileged),
		SeccompProfile:           seccompArgs(c.SeccompProfile),
	}
	if caps := c.Capabilities; caps != nil && (len(caps.Add) > 0 || len(caps.Drop) > 0) {
		names := func(list []corev1.Capability) pulumi.StringArrayInput {
			out := make([]string, len(list))
			for i, c := range list {
				out[i] = string(c)
			}
			return optStrings(out)
		}
		out.Capabilities = &pcorev1.CapabilitiesArgs{Add: names(caps.Add), Drop: names(caps.Drop)}
	}
	return out
}

func tolerationsArgs(list []corev1.Toleration) pcorev1.TolerationArray {
	out := pcorev1.TolerationArray{}
	for _, t := range list {
		out = append(out, &pcorev1.TolerationArgs{
			Key: optString(t.Key), Operator: optString(t.Operator), Value: optString(t.Value),
			Effect: optString(t.Effect), TolerationSeconds: optInt64(t.TolerationSeconds),
		})
	}
	return out
}

func spreadArgs(list []corev1.TopologySpreadConstraint) pcorev1.TopologySpreadConstraintArray {
	out := pcorev1.TopologySpreadConstraintArray{}
	for _, c := range list {
		args := &pcorev1.TopologySpreadConstraintArgs{
			MaxSkew:            pulumi.Int(int(c.MaxSkew)),
			TopologyKey:        pulumi.String(c.TopologyKey),
			WhenUnsatisfiable:  pulumi.String(string(c.WhenUnsatisfiable)),
			LabelSelector:      optSelector(c.LabelSelector),
			MatchLabelKeys:     optStrings(c.MatchLabelKeys),
			NodeAffinityPolicy: optString(ptrValue(c.NodeAffinityPolicy)),
			NodeTaintsPolicy:   optString(ptrValue(c.NodeTaintsPolicy)),
		}
		if c.MinDomains != nil {
			args.MinDomains = pulumi.Int(int(*c.MinDomains))
		}
		out = append(out, args)
	}
	return out
}

func affinityArgs(a corev1.Affinity) *pcorev1.AffinityArgs {
	out := &pcorev1.AffinityArgs{}
	if na := a.NodeAffinity; na != nil {
		args := &pcorev1.NodeAffinityArgs{}
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			terms := pcorev1.NodeSelectorTermArray{}
			for _, t := range req.NodeSelectorTerms {
				terms = append(terms, nodeTermArgs(t))
			}
			args.RequiredDuringSchedulingIgnoredDuringExecution = &pcorev1.NodeSelectorArgs{NodeSelectorTerms: terms}
		}
		if len(na.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			pref := pcorev1.PreferredSchedulingTermArray{}
			for _, t := range na.PreferredDuringSchedulingIgnoredDuringExecution {
				pref = append(pref, &pcorev1.PreferredSchedulingTermArgs{Weight: pulumi.Int(int(t.Weight)), Preference: nodeTermArgs(t.Preference)})
			}
			args.PreferredDuringSchedulingIgnoredDuringExecution = pref
		}
		out.NodeAffinity = args
	}
	podTerms := func(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm) (pcorev1.PodAffinityTermArrayInput, pcorev1.WeightedPodAffinityTermArrayInput) {
		var req pcorev1.PodAffinityTermArrayInput
		var pref pcorev1.WeightedPodAffinityTermArrayInput
		if len(required) > 0 {
			list := pcorev1.PodAffinityTermArray{}
			for _, t := range required {
				list = append(list, podTermArgs(t))
			}
			req = list
		}
		if len(preferred) > 0 {
			list := pcorev1.WeightedPodAffinityTermArray{}
			for _, t := range preferred {
				list = append(list, &pcorev1.WeightedPodAffinityTermArgs{Weight: pulumi.Int(int(t.Weight)), PodAffinityTerm: podTermArgs(t.PodAffinityTerm)})
			}
			pref = list
		}
		return req, pref
	}
	if pa := a.PodAffinity; pa != nil {
		req, pref := podTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
		out.PodAffinity = &pcorev1.PodAffinityArgs{RequiredDuringSchedulingIgnoredDuringExecution: req, PreferredDuringSchedulingIgnoredDuringExecution: pref}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		req, pref := podTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
		out.PodAntiAffinity = &pcorev1.PodAntiAffinityArgs{RequiredDuringSchedulingIgnoredDuringExecution: req, PreferredDuringSchedulingIgnoredDuringExecution: pref}
	}
	return out
}

func nodeTermArgs(t corev1.NodeSelectorTerm) *pcorev1.NodeSelectorTermArgs {
	reqs := func(list []corev1.NodeSelectorRequirement) pcorev1.NodeSelectorRequirementArrayInput {
		if len(list) == 0 {
			return nil
		}
		out := pcorev1.NodeSelectorRequirementArray{}
		for _, r := range list {
			out = append(out, &pcorev1.NodeSelectorRequirementArgs{Key: pulumi.String(r.Key), Operator: pulumi.String(string(r.Operator)), Values: optStrings(r.Values)})
		}
		return out
	}
	return &pcorev1.NodeSelectorTermArgs{MatchExpressions: reqs(t.MatchExpressions), MatchFields: reqs(t.MatchFields)}
}

func podTermArgs(t corev1.PodAffinityTerm) *pcorev1.PodAffinityTermArgs {
	return &pcorev1.PodAffinityTermArgs{
		TopologyKey:       pulumi.String(t.TopologyKey),
		LabelSelector:     optSelector(t.LabelSelector),
		NamespaceSelector: optSelector(t.NamespaceSelector),
		Namespaces:        optStrings(t.Namespaces),
		MatchLabelKeys:    optStrings(t.MatchLabelKeys),
		MismatchLabelKeys: optStrings(t.MismatchLabelKeys),
	}
}

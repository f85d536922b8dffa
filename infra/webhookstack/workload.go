package webhookstack

import (
	"encoding/base64"
	"path"
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
)

// appName names the Deployment, Service, ServiceAccount and PodDisruptionBudget. The Service name
// is fixed because the serving certificate's DNS names are derived from it.
const appName = "ai-webhook"

// What the server binary expects (see webhook/cmd/ai-webhook).
const (
	containerPort     = 8443
	portName          = "https"
	servicePort       = 443
	tlsDir            = "/etc/ai-webhook/tls"
	profilesDir       = "/etc/ai-webhook/profiles"
	profilesKey       = "profiles.yaml"
	shutdownDelay     = "5s"
	gracePeriodSecond = 30 // must exceed shutdownDelay plus the time to drain in-flight requests
	nonRootID         = 65532
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

// selectorLabels select the webhook's pods; commonLabels go on every object.
func selectorLabels() pulumi.StringMap {
	return pulumi.StringMap{
		"app.kubernetes.io/name":      pulumi.String(appName),
		"app.kubernetes.io/component": pulumi.String("admission-webhook"),
	}
}

func commonLabels() pulumi.StringMap {
	l := selectorLabels()
	l["app.kubernetes.io/managed-by"] = pulumi.String("pulumi")
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
			Labels: commonLabels(),
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

// newWorkload creates the TLS Secret, the profiles ConfigMap, the ServiceAccount, the Deployment,
// its Service and PodDisruptionBudget.
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
	secret, err := pcorev1.NewSecret(ctx, name+"-tls", &pcorev1.SecretArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Namespace: namespace, Labels: commonLabels()},
		Type:     pulumi.String(string(corev1.SecretTypeTLS)),
		// data, not stringData: it is what the API server stores, so a refresh or preview finds
		// nothing to change.
		Data: pulumi.StringMap{
			corev1.TLSCertKey:       base64Of(certs.servingCertPEM),
			corev1.TLSPrivateKeyKey: base64Of(certs.servingKeyPEM),
			tlsCACertKey:            base64Of(certs.caCertPEM),
		},
	}, opts...)
	if err != nil {
		return nil, err
	}
	configMap, err := pcorev1.NewConfigMap(ctx, name+"-profiles", &pcorev1.ConfigMapArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Namespace: namespace, Labels: commonLabels()},
		Data:     pulumi.StringMap{profilesKey: pulumi.String(string(cfg.profilesYAML()))},
	}, opts...)
	if err != nil {
		return nil, err
	}
	// The ServiceAccount mounts no token by default; the Pod asks for one only with clusterFacts.
	sa, err := pcorev1.NewServiceAccount(ctx, name, &pcorev1.ServiceAccountArgs{
		Metadata:                     &pmetav1.ObjectMetaArgs{Name: pulumi.String(appName), Namespace: namespace, Labels: commonLabels()},
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, opts...)
	if err != nil {
		return nil, err
	}

	deployment, err := pappsv1.NewDeployment(ctx, name, &pappsv1.DeploymentArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(appName), Namespace: namespace, Labels: commonLabels()},
		Spec: &pappsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(cfg.Replicas),
			Selector: &pmetav1.LabelSelectorArgs{MatchLabels: selectorLabels()},
			// Bring a new pod up before an old one goes: admission calls keep being served.
			Strategy: &pappsv1.DeploymentStrategyArgs{
				Type: pulumi.String(string(appsv1.RollingUpdateDeploymentStrategyType)),
				RollingUpdate: &pappsv1.RollingUpdateDeploymentArgs{
					MaxUnavailable: pulumi.Int(0),
					MaxSurge:       pulumi.Int(1),
				},
			},
			Template: &pcorev1.PodTemplateSpecArgs{
				Metadata: &pmetav1.ObjectMetaArgs{Labels: commonLabels()},
				Spec:     podSpec(cfg, sa, secret, configMap),
			},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	service, err := pcorev1.NewService(ctx, name, &pcorev1.ServiceArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(appName), Namespace: namespace, Labels: commonLabels()},
		Spec: &pcorev1.ServiceSpecArgs{
			Type:     pulumi.String(string(corev1.ServiceTypeClusterIP)),
			Selector: selectorLabels(),
			Ports: pcorev1.ServicePortArray{&pcorev1.ServicePortArgs{
				Name:       pulumi.String(portName),
				Port:       pulumi.Int(servicePort),
				TargetPort: pulumi.String(portName),
				Protocol:   pulumi.String(string(corev1.ProtocolTCP)),
			}},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	// maxUnavailable (not minAvailable) so a drain is never blocked, even with one replica;
	// AlwaysAllow lets a drain evict pods that are not ready anyway.
	_, err = ppolicyv1.NewPodDisruptionBudget(ctx, name, &ppolicyv1.PodDisruptionBudgetArgs{
		Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(appName), Namespace: namespace, Labels: commonLabels()},
		Spec: &ppolicyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable:             pulumi.Int(1),
			Selector:                   &pmetav1.LabelSelectorArgs{MatchLabels: selectorLabels()},
			UnhealthyPodEvictionPolicy: pulumi.String(string(policyv1.AlwaysAllow)),
		},
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &workload{deployment: deployment, service: service}, nil
}

func podSpec(cfg Config, sa *pcorev1.ServiceAccount, secret *pcorev1.Secret, configMap *pcorev1.ConfigMap) *pcorev1.PodSpecArgs {
	spreadSelector := &pmetav1.LabelSelectorArgs{MatchLabels: selectorLabels()}
	spec := &pcorev1.PodSpecArgs{
		ServiceAccountName:            sa.Metadata.Name(),
		AutomountServiceAccountToken:  pulumi.Bool(cfg.ClusterFacts), // the token reads the classes (rbac.go)
		EnableServiceLinks:            pulumi.Bool(false),
		TerminationGracePeriodSeconds: pulumi.Int(gracePeriodSecond),
		SecurityContext: &pcorev1.PodSecurityContextArgs{
			RunAsNonRoot:   pulumi.Bool(true),
			RunAsUser:      pulumi.Int(nonRootID),
			RunAsGroup:     pulumi.Int(nonRootID),
			FsGroup:        pulumi.Int(nonRootID), // group owner of the mounted key (mode 0440)
			SeccompProfile: &pcorev1.SeccompProfileArgs{Type: pulumi.String(string(corev1.SeccompProfileTypeRuntimeDefault))},
		},
		// Spread the replicas over nodes, so one node going away leaves the webhook serving.
		// Preferred, not required: a one-node dev cluster still runs every replica.
		TopologySpreadConstraints: pcorev1.TopologySpreadConstraintArray{&pcorev1.TopologySpreadConstraintArgs{
			MaxSkew:           pulumi.Int(1),
			TopologyKey:       pulumi.String(corev1.LabelHostname),
			WhenUnsatisfiable: pulumi.String(string(corev1.ScheduleAnyway)),
			LabelSelector:     spreadSelector,
		}},
		Affinity: &pcorev1.AffinityArgs{
			PodAntiAffinity: &pcorev1.PodAntiAffinityArgs{
				PreferredDuringSchedulingIgnoredDuringExecution: pcorev1.WeightedPodAffinityTermArray{&pcorev1.WeightedPodAffinityTermArgs{
					Weight: pulumi.Int(100),
					PodAffinityTerm: &pcorev1.PodAffinityTermArgs{
						TopologyKey:   pulumi.String(corev1.LabelHostname),
						LabelSelector: spreadSelector,
					},
				}},
			},
		},
		Containers: pcorev1.ContainerArray{container(cfg)},
		Volumes: pcorev1.VolumeArray{
			&pcorev1.VolumeArgs{
				Name: pulumi.String("tls"),
				Secret: &pcorev1.SecretVolumeSourceArgs{
					SecretName:  secret.Metadata.Name(),
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
	return spec
}

func container(cfg Config) *pcorev1.ContainerArgs {
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
		"--listen=:" + strconv.Itoa(containerPort),
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
	return &pcorev1.ContainerArgs{
		Name:            pulumi.String(appName),
		Image:           pulumi.String(cfg.Image),
		ImagePullPolicy: pulumi.String(string(cfg.ImagePullPolicy)),
		Args:            pulumi.ToStringArray(args),
		// The whole limit: the downward API cannot scale a value (memory divisors are units such
		// as 1 or 1Mi), so the server takes the fraction. With no memory limit configured,
		// Kubernetes gives the node's allocatable memory.
		Env: pcorev1.EnvVarArray{&pcorev1.EnvVarArgs{
			Name: pulumi.String(envMemoryLimit),
			ValueFrom: &pcorev1.EnvVarSourceArgs{ResourceFieldRef: &pcorev1.ResourceFieldSelectorArgs{
				ContainerName: pulumi.String(appName),
				Resource:      pulumi.String("limits.memory"),
				Divisor:       pulumi.String("1"), // bytes
			}},
		}},
		Ports: pcorev1.ContainerPortArray{&pcorev1.ContainerPortArgs{
			Name:          pulumi.String(portName),
			ContainerPort: pulumi.Int(containerPort),
			Protocol:      pulumi.String(string(corev1.ProtocolTCP)),
		}},
		// /readyz turns 503 as soon as shutdown starts, so the endpoint is dropped before the
		// server stops; /healthz only says the process is alive.
		ReadinessProbe: probe("/readyz", 5, 2),
		LivenessProbe:  probe("/healthz", 10, 3),
		Resources: &pcorev1.ResourceRequirementsArgs{
			Requests: resources(cfg.Resources.Requests),
			Limits:   resources(cfg.Resources.Limits),
		},
		SecurityContext: &pcorev1.SecurityContextArgs{
			RunAsNonRoot:             pulumi.Bool(true),
			RunAsUser:                pulumi.Int(nonRootID),
			RunAsGroup:               pulumi.Int(nonRootID),
			ReadOnlyRootFilesystem:   pulumi.Bool(true),
			AllowPrivilegeEscalation: pulumi.Bool(false),
			Privileged:               pulumi.Bool(false),
			Capabilities:             &pcorev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
			SeccompProfile:           &pcorev1.SeccompProfileArgs{Type: pulumi.String(string(corev1.SeccompProfileTypeRuntimeDefault))},
		},
		VolumeMounts: pcorev1.VolumeMountArray{
			&pcorev1.VolumeMountArgs{Name: pulumi.String("tls"), MountPath: pulumi.String(tlsDir), ReadOnly: pulumi.Bool(true)},
			&pcorev1.VolumeMountArgs{Name: pulumi.String("profiles"), MountPath: pulumi.String(profilesDir), ReadOnly: pulumi.Bool(true)},
		},
	}
}

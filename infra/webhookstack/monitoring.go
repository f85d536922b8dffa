package webhookstack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	pcorev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ai-webhook/ai-webhook/infra/monitoring"
)

// The server's plain-HTTP metrics port (serve --metrics-listen) is named in the container, so a
// PodMonitor, a NetworkPolicy or a scrape configuration finds it by name.
const metricsPortName = "metrics"

// prometheus-operator's API (monitoring.coreos.com/v1) for the optional PodMonitor and
// PrometheusRule.
const (
	monitoringAPIVersion = "monitoring.coreos.com/v1"
	kindPodMonitor       = "PodMonitor"
	kindPrometheusRule   = "PrometheusRule"
)

// Monitoring (monitoring) chooses the prometheus-operator objects the stack creates; both are
// off by default (the CRDs must be installed, or the update fails).
type Monitoring struct {
	// PodMonitor scrapes every replica's metrics port (needs metricsPort).
	PodMonitor bool
	// PrometheusRule carries infra/monitoring/alerts.yaml for this installation's namespace and
	// webhook name.
	PrometheusRule bool
	// Labels are added to both objects, for a Prometheus whose podMonitorSelector and
	// ruleSelector select by label (kube-prometheus-stack: release: <its release>).
	Labels map[string]string
	// Interval is the scrape interval; "" keeps the Prometheus' own.
	Interval string
}

// monitoringValue is the monitoring key as written in config.
type monitoringValue struct {
	PodMonitor     *bool             `json:"podMonitor"`
	PrometheusRule *bool             `json:"prometheusRule"`
	Labels         map[string]string `json:"labels"`
	Interval       *string           `json:"interval"`
}

func (v monitoringValue) over(d Monitoring) Monitoring {
	if v.PodMonitor != nil {
		d.PodMonitor = *v.PodMonitor
	}
	if v.PrometheusRule != nil {
		d.PrometheusRule = *v.PrometheusRule
	}
	if v.Labels != nil {
		d.Labels = v.Labels
	}
	if v.Interval != nil {
		d.Interval = *v.Interval
	}
	return d
}

// promDuration is prometheus-operator's Duration (its CRD's pattern).
var promDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

// validateMonitoring checks metricsPort and monitoring.
func (c *Config) validateMonitoring() []error {
	var errs []error
	if c.MetricsPort != 0 {
		if msgs := validation.IsValidPortNum(c.MetricsPort); len(msgs) > 0 {
			errs = append(errs, keyError("metricsPort", "must be 0 (no metrics port) or a port number, got %d: %s", c.MetricsPort, strings.Join(msgs, "; ")))
		} else if c.MetricsPort == c.Port {
			errs = append(errs, keyError("metricsPort", "must differ from port (%d)", c.Port))
		}
	}
	m := c.Monitoring
	if m.PodMonitor && c.MetricsPort == 0 {
		errs = append(errs, keyError("monitoring", "podMonitor needs the metrics port: metricsPort is 0"))
	}
	if m.Interval != "" && (m.Interval == "0" || !promDuration.MatchString(m.Interval)) {
		errs = append(errs, keyError("monitoring", "interval must be a Prometheus duration such as 30s or 1m, got %q", m.Interval))
	}
	root := field.NewPath(ConfigNamespace+":monitoring", "labels")
	for k, v := range m.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(root.Key(k), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(root.Key(k), v, msg))
		}
	}
	return errs
}

// MonitoringObject is one prometheus-operator object of the stack, as the API server takes it
// (metadata.namespace is the stack's namespace).
type MonitoringObject struct {
	Kind   string
	Name   string
	Labels map[string]string
	Spec   map[string]any
}

// MonitoringObjects are the PodMonitor and PrometheusRule cfg asks for (monitoring), in that
// order; none by default.
func MonitoringObjects(cfg Config) ([]MonitoringObject, error) {
	labels := selectorLabels(cfg.Name)
	labels[labelManagedBy] = "pulumi"
	for k, v := range cfg.Monitoring.Labels {
		labels[k] = v
	}
	var objs []MonitoringObject
	if cfg.Monitoring.PodMonitor {
		endpoint := map[string]any{"port": metricsPortName, "path": "/metrics", "scheme": "http"}
		if cfg.Monitoring.Interval != "" {
			endpoint["interval"] = cfg.Monitoring.Interval
		}
		// The operator labels each target with namespace, pod and container, which the alerts
		// and the dashboard select on.
		selector := map[string]any{}
		for k, v := range selectorLabels(cfg.Name) {
			selector[k] = v
		}
		objs = append(objs, MonitoringObject{Kind: kindPodMonitor, Name: cfg.Name, Labels: labels, Spec: map[string]any{
			"selector":            map[string]any{"matchLabels": selector},
			"podMetricsEndpoints": []any{endpoint},
		}})
	}
	if cfg.Monitoring.PrometheusRule {
		rules, err := monitoring.Rules(cfg.Namespace, cfg.WebhookName)
		if err != nil {
			return nil, err
		}
		spec, err := toMap(rules)
		if err != nil {
			return nil, fmt.Errorf("alert rules: %w", err)
		}
		objs = append(objs, MonitoringObject{Kind: kindPrometheusRule, Name: cfg.Name, Labels: labels, Spec: spec})
	}
	return objs, nil
}

// newMonitoring creates the objects of MonitoringObjects as custom resources.
func newMonitoring(ctx *pulumi.Context, name string, cfg Config, namespace pulumi.StringInput, opts ...pulumi.ResourceOption) error {
	objs, err := MonitoringObjects(cfg)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if _, err := newCustomResource(ctx, name+"-"+strings.ToLower(o.Kind), &apiextensions.CustomResourceArgs{
			ApiVersion:  pulumi.String(monitoringAPIVersion),
			Kind:        pulumi.String(o.Kind),
			Metadata:    &pmetav1.ObjectMetaArgs{Name: pulumi.String(o.Name), Namespace: namespace, Labels: pulumi.ToStringMap(o.Labels)},
			OtherFields: map[string]any{"spec": o.Spec},
		}, opts...); err != nil {
			return err
		}
	}
	return nil
}

// metricsArgs are the server flags and container port of the metrics port (none when 0).
func metricsArgs(cfg Config) []string {
	if cfg.MetricsPort == 0 {
		return nil
	}
	return []string{fmt.Sprintf("--metrics-listen=:%d", cfg.MetricsPort)}
}

// metricsContainerPorts adds the metrics port to the container's ports (when it has one).
func metricsContainerPorts(cfg Config, ports pcorev1.ContainerPortArray) pcorev1.ContainerPortArray {
	if cfg.MetricsPort == 0 {
		return ports
	}
	return append(ports, containerPort(cfg, metricsPortName, cfg.MetricsPort))
}

// toMap turns v into the plain map a CustomResource's spec is, through its JSON.
func toMap(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

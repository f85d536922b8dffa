package profile

// Kubernetes' own rules for the core/v1 values a profile carries (volumes, env, mounts,
// tolerations, node affinity, resources): whatever the API server or the scheduler would refuse
// is refused at load, with the profile and field path, so a profile never produces a Pod that is
// rejected or stays Pending. The rules follow kubernetes pkg/apis/core/validation, written with
// apimachinery's validation helpers (k8s.io/kubernetes is not importable); node affinity is
// parsed with the scheduler's own parser from k8s.io/component-helpers.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

const fileModeMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// validateVolume checks one Pod volume as the API server would.
func validateVolume(v *corev1.Volume, fp *field.Path) field.ErrorList {
	errs := required(fp.Child("name"), v.Name)
	if v.Name != "" {
		errs = appendMsgs(errs, fp.Child("name"), v.Name, validation.IsDNS1123Label(v.Name))
	}
	sources := sourceNames(&v.VolumeSource)
	switch len(sources) {
	case 0:
		return append(errs, field.Required(fp, "exactly one volume source (emptyDir, persistentVolumeClaim, configMap, ...)"))
	case 1:
	default:
		return append(errs, field.Forbidden(fp, fmt.Sprintf("exactly one volume source, found %d: %s", len(sources), strings.Join(sources, ", "))))
	}
	s := &v.VolumeSource
	p := fp.Child(sources[0])
	switch {
	case s.EmptyDir != nil:
		if q := s.EmptyDir.SizeLimit; q != nil && q.Sign() < 0 {
			errs = append(errs, field.Invalid(p.Child("sizeLimit"), q.String(), "must not be negative"))
		}
		if m := s.EmptyDir.Mode; m != nil && (*m < 0 || *m > 0o1777) {
			errs = append(errs, field.Invalid(p.Child("mode"), *m, "must be a number between 0 and 01777 (octal), both inclusive"))
		}
	case s.HostPath != nil:
		errs = append(errs, required(p.Child("path"), s.HostPath.Path)...)
		errs = append(errs, noBacksteps(s.HostPath.Path, p.Child("path"))...)
		if t := s.HostPath.Type; t != nil {
			errs = append(errs, oneOf(p.Child("type"), *t, corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
				corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev)...)
		}
	case s.PersistentVolumeClaim != nil:
		errs = append(errs, required(p.Child("claimName"), s.PersistentVolumeClaim.ClaimName)...)
	case s.ConfigMap != nil:
		errs = append(errs, objectName(p.Child("name"), s.ConfigMap.Name)...)
		errs = append(errs, fileMode(p.Child("defaultMode"), s.ConfigMap.DefaultMode)...)
		errs = append(errs, user(p.Child("defaultUser"), s.ConfigMap.DefaultUser)...)
		errs = append(errs, keysToPaths(s.ConfigMap.Items, p.Child("items"), nil, fp)...)
	case s.Secret != nil:
		errs = append(errs, objectName(p.Child("secretName"), s.Secret.SecretName)...)
		errs = append(errs, fileMode(p.Child("defaultMode"), s.Secret.DefaultMode)...)
		errs = append(errs, user(p.Child("defaultUser"), s.Secret.DefaultUser)...)
		errs = append(errs, keysToPaths(s.Secret.Items, p.Child("items"), nil, fp)...)
	case s.DownwardAPI != nil:
		errs = append(errs, fileMode(p.Child("defaultMode"), s.DownwardAPI.DefaultMode)...)
		errs = append(errs, user(p.Child("defaultUser"), s.DownwardAPI.DefaultUser)...)
		errs = append(errs, downwardAPIFiles(s.DownwardAPI.Items, p.Child("items"), nil, fp)...)
	case s.Projected != nil:
		errs = append(errs, validateProjected(s.Projected, p)...)
	case s.Ephemeral != nil:
		errs = append(errs, validateEphemeral(s.Ephemeral, p)...)
	case s.Image != nil:
		errs = append(errs, required(p.Child("reference"), s.Image.Reference)...)
		if s.Image.PullPolicy != "" {
			errs = append(errs, oneOf(p.Child("pullPolicy"), s.Image.PullPolicy, corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
		}
	case s.CSI != nil:
		errs = append(errs, required(p.Child("driver"), s.CSI.Driver)...)
		if len(s.CSI.Driver) > 63 {
			errs = append(errs, field.TooLong(p.Child("driver"), s.CSI.Driver, 63))
		}
		if s.CSI.Driver != "" {
			errs = appendMsgs(errs, p.Child("driver"), s.CSI.Driver, validation.IsDNS1123Subdomain(strings.ToLower(s.CSI.Driver)))
		}
		if r := s.CSI.NodePublishSecretRef; r != nil {
			errs = append(errs, objectName(p.Child("nodePublishSecretRef", "name"), r.Name)...)
		}
	case s.NFS != nil:
		errs = append(errs, required(p.Child("server"), s.NFS.Server)...)
		if !path.IsAbs(s.NFS.Path) {
			errs = append(errs, field.Invalid(p.Child("path"), s.NFS.Path, "must be an absolute path"))
		}
	case s.ISCSI != nil:
		errs = append(errs, validateISCSI(s.ISCSI, v.Name, p)...)
	default:
		errs = append(errs, validateLegacySource(s, p)...)
	}
	return errs
}

// validateLegacySource checks the required fields of the in-tree volume plugins.
func validateLegacySource(s *corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case s.GCEPersistentDisk != nil:
		errs = append(errs, required(p.Child("pdName"), s.GCEPersistentDisk.PDName)...)
		errs = append(errs, inRange(p.Child("partition"), int64(s.GCEPersistentDisk.Partition), 0, 255)...)
	case s.AWSElasticBlockStore != nil:
		errs = append(errs, required(p.Child("volumeID"), s.AWSElasticBlockStore.VolumeID)...)
		errs = append(errs, inRange(p.Child("partition"), int64(s.AWSElasticBlockStore.Partition), 0, 255)...)
	case s.GitRepo != nil:
		errs = append(errs, required(p.Child("repository"), s.GitRepo.Repository)...)
		errs = append(errs, localDescendingPath(s.GitRepo.Directory, p.Child("directory"))...)
	case s.Glusterfs != nil:
		errs = append(errs, required(p.Child("endpoints"), s.Glusterfs.EndpointsName)...)
		errs = append(errs, required(p.Child("path"), s.Glusterfs.Path)...)
	case s.RBD != nil:
		if len(s.RBD.CephMonitors) == 0 {
			errs = append(errs, field.Required(p.Child("monitors"), ""))
		}
		errs = append(errs, required(p.Child("image"), s.RBD.RBDImage)...)
	case s.FlexVolume != nil:
		errs = append(errs, required(p.Child("driver"), s.FlexVolume.Driver)...)
		for _, k := range slices.Sorted(maps.Keys(s.FlexVolume.Options)) {
			ns, _, _ := strings.Cut(k, "/")
			if n := "." + strings.ToLower(ns); strings.HasSuffix(n, ".kubernetes.io") || strings.HasSuffix(n, ".k8s.io") {
				errs = append(errs, field.Invalid(p.Child("options").Key(k), k, "kubernetes.io and k8s.io namespaces are reserved"))
			}
		}
	case s.Cinder != nil:
		errs = append(errs, required(p.Child("volumeID"), s.Cinder.VolumeID)...)
		if r := s.Cinder.SecretRef; r != nil {
			errs = append(errs, required(p.Child("secretRef", "name"), r.Name)...)
		}
	case s.CephFS != nil:
		if len(s.CephFS.Monitors) == 0 {
			errs = append(errs, field.Required(p.Child("monitors"), ""))
		}
	case s.Flocker != nil:
		f := s.Flocker
		if (f.DatasetName == "") == (f.DatasetUUID == "") {
			errs = append(errs, field.Invalid(p, "", "exactly one of datasetName and datasetUUID"))
		}
		if strings.Contains(f.DatasetName, "/") {
			errs = append(errs, field.Invalid(p.Child("datasetName"), f.DatasetName, "must not contain '/'"))
		}
	case s.FC != nil:
		fc := s.FC
		if (len(fc.TargetWWNs) == 0) == (len(fc.WWIDs) == 0) {
			errs = append(errs, field.Invalid(p.Child("targetWWNs"), fc.TargetWWNs, "exactly one of targetWWNs and wwids"))
		}
		if len(fc.TargetWWNs) > 0 {
			if fc.Lun == nil {
				errs = append(errs, field.Required(p.Child("lun"), "lun is required with targetWWNs"))
			} else {
				errs = append(errs, inRange(p.Child("lun"), int64(*fc.Lun), 0, 255)...)
			}
		}
	case s.AzureFile != nil:
		errs = append(errs, required(p.Child("secretName"), s.AzureFile.SecretName)...)
		errs = append(errs, required(p.Child("shareName"), s.AzureFile.ShareName)...)
	case s.VsphereVolume != nil:
		errs = append(errs, required(p.Child("volumePath"), s.VsphereVolume.VolumePath)...)
	case s.Quobyte != nil:
		q := s.Quobyte
		errs = append(errs, required(p.Child("registry"), q.Registry)...)
		errs = append(errs, required(p.Child("volume"), q.Volume)...)
		if len(q.Tenant) > 64 {
			errs = append(errs, field.TooLong(p.Child("tenant"), q.Tenant, 64))
		}
		for _, hp := range strings.Split(q.Registry, ",") {
			if _, _, err := net.SplitHostPort(hp); q.Registry != "" && err != nil {
				errs = append(errs, field.Invalid(p.Child("registry"), q.Registry, "must be a host:port pair or several separated by commas"))
				break
			}
		}
	case s.AzureDisk != nil:
		d := s.AzureDisk
		errs = append(errs, required(p.Child("diskName"), d.DiskName)...)
		errs = append(errs, required(p.Child("diskURI"), d.DataDiskURI)...)
		if d.CachingMode != nil {
			errs = append(errs, oneOf(p.Child("cachingMode"), *d.CachingMode, corev1.AzureDataDiskCachingNone, corev1.AzureDataDiskCachingReadOnly, corev1.AzureDataDiskCachingReadWrite)...)
		}
		if d.Kind != nil {
			errs = append(errs, oneOf(p.Child("kind"), *d.Kind, corev1.AzureSharedBlobDisk, corev1.AzureDedicatedBlobDisk, corev1.AzureManagedDisk)...)
			managed := *d.Kind == corev1.AzureManagedDisk
			if managed && !strings.HasPrefix(d.DataDiskURI, "/subscriptions/") || !managed && !strings.HasPrefix(d.DataDiskURI, "https://") {
				errs = append(errs, field.Invalid(p.Child("diskURI"), d.DataDiskURI, "a managed disk's URI starts with /subscriptions/, a blob disk's with https://"))
			}
		}
	case s.PhotonPersistentDisk != nil:
		errs = append(errs, required(p.Child("pdID"), s.PhotonPersistentDisk.PdID)...)
	case s.PortworxVolume != nil:
		errs = append(errs, required(p.Child("volumeID"), s.PortworxVolume.VolumeID)...)
	case s.ScaleIO != nil:
		errs = append(errs, required(p.Child("gateway"), s.ScaleIO.Gateway)...)
		errs = append(errs, required(p.Child("system"), s.ScaleIO.System)...)
		errs = append(errs, required(p.Child("volumeName"), s.ScaleIO.VolumeName)...)
		if s.ScaleIO.SecretRef == nil {
			errs = append(errs, field.Required(p.Child("secretRef"), ""))
		}
	case s.StorageOS != nil:
		errs = append(errs, required(p.Child("volumeName"), s.StorageOS.VolumeName)...)
		if n := s.StorageOS.VolumeName; n != "" {
			errs = appendMsgs(errs, p.Child("volumeName"), n, validation.IsDNS1123Label(n))
		}
		if n := s.StorageOS.VolumeNamespace; n != "" {
			errs = appendMsgs(errs, p.Child("volumeNamespace"), n, validation.IsDNS1123Label(n))
		}
	}
	return errs
}

func validateISCSI(s *corev1.ISCSIVolumeSource, volName string, p *field.Path) field.ErrorList {
	errs := required(p.Child("targetPortal"), s.TargetPortal)
	errs = append(errs, required(p.Child("iqn"), s.IQN)...)
	if s.IQN != "" {
		errs = append(errs, iscsiName(p.Child("iqn"), s.IQN)...)
	}
	errs = append(errs, inRange(p.Child("lun"), int64(s.Lun), 0, 255)...)
	if (s.DiscoveryCHAPAuth || s.SessionCHAPAuth) && s.SecretRef == nil {
		errs = append(errs, field.Required(p.Child("secretRef"), "CHAP authentication needs a secret"))
	}
	if s.InitiatorName != nil {
		errs = append(errs, iscsiName(p.Child("initiatorName"), *s.InitiatorName)...)
		if len(volName+":"+s.TargetPortal) > 64 {
			errs = append(errs, field.Invalid(p.Child("targetPortal"), s.TargetPortal, "with initiatorName, <volume name>:<targetPortal> must be under 64 characters"))
		}
	}
	return errs
}

func iscsiName(p *field.Path, name string) field.ErrorList {
	if !strings.HasPrefix(name, "iqn") && !strings.HasPrefix(name, "eui") && !strings.HasPrefix(name, "naa") {
		return field.ErrorList{field.Invalid(p, name, "must start with iqn, eui or naa")}
	}
	return nil
}

func validateProjected(s *corev1.ProjectedVolumeSource, p *field.Path) field.ErrorList {
	errs := fileMode(p.Child("defaultMode"), s.DefaultMode)
	errs = append(errs, user(p.Child("defaultUser"), s.DefaultUser)...)
	paths := map[string]bool{} // file paths must be unique across sources
	for i := range s.Sources {
		src := &s.Sources[i]
		sp := p.Child("sources").Index(i)
		names := sourceNames(src)
		if len(names) != 1 {
			errs = append(errs, field.Invalid(sp, strings.Join(names, ", "), "exactly one projection source per entry"))
			continue
		}
		np := sp.Child(names[0])
		switch {
		case src.ConfigMap != nil:
			errs = append(errs, objectName(np.Child("name"), src.ConfigMap.Name)...)
			errs = append(errs, keysToPaths(src.ConfigMap.Items, np.Child("items"), paths, p)...)
		case src.Secret != nil:
			errs = append(errs, objectName(np.Child("name"), src.Secret.Name)...)
			errs = append(errs, keysToPaths(src.Secret.Items, np.Child("items"), paths, p)...)
		case src.DownwardAPI != nil:
			errs = append(errs, downwardAPIFiles(src.DownwardAPI.Items, np.Child("items"), paths, p)...)
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			if t.ExpirationSeconds == nil {
				errs = append(errs, field.Required(np.Child("expirationSeconds"), ""))
			} else if e := *t.ExpirationSeconds; e < 600 || e > 1<<32 {
				errs = append(errs, field.Invalid(np.Child("expirationSeconds"), e, "must be between 600 (10 minutes) and 2^32 seconds"))
			}
			errs = append(errs, required(np.Child("path"), t.Path)...)
			errs = append(errs, projectedPath(t.Path, np.Child("path"), paths, p)...)
			errs = append(errs, user(np.Child("user"), t.User)...)
		case src.ClusterTrustBundle != nil:
			b := src.ClusterTrustBundle
			switch {
			case (b.Name == nil) == (b.SignerName == nil):
				errs = append(errs, field.Invalid(np, "", "exactly one of name and signerName"))
			case b.Name != nil:
				errs = append(errs, objectName(np.Child("name"), *b.Name)...)
				if b.LabelSelector != nil {
					errs = append(errs, field.Forbidden(np.Child("labelSelector"), "only with signerName"))
				}
			default:
				errs = append(errs, signerName(np.Child("signerName"), *b.SignerName)...)
				errs = append(errs, metav1validation.ValidateLabelSelector(b.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, np.Child("labelSelector"))...)
			}
			errs = append(errs, required(np.Child("path"), b.Path)...)
			errs = append(errs, projectedPath(b.Path, np.Child("path"), paths, p)...)
			errs = append(errs, user(np.Child("user"), b.User)...)
		case src.PodCertificate != nil:
			c := src.PodCertificate
			errs = append(errs, signerName(np.Child("signerName"), c.SignerName)...)
			errs = append(errs, oneOf(np.Child("keyType"), c.KeyType, "RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519")...)
			if m := c.MaxExpirationSeconds; m != nil && *m < 3600 {
				errs = append(errs, field.Invalid(np.Child("maxExpirationSeconds"), *m, "must be at least 3600"))
			}
			if c.CredentialBundlePath == "" && c.KeyPath == "" && c.CertificateChainPath == "" {
				errs = append(errs, field.Required(np, "at least one of credentialBundlePath, keyPath and certificateChainPath"))
			}
			for _, f := range []struct{ name, value string }{
				{"credentialBundlePath", c.CredentialBundlePath}, {"keyPath", c.KeyPath}, {"certificateChainPath", c.CertificateChainPath},
			} {
				if f.value != "" {
					errs = append(errs, projectedPath(f.value, np.Child(f.name), paths, p)...)
				}
			}
			errs = append(errs, user(np.Child("user"), c.User)...)
		}
	}
	return errs
}

func validateEphemeral(s *corev1.EphemeralVolumeSource, p *field.Path) field.ErrorList {
	t := s.VolumeClaimTemplate
	if t == nil {
		return field.ErrorList{field.Required(p.Child("volumeClaimTemplate"), "")}
	}
	tp := p.Child("volumeClaimTemplate")
	errs := validateLabels(t.Labels, tp.Child("metadata", "labels"))
	errs = append(errs, validateAnnotations(t.Annotations, tp.Child("metadata", "annotations"))...)
	if t.Name != "" || t.Namespace != "" || t.GenerateName != "" || len(t.Finalizers) > 0 || len(t.OwnerReferences) > 0 {
		errs = append(errs, field.Forbidden(tp.Child("metadata"), "only labels and annotations can be set"))
	}
	sp := tp.Child("spec")
	spec := &t.Spec
	if len(spec.AccessModes) == 0 {
		errs = append(errs, field.Required(sp.Child("accessModes"), "at least 1 access mode"))
	}
	for _, m := range spec.AccessModes {
		errs = append(errs, oneOf(sp.Child("accessModes"), m, corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod)...)
	}
	if slices.Contains(spec.AccessModes, corev1.ReadWriteOncePod) && len(spec.AccessModes) > 1 {
		errs = append(errs, field.Forbidden(sp.Child("accessModes"), "ReadWriteOncePod cannot be combined with other access modes"))
	}
	storage, ok := spec.Resources.Requests[corev1.ResourceStorage]
	rp := sp.Child("resources").Key(string(corev1.ResourceStorage))
	if !ok {
		errs = append(errs, field.Required(rp, ""))
	} else if storage.Sign() <= 0 {
		errs = append(errs, field.Invalid(rp, storage.String(), "must be greater than zero"))
	}
	if c := spec.StorageClassName; c != nil && *c != "" {
		errs = appendMsgs(errs, sp.Child("storageClassName"), *c, validation.IsDNS1123Subdomain(*c))
	}
	if m := spec.VolumeMode; m != nil {
		errs = append(errs, oneOf(sp.Child("volumeMode"), *m, corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)...)
	}
	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, sp.Child("selector"))...)
	}
	return errs
}

// keysToPaths checks configMap and secret items; paths, when not nil, collects the file paths
// of a projected volume, which must be unique across its sources.
func keysToPaths(items []corev1.KeyToPath, p *field.Path, paths map[string]bool, volume *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		errs = append(errs, required(ip.Child("key"), it.Key)...)
		errs = append(errs, required(ip.Child("path"), it.Path)...)
		errs = append(errs, projectedPath(it.Path, ip.Child("path"), paths, volume)...)
		errs = append(errs, fileMode(ip.Child("mode"), it.Mode)...)
		errs = append(errs, user(ip.Child("user"), it.User)...)
	}
	return errs
}

// Downward API fields a volume file may name (env vars have their own list).
var (
	volumeFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}
	envFieldPaths    = []string{"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
		"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"}
	resourceFieldPaths = []string{"limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"}
)

func downwardAPIFiles(items []corev1.DownwardAPIVolumeFile, p *field.Path, paths map[string]bool, volume *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		errs = append(errs, required(ip.Child("path"), it.Path)...)
		errs = append(errs, projectedPath(it.Path, ip.Child("path"), paths, volume)...)
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(ip, it.Path, "fieldRef and resourceFieldRef cannot both be set"))
		case it.FieldRef != nil:
			errs = append(errs, fieldRef(it.FieldRef, volumeFieldPaths, ip.Child("fieldRef"))...)
		case it.ResourceFieldRef != nil:
			errs = append(errs, resourceFieldRef(it.ResourceFieldRef, true, ip.Child("resourceFieldRef"))...)
		default:
			errs = append(errs, field.Required(ip, "one of fieldRef and resourceFieldRef"))
		}
		errs = append(errs, fileMode(ip.Child("mode"), it.Mode)...)
	}
	return errs
}

func fieldRef(f *corev1.ObjectFieldSelector, allowed []string, p *field.Path) field.ErrorList {
	if f.APIVersion != "v1" {
		return field.ErrorList{field.NotSupported(p.Child("apiVersion"), f.APIVersion, []string{"v1"})}
	}
	if f.FieldPath == "" {
		return field.ErrorList{field.Required(p.Child("fieldPath"), "")}
	}
	// metadata.labels['key'] and metadata.annotations['key'] name one entry.
	if base, rest, ok := strings.Cut(f.FieldPath, "['"); ok && strings.HasSuffix(rest, "']") {
		key := strings.TrimSuffix(rest, "']")
		switch base {
		case "metadata.labels":
			return appendMsgs(nil, p.Child("fieldPath"), f.FieldPath, validation.IsQualifiedName(key))
		case "metadata.annotations":
			return appendMsgs(nil, p.Child("fieldPath"), f.FieldPath, validation.IsQualifiedName(strings.ToLower(key)))
		}
		return field.ErrorList{field.Invalid(p.Child("fieldPath"), f.FieldPath, "only metadata.labels and metadata.annotations take a subscript")}
	}
	if !slices.Contains(allowed, f.FieldPath) {
		return field.ErrorList{field.NotSupported(p.Child("fieldPath"), f.FieldPath, allowed)}
	}
	return nil
}

func resourceFieldRef(r *corev1.ResourceFieldSelector, inVolume bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if inVolume && r.ContainerName == "" {
		errs = append(errs, field.Required(p.Child("containerName"), "a volume file must name its container"))
	}
	hugepages := strings.HasPrefix(r.Resource, "limits.hugepages-") || strings.HasPrefix(r.Resource, "requests.hugepages-")
	switch {
	case r.Resource == "":
		errs = append(errs, field.Required(p.Child("resource"), ""))
	case !hugepages && !slices.Contains(resourceFieldPaths, r.Resource):
		errs = append(errs, field.NotSupported(p.Child("resource"), r.Resource, resourceFieldPaths))
	}
	if r.Divisor.IsZero() {
		return errs
	}
	allowed := []string{"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
	if strings.HasSuffix(r.Resource, ".cpu") {
		allowed = []string{"1m", "1"}
	}
	if d := r.Divisor.String(); !slices.Contains(allowed, d) {
		errs = append(errs, field.NotSupported(p.Child("divisor"), d, allowed))
	}
	return errs
}

// validateEnvVar checks one env var: its name, and exactly one source for its value.
func validateEnvVar(e *corev1.EnvVar, p *field.Path) field.ErrorList {
	errs := appendMsgs(nil, p.Child("name"), e.Name, validation.IsEnvVarName(e.Name))
	if e.ValueFrom == nil {
		return errs
	}
	vp := p.Child("valueFrom")
	sources := sourceNames(e.ValueFrom)
	switch {
	case len(sources) == 0:
		return append(errs, field.Required(vp, "one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef, fileKeyRef"))
	case len(sources) > 1:
		return append(errs, field.Forbidden(vp, "exactly one value source, found "+strings.Join(sources, ", ")))
	case e.Value != "":
		return append(errs, field.Forbidden(vp, "not with a value: set value or valueFrom"))
	}
	switch s := e.ValueFrom; {
	case s.FieldRef != nil:
		errs = append(errs, fieldRef(s.FieldRef, envFieldPaths, vp.Child("fieldRef"))...)
	case s.ResourceFieldRef != nil:
		errs = append(errs, resourceFieldRef(s.ResourceFieldRef, false, vp.Child("resourceFieldRef"))...)
	case s.ConfigMapKeyRef != nil:
		errs = append(errs, keyRef(vp.Child("configMapKeyRef"), s.ConfigMapKeyRef.Name, s.ConfigMapKeyRef.Key)...)
	case s.SecretKeyRef != nil:
		errs = append(errs, keyRef(vp.Child("secretKeyRef"), s.SecretKeyRef.Name, s.SecretKeyRef.Key)...)
	case s.FileKeyRef != nil:
		f, fp := s.FileKeyRef, vp.Child("fileKeyRef")
		errs = append(errs, required(fp.Child("key"), f.Key)...)
		errs = append(errs, required(fp.Child("volumeName"), f.VolumeName)...)
		if f.VolumeName != "" {
			errs = appendMsgs(errs, fp.Child("volumeName"), f.VolumeName, validation.IsDNS1123Label(f.VolumeName))
		}
		errs = append(errs, required(fp.Child("path"), f.Path)...)
		errs = append(errs, noBacksteps(f.Path, fp.Child("path"))...)
	}
	return errs
}

func keyRef(p *field.Path, name, key string) field.ErrorList {
	errs := objectName(p.Child("name"), name)
	errs = append(errs, required(p.Child("key"), key)...)
	if key != "" {
		errs = appendMsgs(errs, p.Child("key"), key, validation.IsConfigMapKey(key))
	}
	return errs
}

// validateVolumeMount checks one mount as the API server would; whether its volume exists is
// decided per Pod by the injector (a profile may mount a volume the Pod brings).
func validateVolumeMount(m *corev1.VolumeMount, p *field.Path) field.ErrorList {
	errs := required(p.Child("name"), m.Name)
	if !path.IsAbs(m.MountPath) {
		errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be an absolute path"))
	}
	if m.SubPath != "" {
		errs = append(errs, localDescendingPath(m.SubPath, p.Child("subPath"))...)
	}
	if m.SubPathExpr != "" {
		if m.SubPath != "" {
			errs = append(errs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
		}
		errs = append(errs, localDescendingPath(m.SubPathExpr, p.Child("subPathExpr"))...)
	}
	if mp := m.MountPropagation; mp != nil {
		errs = append(errs, oneOf(p.Child("mountPropagation"), *mp, corev1.MountPropagationNone, corev1.MountPropagationHostToContainer, corev1.MountPropagationBidirectional)...)
		if *mp == corev1.MountPropagationBidirectional {
			// The API server allows it only in privileged containers, which a profile cannot know.
			errs = append(errs, field.Forbidden(p.Child("mountPropagation"), "Bidirectional needs a privileged container; a profile cannot rely on one"))
		}
	}
	if r := m.RecursiveReadOnly; r != nil {
		errs = append(errs, oneOf(p.Child("recursiveReadOnly"), *r, corev1.RecursiveReadOnlyDisabled, corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled)...)
		if *r != corev1.RecursiveReadOnlyDisabled {
			if !m.ReadOnly {
				errs = append(errs, field.Forbidden(p.Child("recursiveReadOnly"), "only with readOnly: true"))
			}
			if mp := m.MountPropagation; mp != nil && *mp != corev1.MountPropagationNone {
				errs = append(errs, field.Forbidden(p.Child("recursiveReadOnly"), "only with mountPropagation None or unset"))
			}
		}
	}
	return errs
}

// validateToleration checks one toleration as the API server would.
func validateToleration(t *corev1.Toleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Key != "" {
		errs = appendMsgs(errs, p.Child("key"), t.Key, validation.IsQualifiedName(t.Key))
	}
	switch t.Operator {
	case corev1.TolerationOpEqual, "":
		if t.Key == "" {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Operator, "an empty key needs operator Exists"))
		}
		errs = appendMsgs(errs, p.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))
	case corev1.TolerationOpExists:
		if t.Value != "" {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, "must be empty with operator Exists"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
	}
	if t.Effect != "" {
		errs = append(errs, oneOf(p.Child("effect"), t.Effect, corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		errs = append(errs, field.Invalid(p.Child("tolerationSeconds"), *t.TolerationSeconds, "only with effect NoExecute"))
	}
	return errs
}

// validateAffinity checks the required requirements and preferred terms with the API server's
// rules, then (when those pass) parses them with the scheduler's node-affinity parser: the API
// accepts some values the scheduler cannot use (Gt ["40GB"]), and such a Pod never schedules.
func validateAffinity(a *NodeAffinity, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range a.Required {
		rp := p.Child("required").Index(i)
		if e := nodeSelectorRequirement(&a.Required[i], rp); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		term := corev1.NodeSelectorTerm{MatchExpressions: a.Required[i : i+1]}
		errs = append(errs, schedulerParse(term, "nodeSelectorTerms[0].matchExpressions[0]", rp)...)
	}
	for i := range a.Preferred {
		t := &a.Preferred[i]
		tp := p.Child("preferred").Index(i)
		pp := tp.Child("preference")
		if t.Weight < 1 || t.Weight > 100 {
			errs = append(errs, field.Invalid(tp.Child("weight"), t.Weight, "must be 1 to 100"))
		}
		if len(t.Preference.MatchExpressions) == 0 && len(t.Preference.MatchFields) == 0 {
			errs = append(errs, field.Required(pp, "matchExpressions or matchFields"))
			continue
		}
		var apiErrs field.ErrorList
		for j := range t.Preference.MatchExpressions {
			apiErrs = append(apiErrs, nodeSelectorRequirement(&t.Preference.MatchExpressions[j], pp.Child("matchExpressions").Index(j))...)
		}
		for j := range t.Preference.MatchFields {
			apiErrs = append(apiErrs, nodeFieldRequirement(&t.Preference.MatchFields[j], pp.Child("matchFields").Index(j))...)
		}
		if errs = append(errs, apiErrs...); len(apiErrs) == 0 {
			errs = append(errs, schedulerParse(t.Preference, "nodeSelectorTerms[0]", pp)...)
		}
	}
	return errs
}

func nodeSelectorRequirement(r *corev1.NodeSelectorRequirement, p *field.Path) field.ErrorList {
	errs := appendMsgs(nil, p.Child("key"), r.Key, validation.IsQualifiedName(r.Key))
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			errs = append(errs, field.Required(p.Child("values"), "In and NotIn need values"))
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			errs = append(errs, field.Forbidden(p.Child("values"), "Exists and DoesNotExist take no values"))
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			errs = append(errs, field.Required(p.Child("values"), "Gt and Lt take exactly one integer value"))
		}
	default:
		return append(errs, field.NotSupported(p.Child("operator"), r.Operator, []corev1.NodeSelectorOperator{
			corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
			corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}))
	}
	for i, v := range r.Values {
		errs = appendMsgs(errs, p.Child("values").Index(i), v, validation.IsValidLabelValue(v))
	}
	return errs
}

// nodeFieldRequirement: matchFields select on metadata.name only, with In or NotIn and one node name.
func nodeFieldRequirement(r *corev1.NodeSelectorRequirement, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Key != "metadata.name" {
		errs = append(errs, field.NotSupported(p.Child("key"), r.Key, []string{"metadata.name"}))
	}
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) != 1 {
			errs = append(errs, field.Required(p.Child("values"), "exactly one node name"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("operator"), r.Operator, []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn}))
	}
	for i, v := range r.Values {
		errs = appendMsgs(errs, p.Child("values").Index(i), v, validation.IsDNS1123Subdomain(v))
	}
	return errs
}

// schedulerParse runs the scheduler's parser on one term and re-roots its errors, which are
// rooted at "nodeSelectorTerms[0]...", at the profile's field.
func schedulerParse(term corev1.NodeSelectorTerm, root string, p *field.Path) field.ErrorList {
	_, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}})
	if err == nil {
		return nil
	}
	var errs field.ErrorList
	for _, e := range utilerrors.Flatten(utilerrors.NewAggregate([]error{err})).Errors() {
		fe, ok := e.(*field.Error)
		if !ok {
			errs = append(errs, field.Invalid(p, "", "the scheduler cannot parse this: "+e.Error()))
			continue
		}
		c := *fe
		c.Field = p.String() + strings.TrimPrefix(fe.Field, root)
		c.Detail = "the scheduler cannot parse this (the Pod would stay Pending): " + fe.Detail
		errs = append(errs, &c)
	}
	return errs
}

// validateResourceName accepts what a container may request: a standard resource (cpu, memory,
// ephemeral-storage, hugepages-<size>), a kubernetes.io/ name, or an extended resource.
func validateResourceName(name corev1.ResourceName, p *field.Path) field.ErrorList {
	s := string(name)
	if msgs := validation.IsQualifiedName(s); len(msgs) > 0 {
		return appendMsgs(nil, p, s, msgs)
	}
	if !strings.Contains(s, "/") {
		switch {
		case name == corev1.ResourceCPU, name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage,
			strings.HasPrefix(s, corev1.ResourceHugePagesPrefix):
			return nil
		}
		return field.ErrorList{field.Invalid(p, s, "must be cpu, memory, ephemeral-storage, hugepages-<size> or a domain-prefixed (extended) resource")}
	}
	if !strings.Contains(s, "kubernetes.io/") && len(validation.IsQualifiedName("requests."+s)) > 0 {
		return field.ErrorList{field.Invalid(p, s, "does not follow the extended resource name standard")}
	}
	return nil
}

// isExtended reports an extended resource: domain-prefixed outside kubernetes.io.
func isExtended(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/") && !strings.HasPrefix(s, "requests.")
}

// sourceNames lists the JSON names of the fields set on a one-of struct (a volume source, a
// projection, an env var's valueFrom), via its JSON form so sources added in a later API
// version are counted too.
func sourceNames(v any) []string {
	b, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return slices.Sorted(maps.Keys(m))
}

func required(p *field.Path, v string) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return nil
}

// objectName checks a reference to a ConfigMap or Secret: a DNS subdomain.
func objectName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return appendMsgs(nil, p, name, validation.IsDNS1123Subdomain(name))
}

func oneOf[T ~string](p *field.Path, v T, allowed ...T) field.ErrorList {
	if slices.Contains(allowed, v) {
		return nil
	}
	return field.ErrorList{field.NotSupported(p, v, allowed)}
}

func inRange(p *field.Path, v, lo, hi int64) field.ErrorList {
	return appendMsgs(nil, p, v, validation.IsInRange(int(v), int(lo), int(hi)))
}

func fileMode(p *field.Path, m *int32) field.ErrorList {
	if m != nil && (*m < 0 || *m > 0o777) {
		return field.ErrorList{field.Invalid(p, *m, fileModeMsg)}
	}
	return nil
}

func user(p *field.Path, u *int64) field.ErrorList {
	if u != nil && *u < 0 {
		return field.ErrorList{field.Invalid(p, *u, "must not be negative")}
	}
	return nil
}

// signerName checks "<domain>/<path>" as certificate signer names are written.
func signerName(p *field.Path, s string) field.ErrorList {
	domain, rest, ok := strings.Cut(s, "/")
	if !ok || rest == "" {
		return field.ErrorList{field.Invalid(p, s, "must be <domain>/<path>")}
	}
	return appendMsgs(nil, p, s, validation.IsDNS1123Subdomain(domain))
}

func noBacksteps(target string, p *field.Path) field.ErrorList {
	if slices.Contains(strings.Split(target, "/"), "..") {
		return field.ErrorList{field.Invalid(p, target, "must not contain '..'")}
	}
	return nil
}

func localDescendingPath(target string, p *field.Path) field.ErrorList {
	errs := noBacksteps(target, p)
	if path.IsAbs(target) {
		errs = append(errs, field.Invalid(p, target, "must be a relative path"))
	}
	return errs
}

// projectedPath checks a file path inside a volume; in a projected volume (paths not nil) it
// must also be unique across the volume's sources.
func projectedPath(target string, p *field.Path, paths map[string]bool, volume *field.Path) field.ErrorList {
	errs := localDescendingPath(target, p)
	if strings.HasPrefix(target, "..") && !strings.HasPrefix(target, "../") {
		errs = append(errs, field.Invalid(p, target, "must not start with '..'"))
	}
	if paths != nil && target != "" {
		if paths[target] {
			errs = append(errs, field.Duplicate(p, target))
		}
		paths[target] = true
	}
	return errs
}

// quantityOK is what the API server accepts for a limit: not negative, whole for extended resources.
func quantityOK(name corev1.ResourceName, q resource.Quantity, p *field.Path) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "must be positive")}
	}
	if isExtended(name) && q.MilliValue()%1000 != 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "extended resources take whole numbers")}
	}
	return nil
}

package policy

// The memory-backed /dev/shm (inject's shm and shmSize). Its parts are policy variables, which
// the API server evaluates afresh for each mutation on the object as it then is.

import (
	"path"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// maxExact is math.MaxInt64/2: inject.fractionOf sizes limits below it in integers, above it in
// floats.
const maxExact = "4611686018427387903"

func (c *compiler) shmMount(s *profile.Shm) corev1.VolumeMount {
	return corev1.VolumeMount{Name: s.VolumeName, MountPath: s.MountPath}
}

func (c *compiler) shmVariables(s *profile.Shm) []admissionregistrationv1.Variable {
	vols := list("object.spec", "volumes")
	name := q(s.VolumeName)
	enforced := c.enforced("volumes", s.VolumeName)
	memory := and("has(sv.emptyDir)", "has(sv.emptyDir.medium)", `sv.emptyDir.medium == "Memory"`)
	first := vols + "[variables.shmVolume[0]]"
	vars := []admissionregistrationv1.Variable{
		{Name: "shmVolume", Expression: indexes(vols, "sx", "sx.name == "+name)},
		{Name: "shmMemory", Expression: and("size(variables.shmVolume) > 0", strings.ReplaceAll(memory, "sv", first))},
		{Name: "shmReplace", Expression: and("size(variables.shmVolume) > 0", "!variables.shmMemory", strconv.FormatBool(enforced))},
	}
	foreign := "false"
	if !enforced {
		// ownVolume with the one path /dev/shm: a memory volume mounted elsewhere is the Pod's.
		foreign = and("size(variables.shmVolume) > 0", or("!variables.shmMemory",
			c.allContainers()+".exists(fk, "+list("fk", "volumeMounts")+".exists(fm, fm.name == "+name+" && !"+cleanIs("fm.mountPath", path.Clean(s.MountPath))+"))"))
	}
	vars = append(vars, admissionregistrationv1.Variable{Name: "shmForeign", Expression: foreign})

	// The targeted containers that mount the volume once the mounts are decided.
	var users []string
	for _, l := range []string{"containers", "initContainers"} {
		want := c.wanted("uc", l)
		if want == "false" {
			continue
		}
		_, mounts := c.mountDecision("uc", `""`, c.shmMount(s), "(size(variables.shmVolume) == 0)", "variables.shmForeign")
		users = append(users, list("object.spec", l)+".filter(uc, "+and(want, mounts)+")")
	}
	if len(users) == 0 {
		users = []string{"[]"}
	}
	mem := func(x string) string { return x + ".resources.limits.memory" }
	nonZero := func(x string) string {
		return and("has("+x+".resources)", "has("+x+".resources.limits)", "has("+mem(x)+")", "sign(quantity("+mem(x)+")) != 0")
	}
	largest := "variables.shmUsers.filter(ux, " + nonZero("ux") + " && variables.shmUsers.all(uy, !" + nonZero("uy") +
		" || !quantity(" + mem("uy") + ").isGreaterThan(quantity(" + mem("ux") + "))))"
	pod := "object.spec.resources.limits.memory"
	podNonZero := and("has(object.spec.resources)", "has(object.spec.resources.limits)", "has("+pod+")", "sign(quantity("+pod+")) != 0")
	limit := cond("size(variables.shmLargest) > 0",
		cond(and(podNonZero, "quantity("+pod+").isLessThan(quantity("+mem("variables.shmLargest[0]")+"))"), pod, mem("variables.shmLargest[0]")),
		cond(podNonZero, pod, `""`))

	// inject.fractionOf: max(int64(float64(q.Value()) * f), 1), q.Value() rounding up. The
	// exact integer comes from asInteger, or for a fractional amount from the float estimate
	// corrected with exact comparisons; the product is the same IEEE double as Go's.
	lq := "quantity(variables.shmLimit)"
	est := "int(" + lq + ".asApproximateFloat())"
	ceil := "[" + est + " - 1, " + est + ", " + est + " + 1, " + est + " + 2].filter(cn, !quantity(string(cn)).isLessThan(" + lq + "))[0]"
	value := cond(lq+".isInteger()", lq+".asInteger()", ceil)
	frac := floatLit(s.Fraction)
	bytes := "int(double(" + value + ") * " + frac + ")"
	// Above maxExact Go sizes in floats: ceil(approx * f), written as a decimal integer.
	big := lq + ".asApproximateFloat() * " + frac
	bigInt := "int(" + big + ")"
	bigCeil := bigInt + " + " + cond("double("+bigInt+") < "+big, "1", "0")
	def := ""
	if !s.Default.IsZero() {
		def = s.Default.String()
	}
	size := cond(`variables.shmLimit == ""`, q(def),
		cond("!"+lq+".isLessThan(quantity("+q(maxExact)+"))", canonical("variables.shmBigBytes", 1000, decimalSuffixes),
			canonical("variables.shmBytes", 1024, binarySuffixes)))
	return append(vars,
		admissionregistrationv1.Variable{Name: "shmUsers", Expression: strings.Join(users, " + ")},
		admissionregistrationv1.Variable{Name: "shmLargest", Expression: largest},
		admissionregistrationv1.Variable{Name: "shmLimit", Expression: limit},
		admissionregistrationv1.Variable{Name: "shmBytes", Expression: cond(`variables.shmLimit == "" || !`+lq+".isLessThan(quantity("+q(maxExact)+"))",
			"0", cond(bytes+" < 1", "1", bytes))},
		admissionregistrationv1.Variable{Name: "shmBigBytes", Expression: cond(`variables.shmLimit != "" && !`+lq+".isLessThan(quantity("+q(maxExact)+"))",
			bigCeil, "0")},
		admissionregistrationv1.Variable{Name: "shmSize", Expression: size},
	)
}

var (
	binarySuffixes  = []string{"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	decimalSuffixes = []string{"k", "M", "G", "T", "P", "E"}
)

// canonical writes the integer n as resource.Quantity writes it: BinarySI (base 1024) moves
// every factor of 1024 into the suffix and writes amounts below 1024 as DecimalSI; DecimalSI
// (base 1000) moves factors of 1000.
func canonical(n string, base int64, suffixes []string) string {
	out := "string(" + n + ")"
	pow := int64(1)
	var steps []struct {
		pow    int64
		suffix string
	}
	for _, s := range suffixes {
		pow *= base
		steps = append(steps, struct {
			pow    int64
			suffix string
		}{pow, s})
	}
	for _, st := range steps { // the largest power is tested first, so it wraps outermost
		p := strconv.FormatInt(st.pow, 10)
		out = cond(n+" % "+p+" == 0", "string("+n+" / "+p+") + "+q(st.suffix), out)
	}
	if base == 1024 {
		out = cond(n+" >= 1024", out, canonical(n, 1000, decimalSuffixes[:1]))
	}
	return out
}

// floatLit writes f as a CEL double literal.
func floatLit(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// shm is inject.shm: mount the memory volume in the targeted containers, then add it (or
// replace the Pod's own, when volumes are enforced) sized from the containers that mount it.
func (c *compiler) shm(s *profile.Shm) string {
	mounts := c.forTargets(func(cc, p string) string {
		ops, _ := c.mountDecision(cc, p, c.shmMount(s), "(size(variables.shmVolume) == 0)", "variables.shmForeign")
		return ops
	})
	tn := "Object.spec.volumes"
	sized := tn + "{name: " + q(s.VolumeName) + ", emptyDir: " + tn + `.emptyDir{medium: "Memory", sizeLimit: variables.shmSize}}`
	unsized := tn + "{name: " + q(s.VolumeName) + ", emptyDir: " + tn + `.emptyDir{medium: "Memory"}}`
	v := cond(`variables.shmSize == ""`, unsized, sized)
	vols := list("object.spec", "volumes")
	volume := cond("variables.shmReplace", "["+patch("replace", `"/spec/volumes/" + string(variables.shmVolume[0])`, v)+"]",
		appendOp(vols, q("/spec/volumes"), v))
	add := cond(or("size(variables.shmUsers) == 0", and("size(variables.shmVolume) > 0", "!variables.shmReplace")), "[]", volume)
	return cond(and("has(object.spec.hostIPC)", "object.spec.hostIPC"), "[]", "("+mounts+") + "+add)
}

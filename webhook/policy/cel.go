package policy

// CEL text builders. Every profile value is known when the policy is compiled, so the
// compiler writes it into the expressions: literals (lit) for what a mutation adds, and
// predicates (same) that compare a value of the Pod with one of the profile's as the webhook
// does (apimachinery's semantic equality: an absent field equals its zero value, quantities
// compare by amount). The Pod reaches CEL as untyped JSON, so both walk the Go type.

import (
	"fmt"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// q quotes s as a CEL string literal (CEL accepts Go's escapes).
func q(s string) string { return strconv.Quote(s) }

// celReserved are CEL identifiers that cannot follow a dot.
var celReserved = map[string]bool{"as": true, "break": true, "const": true, "continue": true, "else": true,
	"for": true, "function": true, "if": true, "import": true, "let": true, "loop": true, "package": true,
	"namespace": true, "return": true, "var": true, "void": true, "while": true, "in": true,
	"true": true, "false": true, "null": true}

// field is e.name, or e["name"] for a reserved word.
func field(e, name string) string {
	if celReserved[name] {
		return e + "[" + q(name) + "]"
	}
	return e + "." + name
}

// has tests presence of e.name.
func has(e, name string) string {
	if celReserved[name] {
		return q(name) + " in " + e
	}
	return "has(" + e + "." + name + ")"
}

// or0 is e.name, or zero when absent (zero is a CEL literal of the field's type).
func or0(e, name, zero string) string {
	return "(" + has(e, name) + " ? " + field(e, name) + " : " + zero + ")"
}

// list is the list e.name, empty when absent.
func list(e, name string) string { return or0(e, name, "[]") }

func and(parts ...string) string {
	var keep []string
	for _, p := range parts {
		switch p {
		case "false", "(false)":
			return "false"
		case "", "true", "(true)":
		default:
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return "true"
	}
	return "(" + strings.Join(keep, " && ") + ")"
}

func or(parts ...string) string {
	var keep []string
	for _, p := range parts {
		switch p {
		case "true", "(true)":
			return "true"
		case "", "false", "(false)":
		default:
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return "false"
	}
	return "(" + strings.Join(keep, " || ") + ")"
}

func cond(c, then, els string) string {
	switch c {
	case "true", "(true)":
		return then
	case "false", "(false)":
		return els
	}
	return "(" + c + " ? " + then + " : " + els + ")"
}

// patch is one JSONPatch operation; value may be empty (remove).
func patch(op, pathExpr, value string) string {
	if value == "" {
		return "JSONPatch{op: " + q(op) + ", path: " + pathExpr + "}"
	}
	return "JSONPatch{op: " + q(op) + ", path: " + pathExpr + ", value: " + value + "}"
}

// escape escapes a JSON Pointer token, at compile time.
func escape(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }

var (
	quantityType    = reflect.TypeFor[resource.Quantity]()
	intOrStringType = reflect.TypeFor[intstr.IntOrString]()
)

// jsonFields lists a struct's JSON fields, inline members flattened, with the Go field index.
type jsonField struct {
	name   string
	index  []int
	typ    reflect.Type
	inline bool
}

func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
			for _, in := range jsonFields(f.Type) {
				in.index = append([]int{i}, in.index...)
				out = append(out, in)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, index: []int{i}, typ: f.Type})
	}
	return out
}

// lit writes v as a CEL value for a JSON patch: typed Object literals for structs (typeName is
// the field path from the root, e.g. "Object.spec.volumes", which the API server checks),
// maps and lists as CEL aggregates, quantities as strings.
func lit(v reflect.Value, typeName string) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	switch {
	case v.Type() == quantityType:
		qv := v.Interface().(resource.Quantity)
		return q(qv.String())
	case v.Type() == intOrStringType:
		is := v.Interface().(intstr.IntOrString)
		if is.Type == intstr.Int {
			return strconv.Itoa(int(is.IntVal))
		}
		return q(is.StrVal)
	}
	switch v.Kind() {
	case reflect.Struct:
		var parts []string
		for _, f := range jsonFields(v.Type()) {
			fv := v.FieldByIndex(f.index)
			if fv.IsZero() && !(fv.Kind() == reflect.Pointer && !fv.IsNil()) {
				continue
			}
			parts = append(parts, f.name+": "+lit(fv, typeName+"."+f.name))
		}
		return typeName + "{" + strings.Join(parts, ", ") + "}"
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		var parts []string
		for _, k := range keys {
			parts = append(parts, q(k.String())+": "+lit(v.MapIndex(k), typeName))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case reflect.Slice:
		var parts []string
		for i := 0; i < v.Len(); i++ {
			parts = append(parts, lit(v.Index(i), typeName))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.String:
		return q(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	}
	panic(fmt.Sprintf("policy: no CEL literal for %s", v.Type()))
}

// sameOpts adjusts same for one field: mountPath compares cleaned paths (sameMount).
type sameOpts struct{ cleanMountPath bool }

// same is a CEL predicate: the Pod's value e equals want, as equality.Semantic.DeepEqual
// decides on the typed objects.
func same(e string, want reflect.Value, o sameOpts) string {
	for want.Kind() == reflect.Pointer {
		want = want.Elem()
	}
	t := want.Type()
	switch {
	case t == quantityType:
		qv := want.Interface().(resource.Quantity)
		return "quantity(" + e + ").compareTo(quantity(" + q(qv.String()) + ")) == 0"
	case t == intOrStringType:
		is := want.Interface().(intstr.IntOrString)
		if is.Type == intstr.Int {
			return e + " == " + strconv.Itoa(int(is.IntVal))
		}
		return e + " == " + q(is.StrVal)
	}
	switch t.Kind() {
	case reflect.Struct:
		var parts []string
		for _, f := range jsonFields(t) {
			fv := want.FieldByIndex(f.index)
			if isZero(fv) {
				parts = append(parts, absentOrZero(e, f.name, f.typ))
				continue
			}
			if o.cleanMountPath && f.name == "mountPath" {
				parts = append(parts, has(e, f.name)+" && "+cleanIs(field(e, f.name), fv.String()))
				continue
			}
			parts = append(parts, has(e, f.name)+" && "+same(field(e, f.name), fv, sameOpts{}))
		}
		return and(parts...)
	case reflect.Map:
		keys := want.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		parts := []string{"size(" + e + ") == " + strconv.Itoa(len(keys))}
		for _, k := range keys {
			parts = append(parts, q(k.String())+" in "+e, same(e+"["+q(k.String())+"]", want.MapIndex(k), sameOpts{}))
		}
		return and(parts...)
	case reflect.Slice:
		parts := []string{"size(" + e + ") == " + strconv.Itoa(want.Len())}
		for i := 0; i < want.Len(); i++ {
			parts = append(parts, same(e+"["+strconv.Itoa(i)+"]", want.Index(i), sameOpts{}))
		}
		return and(parts...)
	}
	return e + " == " + lit(want, "")
}

// isZero is what semantic equality treats as unset: nil, zero, or an empty list or map.
func isZero(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Pointer:
		return v.IsNil()
	}
	if v.Type() == quantityType {
		qv := v.Interface().(resource.Quantity)
		return qv.IsZero() && qv.Format == ""
	}
	return v.IsZero()
}

// absentOrZero: the Pod's e.name is unset (absent, or the zero value JSON may still carry).
func absentOrZero(e, name string, t reflect.Type) string {
	f := field(e, name)
	switch {
	case t.Kind() == reflect.Pointer:
		return "!" + has(e, name)
	case t == quantityType:
		return "(!" + has(e, name) + " || sign(quantity(" + f + ")) == 0)"
	case t == intOrStringType:
		return "(!" + has(e, name) + " || " + f + " == 0)"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Map:
		return "(!" + has(e, name) + " || size(" + f + ") == 0)"
	case reflect.String:
		return "(!" + has(e, name) + " || " + f + " == \"\")"
	case reflect.Bool:
		return "(!" + has(e, name) + " || !" + f + ")"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "(!" + has(e, name) + " || " + f + " == 0)"
	case reflect.Struct:
		var parts []string
		for _, in := range jsonFields(t) {
			parts = append(parts, absentOrZero(f, in.name, in.typ))
		}
		return "(!" + has(e, name) + " || " + and(parts...) + ")"
	}
	panic(fmt.Sprintf("policy: no zero test for %s", t))
}

// cleanIs tests path.Clean(e) == want for an absolute want, as the webhook compares mount paths.
// A path without ".", "//" or a trailing "/" is its own Clean (for "/" itself want is never "/").
// The segments other than "", "." and ".." survive unless a later ".." pops them: segment j is
// popped when some prefix of what follows it holds more ".." than other segments.
func cleanIs(e, want string) string {
	want = path.Clean(want)
	var segs []string
	for _, s := range strings.Split(want, "/") {
		if s != "" {
			segs = append(segs, q(s))
		}
	}
	split := e + `.split("/").filter(ps, ps != "" && ps != ".")`
	survivors := split + `.transformList(pj, ps, ps != ".." && lists.range(size(` + split + `)).all(pk, pk <= pj || 2 * size(` +
		split + `.slice(pj + 1, pk + 1).filter(px, px == "..")) <= pk - pj), ps)`
	// Most paths are clean already (no ".", no "//", no trailing "/"): compared as they are.
	clean := "!" + e + `.contains(".") && !` + e + `.contains("//") && !` + e + `.endsWith("/")`
	return "(" + clean + " ? " + e + " == " + q(want) + " : (" + e + `.startsWith("/") && ` + survivors + " == [" + strings.Join(segs, ", ") + "]))"
}

package app

import (
	"fmt"
	"reflect"
	"strings"
)

// unknownFields lists the paths of fields in v (decoded JSON) that type t
// does not have. Maps with non-struct values and fields of type any accept
// everything.
func unknownFields(v any, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, reported by the decoder
		}
		fields := jsonFields(t)
		var out []string
		for k, fv := range m {
			ft, ok := fields[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, unknownFields(fv, ft, path+"."+k)...)
		}
		return out
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok {
			return nil
		}
		var out []string
		for i, item := range items {
			out = append(out, unknownFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		var out []string
		for k, item := range m {
			out = append(out, unknownFields(item, t.Elem(), path+"."+k)...)
		}
		return out
	}
	return nil
}

// jsonFields maps JSON field names of struct t to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// specTypeOf returns the type of the Spec field of the struct out points to.
func specTypeOf(out any) reflect.Type {
	t := reflect.TypeOf(out).Elem()
	f, _ := t.FieldByName("Spec")
	return f.Type
}

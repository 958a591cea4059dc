package report

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDocumentsJSONFields: every field name of the JSON report
// (report.Document, recursively) and of export --flows records appears in
// the README, in backquotes.
func TestREADMEDocumentsJSONFields(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	seen := map[reflect.Type]bool{}
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Array || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] || rt.PkgPath() == "time" {
			return
		}
		seen[rt] = true
		for i := range rt.NumField() {
			f := rt.Field(i)
			tag := strings.Split(f.Tag.Get("json"), ",")[0]
			if !f.IsExported() || tag == "-" {
				continue
			}
			if tag == "" {
				if f.Anonymous {
					walk(f.Type, path)
				}
				continue
			}
			if !regexp.MustCompile("`" + regexp.QuoteMeta(tag) + `(\[\])?` + "`").MatchString(readme) {
				t.Errorf("README does not document JSON field %s.%s", path, tag)
			}
			walk(f.Type, path+"."+tag)
		}
	}
	walk(reflect.TypeOf(Document{}), "")
	walk(reflect.TypeOf(FlowRecord{}), "export --flows")
}

package ingest

import (
	"fmt"
	"sort"
)

// defaultMaxDiagnostics is used when Options.MaxDiagnostics is zero.
const defaultMaxDiagnostics = 100

// diagFolder collects the Diagnostics of one file, folding repeated problems
// of the same class into one Diagnostic with a Count. A class is a short
// stable string chosen by the caller ("caplen-too-big", "bad-option"); the
// first occurrence of a class keeps its Where/Offset/Msg. Beyond max distinct
// classes, further ones are folded into one "more diagnostics" entry per Kind.
type diagFolder struct {
	file  string
	max   int
	list  []Diagnostic
	index map[string]int // class → position in list
}

func newDiagFolder(file string, max int) *diagFolder {
	if max <= 0 {
		max = defaultMaxDiagnostics
	}
	return &diagFolder{file: file, max: max}
}

// add records one occurrence of class. where/offset describe the record,
// bytes how many input bytes were skipped (0 if none).
func (f *diagFolder) add(class string, kind DiagKind, where string, offset, bytes int64, msg string, err error) {
	if f.index == nil {
		f.index = make(map[string]int)
	}
	key := string(kind) + "\x00" + class
	if i, ok := f.index[key]; ok {
		f.list[i].Count++
		f.list[i].Bytes += bytes
		return
	}
	if len(f.index) >= f.max {
		key = string(kind) + "\x00\x00overflow"
		if i, ok := f.index[key]; ok {
			f.list[i].Count++
			f.list[i].Bytes += bytes
			return
		}
		where, msg, err = "", fmt.Sprintf("further %s diagnostics folded (first: %s)", kind, msg), nil
	}
	f.index[key] = len(f.list)
	f.list = append(f.list, Diagnostic{
		File: f.file, Kind: kind, Where: where, Offset: offset, Count: 1, Bytes: bytes, Msg: msg, Err: err,
	})
}

// diagnostics returns a copy of the folded list in order of first occurrence.
func (f *diagFolder) diagnostics() []Diagnostic {
	out := make([]Diagnostic, len(f.list))
	copy(out, f.list)
	return out
}

// SortDiagnostics orders diagnostics by file, offset, kind and message, for
// deterministic output when lists of several sources are combined.
func SortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Msg < b.Msg
	})
}

package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flowblame/flowblame/ingest"
)

// Policy is an allow-list for CI replays (`analyze --policy FILE`): traffic
// outside it becomes a policy-violation finding, so `--fail-on` can turn a
// replayed bundle into a regression test. The file is JSON:
//
//	{
//	  "allow_processes": ["nginx", "/usr/sbin/sshd"],  // comm or exe path (glob)
//	  "allow_countries": ["DE", "NL"],                 // ISO codes of remote hosts
//	  "allow_asns":      [24940],
//	  "max_tx_bps":      12500000,                     // host peak 2 s TX rate, bytes/s
//	  "max_rx_bps":      0,                            // 0 = no limit
//	  "max_process_bps": 5000000,                      // any process's peak 2 s rate, bytes/s
//	  "ignore_findings": ["cloud-agent"],              // rule IDs to drop
//	  "severity":        "high"                        // of violations (default high)
//	}
//
// Empty lists allow everything.
type Policy struct {
	AllowProcesses []string `json:"allow_processes"`
	AllowCountries []string `json:"allow_countries"`
	AllowASNs      []uint   `json:"allow_asns"`
	MaxTXBps       float64  `json:"max_tx_bps"`
	MaxRXBps       float64  `json:"max_rx_bps"`
	MaxProcessBps  float64  `json:"max_process_bps"`
	IgnoreFindings []string `json:"ignore_findings"`
	Severity       Severity `json:"severity"`
}

// ParsePolicy reads a policy file; unknown fields are an error (a typo must
// not silently allow everything).
func ParsePolicy(r io.Reader) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse policy: %w", err)
	}
	switch p.Severity {
	case "":
		p.Severity = SevHigh
	case SevInfo, SevLow, SevMedium, SevHigh, SevCritical:
	default:
		return nil, fmt.Errorf("parse policy: severity %q: want info, low, medium, high or critical", p.Severity)
	}
	for _, pat := range p.AllowProcesses {
		if _, err := filepath.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("parse policy: allow_processes pattern %q: %w", pat, err)
		}
	}
	return &p, nil
}

func (p *Policy) processAllowed(comm string, info ingest.ProcessInfo) bool {
	for _, pat := range p.AllowProcesses {
		for _, s := range []string{comm, info.Comm, info.Exe} {
			if s == "" {
				continue
			}
			if ok, _ := filepath.Match(pat, s); ok {
				return true
			}
		}
	}
	return false
}

// Check returns one policy-violation finding per kind of violation.
func (p *Policy) Check(r *Result, procs map[ingest.ProcKey]ingest.ProcessInfo, geo GeoLookup) []Finding {
	var out []Finding
	add := func(summary string, ev []string) {
		out = append(out, Finding{ID: RulePolicy, Severity: p.Severity, Summary: "policy: " + summary, Evidence: ev,
			Next: "Either the policy is out of date or this traffic is new: review it before changing the policy."})
	}
	if len(p.AllowProcesses) > 0 {
		var ev []string
		for _, ps := range r.Processes {
			if !p.processAllowed(ps.Comm, procs[ps.Key]) {
				ev = append(ev, fmt.Sprintf("%s[%d] %s: %s sent, %s received", ps.Comm, ps.Key.PID, procs[ps.Key].Exe, human(ps.Traffic.Out.Wire), human(ps.Traffic.In.Wire)))
			}
		}
		if len(ev) > 0 {
			add(fmt.Sprintf("%d process(es) outside allow_processes used the network", len(ev)), ev)
		}
	}
	if len(p.AllowCountries) > 0 || len(p.AllowASNs) > 0 {
		var evC, evA []string
		for _, h := range r.Remotes {
			l := Locate(geo, h.Addr)
			if l.Special != "" {
				continue
			}
			if len(p.AllowCountries) > 0 && l.Country != "" && !slices.ContainsFunc(p.AllowCountries, func(c string) bool { return strings.EqualFold(c, l.Country) }) {
				evC = append(evC, fmt.Sprintf("%s (%s): %s", h.Addr, l.Country, human(h.Traffic.Out.Wire+h.Traffic.In.Wire)))
			}
			if len(p.AllowASNs) > 0 && l.ASN != 0 && !slices.Contains(p.AllowASNs, l.ASN) {
				evA = append(evA, fmt.Sprintf("%s (AS%d %s): %s", h.Addr, l.ASN, l.ASOrg, human(h.Traffic.Out.Wire+h.Traffic.In.Wire)))
			}
		}
		if len(evC) > 0 {
			add(fmt.Sprintf("traffic with %d remote host(s) outside allow_countries", len(evC)), evC)
		}
		if len(evA) > 0 {
			add(fmt.Sprintf("traffic with %d remote host(s) outside allow_asns", len(evA)), evA)
		}
	}
	if p.MaxTXBps > 0 && r.Totals.Traffic.PeakOut.Rate > p.MaxTXBps {
		add(fmt.Sprintf("peak TX %s exceeds max_tx_bps %s", humanRate(r.Totals.Traffic.PeakOut.Rate), humanRate(p.MaxTXBps)),
			[]string{"at " + tsStr(r.Totals.Traffic.PeakOut.At)})
	}
	if p.MaxRXBps > 0 && r.Totals.Traffic.PeakIn.Rate > p.MaxRXBps {
		add(fmt.Sprintf("peak RX %s exceeds max_rx_bps %s", humanRate(r.Totals.Traffic.PeakIn.Rate), humanRate(p.MaxRXBps)),
			[]string{"at " + tsStr(r.Totals.Traffic.PeakIn.At)})
	}
	if p.MaxProcessBps > 0 {
		var ev []string
		for _, ps := range r.Processes {
			if ps.Traffic.Peak.Rate > p.MaxProcessBps {
				ev = append(ev, fmt.Sprintf("%s[%d]: peak %s at %s", ps.Comm, ps.Key.PID, humanRate(ps.Traffic.Peak.Rate), tsStr(ps.Traffic.Peak.At)))
			}
		}
		if len(ev) > 0 {
			add(fmt.Sprintf("%d process(es) above max_process_bps %s", len(ev), humanRate(p.MaxProcessBps)), ev)
		}
	}
	return out
}

// Filter drops findings whose rule the policy ignores.
func (p *Policy) Filter(fs []Finding) []Finding {
	if p == nil || len(p.IgnoreFindings) == 0 {
		return fs
	}
	return slices.DeleteFunc(fs, func(f Finding) bool { return slices.Contains(p.IgnoreFindings, f.ID) })
}

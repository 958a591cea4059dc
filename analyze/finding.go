package analyze

import "github.com/flowblame/flowblame/ingest"

// Severity grades a Finding.
type Severity string

// Severities, from least to most severe.
const (
	SevInfo     Severity = "info"
	SevLow      Severity = "low"
	SevMedium   Severity = "medium"
	SevHigh     Severity = "high"
	SevCritical Severity = "critical"
)

// Finding is one rule's conclusion: a stable ID, a severity, a one-line
// verdict, evidence lines, and what to do next (the runbook's next step).
type Finding struct {
	ID       string           `json:"id"`
	Severity Severity         `json:"severity"`
	Summary  string           `json:"summary"`
	Evidence []string         `json:"evidence"`
	Next     string           `json:"next_step"`
	Flows    []FlowKey        `json:"flows,omitempty"`
	Procs    []ingest.ProcKey `json:"processes,omitempty"`
}

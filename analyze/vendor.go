package analyze

import (
	"strings"

	"github.com/flowblame/flowblame/ingest"
)

// vendorAgent describes one cloud vendor's agent: the program names it runs
// under (exe basename, or argv[0]/script basename for interpreted agents) and
// the directories it is installed in.
type vendorAgent struct {
	vendor string
	names  []string
	dirs   []string
	// cmd are substrings of the command line (interpreted agents).
	cmd []string
}

// vendorAgents is the table of known cloud-vendor agents. Names compare
// case-sensitively against the exe basename, the argv[0] and argv[1]
// basenames (Python agents such as waagent) and the 15-character comm.
var vendorAgents = []vendorAgent{
	{vendor: "Tencent Cloud", names: []string{"YDService", "YDLive", "YDEdr", "barad_agent", "tat_agent", "sgagent"},
		dirs: []string{"/usr/local/qcloud/", "/usr/local/sa/"}},
	{vendor: "Alibaba Cloud", names: []string{"AliYunDun", "AliYunDunUpdate", "AliYunDunMonitor", "aliyun-service", "AliSecGuard", "assist-daemon", "assist_daemon", "aliyun_assist_update"},
		dirs: []string{"/usr/local/aegis/", "/usr/local/share/aliyun-assist/", "/usr/local/share/assist-daemon/", "/usr/sbin/aliyun"}},
	{vendor: "AWS", names: []string{"amazon-ssm-agent", "ssm-agent-worker", "ssm-session-worker", "amazon-cloudwatch-agent"},
		dirs: []string{"/opt/aws/", "/snap/amazon-ssm-agent/", "/usr/bin/amazon-ssm-agent", "/usr/bin/ssm-"}},
	{vendor: "Azure", names: []string{"waagent", "WALinuxAgent", "omsagent", "mdsd", "AzureMonitorAgent", "azuremonitoragent"},
		dirs: []string{"/var/lib/waagent/", "/opt/microsoft/", "/opt/omi/", "/usr/sbin/waagent"},
		cmd:  []string{"WALinuxAgent", "/usr/sbin/waagent"}},
	{vendor: "Google Cloud", names: []string{"google_guest_agent", "google_osconfig_agent", "google-cloud-ops-agent", "google_cloud_ops_agent_engine", "guest-agent"},
		dirs: []string{"/usr/bin/google_", "/opt/google-cloud-ops-agent/"}},
	{vendor: "Huawei Cloud", names: []string{"hostguard", "hostwatch", "uniagent", "uniagentd"},
		dirs: []string{"/usr/local/hostguard/", "/usr/local/uniagent/"}},
	{vendor: "Oracle Cloud", names: []string{"oracle-cloud-agent", "oracle-cloud-agent-updater"},
		dirs: []string{"/usr/libexec/oracle-cloud-agent/", "/var/lib/oracle-cloud-agent/"}},
	{vendor: "DigitalOcean", names: []string{"droplet-agent", "do-agent"},
		dirs: []string{"/opt/digitalocean/"}},
}

// commLen is the kernel's TASK_COMM_LEN minus the NUL: comm is truncated to
// 15 bytes.
const commLen = 15

func truncComm(s string) string {
	if len(s) > commLen {
		return s[:commLen]
	}
	return s
}

// baseName returns the last path element of a Unix or Windows path, without
// a " (deleted)" suffix.
func baseName(p string) string {
	p = strings.TrimSuffix(p, " (deleted)")
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// VendorAgent reports whether p is a known cloud-vendor agent (Tencent Cloud,
// Alibaba Cloud, AWS, Azure, Google Cloud, Huawei Cloud, Oracle Cloud,
// DigitalOcean) and which vendor. It matches by program name (exe, argv[0],
// argv[1] for interpreted agents, or the truncated comm) or by installation
// directory. A name match at an unexpected path still returns ok; see
// ProcessRisk for the masquerade check.
func VendorAgent(p ingest.ProcessInfo) (vendor string, ok bool) {
	if a := matchVendor(p); a != nil {
		return a.vendor, true
	}
	return "", false
}

func matchVendor(p ingest.ProcessInfo) *vendorAgent {
	cands := []string{baseName(p.Exe)}
	for i := 0; i < len(p.Cmdline) && i < 2; i++ {
		if f := strings.Fields(p.Cmdline[i]); len(f) > 0 {
			cands = append(cands, baseName(f[0]))
		}
	}
	for i := range vendorAgents {
		a := &vendorAgents[i]
		for _, n := range a.names {
			for _, c := range cands {
				if c != "" && c == n {
					return a
				}
			}
			if p.Comm != "" && p.Comm == truncComm(n) {
				return a
			}
		}
		if p.Exe != "" && vendorDir(a, p.Exe) {
			return a
		}
		for _, c := range a.cmd {
			for _, arg := range p.Cmdline {
				if strings.Contains(arg, c) {
					return a
				}
			}
		}
	}
	return nil
}

func vendorDir(a *vendorAgent, exe string) bool {
	for _, d := range a.dirs {
		if strings.HasPrefix(exe, d) {
			return true
		}
	}
	return false
}

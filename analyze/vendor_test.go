package analyze

import (
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

func TestVendorAgent(t *testing.T) {
	tests := []struct {
		name   string
		p      ingest.ProcessInfo
		vendor string
	}{
		{name: "tencent YDService", p: ingest.ProcessInfo{Comm: "YDService", Exe: "/usr/local/qcloud/YunJing/YDEyes/YDService"}, vendor: "Tencent Cloud"},
		{name: "tencent YDLive", p: ingest.ProcessInfo{Comm: "YDLive", Exe: "/usr/local/qcloud/YunJing/YDLive/YDLive"}, vendor: "Tencent Cloud"},
		{name: "tencent barad_agent", p: ingest.ProcessInfo{Comm: "barad_agent", Exe: "/usr/local/qcloud/monitor/barad/bin/barad_agent"}, vendor: "Tencent Cloud"},
		{name: "tencent tat_agent", p: ingest.ProcessInfo{Comm: "tat_agent", Exe: "/usr/local/qcloud/tat_agent/tat_agent"}, vendor: "Tencent Cloud"},
		{name: "tencent sgagent", p: ingest.ProcessInfo{Comm: "sgagent", Exe: "/usr/local/qcloud/stargate/bin/sgagent"}, vendor: "Tencent Cloud"},
		{name: "alibaba AliYunDun", p: ingest.ProcessInfo{Comm: "AliYunDun", Exe: "/usr/local/aegis/aegis_client/aegis_11_91/AliYunDun"}, vendor: "Alibaba Cloud"},
		{name: "alibaba AliYunDunUpdate", p: ingest.ProcessInfo{Comm: "AliYunDunUpdate", Exe: "/usr/local/aegis/aegis_update/AliYunDunUpdate"}, vendor: "Alibaba Cloud"},
		{name: "alibaba aliyun-service", p: ingest.ProcessInfo{Comm: "aliyun-service", Exe: "/usr/sbin/aliyun-service"}, vendor: "Alibaba Cloud"},
		{name: "alibaba AliSecGuard", p: ingest.ProcessInfo{Comm: "AliSecGuard", Exe: "/usr/local/aegis/AliSecGuard/AliSecGuard"}, vendor: "Alibaba Cloud"},
		{name: "alibaba assist-daemon", p: ingest.ProcessInfo{Comm: "assist_daemon", Exe: "/usr/local/share/assist-daemon/assist_daemon"}, vendor: "Alibaba Cloud"},
		{name: "aws ssm agent", p: ingest.ProcessInfo{Comm: "amazon-ssm-agen", Exe: "/usr/bin/amazon-ssm-agent"}, vendor: "AWS"},
		{name: "aws ssm worker", p: ingest.ProcessInfo{Comm: "ssm-agent-worke", Exe: "/usr/bin/ssm-agent-worker"}, vendor: "AWS"},
		{name: "aws cloudwatch by comm only", p: ingest.ProcessInfo{Comm: "amazon-cloudwat"}, vendor: "AWS"},
		{name: "azure waagent (python)", p: ingest.ProcessInfo{Comm: "python3", Exe: "/usr/bin/python3.11", Cmdline: []string{"/usr/bin/python3", "-u", "/usr/sbin/waagent", "-run-exthandlers"}}, vendor: "Azure"},
		{name: "azure WALinuxAgent", p: ingest.ProcessInfo{Comm: "python3", Exe: "/usr/bin/python3", Cmdline: []string{"python3", "bin/WALinuxAgent-2.9.1.1-py3.8.egg"}}, vendor: "Azure"},
		{name: "azure omsagent", p: ingest.ProcessInfo{Comm: "omsagent", Exe: "/opt/microsoft/omsagent/ruby/bin/ruby"}, vendor: "Azure"},
		{name: "azure mdsd", p: ingest.ProcessInfo{Comm: "mdsd", Exe: "/opt/microsoft/azuremonitoragent/bin/mdsd"}, vendor: "Azure"},
		{name: "azure AMA", p: ingest.ProcessInfo{Comm: "AzureMonitorAge", Exe: "/opt/microsoft/azuremonitoragent/bin/agentlauncher"}, vendor: "Azure"},
		{name: "gce guest agent", p: ingest.ProcessInfo{Comm: "google_guest_ag", Exe: "/usr/bin/google_guest_agent"}, vendor: "Google Cloud"},
		{name: "gce osconfig", p: ingest.ProcessInfo{Comm: "google_osconfig", Exe: "/usr/bin/google_osconfig_agent"}, vendor: "Google Cloud"},
		{name: "gce ops agent", p: ingest.ProcessInfo{Comm: "google_cloud_op", Exe: "/opt/google-cloud-ops-agent/libexec/google_cloud_ops_agent_engine"}, vendor: "Google Cloud"},
		{name: "huawei hostguard", p: ingest.ProcessInfo{Comm: "hostguard", Exe: "/usr/local/hostguard/bin/hostguard"}, vendor: "Huawei Cloud"},
		{name: "huawei uniagent", p: ingest.ProcessInfo{Comm: "uniagentd", Exe: "/usr/local/uniagent/bin/uniagentd"}, vendor: "Huawei Cloud"},
		{name: "oracle cloud agent", p: ingest.ProcessInfo{Comm: "oracle-cloud-ag", Exe: "/usr/libexec/oracle-cloud-agent/agent"}, vendor: "Oracle Cloud"},
		{name: "do droplet-agent", p: ingest.ProcessInfo{Comm: "droplet-agent", Exe: "/opt/digitalocean/bin/droplet-agent"}, vendor: "DigitalOcean"},
		{name: "do do-agent", p: ingest.ProcessInfo{Comm: "do-agent", Exe: "/opt/digitalocean/bin/do-agent"}, vendor: "DigitalOcean"},
		{name: "not an agent", p: ingest.ProcessInfo{Comm: "nginx", Exe: "/usr/sbin/nginx"}, vendor: ""},
		{name: "empty", p: ingest.ProcessInfo{}, vendor: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := VendorAgent(tc.p)
			if v != tc.vendor || ok != (tc.vendor != "") {
				t.Errorf("VendorAgent = %q, %v; want %q", v, ok, tc.vendor)
			}
		})
	}
}

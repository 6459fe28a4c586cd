{{/* Object names: "<release>-purpose-enforcer", or the release name when it already says so. */}}
{{- define "purpose-enforcer.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 53 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object, beside a component's selector labels (name, instance,
component). app.kubernetes.io/name is set per component below: the
Prometheus Operator takes the job label from it (jobLabel), and the alert rules select
the jobs "purpose-enforcer" and "purpose-enforcer-lag", so it is fixed, not derived from
the release. */}}
{{- define "purpose-enforcer.commonLabels" -}}
app.kubernetes.io/part-of: purpose-enforcer
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "purpose-enforcer.workerSelector" -}}
app.kubernetes.io/name: purpose-enforcer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "purpose-enforcer.lagSelector" -}}
app.kubernetes.io/name: purpose-enforcer-lag
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: lag-exporter
{{- end -}}

{{- define "purpose-enforcer.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "purpose-enforcer.policyConfigMap" -}}
{{- .Values.policy.existingConfigMap | default (printf "%s-policy" (include "purpose-enforcer.fullname" .)) -}}
{{- end -}}

{{/* The policy text the chart ships: policy.content, else the project's default policy. */}}
{{- define "purpose-enforcer.policyText" -}}
{{- .Values.policy.content | default (.Files.Get "files/policy.yaml") -}}
{{- end -}}

{{/* Variables the chart sets from its own values: worker.env / lagExporter.env may not
set them again (Kubernetes would keep the last of two, silently). */}}
{{- define "purpose-enforcer.chartVariables" -}}
ENFORCER_INSTANCE_ID ENFORCER_BOOTSTRAP_SERVERS ENFORCER_GROUP_ID ENFORCER_SOURCE_TOPIC
ENFORCER_SINK_TOPIC ENFORCER_VIOLATIONS_TOPIC ENFORCER_DEADLETTER_TOPIC ENFORCER_METRICS_TOPIC
ENFORCER_POLICY_FILE ENFORCER_FINGERPRINT_KEY_FILE ENFORCER_FINGERPRINT_KEY ENFORCER_MODE
ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE
ENFORCER_LOG_LEVEL ENFORCER_LOG_FORMAT ENFORCER_HTTP_HOST ENFORCER_HTTP_PORT ENFORCER_DATA_DIR
{{- end -}}

{{/* Settings given by variable name (worker.env, lagExporter.env); only ENFORCER_* names,
and none the chart sets from its own values. */}}
{{- define "purpose-enforcer.settingsEnv" -}}
{{- $chartVariables := include "purpose-enforcer.chartVariables" . | splitList "\n" | join " " | splitList " " }}
{{- range $name, $value := . }}
{{- if not (hasPrefix "ENFORCER_" $name) }}
{{- fail (printf "env: %s is not an enforcer setting (ENFORCER_*); use extraEnv for other variables" $name) }}
{{- end }}
{{- if eq $name "ENFORCER_FINGERPRINT_KEY" }}
{{- fail "env: ENFORCER_FINGERPRINT_KEY would put the key in values; the workers read it from the Secret fingerprintKey.existingSecret" }}
{{- end }}
{{- if has $name $chartVariables }}
{{- fail (printf "env: %s is set by the chart from its own value (values.yaml); set that value instead" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The validator (vmq-validate watch): names, labels and the ports its checks use on the VerneMQ pods. */}}
{{- define "vernemq.validator.fullname" -}}
{{- printf "%s-validator" (include "vernemq.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Never the VerneMQ selector labels: the StatefulSet, Services and policies of the broker must not select it. */}}
{{- define "vernemq.validator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vernemq.name" . }}-validator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: validator
{{- end -}}

{{- define "vernemq.validator.labels" -}}
helm.sh/chart: {{ include "vernemq.chart" . }}
{{ include "vernemq.validator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.validator.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vernemq
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* NetworkPolicyPorts on the VerneMQ pods: HTTP 8888 always (status, metrics, API); with transport direct
also EPMD, the distribution range and the cluster port, which the probes reach from the validator pod. */}}
{{- define "vernemq.validator.ports" -}}
- port: 8888
  protocol: TCP
{{- if eq .Values.validator.transport "direct" }}
- port: 4369
  protocol: TCP
- port: {{ int .Values.vernemq.distribution.portRangeMin }}
  endPort: {{ int .Values.vernemq.distribution.portRangeMax }}
  protocol: TCP
- port: 44053
  protocol: TCP
{{- end }}
{{- end -}}

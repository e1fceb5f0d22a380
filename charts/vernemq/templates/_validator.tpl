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

{{/* "true" when the validator reads the Gateway API: the chart renders routes (gateway.enabled), or
validator.rbac.gatewayAPI says routes made elsewhere point at the release's Services. */}}
{{- define "vernemq.validator.gatewayAPI" -}}
{{- if or .Values.gateway.enabled .Values.validator.rbac.gatewayAPI -}}true{{- end -}}
{{- end -}}

{{/* The validator's namespaced Gateway API reads, as YAML: namespace -> {grants, routes, gateways, anyGateway}.
grants: referencegrants (release namespace). Without rbac.clusterRead (`--read-scope namespace`): routes in the
release namespace and where the chart puts them (gateway.routeNamespace), and get on the parent Gateway by name
where it lives (gateway.create: the release namespace; else gateway.namespace, else the route namespace); with
only rbac.gatewayAPI (routes made elsewhere): routes and any Gateway of the release namespace. With
rbac.clusterRead the ClusterRole reads routes and Gateways cluster-wide. */}}
{{- define "vernemq.validator.gatewayReads" -}}
{{- $out := dict -}}
{{- if include "vernemq.validator.gatewayAPI" . -}}
{{- $rel := .Release.Namespace -}}
{{- $g := .Values.gateway -}}
{{- $_ := set $out $rel (dict "grants" true "routes" (not .Values.validator.rbac.clusterRead) "gateways" (list) "anyGateway" false) -}}
{{- if not .Values.validator.rbac.clusterRead -}}
{{- if $g.enabled -}}
{{- $routeNs := include "vernemq.routeNamespace" . -}}
{{- $gwNs := ternary $rel ($g.namespace | default $routeNs) (eq (toString $g.create) "true") -}}
{{- if not (hasKey $out $routeNs) -}}{{- $_ := set $out $routeNs (dict "grants" false "routes" false "gateways" (list) "anyGateway" false) -}}{{- end -}}
{{- $_ := set (get $out $routeNs) "routes" true -}}
{{- if not (hasKey $out $gwNs) -}}{{- $_ := set $out $gwNs (dict "grants" false "routes" false "gateways" (list) "anyGateway" false) -}}{{- end -}}
{{- $e := get $out $gwNs -}}
{{- $_ := set $e "gateways" (append $e.gateways (include "vernemq.gatewayName" .)) -}}
{{- else -}}
{{- $_ := set (get $out $rel) "anyGateway" true -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The Gateway API rules of one namespace; call with one entry of vernemq.validator.gatewayReads. */}}
{{- define "vernemq.validator.gatewayRules" -}}
{{- if .routes }}
# Gateway API routes (read namespaced: `--read-scope namespace`).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "tcproutes", "tlsroutes"]
  verbs: ["get", "list"]
{{- end }}
{{- if .grants }}
# ReferenceGrants that let routes of other namespaces use the release's Services (TRAFFIC-020).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["referencegrants"]
  verbs: ["get", "list"]
{{- end }}
{{- if .anyGateway }}
# The Gateways the routes attach to (one GET each, by name).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways"]
  verbs: ["get"]
{{- else if .gateways }}
# The Gateway the routes attach to (one GET, by name; TRAFFIC-017, -022).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways"]
  verbs: ["get"]
  resourceNames:
    {{- range .gateways }}
    - {{ . }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* The options the chart passes to `vmq-validate cluster` (`--cluster-args`), as one string. */}}
{{- define "vernemq.validator.clusterArgs" -}}
{{- $out := list -}}
{{- if not .Values.validator.rbac.clusterRead -}}
{{- $out = append $out "--read-scope namespace" -}}
{{- $routeNs := include "vernemq.routeNamespace" . -}}
{{- if and .Values.gateway.enabled (ne $routeNs .Release.Namespace) -}}
{{- $out = append $out (printf "--route-namespace %s" $routeNs) -}}
{{- end -}}
{{- end -}}
{{- if not (include "vernemq.validator.gatewayAPI" .) -}}
{{- $out = append $out "--no-gateway-api" -}}
{{- end -}}
{{- join " " $out -}}
{{- end -}}

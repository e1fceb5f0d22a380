{{/* Chart name (the app.kubernetes.io/name label). */}}
{{- define "vernemq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-vernemq, or the release name when it already contains the chart name. */}}
{{- define "vernemq.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vernemq.headless" -}}
{{- printf "%s-headless" (include "vernemq.fullname" .) -}}
{{- end -}}

{{- define "vernemq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels (contract: app.kubernetes.io/name + instance). */}}
{{- define "vernemq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vernemq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vernemq.labels" -}}
helm.sh/chart: {{ include "vernemq.chart" . }}
{{ include "vernemq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vernemq
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "vernemq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vernemq.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag[@digest] */}}
{{- define "vernemq.imageRef" -}}
{{- $ref := printf "%s:%s" .repository .tag -}}
{{- if .digest -}}{{- $ref = printf "%s@%s" $ref .digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "vernemq.cookieSecretName" -}}
{{- default (printf "%s-erlang-cookie" (include "vernemq.fullname" .)) .Values.erlangCookie.existingSecret -}}
{{- end -}}

{{- define "vernemq.cookieSecretKey" -}}
{{- if .Values.erlangCookie.existingSecret -}}{{ .Values.erlangCookie.existingSecretKey }}{{- else -}}cookie{{- end -}}
{{- end -}}

{{- define "vernemq.apiKeySecretName" -}}
{{- default (printf "%s-api-key" (include "vernemq.fullname" .)) .Values.apiKey.existingSecret -}}
{{- end -}}

{{- define "vernemq.apiKeySecretKey" -}}
{{- if .Values.apiKey.existingSecret -}}{{ .Values.apiKey.existingSecretKey }}{{- else -}}api-key{{- end -}}
{{- end -}}

{{/* "9100-9109" */}}
{{- define "vernemq.distPortRange" -}}
{{- printf "%d-%d" (int .Values.vernemq.distribution.portRangeMin) (int .Values.vernemq.distribution.portRangeMax) -}}
{{- end -}}

{{/* Client-facing listeners that are enabled: list of dicts name/port/servicePort/nodePort. */}}
{{- define "vernemq.clientPorts" -}}
{{- $ports := list -}}
{{- $defs := dict "mqtt" 1883 "mqtts" 8883 "ws" 8080 "wss" 8443 -}}
{{- range $name := list "mqtt" "mqtts" "ws" "wss" -}}
{{- if (index $.Values.listeners $name).enabled -}}
{{- $ports = append $ports (dict "name" $name "port" (index $defs $name) "servicePort" (index $.Values.service.ports $name) "nodePort" (index $.Values.service.nodePorts $name)) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "ports" $ports) -}}
{{- end -}}

{{/* The secret value: reuse the one stored in the release's Secret (upgrades), else a new random one. */}}
{{- define "vernemq.reuseOrRandom" -}}
{{- $existing := lookup "v1" "Secret" .namespace .name -}}
{{- $value := "" -}}
{{- if and $existing $existing.data -}}
{{- $value = index $existing.data .key | default "" -}}
{{- end -}}
{{- if $value -}}
{{- $value -}}
{{- else -}}
{{- randAlphaNum 48 | b64enc -}}
{{- end -}}
{{- end -}}

{{/*
Readiness "joined": /health/listeners must answer 200 and the node's own cluster view in /status.json
(`mystatus`: every member it knows, running or not) must hold at least 2 nodes. The HTTP listener binds the
pod IP, not loopback. curl and jq ship with the official image.
*/}}
{{- define "vernemq.joinedProbe" -}}
base="http://${MY_POD_IP}:8888"; curl -fsS -m 2 -o /dev/null "$base/health/listeners" || exit 1; n=$(curl -fsS -m 2 "$base/status.json" | jq '[.[0][] | .mystatus[0] // {} | keys[]] | unique | length') || exit 1; [ "${n:-0}" -ge 2 ] || { echo "not joined: cluster view has ${n:-0} node(s)"; exit 1; }
{{- end -}}

{{/*
networkPolicy.clientSources as the validators' `vernemq-toolkit/client-sources` list, sources separated by ';':
an ipBlock becomes its CIDR, a pod source `NAMESPACE/key=value,key2=value2` (namespace from a
kubernetes.io/metadata.name namespaceSelector, else the release namespace). Sources that cannot be written that
way (matchExpressions, namespaces picked by other labels) are left out; the validators then test the ones listed.
*/}}
{{- define "vernemq.clientSourcesAnnotation" -}}
{{- $out := list -}}
{{- range $src := .Values.networkPolicy.clientSources -}}
{{- if $src.ipBlock -}}
{{- $out = append $out $src.ipBlock.cidr -}}
{{- else -}}
{{- $ns := $.Release.Namespace -}}
{{- $ok := true -}}
{{- if $src.namespaceSelector -}}
{{- $nsl := default dict $src.namespaceSelector.matchLabels -}}
{{- if and (eq (len $nsl) 1) (hasKey $nsl "kubernetes.io/metadata.name") (not $src.namespaceSelector.matchExpressions) -}}
{{- $ns = index $nsl "kubernetes.io/metadata.name" -}}
{{- else -}}
{{- $ok = false -}}
{{- end -}}
{{- end -}}
{{- $pl := dict -}}
{{- if $src.podSelector -}}
{{- $pl = default dict $src.podSelector.matchLabels -}}
{{- if $src.podSelector.matchExpressions -}}{{- $ok = false -}}{{- end -}}
{{- end -}}
{{- if $ok -}}
{{- $sel := list -}}
{{- range $k, $v := $pl -}}{{- $sel = append $sel (printf "%s=%v" $k $v) -}}{{- end -}}
{{- $out = append $out (printf "%s/%s" $ns (join "," $sel)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join ";" $out -}}
{{- end -}}

{{/*
The vernemq container's command: start from the seeded vm.args, then the image's start script. The start script
edits vm.args in place and appends join lines; the emptyDir outlives a container restart, and on the second start
its Kubernetes rename (sed s/VerneMQ@.+/.../) cuts the earlier `-eval ...node_join('VerneMQ@peer')` line in half,
so the node dies in do_boot and the container crash-loops until the pod is deleted.
*/}}
{{- define "vernemq.startScript" -}}
cp /vernemq/etc/vm.args.seeded /vernemq/etc/vm.args && exec start_vernemq
{{- end -}}

{{/*
seed-etc: copy the image's /vernemq/etc into the emptyDir without preserving times/owner (the kubelet's emptyDir
is root-owned), drop the image's `-setcookie` so Erlang reads the cookie file (keeping that vm.args as
vm.args.seeded for every start of the vernemq container), and write the Secret's cookie
(env ERLANG_COOKIE) to HOME/.erlang.cookie, mode 0400. printf is a shell builtin: the cookie is in no argv.
*/}}
{{- define "vernemq.seedScript" -}}
set -eu; cp -R /vernemq/etc/. /seed/etc/; sed -i '/^-setcookie/d' /seed/etc/vm.args; cp /seed/etc/vm.args /seed/etc/vm.args.seeded; umask 077; rm -f /seed/home/.erlang.cookie; printf '%s' "$ERLANG_COOKIE" > /seed/home/.erlang.cookie; chmod 0400 /seed/home/.erlang.cookie
{{- end -}}

{{/*
preStop (statefulset.leaveOnScaleDown): read the StatefulSet's spec.replicas with the pod's token (passed to curl on
stdin, not argv); when this pod's ordinal is at least that, leave the cluster with queue migration. Any failure to
read means "not a scale-down": the pod stops without leaving, as on a restart.
*/}}
{{- define "vernemq.leaveOnScaleDownScript" -}}
sa=/var/run/secrets/kubernetes.io/serviceaccount; url="https://kubernetes.default.svc.{{ .Values.discovery.kubernetes.clusterDomain }}/apis/apps/v1/namespaces/${DOCKER_VERNEMQ_KUBERNETES_NAMESPACE}/statefulsets/{{ include "vernemq.fullname" . }}"; replicas=$(printf 'header = "Authorization: Bearer %s"\n' "$(cat "$sa/token")" | curl -fsS -m 10 -K - --cacert "$sa/ca.crt" "$url" | jq -r '.spec.replicas') || replicas=""; ordinal="${MY_POD_NAME##*-}"; case "$replicas" in ''|*[!0-9]*) echo "preStop: StatefulSet replicas unknown; stopping without leaving the cluster"; exit 0;; esac; if [ "$ordinal" -ge "$replicas" ]; then node=$(sed -n 's/^-name[[:space:]]*//p' /vernemq/etc/vm.args | tail -n 1); echo "preStop: ordinal $ordinal >= replicas $replicas: $node leaves the cluster"; exec vmq-admin cluster leave node="$node" -k; fi; echo "preStop: ordinal $ordinal < replicas $replicas: restart, staying a member"
{{- end -}}

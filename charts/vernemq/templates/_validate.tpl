{{/*
Cross-field checks that a JSON schema cannot express. Every message names the value and the fix.
Called once from statefulset.yaml, so a bad combination renders nothing at all.
*/}}
{{- define "vernemq.validateValues" -}}
{{- $errs := list -}}
{{- $v := .Values -}}
{{- $ka := int $v.mqtt.maxKeepaliveSeconds -}}
{{- if and (or $v.listeners.mqtts.enabled $v.listeners.wss.enabled) (not $v.tls.existingSecret) -}}
{{- $errs = append $errs "tls.existingSecret: listeners.mqtts / listeners.wss need a certificate; create a kubernetes.io/tls Secret and set tls.existingSecret=<name>, or disable those listeners" -}}
{{- end -}}
{{- if gt (int $v.vernemq.distribution.portRangeMin) (int $v.vernemq.distribution.portRangeMax) -}}
{{- $errs = append $errs (printf "vernemq.distribution.portRangeMin (%d) is above portRangeMax (%d): set portRangeMin <= portRangeMax" (int $v.vernemq.distribution.portRangeMin) (int $v.vernemq.distribution.portRangeMax)) -}}
{{- else if gt (sub (int $v.vernemq.distribution.portRangeMax) (int $v.vernemq.distribution.portRangeMin)) 63 -}}
{{- $errs = append $errs "vernemq.distribution.portRangeMax: the distribution range may hold at most 64 ports; narrow portRangeMin..portRangeMax" -}}
{{- end -}}
{{- $reserved := list 1883 8883 8080 8443 8888 4369 44053 -}}
{{- range $p := $reserved -}}
{{- if and (ge $p (int $v.vernemq.distribution.portRangeMin)) (le $p (int $v.vernemq.distribution.portRangeMax)) -}}
{{- $errs = append $errs (printf "vernemq.distribution.portRangeMin/portRangeMax: the range includes port %d, which a listener uses; move the range (default 9100-9109)" $p) -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int $v.replicaCount) 1) (not $v.discovery.kubernetes.enabled) -}}
{{- $errs = append $errs "discovery.kubernetes.enabled: with replicaCount > 1 the nodes must discover each other; set discovery.kubernetes.enabled=true or replicaCount=1" -}}
{{- end -}}
{{- if and $v.discovery.kubernetes.enabled (not $v.rbac.create) (not $v.serviceAccount.name) -}}
{{- $errs = append $errs "rbac.create: Kubernetes discovery needs get/list pods and get statefulsets; set rbac.create=true, or serviceAccount.name to an account that has them" -}}
{{- end -}}
{{- if and (ne $v.readinessProbe.mode "listeners") (eq $v.statefulset.podManagementPolicy "OrderedReady") (gt (int $v.replicaCount) 1) -}}
{{- $errs = append $errs (printf "statefulset.podManagementPolicy: OrderedReady with readinessProbe.mode=%s deadlocks (pod 0 waits for peers that start only after it is ready); use Parallel or readinessProbe.mode=listeners" $v.readinessProbe.mode) -}}
{{- end -}}
{{- if and $v.service.loadBalancerSourceRanges (ne $v.service.type "LoadBalancer") -}}
{{- $errs = append $errs "service.loadBalancerSourceRanges: only a LoadBalancer Service uses it; set service.type=LoadBalancer or remove the ranges" -}}
{{- end -}}
{{- if $v.service.azure.enabled -}}
{{- if ne $v.service.type "LoadBalancer" -}}
{{- $errs = append $errs "service.azure.enabled: the Azure annotations need service.type=LoadBalancer" -}}
{{- end -}}
{{- if ne $v.service.externalTrafficPolicy "Local" -}}
{{- $errs = append $errs "service.externalTrafficPolicy: the Azure profile needs Local, so the Azure health probe goes to kube-proxy's healthCheckNodePort instead of opening bare TCP sockets on the MQTT ports (they count as ghost sessions: online 5, offline -5)" -}}
{{- end -}}
{{- if lt (mul (int $v.service.azure.idleTimeoutMinutes) 60) $ka -}}
{{- $errs = append $errs (printf "service.azure.idleTimeoutMinutes: %d min is shorter than mqtt.maxKeepaliveSeconds (%d s); Azure would drop idle MQTT connections. Set idleTimeoutMinutes >= %d" (int $v.service.azure.idleTimeoutMinutes) $ka (div (add $ka 59) 60)) -}}
{{- end -}}
{{- end -}}
{{- if $v.ingress.enabled -}}
{{- if not $v.listeners.ws.enabled -}}
{{- $errs = append $errs "ingress.enabled: the WebSocket Ingress needs listeners.ws.enabled=true" -}}
{{- end -}}
{{- if and $v.ingress.nginx (lt (int $v.ingress.timeoutSeconds) $ka) -}}
{{- $errs = append $errs (printf "ingress.timeoutSeconds: %d s is shorter than mqtt.maxKeepaliveSeconds (%d s); ingress-nginx would close idle WebSocket clients. Set ingress.timeoutSeconds >= %d" (int $v.ingress.timeoutSeconds) $ka $ka) -}}
{{- end -}}
{{- if and $v.ingress.tls.enabled (not $v.ingress.tls.secretName) -}}
{{- $errs = append $errs "ingress.tls.secretName: ingress.tls.enabled needs the name of a TLS Secret" -}}
{{- end -}}
{{- end -}}
{{- if $v.gateway.enabled -}}
{{- $gw := $v.gateway -}}
{{- if not (or $gw.ws.enabled $gw.mqtt.enabled $gw.mqtts.enabled) -}}
{{- $errs = append $errs "gateway.enabled: no route is enabled; set gateway.ws.enabled, gateway.mqtt.enabled or gateway.mqtts.enabled" -}}
{{- end -}}
{{- if and (not $gw.create) (not $gw.name) -}}
{{- $errs = append $errs "gateway.name: attaching to an existing Gateway needs its name (and gateway.namespace when it lives elsewhere); or set gateway.create=true" -}}
{{- end -}}
{{- if and $gw.create (not $gw.gatewayClassName) -}}
{{- $errs = append $errs "gateway.gatewayClassName: a created Gateway needs its GatewayClass (e.g. eg, istio, cilium, azure-alb-external)" -}}
{{- end -}}
{{- range $r := list "ws" "mqtt" "mqtts" -}}
{{- if and (index $gw $r).enabled (not (index $v.listeners $r).enabled) -}}
{{- $errs = append $errs (printf "gateway.%s.enabled: the route needs listeners.%s.enabled=true (its backend is the `%s` Service port)" $r $r $r) -}}
{{- end -}}
{{- if and $gw.create (index $gw $r).enabled (not (index $gw $r).sectionName) -}}
{{- $errs = append $errs (printf "gateway.%s.sectionName: a created Gateway names each listener; set a name (e.g. %s)" $r $r) -}}
{{- end -}}
{{- end -}}
{{- if and $gw.mqtts.enabled (not $gw.mqtts.hostnames) -}}
{{- $errs = append $errs "gateway.mqtts.hostnames: a TLSRoute routes by SNI and needs at least one host name (covered by the broker certificate)" -}}
{{- end -}}
{{- $to := $gw.ws.requestTimeoutSeconds -}}
{{- if and $gw.ws.enabled (not (kindIs "invalid" $to)) (gt (int $to) 0) (lt (int $to) $ka) -}}
{{- $errs = append $errs (printf "gateway.ws.requestTimeoutSeconds: %d s is shorter than mqtt.maxKeepaliveSeconds (%d s); the Gateway would cut idle WebSocket clients. Set 0 (no timeout) or >= %d" (int $to) $ka $ka) -}}
{{- end -}}
{{- if and $gw.create $gw.ws.enabled (eq $gw.ws.listener.protocol "HTTPS") (not $gw.ws.listener.certificateRefs) -}}
{{- $errs = append $errs "gateway.ws.listener.certificateRefs: an HTTPS listener terminates TLS and needs a certificate Secret, e.g. [{name: mqtt-example-com-tls}]" -}}
{{- end -}}
{{- end -}}
{{- range $k, $_ := $v.vernemq.config -}}
{{- $key := lower $k -}}
{{- if eq $key "distributed_cookie" -}}
{{- $errs = append $errs "vernemq.config.distributed_cookie: the cookie never goes into values; the chart generates one per release, or set erlangCookie.existingSecret=<Secret name>" -}}
{{- else if has $key (list "allow_anonymous" "accept_eula" "erlang.distribution.port_range.minimum" "erlang.distribution.port_range.maximum") -}}
{{- $errs = append $errs (printf "vernemq.config.%s: the chart sets this itself; use %s" $k (get (dict "allow_anonymous" "vernemq.allowAnonymous" "accept_eula" "vernemq.acceptEula" "erlang.distribution.port_range.minimum" "vernemq.distribution.portRangeMin" "erlang.distribution.port_range.maximum" "vernemq.distribution.portRangeMax") $key)) -}}
{{- end -}}
{{- end -}}
{{- /* extraEnv comes after the chart's env and Kubernetes keeps the last definition, so a name the chart
     sets would silently override the value the chart (and its NetworkPolicy, and `vmq-validate plan`) uses */ -}}
{{- $chartEnv := dict
  "MY_POD_NAME" "nothing (the chart sets it from the pod name)"
  "MY_POD_IP" "nothing (the chart sets it from the pod IP)"
  "ERL_CRASH_DUMP" "nothing (the chart points it at /vernemq/log)"
  "HOME" "nothing (the chart points it at the memory emptyDir holding .erlang.cookie, which the node and vmq-admin read)"
  "DOCKER_VERNEMQ_ACCEPT_EULA" "vernemq.acceptEula"
  "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM" "vernemq.distribution.portRangeMin"
  "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MAXIMUM" "vernemq.distribution.portRangeMax"
  "DOCKER_VERNEMQ_ALLOW_ANONYMOUS" "vernemq.allowAnonymous"
  "DOCKER_VERNEMQ_ALLOW_REGISTER_DURING_NETSPLIT" "vernemq.allowDuringNetsplit"
  "DOCKER_VERNEMQ_ALLOW_PUBLISH_DURING_NETSPLIT" "vernemq.allowDuringNetsplit"
  "DOCKER_VERNEMQ_ALLOW_SUBSCRIBE_DURING_NETSPLIT" "vernemq.allowDuringNetsplit"
  "DOCKER_VERNEMQ_ALLOW_UNSUBSCRIBE_DURING_NETSPLIT" "vernemq.allowDuringNetsplit"
  "DOCKER_VERNEMQ_DISCOVERY_KUBERNETES" "discovery.kubernetes.enabled"
  "DOCKER_VERNEMQ_KUBERNETES_LABEL_SELECTOR" "nothing (the chart selects the release's own pods)"
  "DOCKER_VERNEMQ_KUBERNETES_NAMESPACE" "nothing (the chart uses the pod's namespace)"
  "DOCKER_VERNEMQ_KUBERNETES_SUBDOMAIN" "nothing (the chart uses its headless Service)"
  "DOCKER_VERNEMQ_KUBERNETES_CLUSTER_NAME" "discovery.kubernetes.clusterDomain"
  "DOCKER_VERNEMQ_LISTENER__SSL__DEFAULT" "listeners.mqtts.enabled"
  "DOCKER_VERNEMQ_LISTENER__SSL__CERTFILE" "tls.existingSecret"
  "DOCKER_VERNEMQ_LISTENER__SSL__KEYFILE" "tls.existingSecret"
  "DOCKER_VERNEMQ_LISTENER__SSL__CAFILE" "tls.existingSecret"
  "DOCKER_VERNEMQ_LISTENER__WSS__DEFAULT" "listeners.wss.enabled"
  "DOCKER_VERNEMQ_LISTENER__WSS__CERTFILE" "tls.existingSecret"
  "DOCKER_VERNEMQ_LISTENER__WSS__KEYFILE" "tls.existingSecret"
  "DOCKER_VERNEMQ_LISTENER__WSS__CAFILE" "tls.existingSecret" -}}
{{- range $k, $_ := $v.vernemq.config -}}
{{- $_ := set $chartEnv (printf "DOCKER_VERNEMQ_%s" ($k | upper | replace "." "__")) (printf "vernemq.config.%s alone" $k) -}}
{{- end -}}
{{- range $i, $e := $v.vernemq.extraEnv -}}
{{- $name := "" -}}
{{- if kindIs "map" $e -}}{{- $name = toString (get $e "name") -}}{{- end -}}
{{- if has $name (list "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE" "API_KEY") -}}
{{- $errs = append $errs (printf "vernemq.extraEnv: %s is set by the chart from a Secret; use erlangCookie.existingSecret / apiKey.existingSecret" $name) -}}
{{- else if hasKey $chartEnv $name -}}
{{- $errs = append $errs (printf "vernemq.extraEnv[%d]: %s is set by the chart (the last definition would win and the chart, its NetworkPolicy and vmq-validate would not know); set %s instead" $i $name (get $chartEnv $name)) -}}
{{- end -}}
{{- end -}}
{{- /* names: DNS-1123 labels, or every object name and the app.kubernetes.io/name label break */ -}}
{{- range $field, $max := dict "nameOverride" 63 "fullnameOverride" 52 -}}
{{- $n := get $v $field | toString -}}
{{- if and $n (or (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $n)) (gt (len $n) $max)) -}}
{{- $errs = append $errs (printf "%s: %q is not a DNS-1123 label of at most %d characters; use lowercase letters, digits and '-', starting and ending with a letter or digit" $field $n $max) -}}
{{- end -}}
{{- end -}}
{{- /* vernemq-toolkit/* annotations are the chart's contract with the validators (docs/contracts.md) */ -}}
{{- $annotationMaps := dict
  "statefulset.podAnnotations" $v.statefulset.podAnnotations
  "statefulset.annotations" $v.statefulset.annotations
  "service.annotations" $v.service.annotations
  "ingress.annotations" $v.ingress.annotations
  "serviceAccount.annotations" $v.serviceAccount.annotations
  "persistence.annotations" $v.persistence.annotations -}}
{{- range $field, $m := $annotationMaps -}}
{{- range $k, $_ := $m -}}
{{- if hasPrefix "vernemq-toolkit/" $k -}}
{{- $errs = append $errs (printf "%s: %s is reserved (the chart writes vernemq-toolkit/* annotations for the validators); remove it and set the chart value that controls it (see docs/contracts.md)" $field $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $errs -}}
{{- fail (printf "\n\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " $errs)) -}}
{{- end -}}
{{- end -}}

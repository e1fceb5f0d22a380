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
{{- range $e := $v.vernemq.extraEnv -}}
{{- if has $e.name (list "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE" "API_KEY") -}}
{{- $errs = append $errs (printf "vernemq.extraEnv: %s is set by the chart from a Secret; use erlangCookie.existingSecret / apiKey.existingSecret" $e.name) -}}
{{- end -}}
{{- end -}}
{{- if $errs -}}
{{- fail (printf "\n\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " $errs)) -}}
{{- end -}}
{{- end -}}

#!/usr/bin/env python3
"""Generate charts/vernemq/values.schema.json from values.yaml (types, `## @param` descriptions) plus the
constraints below (enums, ranges, patterns).

    values-schema.py            rewrite values.schema.json
    values-schema.py --check    exit 1 when values.schema.json is out of date
"""
import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent
VALUES_TEXT = (CHART / "values.yaml").read_text()
V = yaml.safe_load(VALUES_TEXT)
# descriptions from @param lines
desc = {}
cur = None
for line in VALUES_TEXT.splitlines():
    m = re.match(r'^\s*## @param (\S+) (.*)$', line)
    if m:
        cur = m.group(1); desc[cur] = m.group(2).strip(); continue
    m = re.match(r'^\s*##   (.*)$', line)
    if m and cur:
        desc[cur] += ' ' + m.group(1).strip(); continue
    cur = None

FREE_MAPS = {'commonLabels', 'vernemq.config', 'serviceAccount.annotations', 'statefulset.annotations',
             'statefulset.podAnnotations', 'statefulset.podLabels', 'nodeSelector', 'affinity',
             'persistence.annotations', 'service.annotations', 'service.labels', 'ingress.annotations',
             'ingress.labels', 'networkPolicy.monitoringNamespaceSelector', 'monitoring.serviceMonitor.labels',
             'monitoring.prometheusRule.labels', 'monitoring.grafanaDashboard.labels',
             'gateway.annotations', 'gateway.labels',
             'validator.nodeSelector', 'validator.serviceMonitor.labels', 'validator.prometheusRule.labels'}
OPAQUE = {'networkPolicy.ingressControllerSource'}
OPEN_OBJECTS = {'podSecurityContext', 'containerSecurityContext', 'resources', 'initResources',
                'statefulset.updateStrategy', 'podSecurityContext.seccompProfile', 'containerSecurityContext.seccompProfile',
                'containerSecurityContext.capabilities', 'validator.resources'}
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

def infer(path, val):
    if path in FREE_MAPS:
        s = dict(STR_MAP) if path not in ('affinity', 'vernemq.config') else {"type": "object"}
        if path == 'vernemq.config':
            s = {"type": "object", "propertyNames": {"pattern": "^[a-z0-9_.]+$"},
                 "additionalProperties": {"type": ["string", "integer", "boolean"]}}
        return s
    if path in OPAQUE:
        return {"type": "object", "properties": {"namespaceSelector": {"type": "object"},
                                                 "podSelector": {"type": "object"}, "ipBlock": {"type": "object"}}}
    if isinstance(val, dict):
        props = {k: infer(f"{path}.{k}" if path else k, v) for k, v in val.items()}
        s = {"type": "object", "properties": props}
        s["additionalProperties"] = path in OPEN_OBJECTS
        return s
    if isinstance(val, bool):
        return {"type": "boolean"}
    if isinstance(val, int):
        return {"type": "integer"}
    if isinstance(val, list):
        return {"type": "array"}
    if val is None:
        return {"type": ["integer", "null"]}
    return {"type": "string"}

S = infer('', V)
S["$schema"] = "http://json-schema.org/draft-07/schema#"
S["title"] = "vernemq chart values"
S["properties"]["global"] = {"type": "object", "description": "Helm global values (unused by this chart)."}

def node(path):
    n = S
    for p in path.split('.'):
        n = n["properties"][p]
    return n
def upd(path, **kw):
    node(path).update(kw)

for p, d in desc.items():
    try:
        node(p)["description"] = re.sub(r'`', '', d)
    except KeyError:
        sys.exit(f"@param for unknown value {p}")

port = {"minimum": 1, "maximum": 65535}
upd('image.repository', minLength=1)
upd('image.tag', minLength=1, pattern=r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$', **{"not": {"const": "latest"}})
upd('image.digest', pattern=r'^(sha256:[a-f0-9]{64})?$')
upd('image.pullPolicy', enum=["IfNotPresent", "Always", "Never"])
upd('image.flavor', enum=["official", "source"])
upd('imagePullSecrets', items={"type": "string", "minLength": 1})
upd('replicaCount', minimum=1, maximum=99)
upd('vernemq.usersExistingSecret', pattern=r'^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$')
upd('vernemq.distribution.portRangeMin', minimum=1024, maximum=65535)
upd('vernemq.distribution.portRangeMax', minimum=1024, maximum=65535)
upd('vernemq.extraEnv', items={"type": "object", "required": ["name"]})
upd('vernemq.extraEnvFrom', items={"type": "object"})
upd('mqtt.maxKeepaliveSeconds', minimum=1, maximum=65535)
upd('tls.existingSecret', pattern=r'^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$')
upd('discovery.kubernetes.clusterDomain', minLength=1, pattern=r'^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')
for s in ('erlangCookie', 'apiKey'):
    upd(f'{s}.existingSecret', pattern=r'^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$')
    upd(f'{s}.existingSecretKey', minLength=1, pattern=r'^[-._a-zA-Z0-9]+$')
upd('statefulset.podManagementPolicy', enum=["Parallel", "OrderedReady"])
upd('statefulset.updateStrategy', required=["type"])
node('statefulset.updateStrategy')["properties"]["type"]["enum"] = ["RollingUpdate", "OnDelete"]
upd('statefulset.terminationGracePeriodSeconds', minimum=30)
for r in ('resources', 'initResources'):
    n = node(r)
    n["required"] = ["requests", "limits"]
    for k in ("requests", "limits"):
        n["properties"][k] = {"type": "object", "required": ["memory"],
                              "properties": {"cpu": {"type": ["string", "number"]}, "memory": {"type": ["string", "integer"]}}}
    n["properties"]["requests"]["required"] = ["cpu", "memory"]
upd('tolerations', items={"type": "object"})
upd('podAntiAffinity', enum=["soft", "hard", "none"])
upd('topologySpread.maxSkew', minimum=1)
upd('topologySpread.whenUnsatisfiable', enum=["ScheduleAnyway", "DoNotSchedule"])
n = node('pdb.maxUnavailable'); n.pop("type")
n["oneOf"] = [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^[1-9][0-9]?%$"}]
upd('readinessProbe.mode', enum=["joined", "listeners", "fullCluster"])
for pr in ('readinessProbe', 'livenessProbe', 'startupProbe'):
    for k, v in node(pr)["properties"].items():
        if v.get("type") == "integer":
            v["minimum"] = 0 if k == "initialDelaySeconds" else 1
upd('podSecurityContext.runAsUser', minimum=1)
upd('podSecurityContext.runAsGroup', minimum=1)
upd('podSecurityContext.runAsNonRoot', const=True)
upd('containerSecurityContext.runAsNonRoot', const=True)
upd('containerSecurityContext.privileged', const=False)
upd('containerSecurityContext.allowPrivilegeEscalation', const=False)
upd('podSecurityContext.fsGroupChangePolicy', enum=["OnRootMismatch", "Always"])
upd('persistence.size', pattern=r'^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$')
upd('persistence.accessModes', minItems=1, items={"enum": ["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany"]})
upd('tmpSizeLimit', pattern=r'^[0-9]+(Ki|Mi|Gi)$')
upd('extraVolumes', items={"type": "object", "required": ["name"]})
upd('extraVolumeMounts', items={"type": "object", "required": ["name", "mountPath"]})
upd('service.type', enum=["ClusterIP", "LoadBalancer", "NodePort"])
upd('service.externalTrafficPolicy', enum=["Local", "Cluster"])
upd('service.sessionAffinity', enum=["None", "ClientIP"])
cidr = {"type": "string", "pattern": r"^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$|^[0-9a-fA-F:]+/[0-9]{1,3}$"}
upd('service.loadBalancerSourceRanges', items=cidr)
for k in ('mqtt', 'mqtts', 'ws', 'wss'):
    node(f'service.ports.{k}').update(port)
    node(f'service.nodePorts.{k}').update({"minimum": 30000, "maximum": 32767})
upd('service.azure.idleTimeoutMinutes', minimum=4, maximum=100)
upd('service.azure.healthProbeIntervalSeconds', minimum=5)
upd('service.azure.healthProbeNumOfProbe', minimum=1)
upd('ingress.timeoutSeconds', minimum=1)
upd('ingress.path', pattern=r'^/')
upd('ingress.pathType', enum=["Prefix", "Exact", "ImplementationSpecific"])
upd('ingress.hosts', items={"type": "string", "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"})
upd('networkPolicy.clientSources', items={"type": "object", "minProperties": 1,
    "properties": {"ipBlock": {"type": "object", "required": ["cidr"]}, "podSelector": {"type": "object"},
                   "namespaceSelector": {"type": "object"}}, "additionalProperties": False})
upd('networkPolicy.extraIngress', items={"type": "object"})
node('networkPolicy.ingressControllerSource').update({"additionalProperties": False, "minProperties": 1})
upd('networkPolicy.egress.extra', items={"type": "object"})
upd('networkPolicy.egress.dnsPorts', items={"type": "integer", **port})
upd('networkPolicy.egress.kubeApiPorts', items={"type": "integer", **port})
upd('networkPolicy.egress.kubeApiCidrs', items=cidr)
# Gateway API routes
host = {"type": "string", "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", "maxLength": 253}
dns_name = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$"
upd('gateway.name', pattern=dns_name, maxLength=253)
upd('gateway.namespace', pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", maxLength=63)
upd('gateway.routeNamespace', pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", maxLength=63)
upd('gateway.gatewayClassName', pattern=dns_name, maxLength=253)
for r in ('ws', 'mqtt', 'mqtts'):
    upd(f'gateway.{r}.sectionName', pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", maxLength=253)
    node(f'gateway.{r}.listener.port').update(port)
for r in ('ws', 'mqtts'):
    upd(f'gateway.{r}.hostnames', items=host)
    upd(f'gateway.{r}.listener.hostname', pattern=r"^((\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$", maxLength=253)
upd('gateway.ws.path', pattern=r'^/', maxLength=1024)
upd('gateway.ws.requestTimeoutSeconds', type=["integer", "null"], minimum=0, maximum=99999)
upd('gateway.ws.listener.protocol', enum=["HTTP", "HTTPS"])
upd('gateway.ws.listener.certificateRefs', items={"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"}, "kind": {"type": "string"},
    "group": {"type": "string"}}, "additionalProperties": False})
upd('gateway.networkPolicySources', items={"type": "object", "minProperties": 1,
    "properties": {"ipBlock": {"type": "object", "required": ["cidr"]}, "podSelector": {"type": "object"},
                   "namespaceSelector": {"type": "object"}}, "additionalProperties": False})
upd('monitoring.serviceMonitor.interval', pattern=r'^[0-9]+(ms|s|m|h)$')
upd('monitoring.prometheusRule.socketsPerSessionFactor', minimum=1)
upd('monitoring.prometheusRule.socketsSlack', minimum=0)
upd('tests.image.tag', minLength=1, pattern=r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$', **{"not": {"const": "latest"}})
upd('tests.image.digest', pattern=r'^(sha256:[a-f0-9]{64})?$')
upd('tests.timeoutSeconds', minimum=1, maximum=600)
# validator (vmq-validate watch)
upd('validator.image.repository', minLength=1)
upd('validator.image.tag', minLength=1, pattern=r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$', **{"not": {"const": "latest"}})
upd('validator.image.digest', pattern=r'^(sha256:[a-f0-9]{64})?$')
upd('validator.image.pullPolicy', enum=["IfNotPresent", "Always", "Never"])
upd('validator.interval', pattern=r'^[0-9]+(s|m|h)$')
upd('validator.commands', uniqueItems=True, items={"enum": ["cluster", "distribution", "clients"]})
upd('validator.transport', enum=["direct", "kube-exec"])
upd('validator.port', minimum=1024, maximum=65535)
upd('validator.extraArgs', items={"type": "string"})
node('validator.policy').update({"additionalProperties": False, "properties": {"checks": {"type": "object"}}})
upd('validator.tolerations', items={"type": "object"})
upd('validator.metricsSources', items={"type": "object", "minProperties": 1})
for k in ('criticalFor', 'errorFor', 'staleFor'):
    upd(f'validator.prometheusRule.{k}', pattern=r'^[0-9]+(s|m|h)$')
text = json.dumps(S, indent=2) + "\n"
target = CHART / "values.schema.json"
if "--check" in sys.argv[1:]:
    if target.read_text() != text:
        sys.exit("values.schema.json is out of date: run charts/vernemq/scripts/values-schema.py")
else:
    target.write_text(text)

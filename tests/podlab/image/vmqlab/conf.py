"""`vernemq config generate` of the pod lab's VerneMQ-shaped image.

Reads /vernemq/etc/vernemq.conf the way cuttlefish reads it (`key = value` lines, `#` comments, the last
setting of a key wins) and, like VerneMQ 2.1.2:
  * fails with "Conf file attempted to set unknown variable: KEY" on a key its schema does not know. The
    official (EULA) build knows `accept_eula`; a build from the public source does not;
  * the official build refuses to start unless `accept_eula = yes`;
  * because /vernemq/etc/vm.args exists, generates only an app.config (kernel's distribution port range
    comes from `erlang.distribution.port_range.*`) and prints `-config ... -args_file .../vm.args`: the
    node's name and cookie then come from vm.args alone, and `distributed_cookie` is ignored.
It also writes the settings the lab's own parts need (vmqlab.conf for the Erlang node, mosquitto.conf and
the stand-in's arguments). The schema below is the subset of VerneMQ 2.1.2's settings (by prefix) that the
chart, the image and common configurations use; anything else is "unknown" here.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

ETC = os.environ.get("VMQ_ETC", "/vernemq/etc")
DATA = os.environ.get("VMQ_DATA", "/vernemq/data")
FLAVOR_FILE = "/vernemq/releases/flavor"

KNOWN_EXACT = {
    "allow_anonymous", "allow_register_during_netsplit", "allow_publish_during_netsplit",
    "allow_subscribe_during_netsplit", "allow_unsubscribe_during_netsplit", "allow_multiple_sessions",
    "coordinate_registrations", "max_inflight_messages", "max_online_messages", "max_offline_messages",
    "max_message_size", "max_message_rate", "max_client_id_size", "max_last_will_delay", "upgrade_outgoing_qos",
    "persistent_client_expiration", "retry_interval", "queue_deliver_mode", "queue_type", "nodename",
    "distributed_cookie", "metadata_plugin", "shared_subscription_policy", "outgoing_clustering_buffer_size",
    "systree_enabled", "systree_interval", "graphite_enabled", "graphite_host", "graphite_port",
    "graphite_interval", "suppress_lwt_on_session_takeover", "receive_max_client", "receive_max_broker",
    "topic_alias_max_client", "topic_alias_max_broker", "mqtt_connect_timeout", "tcp_listen_options",
    "message_size_limit", "remote_enqueue_timeout", "leveldb.maximum_memory.percent",
}
KNOWN_PREFIXES = ("listener.", "log.", "erlang.", "plugins.", "vmq_acl.", "vmq_passwd.", "vmq_diversity.",
                  "vmq_webhooks.", "vmq_bridge.", "leveldb.", "metadata.", "http_modules.", "vmq_metrics.")
CONF_LINE = re.compile(r"^\s*([A-Za-z0-9_.$]+)\s*=\s*(.*?)\s*$")


class ConfError(Exception):
    pass


def flavor() -> str:
    try:
        with open(FLAVOR_FILE) as fh:
            return fh.read().strip()
    except OSError:
        return "official"


def parse(path: str) -> dict[str, str]:
    conf: dict[str, str] = {}
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = CONF_LINE.match(line)
            if not m:
                raise ConfError(f"Error parsing {path} line {n}: not `key = value`")
            conf[m.group(1)] = m.group(2)
    return conf


def check(conf: dict[str, str], which: str) -> None:
    known = set(KNOWN_EXACT)
    if which == "official":
        known.add("accept_eula")
    for key in conf:
        if key not in known and not key.startswith(KNOWN_PREFIXES):
            raise ConfError(f"Conf file attempted to set unknown variable: {key}")
    if which == "official" and conf.get("accept_eula") != "yes":
        raise ConfError("The VerneMQ EULA has not been accepted: set accept_eula = yes "
                        "(DOCKER_VERNEMQ_ACCEPT_EULA=yes) after reading it")


def hostport(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfError(f"Error: {what} = {value} is not IP:PORT")
    return host, int(port)


def generate() -> dict:
    conf_file = os.path.join(ETC, "vernemq.conf")
    conf = parse(conf_file)
    check(conf, flavor())
    dmin = int(conf.get("erlang.distribution.port_range.minimum", "6000"))
    dmax = int(conf.get("erlang.distribution.port_range.maximum", "7999"))
    tcp = hostport(conf.get("listener.tcp.default", "127.0.0.1:1883"), "listener.tcp.default")
    ws = hostport(conf.get("listener.ws.default", f"{tcp[0]}:8080"), "listener.ws.default")
    http = hostport(conf.get("listener.http.default", conf.get("listener.http.metrics", f"{tcp[0]}:8888")),
                    "listener.http.default")
    cluster = hostport(conf.get("listener.vmq.clustering", f"{tcp[0]}:44053"), "listener.vmq.clustering")
    gen = os.path.join(DATA, "generated.configs")
    os.makedirs(gen, exist_ok=True)
    stamp = time.strftime("%Y.%m.%d.%H.%M.%S")
    app_config = os.path.join(gen, f"app.{stamp}.config")
    with open(app_config, "w") as fh:
        fh.write(f"[{{kernel, [{{inet_dist_listen_min, {dmin}}}, {{inet_dist_listen_max, {dmax}}}]}}].\n")
    with open(os.path.join(gen, "vmqlab.conf"), "w") as fh:
        fh.write(f'{{data_dir, "{DATA}"}}.\n{{http, {{"127.0.0.1", 18888}}}}.\n'
                 f'{{standin_cluster, {{"{cluster[0]}", {cluster[1]}}}}}.\n')
    passwd = conf.get("vmq_passwd.password_file")
    anonymous = conf.get("allow_anonymous", "off") == "on"
    lines = ["per_listener_settings true",
             "listener 18830 127.0.0.1", f"allow_anonymous {'true' if anonymous else 'false'}"]
    if passwd:
        lines.append(f"password_file {passwd}")
    lines += ["listener 18080 127.0.0.1", "protocol websockets", f"allow_anonymous {'true' if anonymous else 'false'}"]
    if passwd:
        lines.append(f"password_file {passwd}")
    # loopback only, no authentication: the stand-in sets up handed-over sessions here
    lines += ["listener 18831 127.0.0.1", "allow_anonymous true",
              "persistence true", f"persistence_location {DATA}/mosquitto/", "autosave_interval 1",
              "log_dest stderr", "log_type error", "log_type warning", "max_keepalive 65535"]
    with open(os.path.join(gen, "mosquitto.conf"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.makedirs(os.path.join(DATA, "mosquitto"), exist_ok=True)
    os.makedirs(os.path.join(DATA, "vmqlab"), exist_ok=True)
    standin = {"addr": tcp[0], "mqtt": tcp[1], "ws": ws[1], "http": http[1], "cluster": cluster[1]}
    if len({tcp[0], ws[0], http[0], cluster[0]}) != 1:
        raise ConfError("Error: the lab's stand-in serves every listener on one address; "
                        f"got {tcp[0]}, {ws[0]}, {http[0]}, {cluster[0]}")
    with open(os.path.join(gen, "standin.json"), "w") as fh:
        json.dump(standin, fh)
    return {"app_config": app_config, "args_file": os.path.join(ETC, "vm.args")}


def main(argv: list[str]) -> int:
    try:
        out = generate()
    except (ConfError, OSError, ValueError) as exc:
        print(f"{time.strftime('%H:%M:%S')}.000 [error] {exc}", file=sys.stderr)
        print("Error generating configuration in phase transform_datatypes", file=sys.stderr)
        return 1
    if argv[:1] == ["--shell"]:  # for bin/vernemq console
        print(f"APP_CONFIG={out['app_config']}")
    else:
        print(f"-config {out['app_config']} -args_file {out['args_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

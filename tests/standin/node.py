"""A VerneMQ 2.1.2 stand-in node: a real MQTT broker (Mosquitto) behind VerneMQ's listeners and HTTP API.

    python -m tests.standin.node --name VerneMQ1@127.1.2.3 --addr 127.1.2.3 --broker 127.1.2.250:1883 \
        --broker-ws 127.1.2.250:8080 --peer VerneMQ2@127.1.2.4=127.1.2.4:44053 --api-key-file F

Every MQTT connection (TCP on ``--mqtt-port``, WebSocket on ``--ws-port``) is forwarded byte for byte to
the broker, and both directions are parsed passively, so the node knows exactly what VerneMQ knows:
open sockets per listener, WebSocket upgrades, CONNECT (client id, clean_session), the broker's
CONNACK, DISCONNECT, and which sessions exist (online, or offline but persistent). From that it
computes ``num_online``/``num_offline`` with VerneMQ 2.1.2's formulas (vmq_info:node_status/0):
    num_online  = TCP sockets open (ranch active_connections) + WS connections open (all_connections)
    num_offline = queue processes (sessions on this node) - num_online
and serves /status.json, /metrics, /health*, /api/v1/{session,cluster,listener}/show in the byte
shapes of tests/fixtures/vernemq/2.1.2. Nodes talk to each other over the cluster port
(``--cluster-port``, like listener.vmq.clustering) to build the cluster-wide answers.
Where this differs from VerneMQ is written down in docs/standin.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .mqtt import (CONNACK, CONNECT, DISCONNECT, PUBLISH, RETURN_CODES, SUBSCRIBE, MqttStream, ProtocolError,
                   WsStream, parse_connect, parse_subscribe)

VERSION = "2.1.2"
DEFAULT_COLUMNS = ("client_id", "is_online", "mountpoint", "peer_host", "peer_port", "user")
ALL_COLUMNS = ("clean_session", "client_id", "is_offline", "is_online", "mountpoint", "node", "num_sessions",
               "offline_messages", "online_messages", "peer_host", "peer_port", "protocol", "statename", "user")


@dataclass(eq=False)
class Session:
    client_id: str
    clean_session: bool
    protocol: int
    user: str | None
    online: bool = True
    peer: tuple[str, int] | None = None
    conn: "Conn | None" = None
    subs: dict[str, int] = field(default_factory=dict)  # topic filter -> QoS (kept for a queue handover)


@dataclass(eq=False)
class Conn:
    kind: str  # mqtt | mqttws
    peer: tuple[str, int]
    counted_open: bool = False  # counted in socket_open (TCP at accept, WS after the upgrade)
    upgraded: bool = False
    connect: Any = None
    session: Session | None = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    timed_out: bool = False


class Node:
    def __init__(self, args: argparse.Namespace):
        self.a = args
        self.name = args.name
        self.api_keys: set[str] = set()
        self._keys_mtime: float | None = None
        self._load_keys()
        self.peers: dict[str, tuple[str, int]] = {}
        for p in args.peer:
            pname, _, addr = p.partition("=")
            host, _, port = addr.rpartition(":")
            self.peers[pname] = (host, int(port))
        self.peer_up: dict[str, bool | None] = {p: None for p in self.peers}
        self.peer_seen: set[str] = set()  # peers that were up at least once (startup order is not a netsplit)
        self.sessions: dict[str, Session] = {}
        self.conns: set[Conn] = set()
        self.c: dict[str, int] = {k: 0 for k in (
            "socket_open", "socket_close", "socket_close_timeout", "socket_error", "mqtt_publish_received",
            "mqtt_publish_sent", "mqtt_subscribe_received", "mqtt_disconnect_received", "netsplit_detected",
            "netsplit_resolved", "queue_setup", "queue_teardown")}
        self.connect_received = {4: 0, 5: 0}
        self.connack = {code: 0 for code in RETURN_CODES.values()}
        self.started = time.time()
        self.servers: list[asyncio.AbstractServer] = []  # the MQTT listeners (closed by a handover with kill)
        self._load_state()

    # ------------------------------------------------------------------ state kept on disk
    def _load_keys(self) -> None:
        """API keys, one a line; the file is read again whenever it changes (keys added at run time)."""
        if not self.a.api_key_file:
            return
        try:
            mtime = os.stat(self.a.api_key_file).st_mtime
        except OSError:
            return
        if mtime != self._keys_mtime:
            with open(self.a.api_key_file) as fh:
                self.api_keys = {line.strip() for line in fh if line.strip()}
            self._keys_mtime = mtime

    def _load_state(self) -> None:
        """Persistent sessions from --state-file (the broker behind keeps their queues across a restart)."""
        if not self.a.state_file or not os.path.exists(self.a.state_file):
            return
        with open(self.a.state_file) as fh:
            for row in json.load(fh):
                self.sessions[row["client_id"]] = Session(row["client_id"], False, row["protocol"], row["user"],
                                                          online=False, subs=dict(row.get("subs", {})))

    def _save_state(self) -> None:
        if not self.a.state_file:
            return
        rows = [{"client_id": s.client_id, "protocol": s.protocol, "user": s.user, "subs": s.subs}
                for s in self.sessions.values() if not s.clean_session]
        tmp = self.a.state_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(rows, fh)
        os.replace(tmp, self.a.state_file)

    # ------------------------------------------------------------------ MQTT side
    def active(self, kind: str) -> int:
        return sum(1 for c in self.conns if c.kind == kind)

    def num_online(self) -> int:
        return self.active("mqtt") + self.active("mqttws")

    async def serve_mqtt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str) -> None:
        peer = writer.get_extra_info("peername")[:2]
        conn = Conn(kind=kind, peer=peer)
        self.conns.add(conn)
        if kind == "mqtt":
            conn.counted_open = True
            self.c["socket_open"] += 1
        bhost, bport = (self.a.broker if kind == "mqtt" else self.a.broker_ws).rsplit(":", 1)
        try:
            up_r, up_w = await asyncio.open_connection(bhost, int(bport))
        except OSError:
            self.c["socket_error"] += 1
            self._closed(conn)
            writer.close()
            return
        c2b = MqttStream() if kind == "mqtt" else None
        b2c = MqttStream() if kind == "mqtt" else None
        ws_c2b = WsStream() if kind == "mqttws" else None
        ws_b2c = WsStream() if kind == "mqttws" else None
        if kind == "mqttws":
            c2b, b2c = MqttStream(), MqttStream()

        def from_client(data: bytes) -> None:
            if ws_c2b is not None:
                _head, data = ws_c2b.feed(data)
            for ptype, body in c2b.feed(data):
                self._client_packet(conn, ptype, body)

        def from_broker(data: bytes) -> None:
            if ws_b2c is not None:
                head, data = ws_b2c.feed(data)
                if head is not None and head.split(b" ", 2)[1:2] == [b"101"]:
                    conn.upgraded = conn.counted_open = True
                    self.c["socket_open"] += 1
            for ptype, body in b2c.feed(data):
                self._broker_packet(conn, ptype, body)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    try:
                        watch(data)
                    except ProtocolError:
                        pass  # the broker decides what is valid MQTT; we only stop learning from this stream
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass

        async def connect_timer() -> None:
            await asyncio.sleep(self.a.connect_timeout)
            if conn.connect is None and (kind == "mqtt" or conn.upgraded):
                conn.timed_out = True
                return
            await asyncio.Event().wait()

        tasks = [asyncio.ensure_future(pump(reader, up_w, from_client)),
                 asyncio.ensure_future(pump(up_r, writer, from_broker)),
                 asyncio.ensure_future(connect_timer()),
                 asyncio.ensure_future(conn.closing.wait())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (writer, up_w):
            try:
                w.close()
            except Exception:  # noqa: BLE001
                pass
        if conn.timed_out:
            self.c["socket_close_timeout"] += 1
        self._closed(conn)

    def _client_packet(self, conn: Conn, ptype: int, body: bytes) -> None:
        if ptype == CONNECT:
            try:
                conn.connect = parse_connect(body)
            except ProtocolError:
                return
            self.connect_received[5 if conn.connect.protocol == 5 else 4] += 1
        elif ptype == PUBLISH:
            self.c["mqtt_publish_received"] += 1
        elif ptype == SUBSCRIBE:
            self.c["mqtt_subscribe_received"] += 1
            if conn.session is not None and conn.connect is not None:
                try:
                    conn.session.subs.update(parse_subscribe(body, conn.connect.protocol))
                except ProtocolError:
                    pass
                if not conn.session.clean_session:
                    self._save_state()
        elif ptype == DISCONNECT:
            self.c["mqtt_disconnect_received"] += 1

    def _broker_packet(self, conn: Conn, ptype: int, body: bytes) -> None:
        if ptype == PUBLISH:
            self.c["mqtt_publish_sent"] += 1
        if ptype != CONNACK or conn.connect is None or len(body) < 2:
            return
        code = body[1]
        self.connack[RETURN_CODES.get(code, "server_unavailable")] += 1
        if code != 0:
            return
        cid = conn.connect.client_id
        old = self.sessions.get(cid)
        if old is not None and old.conn is not None and old.conn is not conn:
            old.conn.session = None  # taken over: the old connection no longer owns the session
        if conn.connect.clean_session or old is None:
            if old is None:
                self.c["queue_setup"] += 1
            sess = Session(cid, conn.connect.clean_session, conn.connect.protocol, conn.connect.username)
        else:
            sess = old
            sess.clean_session = False
        sess.online, sess.peer, sess.conn = True, conn.peer, conn
        self.sessions[cid] = sess
        conn.session = sess
        self._save_state()
        asyncio.ensure_future(self._takeover(cid))

    def _closed(self, conn: Conn) -> None:
        self.conns.discard(conn)
        if conn.counted_open:
            self.c["socket_close"] += 1
        sess = conn.session
        if sess is not None and self.sessions.get(sess.client_id) is sess:
            if sess.clean_session:
                del self.sessions[sess.client_id]
                self.c["queue_teardown"] += 1
                self._save_state()
            else:
                sess.online, sess.peer, sess.conn = False, None, None

    async def _takeover(self, client_id: str) -> None:
        """Tell the peers that this node now holds ``client_id`` (VerneMQ migrates the queue)."""
        q = urllib.parse.urlencode({"client_id": client_id})
        await asyncio.gather(*(self._peer_get(p, f"/_standin/takeover?{q}") for p in self.peers),
                             return_exceptions=True)

    # ------------------------------------------------------------------ cluster side
    async def _peer_get(self, peer: str, path: str, timeout: float = 1.0) -> Any:
        host, port = self.peers[peer]
        return await self._get(host, port, path, timeout)

    async def _get(self, host: str, port: int, path: str, timeout: float = 1.0) -> Any:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            w.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            await w.drain()
            raw = await asyncio.wait_for(r.read(), timeout)
        finally:
            w.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise OSError(f"peer answered {head[:40]!r}")
        return json.loads(body)

    async def refresh_peers(self) -> None:
        """--peers-url: the members of the real Erlang cluster next to us ([{node, host}...]) are the peers."""
        u = urllib.parse.urlsplit(self.a.peers_url)
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(u.hostname, u.port or 80), 1)
            try:
                w.write(f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\nConnection: close\r\n\r\n".encode())
                await w.drain()
                raw = await asyncio.wait_for(r.read(), 2)
            finally:
                w.close()
            rows = json.loads(raw.partition(b"\r\n\r\n")[2])
        except (OSError, asyncio.TimeoutError, ValueError):
            return
        peers = {row["node"]: (row["host"], self.a.cluster_port) for row in rows if row["node"] != self.name}
        for gone in set(self.peers) - set(peers):
            self.peer_up.pop(gone, None)
            self.peer_seen.discard(gone)
        for new in set(peers) - set(self.peers):
            self.peer_up[new] = None
        self.peers = peers

    async def watch_peers(self) -> None:
        while True:
            if self.a.peers_url:
                await self.refresh_peers()
            for peer in list(self.peers):
                try:
                    doc = await self._peer_get(peer, "/_standin/ping")
                    up = doc.get("node") == peer
                except (OSError, asyncio.TimeoutError, ValueError):
                    up = False
                if peer not in self.peers:
                    continue
                before = self.peer_up.get(peer)
                if before is True and not up:
                    self.c["netsplit_detected"] += 1
                elif before is False and up and peer in self.peer_seen:
                    self.c["netsplit_resolved"] += 1
                if up:
                    self.peer_seen.add(peer)
                self.peer_up[peer] = up
            await asyncio.sleep(self.a.peer_interval)

    def local_entry(self) -> dict[str, Any]:
        online = self.num_online()
        queues = len(self.sessions)
        mystatus = {p: bool(self.peer_up[p]) for p in self.peers}
        mystatus[self.name] = True
        a = self.a
        return {"num_online": online, "num_offline": queues - online,
                "msg_in": self.c["mqtt_publish_received"], "msg_out": self.c["mqtt_publish_sent"],
                "queue_in": 0, "queue_out": 0, "queue_drop": 0, "queue_unhandled": 0,
                "num_subscriptions": 0, "num_retained": 0, "matches_local": 0, "matches_remote": 0,
                "version": VERSION, "mystatus": [mystatus],
                "listeners": [{"type": t, "status": "running", "ip": a.addr, "port": p, "mountpoint": [],
                               "max_conns": 10000}
                              for t, p in (("mqtt", a.mqtt_port), ("mqttws", a.ws_port), ("http", a.http_port),
                                           ("vmq", a.cluster_port))]}

    def session_rows(self, filters: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        rows = []
        for s in list(self.sessions.values()):
            row = {"clean_session": s.clean_session, "client_id": s.client_id, "is_offline": not s.online,
                   "is_online": s.online, "mountpoint": "", "node": self.name, "num_sessions": 1 if s.online else 0,
                   "offline_messages": 0, "online_messages": 0,
                   "peer_host": s.peer[0] if s.online and s.peer else None,
                   "peer_port": s.peer[1] if s.online and s.peer else None,
                   "protocol": s.protocol if s.online else None, "statename": "online" if s.online else "offline",
                   "user": s.user}
            if all(row.get(k) == v for k, v in filters.items()):
                rows.append(row)
                if len(rows) >= limit:
                    break
        return rows

    # ------------------------------------------------------------------ HTTP
    def authorized(self, headers: dict[str, str]) -> bool:
        self._load_keys()
        if not self.api_keys:
            return False
        if headers.get("x-api-key") in self.api_keys:
            return True
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user = base64.b64decode(auth[6:].strip()).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                return False
            return user in self.api_keys
        return False

    async def serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cluster: bool) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("", "/")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        try:
            status, body, ctype, extra = await self.route(method, target, headers, cluster)
        except Exception as exc:  # noqa: BLE001 - a stand-in bug must show up as a 500, not a hang
            status, body, ctype, extra = 500, f"{type(exc).__name__}: {exc}".encode(), "text/plain", {}
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 503: "Service Unavailable",
                  500: "Internal Server Error", 405: "Method Not Allowed"}.get(status, "OK")
        hdrs = [f"HTTP/1.1 {status} {reason}", f"content-length: {len(body)}"]
        if ctype:
            hdrs.append(f"content-type: {ctype}")
        hdrs.append(time.strftime("date: %a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
        hdrs.append("server: Cowboy")
        hdrs.extend(f"{k}: {v}" for k, v in extra.items())
        writer.write(("\r\n".join(hdrs) + "\r\n\r\n").encode() + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def route(self, method: str, target: str, headers: dict[str, str], cluster: bool):
        url = urllib.parse.urlsplit(target)
        path = url.path
        js = "application/json"
        if method != "GET":
            return 405, b"", None, {}
        if cluster:  # the peer-to-peer side
            q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            if path == "/_standin/ping":
                return 200, _dumps({"node": self.name}), js, {}
            if path == "/_standin/local":
                return 200, _dumps({self.name: self.local_entry()}), js, {}
            if path == "/_standin/sessions":
                filters, _cols, limit = parse_session_query(q.get("q", ""))
                return 200, _dumps(self.session_rows(filters, limit)), js, {}
            if path == "/_standin/handover":
                return 200, await self.handover(q.get("to", ""), q.get("kill") == "true"), "text/plain", {}
            if path == "/_standin/adopt":
                return 200, await self.adopt(json.loads(q.get("session", "{}"))), js, {}
            if path == "/_standin/takeover":
                sess = self.sessions.get(q.get("client_id", ""))
                if sess is not None:
                    if sess.conn is not None:
                        sess.conn.session = None
                    del self.sessions[sess.client_id]
                    self.c["queue_teardown"] += 1
                return 200, b"{}", js, {}
            return 404, b"", None, {}
        if path == "/status.json":
            doc = {self.name: self.local_entry()}
            for peer, up in self.peer_up.items():
                if up:
                    try:
                        doc.update(await self._peer_get(peer, "/_standin/local"))
                    except (OSError, asyncio.TimeoutError, ValueError):
                        pass
            return 200, _dumps([doc]), js, {}
        if path == "/metrics":
            return 200, self.metrics_text().encode(), "text/plain", {}
        if path in ("/health", "/health/ping", "/health/listeners"):
            return 200, b'{"status":"OK"}', js, {}
        if path == "/health/listeners_full_cluster":
            if all(self.peer_up.values()):
                return 200, b'{"status":"OK"}', js, {}
            return 503, b'{"status":"DOWN","reasons":["At least one node is offline"]}', js, {}
        if path.startswith("/api/"):
            if not self.authorized(headers):
                return 401, b"", None, {"www-authenticate": 'Authorization realm="VerneMQ"'}
            if path == "/api/v1/session/show":
                return 200, await self.session_show(url.query), js, {}
            if path == "/api/v1/cluster/show" and self.a.cluster_show_url:
                return await self.proxy_cluster_show(headers)
            if path == "/api/v1/cluster/show":
                table = [{"Node": self.name, "Running": True}] + [
                    {"Node": p, "Running": bool(up)} for p, up in self.peer_up.items()]
                table.sort(key=lambda r: r["Node"])
                return 200, _dumps({"table": table, "type": "table"}), js, {}
            if path == "/api/v1/listener/show":
                a = self.a
                rows = []
                for t, p, active in (("mqtt", a.mqtt_port, self.active("mqtt")),
                                     ("mqttws", a.ws_port, self.active("mqttws")),
                                     ("http", a.http_port, 1), ("vmq", a.cluster_port, len(self.peers))):
                    rows.append({"type": t, "status": "running", "address": a.addr, "port": str(p),
                                 "mountpoint": "", "max_conns": 10000, "active_conns": active, "all_conns": active})
                return 200, _dumps({"table": rows, "type": "table"}), js, {}
            return 404, b"", None, {}
        return 404, b"", None, {}

    async def handover(self, to: str, kill: bool) -> bytes:
        """A node leaving the cluster: with kill, stop the MQTT listeners and close every client connection;
        then hand each persistent session (client id, subscriptions) to the node at ``to`` (its cluster
        listener), which sets it up in its own broker. Messages already queued here stay behind."""
        if kill:
            for srv in self.servers:
                srv.close()
            for conn in list(self.conns):
                conn.closing.set()
            for _ in range(50):
                if not self.conns:
                    break
                await asyncio.sleep(0.1)
        host, _, port = to.rpartition(":")
        moved = 0
        for sess in [s for s in self.sessions.values() if not s.clean_session and not s.online]:
            q = urllib.parse.urlencode({"session": json.dumps(
                {"client_id": sess.client_id, "protocol": sess.protocol, "user": sess.user, "subs": sess.subs})})
            try:
                await self._get(host, int(port), f"/_standin/adopt?{q}", timeout=10)
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                raise RuntimeError(f"handover of {sess.client_id} to {to} failed: {exc}") from None
            del self.sessions[sess.client_id]
            self.c["queue_teardown"] += 1
            moved += 1
        self._save_state()
        return f"handed over {moved} persistent session(s) to {to}".encode()

    async def adopt(self, doc: dict[str, Any]) -> bytes:
        """Set up a handed-over persistent session in our broker: CONNECT clean_session=0 on the internal
        listener, SUBSCRIBE to its filters, DISCONNECT. The session then exists here, offline."""
        host, _, port = (self.a.broker_internal or self.a.broker).rpartition(":")
        r, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
        try:
            cid = doc["client_id"].encode()
            var = b"\x00\x04MQTT\x04\x00\x00\x3c"  # MQTT 3.1.1, clean_session=0, keepalive 60
            payload = len(cid).to_bytes(2, "big") + cid
            w.write(_packet(0x10, var + payload))
            head = await asyncio.wait_for(r.readexactly(4), 5)
            if head[0] != 0x20 or head[3] != 0:
                raise OSError(f"broker refused the handed-over session: CONNACK {head!r}")
            if doc.get("subs"):
                body = b"\x00\x01" + b"".join(len(t.encode()).to_bytes(2, "big") + t.encode() + bytes([min(q, 2)])
                                               for t, q in doc["subs"].items())
                w.write(_packet(0x82, body))
                await asyncio.wait_for(r.readexactly(2 + len(doc["subs"]) + 2), 5)
            w.write(b"\xe0\x00")
            await w.drain()
        finally:
            w.close()
        if doc["client_id"] not in self.sessions:
            self.c["queue_setup"] += 1
            self.sessions[doc["client_id"]] = Session(doc["client_id"], False, doc.get("protocol") or 4,
                                                      doc.get("user"), online=False, subs=dict(doc.get("subs", {})))
        self._save_state()
        return b"{}"

    async def proxy_cluster_show(self, headers: dict[str, str]):
        """The real cluster view of an Erlang node next to us (the distribution lab), auth passed through."""
        u = urllib.parse.urlsplit(self.a.cluster_show_url)
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(u.hostname, u.port or 80), 2)
        except (OSError, asyncio.TimeoutError):
            return 503, b"", None, {}
        try:
            auth = "".join(f"{k}: {headers[k]}\r\n" for k in ("authorization", "x-api-key") if k in headers)
            w.write(f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\n{auth}Connection: close\r\n\r\n".encode())
            await w.drain()
            raw = await asyncio.wait_for(r.read(), 5)
        finally:
            w.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        extra = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            if k.lower() == "www-authenticate":
                extra[k.lower()] = v.strip()
        return status, body, ("application/json" if body else None), extra

    async def session_show(self, query: str) -> bytes:
        filters, cols, limit = parse_session_query(query)
        rows = self.session_rows(filters, limit)
        q = urllib.parse.urlencode({"q": query})
        for peer, up in self.peer_up.items():
            if up:
                try:
                    rows.extend(await self._peer_get(peer, f"/_standin/sessions?{q}"))
                except (OSError, asyncio.TimeoutError, ValueError):
                    pass
        table = [{k: r[k] for k in sorted(cols)} for r in rows]
        return _dumps({"table": table, "type": "table"})

    def metrics_text(self) -> str:
        n = f'node="{self.name}"'
        out: list[str] = []

        def fam(name: str, kind: str, help_: str, samples: list[tuple[str, int]]) -> None:
            out.append(f"# HELP vernemq_{name} {help_}")
            out.append(f"# TYPE vernemq_{name} {kind}")
            for labels, value in samples:
                out.append(f"vernemq_{name}{{{n}{labels}}} {value}")

        c = self.c
        fam("socket_open", "counter", "The number of times an MQTT socket has been opened.", [("", c["socket_open"])])
        fam("socket_close", "counter", "The number of times an MQTT socket has been closed.",
            [("", c["socket_close"])])
        fam("socket_close_timeout", "counter", "The number of times VerneMQ closed an MQTT socket due to no CONNECT "
            "frame has been received on time.", [("", c["socket_close_timeout"])])
        fam("socket_error", "counter", "The total number of socket errors that have occurred.",
            [("", c["socket_error"])])
        fam("mqtt_connect_received", "counter", "The number of CONNECT packets received.",
            [(f',mqtt_version="{v}"', k) for v, k in self.connect_received.items()])
        fam("mqtt_publish_received", "counter", "The number of PUBLISH packets received.",
            [(',mqtt_version="4"', c["mqtt_publish_received"])])
        fam("mqtt_publish_sent", "counter", "The number of PUBLISH packets sent.",
            [(',mqtt_version="4"', c["mqtt_publish_sent"])])
        fam("mqtt_subscribe_received", "counter", "The number of SUBSCRIBE packets received.",
            [(',mqtt_version="4"', c["mqtt_subscribe_received"])])
        fam("mqtt_disconnect_received", "counter", "The number of DISCONNECT packets received.",
            [(',mqtt_version="4"', c["mqtt_disconnect_received"])])
        fam("client_expired", "counter", "Not in use (deprecated)", [("", 0)])
        fam("mqtt_connack_sent", "counter", "The number of CONNACK packets sent.",
            [(f',mqtt_version="4",return_code="{rc}"', v) for rc, v in self.connack.items()])
        fam("queue_setup", "counter", "The number of times a MQTT queue process has been started.",
            [("", c["queue_setup"])])
        fam("queue_teardown", "counter", "The number of times a MQTT queue process has been terminated.",
            [("", c["queue_teardown"])])
        tcp, ws = self.active("mqtt"), self.active("mqttws")
        fam("total_active_connections", "gauge", "The total number of active MQTT and MQTTWS connections.",
            [("", tcp + ws)])
        fam("active_mqtt_connections", "gauge", "The number of active MQTT(S) connections.", [("", tcp)])
        fam("active_mqttws_connections", "gauge", "The number of active MQTT WS(S) connections.", [("", ws)])
        fam("queue_processes", "gauge", "The number of MQTT queue processes.", [("", len(self.sessions))])
        # the stand-in never queues: every message a queue takes in is sent out at once (queue_message_in == out)
        sent = c["mqtt_publish_sent"]
        fam("queue_message_drop", "counter", "The number of messages dropped due to full queues.", [("", 0)])
        fam("queue_message_expired", "counter", "The number of messages which expired before delivery.", [("", 0)])
        fam("queue_message_unhandled", "counter", "The number of unhandled messages when connecting with clean "
            "session=true or QoS0 for offline sessions.", [("", 0)])
        fam("queue_message_in", "counter", "The number of PUBLISH packets received by MQTT queue processes.",
            [("", sent)])
        fam("queue_message_out", "counter", "The number of PUBLISH packets sent from MQTT queue processes.",
            [("", sent)])
        fam("netsplit_resolved", "counter", "The number of resolved netsplits.", [("", c["netsplit_resolved"])])
        fam("netsplit_detected", "counter", "The number of detected netsplits.", [("", c["netsplit_detected"])])
        return "\n".join(out) + "\n"


def _packet(first: int, body: bytes) -> bytes:
    n, out = len(body), bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(out) + body


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        return value


def parse_session_query(query: str) -> tuple[dict[str, Any], list[str], int]:
    """VerneMQ's flags as query keys: ``--col`` selects a column, ``--col=V`` filters, ``--limit=N`` (per node)."""
    filters: dict[str, Any] = {}
    cols: list[str] = []
    limit = 100
    for item in query.split("&") if query else []:
        key, eq, value = item.partition("=")
        key = urllib.parse.unquote(key).lstrip("-")
        value = urllib.parse.unquote(value)
        if key == "limit":
            limit = int(value)
        elif key == "rowtimeout":
            continue
        elif key in ALL_COLUMNS:
            if eq:
                filters[key] = _typed(value)
            else:
                cols.append(key)
    return filters, cols or list(DEFAULT_COLUMNS), limit


async def amain(args: argparse.Namespace) -> None:
    node = Node(args)
    a = args
    node.servers = [
        await asyncio.start_server(lambda r, w: node.serve_mqtt(r, w, "mqtt"), a.addr, a.mqtt_port, backlog=1024),
        await asyncio.start_server(lambda r, w: node.serve_mqtt(r, w, "mqttws"), a.addr, a.ws_port, backlog=1024),
    ]
    servers = node.servers + [
        await asyncio.start_server(lambda r, w: node.serve_http(r, w, False), a.addr, a.http_port),
        await asyncio.start_server(lambda r, w: node.serve_http(r, w, True), a.addr, a.cluster_port),
    ]
    watcher = asyncio.ensure_future(node.watch_peers())
    print(json.dumps({"ready": node.name, "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    watcher.cancel()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.standin.node")
    p.add_argument("--name", required=True)
    p.add_argument("--addr", required=True)
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--ws-port", type=int, default=8080)
    p.add_argument("--http-port", type=int, default=8888)
    p.add_argument("--cluster-port", type=int, default=44053)
    p.add_argument("--broker", required=True, help="HOST:PORT of the broker's MQTT TCP listener")
    p.add_argument("--broker-ws", required=True, help="HOST:PORT of the broker's WebSocket listener")
    p.add_argument("--peer", action="append", default=[], help="NAME=HOST:CLUSTER_PORT of another node")
    p.add_argument("--api-key-file")
    p.add_argument("--connect-timeout", type=float, default=30.0, help="seconds a socket may stay without CONNECT")
    p.add_argument("--peer-interval", type=float, default=0.5)
    p.add_argument("--cluster-show-url", help="answer /api/v1/cluster/show from this URL (a real Erlang node's view)")
    p.add_argument("--peers-url", help="take the peers from this URL ([{node, host}], a real Erlang cluster's members); "
                   "each peer's cluster listener is on --cluster-port")
    p.add_argument("--state-file", help="keep the persistent sessions in this file across restarts")
    p.add_argument("--broker-internal", help="HOST:PORT of a broker listener without authentication, used to set up "
                   "handed-over sessions (default --broker)")
    args = p.parse_args(argv)
    try:
        asyncio.run(amain(args))
    except OSError as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

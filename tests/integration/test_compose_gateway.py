"""Compose's gateway (deploy/nginx.conf with the shared routes), run by Debian's nginx on loopback:
a small DNS server here stands for Docker's, and each API for an echo of the request it got.

The copy differs from the file only where loopback must stand in for Docker: the resolver's
address (and a 1 s cache instead of 10 s, to keep the test short), the listen port and the
APIs' port.
"""
from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.settings import REPO_ROOT, SERVICES
from shared.stack import gateway
from tests.support.infra import eventually, free_ports

TTL = 1  # seconds the gateway may keep an answer (valid=)


class DockerDNS(threading.Thread):
    """Answers A queries for ``<service>-api`` with the address in ``addresses``."""

    def __init__(self, addresses: dict[str, str]):
        super().__init__(daemon=True)
        self.addresses = addresses
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def run(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            labels, i = [], 12
            while query[i]:
                labels.append(query[i + 1:i + 1 + query[i]].decode())
                i += 1 + query[i]
            question = query[12:i + 5]
            qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
            address = self.addresses.get(".".join(labels)) if qtype == 1 else None
            if address is None:
                header = query[:2] + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0)  # NXDOMAIN
                self.sock.sendto(header + question, peer)
                continue
            header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
            answer = struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + socket.inet_aton(address)
            self.sock.sendto(header + question + answer, peer)

    def close(self) -> None:
        self.sock.close()


def echo_api(host: str, port: int, name: str) -> ThreadingHTTPServer:
    """An API that answers with ``name`` and the request line and prefix it was sent."""
    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{name} {self.requestline} prefix={self.headers.get('X-Forwarded-Prefix')}".encode("latin-1")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def compose_gateway(tmp_path_factory):
    """``(gateway port, dns)``: compose's gateway on loopback, every API at 127.0.0.2 first."""
    home = tmp_path_factory.mktemp("compose-gateway")
    gateway_port, api_port = free_ports(2)
    dns = DockerDNS({f"{s}-api": "127.0.0.2" for s in SERVICES})
    dns.start()
    apis = [echo_api("127.0.0.2", api_port, "first"), echo_api("127.0.0.3", api_port, "second")]
    text = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    text, resolvers = re.subn(r"resolver 127\.0\.0\.11 valid=\d+s", f"resolver 127.0.0.1:{dns.port} valid={TTL}s", text)
    text = text.replace("/etc/nginx/rapport/", f"{REPO_ROOT / 'deploy' / 'nginx'}/")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{gateway_port};").replace(":8000;", f":{api_port};")
    temp = "".join(f"    {kind}_temp_path {home / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = ("user root;\n" if os.geteuid() == 0 else "") + text.replace("http {\n", "http {\n" + temp, 1)
    assert resolvers == 1
    (home / "nginx.conf").write_text(text)
    with open(home / "nginx.log", "w") as log:
        nginx = subprocess.Popen([gateway.nginx_binary(), "-c", str(home / "nginx.conf"), "-p", str(home),
                                  "-e", "stderr", "-g", f"daemon off; pid {home / 'nginx.pid'};"],
                                 stdout=subprocess.DEVNULL, stderr=log)
    try:
        eventually(lambda: gateway.healthy(gateway_port) or nginx.poll() is not None, 15, message="the gateway answers")
        assert nginx.poll() is None, (home / "nginx.log").read_text()
        yield gateway_port, dns
    finally:
        nginx.terminate()
        nginx.wait(10)
        for api in apis:
            api.shutdown()
            api.server_close()
        dns.close()


def raw_get(port: int, target: str) -> tuple[int, str]:
    """GET ``target`` exactly as written (no client-side escaping); ``(status, body)``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: rapport\r\nConnection: close\r\n\r\n".encode("latin-1"))
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("latin-1")


@pytest.mark.parametrize("target, sent", [
    ("/feed/", "GET / HTTP/1.1 prefix=/feed"),
    ("/feed/v1/timeline?limit=5&x=%20y", "GET /v1/timeline?limit=5&x=%20y HTTP/1.1 prefix=/feed"),
    ("/profiles/v1/members?q=ada%20l", "GET /v1/members?q=ada%20l HTTP/1.1 prefix=/profiles"),
    ("/connections/v1/a%2Fb", "GET /v1/a/b HTTP/1.1 prefix=/connections"),
    ("/follows/v1/a%3Fb?c=d", "GET /v1/a%3Fb?c=d HTTP/1.1 prefix=/follows"),
    ("/notifications/v1/%25", "GET /v1/%25 HTTP/1.1 prefix=/notifications"),
    ("/messaging//v1/./x/../conversations", "GET /v1/conversations HTTP/1.1 prefix=/messaging"),
])
def test_the_compose_gateway_strips_the_service_prefix_and_keeps_the_rest_of_the_request(compose_gateway, target,
                                                                                        sent):
    port, _ = compose_gateway

    status, body = raw_get(port, target)

    assert (status, body.split(" ", 1)[1]) == (200, sent)


def test_a_service_path_without_its_slash_is_redirected_to_it(compose_gateway):
    port, _ = compose_gateway

    assert raw_get(port, "/feed")[0] == 301


def test_the_compose_gateway_follows_an_api_to_its_new_address_without_a_restart(compose_gateway):
    port, dns = compose_gateway
    assert raw_get(port, "/feed/healthz")[1].startswith("first ")

    dns.addresses["feed-api"] = "127.0.0.3"  # the container recreated: a new address

    eventually(lambda: raw_get(port, "/feed/healthz")[1].startswith("second "), TTL + 5,
               message="the gateway reaches the feed API at its new address")
    dns.addresses["feed-api"] = "127.0.0.2"


def test_an_api_whose_name_docker_does_not_know_is_a_502_problem(compose_gateway):
    port, dns = compose_gateway
    dns.addresses.pop("messaging-api")
    try:
        # What the gateway had cached expires after TTL; on a loaded machine its next lookup
        # can come a little later, so ask again for a few seconds more.
        time.sleep(TTL + 0.5)
        status, body = raw_get(port, "/messaging/healthz")
        deadline = time.monotonic() + 5
        while status != 502 and time.monotonic() < deadline:
            time.sleep(0.2)
            status, body = raw_get(port, "/messaging/healthz")

        assert status == 502 and '"code":"service_unreachable"' in body
    finally:
        dns.addresses["messaging-api"] = "127.0.0.2"

#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Host-side module of roles/django_app: one WebSocket handshake and first message."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_ws_probe
short_description: Open a WebSocket, read the first text message, check it
description:
  - Connects to C(ws://host:port/path) with the given headers (a session cookie, a Host),
    reads the first text frame the server sends and fails unless it contains I(expect).
  - Standard library only (runs with the target's python3); no TLS (probe the load balancer
    from its own host, behind TLS termination).
  - Never changes anything.
options:
  host: {description: Address to connect to., type: str, default: 127.0.0.1}
  port: {description: TCP port., type: int, default: 80}
  path: {description: Request path., type: str, required: true}
  headers: {description: Extra request headers (the cookie is never logged)., type: dict, default: {}}
  expect: {description: Substring the first message must contain ("" accepts any)., type: str, default: ""}
  timeout: {description: Seconds for the connection and the first message., type: float, default: 10}
author: django-deploy-bundle
"""

EXAMPLES = r"""
- name: The canary is authenticated over WebSocket
  django_ws_probe:
    path: /ws/whoami/
    headers: {Cookie: "sessionid={{ key }}", Host: localhost}
    expect: '"username": "bundle-canary"'
  no_log: true
"""

RETURN = r"""
status: {description: HTTP status of the handshake., type: int, returned: always}
message: {description: First text message., type: str, returned: success}
"""

import base64
import os
import socket
import struct

from ansible.module_utils.basic import AnsibleModule


class _Reader:
    """Buffered reads: the first frame often arrives with the handshake answer."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def fill(self):
        chunk = self.sock.recv(4096)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buffer += chunk

    def until(self, marker):
        while marker not in self.buffer:
            self.fill()
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def exact(self, size):
        while len(self.buffer) < size:
            self.fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def _read_frame(reader):
    head = reader.exact(2)
    opcode = head[0] & 0x0F
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", reader.exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", reader.exact(8))[0]
    mask = reader.exact(4) if head[1] & 0x80 else None
    payload = reader.exact(length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


def probe(host, port, path, headers, timeout):
    """Return (status, first text message or None, close code or None)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET %s HTTP/1.1" % path,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
    ]
    names = {name.lower() for name in headers}
    if "host" not in names:
        lines.append("Host: %s:%d" % (host, port))
    lines += ["%s: %s" % (name, value) for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        reader = _Reader(sock)
        response = reader.until(b"\r\n\r\n")
        status_line = response.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 101:
            return status, None, None
        while True:
            opcode, payload = _read_frame(reader)
            if opcode == 0x1:
                return status, payload.decode("utf-8"), None
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return status, None, code


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=80),
            path=dict(type="str", required=True),
            headers=dict(type="dict", default={}, no_log=True),
            expect=dict(type="str", default=""),
            timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        status, message, close_code = probe(p["host"], p["port"], p["path"], p["headers"], p["timeout"])
    except (OSError, EOFError) as exc:
        module.fail_json(msg="WebSocket %s:%d%s: %s" % (p["host"], p["port"], p["path"], exc), status=0)
    if status != 101:
        module.fail_json(msg="WebSocket %s refused: HTTP %d" % (p["path"], status), status=status)
    if message is None:
        module.fail_json(msg="WebSocket %s closed (code %s) before any message" % (p["path"], close_code),
                         status=status)
    if p["expect"] and p["expect"] not in message:
        module.fail_json(msg="WebSocket %s: first message lacks the expected text" % p["path"],
                         status=status, message=message)
    module.exit_json(changed=False, status=status, message=message)


if __name__ == "__main__":
    main()

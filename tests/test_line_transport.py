"""LINE calls over a kept connection: a connection the server closed while it idled is
replaced before use, and a request the server may have acted on is never sent twice."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from bot.line.client import Transport


class Server:
    """A bare HTTP/1.1 server: answers each request 200 and then closes the connection
    without saying so (as a server timing out an idle keep-alive connection does), or, with
    `hang_up`, closes it without answering at all."""

    def __init__(self, hang_up: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.hang_up = hang_up
        self.closed = threading.Semaphore(0)  # released once per connection it closed
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(body)
                if not self.hang_up:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            self.closed.release()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_a_connection_closed_while_idle_is_replaced_and_each_request_goes_once(server):
    transport = Transport(f"http://127.0.0.1:{server.port}")
    for n in range(3):
        status, _, body, _ = transport.post("/v2/bot/message/reply", b'{"n":%d}' % n, {})
        assert (status, body) == (200, b"{}")
        assert server.closed.acquire(timeout=10)  # closed while the client idles
    assert server.requests == [b'{"n":0}', b'{"n":1}', b'{"n":2}']


def test_a_request_the_server_took_without_answering_is_not_sent_again():
    server = Server(hang_up=True)
    try:
        transport = Transport(f"http://127.0.0.1:{server.port}")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            transport.post("/v2/bot/message/push", b'{"to":"U1"}', {})
        assert server.requests == [b'{"to":"U1"}']
    finally:
        server.close()


def test_a_path_under_the_base_url_keeps_its_prefix(server):
    transport = Transport(f"http://127.0.0.1:{server.port}/line/")
    assert transport.prefix == "/line"
    assert transport.post("/v2/bot/message/reply", b"{}", {})[0] == 200

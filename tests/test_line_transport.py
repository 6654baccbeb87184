"""LINE calls over a kept connection: a connection the server closed while it idled is
replaced before use, and a request the server may have acted on is never sent twice."""

from __future__ import annotations

import http.client
import io
import socket
import threading

import pytest

from bot.line.client import Transport, read_response


class Server:
    """A bare HTTP/1.1 server: answers each request 200 and then closes the connection
    without saying so (as a server timing out an idle keep-alive connection does), or, with
    `hang_up`, closes it without answering at all."""

    def __init__(self, hang_up: bool = False) -> None:
        self.hang_up = hang_up
        self.closed = threading.Semaphore(0)  # released once per connection it closed
        self.on_request = lambda head: None  # called with each request's head
        self._listen()

    def _listen(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _accepted(self):
        """Each connection made to the server, until it is closed."""
        while True:
            try:
                yield self.sock.accept()[0]
            except OSError:
                return

    def _serve(self) -> None:
        for conn in self._accepted():
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                self.on_request(head)
                length = content_length(head)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(body)
                if not self.hang_up:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            self.closed.release()

    def close(self) -> None:
        self.sock.close()


def content_length(head: bytes) -> int:
    return int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")))


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


def answer(raw: bytes):
    return read_response(io.BufferedReader(io.BytesIO(raw)))


def test_an_answer_is_read_by_its_length_and_its_headers_kept_as_sent():
    status, reason, body, headers, close = answer(
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        b"x-line-request-id: abc\r\nContent-Length: 13\r\n\r\n{\"message\":1}NEXT")
    assert (status, reason, body, close) == (400, "Bad Request", b'{"message":1}', False)
    assert headers["x-line-request-id"] == "abc" and headers["Content-Type"] == "application/json"


def test_a_chunked_answer_after_an_interim_one_is_read_whole():
    status, _, body, _, close = answer(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nTrailer: x\r\n\r\n")
    assert (status, body, close) == (200, b'{"a":1}', False)


def test_an_answer_that_ends_the_connection_closes_it():
    assert answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")[4]
    assert answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")[4]
    assert not answer(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2"
                      b"\r\n\r\n{}")[4]
    status, _, body, _, close = answer(b"HTTP/1.1 200 OK\r\n\r\n{\"until\":\"closed\"}")
    assert (body, close) == (b'{"until":"closed"}', True)
    assert answer(b"HTTP/1.1 204 No Content\r\n\r\n")[2:5:2] == (b"", False)


@pytest.mark.parametrize("raw, error", [
    (b"", http.client.RemoteDisconnected),
    (b"SSH-2.0-OpenSSH\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", http.client.IncompleteRead),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http.client.IncompleteRead),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n", http.client.LineTooLong),
])
def test_an_answer_that_is_not_whole_http_raises(raw, error):
    with pytest.raises(error):
        answer(raw)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(server):
    transport = Transport(f"http://127.0.0.1:{server.port}")
    with pytest.raises(ValueError, match="line break"):
        transport.post("/v2/bot/message/push", b"{}", {"X-Line-Retry-Key": "a\r\nEvil: 1"})
    assert transport.post("/v2/bot/message/push", b"{}", {})[0] == 200
    assert server.requests == [b"{}"]


def test_the_request_names_its_host_length_and_headers(server):
    seen = []
    server.on_request = seen.append
    Transport(f"http://127.0.0.1:{server.port}").post(
        "/v2/bot/message/reply", b'{"x":1}', {"Authorization": "Bearer t"})
    head = seen[0].split(b"\r\n")
    assert head[0] == b"POST /v2/bot/message/reply HTTP/1.1"
    assert {b"Host: 127.0.0.1:%d" % server.port, b"Content-Length: 7",
            b"Authorization: Bearer t"} <= set(head)


def _self_signed(folder) -> str:
    """A certificate and key for localhost (one PEM file), signed by itself."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / "localhost.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return str(path)


class TlsServer(Server):
    """An HTTPS server that keeps its connections: answers every request on one 200."""

    def __init__(self, pem: str) -> None:
        import ssl

        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pem)
        self.connections = 0
        self._listen()

    def _serve(self) -> None:
        for raw in self._accepted():
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
            except OSError:  # a client that refused our certificate
                raw.close()
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn) -> None:
        reader = conn.makefile("rb")
        with conn:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                self.requests.append(reader.read(content_length(head)))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")


def test_over_tls_the_certificate_is_checked_and_the_connection_kept(tmp_path):
    import ssl

    pem = _self_signed(tmp_path)
    server = TlsServer(pem)
    try:
        transport = Transport(f"https://localhost:{server.port}")
        with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know it
            transport.post("/v2/bot/message/reply", b'{"n":0}', {})
        transport._tls = ssl.create_default_context(cafile=pem)  # as if a CA had signed it
        for n in (1, 2, 3):
            status, _, body, _ = transport.post("/v2/bot/message/reply", b'{"n":%d}' % n, {})
            assert (status, body) == (200, b"{}")
        assert server.requests == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
        assert server.connections == 1  # one TLS connection, kept for all three
    finally:
        server.close()

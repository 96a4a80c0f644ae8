"""The client's API mode on the way to the server: refused tokens, unreachable URLs, TLS, and retries only for
requests that are safe to repeat."""

import socket
import ssl
import threading

import pytest
from api.api_support import READ_TOKEN, TOKEN, free_port, start_gunicorn
from queuectl import Queue, Unauthorized, Unavailable


@pytest.fixture
def served(tmp_path, processes):
    """(base URL, database path) of gunicorn with the operator and viewer tokens."""
    location = str(tmp_path / "queue.db")
    Queue(db=location).close()
    return start_gunicorn(processes, location, extra_env={"QUEUECTL_API_READ_TOKEN": READ_TOKEN}), location


def test_a_wrong_token_is_unauthorized_with_a_one_line_message(served):
    with Queue(api=served[0], token="wrong-token-0123456789abcdef-0123456789") as queue:
        with pytest.raises(Unauthorized) as caught:
            queue.status()
    assert caught.value.status == 401
    assert "refused the token" in str(caught.value) and "QUEUECTL_API_TOKEN" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_viewer_reads_but_cannot_enqueue(served):
    with Queue(api=served[0], token=READ_TOKEN) as queue:
        assert queue.jobs() == []
        with pytest.raises(Unauthorized) as caught:
            queue.enqueue("true")
    assert caught.value.status == 403
    with Queue(db=served[1]) as queue:
        assert queue.jobs() == []


def test_an_unreachable_url_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}"
    with Queue(api=url, token=TOKEN) as queue:
        with pytest.raises(Unavailable, match=f"cannot reach {url}: connection refused"):
            queue.status()


def test_a_tls_problem_is_unavailable_saying_so(tmp_path):
    """A server whose TLS handshake fails (here: it speaks no TLS at all on an https:// URL)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_plain_http():
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    threading.Thread(target=answer_plain_http, daemon=True).start()
    with Queue(api=f"https://127.0.0.1:{port}", token=TOKEN) as queue:
        with pytest.raises(Unavailable, match="TLS problem with https://127.0.0.1"):
            queue.jobs()
    assert ssl  # the client verifies certificates by default (urllib3's default context)


class DroppingProxy:
    """A TCP proxy in front of gunicorn that closes the first connection of each request kind without an answer
    (as a restarting load balancer might) and forwards the others; counts the connections it saw."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped, self.forwarded = [], []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            request = client.recv(65536)
            method = request.split(b" ", 1)[0].decode()
            if method not in self.dropped:
                self.dropped.append(method)
                client.close()
                continue
            self.forwarded.append(method)
            with client, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
                upstream.sendall(request)
                upstream.shutdown(socket.SHUT_WR)
                while data := upstream.recv(65536):
                    client.sendall(data)

    def close(self):
        self.listener.close()


def test_a_get_is_retried_after_a_dropped_connection_and_an_enqueue_never_is(served):
    proxy = DroppingProxy(int(served[0].rsplit(":", 1)[1]))
    try:
        with Queue(api=f"http://127.0.0.1:{proxy.port}", token=TOKEN) as queue:
            assert queue.status()["jobs"]["pending"] == 0  # dropped once, then answered
            with pytest.raises(Unavailable, match="connection"):
                queue.enqueue("echo once")
    finally:
        proxy.close()
    assert proxy.dropped == ["GET", "POST"] and proxy.forwarded == ["GET"]
    with Queue(db=served[1]) as queue:
        assert queue.jobs() == []  # the enqueue was not sent again behind the caller's back

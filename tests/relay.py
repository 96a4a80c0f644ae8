"""A TCP relay to a server that a test can cut (every connection closed, new ones refused) and restore on the same
port, as when a database server or the network goes away and comes back."""

import socket
import threading


class Relay:
    """A TCP relay to a server that can be cut (connections closed, new ones refused) and restored on the same port."""

    def __init__(self, target_port):
        self._target_port = target_port
        self.port = None
        self._sockets = []
        self._listener = None
        self.restore()

    def restore(self):
        """Accept connections (again), and pass replies again."""
        self.replies_muted = False
        self._listener = socket.create_server(("127.0.0.1", self.port or 0), reuse_port=False)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._target_port))
            self._sockets += [client, server]
            for source, sink, replies in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(source, sink, replies), daemon=True).start()

    def mute_replies(self):
        """Drop what the server sends from now on, while requests still reach it: a reply lost on its way back."""
        self.replies_muted = True

    def _pump(self, source, sink, replies):
        try:
            while data := source.recv(65536):
                if not (replies and self.replies_muted):
                    sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Close every connection and refuse new ones."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way: close() alone would not
        except OSError:
            pass
        self._listener.close()
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

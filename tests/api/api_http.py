"""A tiny HTTP client on the standard library for talking to a real server in tests."""

import json
import urllib.error
import urllib.request


def http_call(method, url, body=None, headers=None, timeout=10):
    """Send one request; return (status, headers, body bytes) without raising on 4xx/5xx."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def http_json(method, url, body=None, headers=None):
    """Send one request; return (status, decoded JSON body)."""
    status, _, raw = http_call(method, url, body, headers)
    return status, json.loads(raw)

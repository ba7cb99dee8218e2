"""A small cookie-keeping HTTP client for tests that drive a real server."""

from __future__ import annotations

import functools
import http.client
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """``source`` binds the client's end to a loopback address (127.0.0.2,
    127.0.0.3...), so that a server sees several clients on one machine;
    ``keep_cookies=False`` is a client that never sends a cookie back."""

    def __init__(
        self,
        base_url: str,
        cookies: http.cookiejar.CookieJar | None = None,
        *,
        source: str | None = None,
        keep_cookies: bool = True,
    ) -> None:
        self.base_url = base_url
        self.cookies = cookies if cookies is not None else http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if keep_cookies:
            handlers.append(urllib.request.HTTPCookieProcessor(self.cookies))
        if source is not None:
            handlers.append(_BoundHandler(source))
        self._opener = urllib.request.build_opener(*handlers)

    def request(
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        url = path if path.startswith("http") else self.base_url + path
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(
            url, data=body, method=method, headers=headers or {}
        )
        try:
            with self._opener.open(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def api_headers(self) -> dict[str, str]:
        """What an API client sends: JSON wanted, and the CSRF token once it has one."""
        headers = {"Accept": "application/json"}
        token = self.cookie("csrftoken")
        if token:
            headers["X-CSRFToken"] = token
        return headers

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> Reply:
        return self.request("POST", path, data, **kwargs)

    def upload(self, path: str, field: str, filename: str, content: bytes) -> Reply:
        body, content_type = multipart({field: (filename, content)})
        headers = {**self.api_headers(), "Content-Type": content_type}
        return self.request("POST", path, headers=headers, body=body)

    def wait_for_status(
        self, status_url: str, statuses: set[str], timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.get(status_url).json()
            if body["status"] in statuses or time.monotonic() > deadline:
                return body
            time.sleep(0.05)


class _BoundHandler(urllib.request.HTTPHandler):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            functools.partial(
                http.client.HTTPConnection, source_address=(self.source, 0)
            ),
            req,
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of files: {field: (filename, content)}."""
    boundary = "----slowjobs-test-boundary"
    parts = []
    for name, (filename, content) in fields.items():
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"

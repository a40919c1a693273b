"""A client of the gateway's control API (`/_gateway/...`, see gateway.CONTROL_HELP)."""

from __future__ import annotations

import json
import os
import urllib.request


def local_endpoint() -> str:
    """The local AWS's URL from AWS_ENDPOINT_URL (set by scripts/local-aws start or run)."""
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    if not url.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"AWS_ENDPOINT_URL is {url!r}, not the local AWS: run through scripts/test, "
                           "scripts/local-aws run, or after eval \"$(scripts/local-aws start)\"")
    return url


def control(endpoint: str, method: str, path: str, document: object | None = None):
    """Calls `<endpoint>/_gateway/<path>` and returns the decoded JSON answer."""
    data = json.dumps(document).encode() if document is not None else None
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/_gateway/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")

"""A client of the gateway's control API (`/_gateway/...`, see gateway.CONTROL_HELP)."""

from __future__ import annotations

import json
import urllib.request


def control(endpoint: str, method: str, path: str, document: object | None = None):
    """Calls `<endpoint>/_gateway/<path>` and returns the decoded JSON answer."""
    data = json.dumps(document).encode() if document is not None else None
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/_gateway/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")

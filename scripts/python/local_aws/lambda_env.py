"""Lambda execution environments: a deployed function's own `bootstrap`, run
as a process under a local implementation of the Lambda Runtime API.

An environment serves one invocation at a time and stays warm between
invocations, as on Lambda. The answers follow Lambda's: a function error comes
back with `X-Amz-Function-Error: Unhandled` and the runtime's error document;
a timeout is `Sandbox.Timedout`; a runtime that exits is `Runtime.ExitError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import queue
import select
import subprocess
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("local_aws.lambda")

RUNTIME_PREFIX = "/2018-06-01/runtime"
# Lambda's limit for synchronous invocations, request and response.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# `X-Amz-Log-Type: Tail` returns the last 4 KB of the invocation's log.
TAIL_BYTES = 4096


@dataclass(frozen=True)
class FunctionSpec:
    """What decides an environment: a new code or configuration gets new environments."""

    arn: str
    name: str
    region: str
    # The function's handler setting, which a custom runtime reads from _HANDLER.
    handler: str
    code_sha256: str
    environment: tuple[tuple[str, str], ...]
    timeout_seconds: int
    memory_mb: int
    # The execution role's keys (access key id, secret): the function's SDK calls are the role's.
    credentials: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass
class InvokeResult:
    payload: bytes
    function_error: str | None
    error_type: str | None
    duration_ms: float
    cold_start: bool
    log_tail: bytes = b""
    # time.monotonic() when the runtime posted its response or error (benchmarks).
    responded_at: float | None = None


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    done: threading.Event = field(default_factory=threading.Event)
    response: bytes | None = None
    error: bytes | None = None
    error_type: str | None = None
    responded_at: float | None = None


def sdk_environment(endpoint: str) -> dict[str, str]:
    """What a function run by the local AWS needs for its SDK calls to come back to it."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class CodeStore:
    """Unpacks each uploaded zip once, by its SHA-256."""

    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()

    def unpack(self, zip_bytes: bytes) -> Path:
        directory = self.root / hashlib.sha256(zip_bytes).hexdigest()[:24]
        with self._lock:
            if not (directory / "bootstrap").exists():
                tmp = directory.with_suffix(".tmp")
                tmp.mkdir(parents=True, exist_ok=True)
                with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
                    for info in archive.infolist():
                        archive.extract(info, tmp)
                        mode = (info.external_attr >> 16) & 0o777
                        if mode:
                            os.chmod(tmp / info.filename, mode)
                if not (tmp / "bootstrap").is_file():
                    raise CodeError("the deployment package has no `bootstrap` at its root")
                tmp.rename(directory)
        return directory


class CodeError(Exception):
    """The deployment package cannot run on `provided.*` runtimes."""


class _RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, environment: ExecutionEnvironment):
        self.environment = environment
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)

    def handle_error(self, request, client_address):
        # A stopped runtime drops its pending `next` request: not worth a traceback.
        log.debug("runtime api: connection from %s ended", client_address, exc_info=True)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    server: _RuntimeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug("runtime api: " + format, *args)

    def _reply(self, status: HTTPStatus, body: bytes = b"", headers: dict[str, str] | None = None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path != f"{RUNTIME_PREFIX}/invocation/next":
            self._reply(HTTPStatus.NOT_FOUND)
            return
        invocation = self.server.environment.next_invocation()
        if invocation is None:  # the environment is shutting down
            self._reply(HTTPStatus.GONE)
            return
        self._reply(
            HTTPStatus.OK,
            invocation.payload,
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
            },
        )

    def do_POST(self):
        body = self._body()
        parts = self.path.removeprefix(RUNTIME_PREFIX).strip("/").split("/")
        environment = self.server.environment
        if parts == ["init", "error"]:
            environment.init_failed(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            if not environment.complete(parts[1], parts[2], body, self.headers):
                self._reply(HTTPStatus.BAD_REQUEST, b'{"errorType":"InvalidRequestID"}')
                return
        else:
            self._reply(HTTPStatus.NOT_FOUND)
            return
        self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}', {"Content-Type": "application/json"})


class ExecutionEnvironment:
    """One process of one function version, with its own Runtime API endpoint."""

    def __init__(self, spec: FunctionSpec, code_dir: Path, extra_env: dict[str, str], log_path: Path):
        self.spec = spec
        self._pending: queue.Queue[_Invocation | None] = queue.Queue()
        self._current: _Invocation | None = None
        self._init_error: tuple[bytes, str | None] | None = None
        self._lock = threading.Lock()
        self._stopped = False
        # The last TAIL_BYTES of output, and how many bytes were ever written.
        self._output = bytearray()
        self._written = 0
        self._api = _RuntimeApi(self)
        # A short poll interval: stopping an environment waits for the server loop to notice.
        threading.Thread(target=self._api.serve_forever, args=(0.05,), daemon=True,
                         name=f"runtime-api-{spec.name}").start()
        port = self._api.server_address[1]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            **dict(spec.environment),
            # Set by Lambda; a function's own variables cannot override them.
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": spec.handler,
            **extra_env,
            **({"AWS_ACCESS_KEY_ID": spec.credentials[0], "AWS_SECRET_ACCESS_KEY": spec.credentials[1],
                "AWS_SESSION_TOKEN": "local-aws-execution-role"} if spec.credentials else {}),
        }
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # time.monotonic() just before the process starts: cold start is measured from here.
        self.started_at = time.monotonic()
        # When the runtime first asked for an invocation: the end of its init phase.
        self.ready_at: float | None = None
        self.process = subprocess.Popen(
            [str(code_dir / "bootstrap")],
            cwd=code_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._pump_output, daemon=True, name=f"output-{spec.name}").start()

    def _pump_output(self):
        """Copies the function's output to its log and tail as it comes. Reads happen under the
        lock, so `_drain_output` holding the lock knows no read is half-recorded."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        # Never blocks with the lock held: _drain_output may have emptied the pipe in between.
        os.set_blocking(fd, False)
        while True:
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            with self._lock:
                if not self._record_output(fd):
                    return

    def _record_output(self, fd: int) -> bool:
        """Reads what the pipe holds into the log and the tail (the caller holds the lock);
        False at end of output."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:  # nothing to read now
            return True
        if not chunk:
            return False
        if not self._log.closed:
            self._log.write(chunk)
            self._log.flush()
        self._written += len(chunk)
        self._output += chunk
        del self._output[: max(0, len(self._output) - TAIL_BYTES)]
        return True

    def _drain_output(self) -> None:
        """Records what the function wrote before it answered: a line printed just before the
        response may still be in the pipe."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        with self._lock:
            while select.select([fd], [], [], 0)[0] and self._record_output(fd):
                pass

    # Runtime API side.
    def next_invocation(self) -> _Invocation | None:
        if self.ready_at is None:
            self.ready_at = time.monotonic()
        invocation = self._pending.get()
        with self._lock:
            self._current = invocation
        return invocation

    def init_failed(self, body: bytes, error_type: str | None):
        with self._lock:
            self._init_error = (body, error_type)
            current = self._current
        if current is not None:
            current.error, current.error_type = body, error_type
            current.done.set()

    def complete(self, request_id: str, outcome: str, body: bytes, headers) -> bool:
        with self._lock:
            current = self._current
            if current is None or current.request_id != request_id:
                return False
            self._current = None
        current.responded_at = time.monotonic()
        if outcome == "response":
            current.response = body
        else:
            current.error = body
            current.error_type = headers.get("Lambda-Runtime-Function-Error-Type")
        current.done.set()
        return True

    # Invoke side.
    def invoke(self, payload: bytes, cold_start: bool) -> InvokeResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000) + self.spec.timeout_seconds * 1000
        with self._lock:
            output_mark = self._written
        invocation = _Invocation(request_id, payload, deadline_ms, self.spec.arn)
        self._pending.put(invocation)
        limit = started + self.spec.timeout_seconds
        error: tuple[str, str] | None = None
        while not invocation.done.wait(0.05):
            if self.process.poll() is not None:
                if self._init_error is not None:
                    invocation.error, invocation.error_type = self._init_error
                    break
                error = ("Runtime.ExitError", f"Runtime exited with error: exit status {self.process.returncode}")
                break
            if time.monotonic() >= limit:
                self.stop()
                error = ("Sandbox.Timedout", f"Task timed out after {self.spec.timeout_seconds:.2f} seconds")
                break
        duration_ms = (time.monotonic() - started) * 1000
        self._drain_output()
        with self._lock:
            new_bytes = min(self._written - output_mark, len(self._output))
            tail = bytes(self._output[len(self._output) - new_bytes :])
        if error is not None:
            error_type, message = error
            body = json.dumps(
                {"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {message}"}
            ).encode()
            return InvokeResult(body, "Unhandled", error_type, duration_ms, cold_start, tail)
        if invocation.error is not None:
            return InvokeResult(
                invocation.error,
                "Unhandled",
                _error_type(invocation.error, invocation.error_type),
                duration_ms,
                cold_start,
                tail,
            )
        response = invocation.response or b""
        if len(response) > MAX_PAYLOAD_BYTES:
            body = json.dumps(
                {
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": f"Response payload size ({len(response)} bytes) exceeded maximum allowed "
                    f"payload size ({MAX_PAYLOAD_BYTES} bytes).",
                }
            ).encode()
            return InvokeResult(body, "Unhandled", "Function.ResponseSizeTooLarge", duration_ms, cold_start, tail)
        return InvokeResult(response, None, None, duration_ms, cold_start, tail, invocation.responded_at)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self):
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._pending.put(None)
        self._api.shutdown()
        self._api.server_close()
        with self._lock:
            self._log.close()


def _error_type(body: bytes, header: str | None) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return header
    if isinstance(document, dict) and isinstance(document.get("errorType"), str):
        return document["errorType"]
    return header


class EnvironmentPool:
    """Warm environments per function version; a busy one means a new one (a cold start)."""

    def __init__(self, state_dir: Path, extra_env: dict[str, str]):
        self.code = CodeStore(state_dir / "code")
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.extra_env = extra_env
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._busy: set[ExecutionEnvironment] = set()
        self._lock = threading.Lock()

    def invoke(self, spec: FunctionSpec, code_dir: Path, payload: bytes) -> InvokeResult:
        with self._lock:
            idle = self._idle.get(spec.key, [])
            environment = idle.pop() if idle else None
            # Environments of an older code or configuration of the function stop.
            stale = [
                env
                for key, envs in self._idle.items()
                if key != spec.key
                for env in envs
                if env.spec.arn == spec.arn
            ]
            for env in stale:
                self._idle[env.spec.key].remove(env)
        for env in stale:
            env.stop()
        cold_start = environment is None
        if environment is None:
            environment = ExecutionEnvironment(spec, code_dir, self.extra_env, self.logs / f"{spec.name}.log")
        with self._lock:
            self._busy.add(environment)
        try:
            result = environment.invoke(payload, cold_start)
        finally:
            with self._lock:
                self._busy.discard(environment)
                if environment.alive:
                    self._idle.setdefault(spec.key, []).append(environment)
        if not environment.alive:
            environment.stop()
        return result

    def stop_all(self):
        with self._lock:
            environments = [env for envs in self._idle.values() for env in envs] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(ExecutionEnvironment.stop, environments))

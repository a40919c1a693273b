"""`python -m local_aws serve --port N`: the gateway with moto inside, on loopback.
`python -m local_aws deploy`: the eight functions and the state machines, into it.
`python -m local_aws render`: a state machine definition, as the Terraform module renders it."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def serve(args: argparse.Namespace) -> int:
    # moto's state machine interpreter calls Lambda at localhost:$MOTO_PORT: that must be us.
    os.environ["MOTO_PORT"] = str(args.port)
    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import MotoRequestHandler

    from .gateway import Gateway

    gateway = Gateway(Path(args.state_dir), args.port, snapshot_limit=args.snapshot_limit)
    server = make_server(args.host, args.port, gateway, threaded=True, request_handler=MotoRequestHandler)
    stop = threading.Event()

    def shut_down(signum, _frame):
        logging.getLogger("local_aws").info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"local AWS listening on http://{args.host}:{args.port} (moto inside; control API at /_gateway/)", flush=True)
    # Stop with the parent too, so a killed test run leaves no server behind.
    while not stop.wait(1):
        if args.parent_pid and not _alive(args.parent_pid):
            logging.getLogger("local_aws").info("parent %s is gone: stopping", args.parent_pid)
            break
    server.shutdown()
    gateway.close()
    print("local AWS stopped", flush=True)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def deploy(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    from .deploy import Deployment, Settings
    from .module_plan import PlanError

    # moto makes snapshots, copies and exports available at once: poll often.
    settings = Settings(db_identifiers=tuple(args.databases), copy_region=args.copy_region or None,
                        poll_interval_seconds=args.poll_seconds, wait_timeout_seconds=args.wait_seconds)
    try:
        deployment = Deployment.create(args.endpoint, Path(args.zips), settings)
    except (FileNotFoundError, ClientError, PlanError) as err:
        print(f"deploy: {err}", file=sys.stderr)
        if isinstance(err, ClientError) and err.response["Error"]["Code"] in ("EntityAlreadyExists", "ResourceConflictException"):
            print(f"deploy: already deployed; start over with: curl -X POST {args.endpoint}/_gateway/reset", file=sys.stderr)
        return 1
    print(f"state machine: {deployment.state_machine_arn}")
    print(f"state machine of one database (started by it): {deployment.database_state_machine_arn}")
    for name, arn in deployment.function_arns.items():
        print(f"function {name}: {arn}")
    return 0


def render(args: argparse.Namespace) -> int:
    from .deploy import Settings, plans

    settings = Settings(db_identifiers=tuple(args.databases))
    planned = plans(args.endpoint, [settings])[settings]
    machine = "database" if args.database else "backup"
    definition = planned.resource(f'aws_sfn_state_machine.workflow["{machine}"]')["definition"]
    sys.stdout.write(json.dumps(json.loads(definition), indent=2) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="local_aws")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the local AWS")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--state-dir", required=True, help="unpacked functions and their logs")
    serve_cmd.add_argument("--snapshot-limit", type=int, default=100, help="manual snapshots allowed per region")
    serve_cmd.add_argument("--parent-pid", type=int, help="stop when this process ends")
    serve_cmd.set_defaults(run=serve)
    deploy_cmd = commands.add_parser("deploy", help="deploy the functions and the state machine")
    deploy_cmd.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), required=False)
    deploy_cmd.add_argument("--zips", default="target/lambda", help="where scripts/build-lambdas put the zips")
    deploy_cmd.add_argument("--databases", nargs="+", default=["prod-database-1", "prod-database-2"])
    deploy_cmd.add_argument("--copy-region", default="us-west-2", help="'' disables copies")
    deploy_cmd.add_argument("--poll-seconds", type=int, default=2, help="poll interval of every wait")
    deploy_cmd.add_argument("--wait-seconds", type=int, default=600, help="bound of every wait")
    deploy_cmd.set_defaults(run=deploy)
    render_cmd = commands.add_parser("render", help="print the backup state machine's definition, as the module renders it")
    render_cmd.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), required=False)
    render_cmd.add_argument("--databases", nargs="+", default=["prod-database-1"])
    render_cmd.add_argument("--database", action="store_true", help="the state machine of one database instead")
    render_cmd.set_defaults(run=render)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.command in ("deploy", "render") and not args.endpoint:
        parser.error(f"{args.command} needs --endpoint or AWS_ENDPOINT_URL (eval \"$(scripts/local-aws start)\")")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

"""The demo's steps, run by scripts/demo against the local AWS at AWS_ENDPOINT_URL:

  python -m demo up              create the databases and old snapshots (once), terraform init + apply
  python -m demo run [--input J] start the backup as the schedule does (or with input J), follow it, report
  python -m demo drill           start a restore drill as its schedule does, follow it, print its report
  python -m demo down            terraform destroy, and show what (if anything) it left behind
  python -m demo hint            how to explore the running stack
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

from local_aws.control import control, local_endpoint
from local_aws.deploy import Aws, drain_queue
from local_aws.terraform import ROOT

from . import follow, report, resources, world
from .stack import Stack, TerraformError

STATE = ROOT / ".tools" / "demo"
RESOURCES_BEFORE_APPLY = STATE / "resources-before-apply.json"
AWS_CLI = ".tools/venv/bin/aws"
# Simulated seconds per real second while a run is followed (local_aws/clock.py).
CLOCK_SCALE = 600


def say(line: str = "") -> None:
    print(line, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text}")


def up(aws: Aws, stack: Stack, _args) -> int:
    heading("databases and their older snapshots")
    if world.seeded(aws):
        say("  already there (this local AWS ran the demo before)")
    else:
        if stack.state_file.exists():
            say("  this local AWS is new: forgetting the Terraform state of an earlier one")
            stack.forget()
        for line in world.seed(aws):
            say(f"  {line}")
    if not stack.resources():
        STATE.mkdir(parents=True, exist_ok=True)
        RESOURCES_BEFORE_APPLY.write_text(json.dumps(resources.take(aws), indent=1))
    heading(f"terraform init + apply of {stack.directory.relative_to(ROOT)} (terraform's output: {stack.log_name})")
    stack.log.unlink(missing_ok=True)  # the log of this deployment (destroy appends to it)
    started = time.monotonic()
    stack.init()
    stack.apply()
    say(f"  applied in {time.monotonic() - started:.0f} s; {len(stack.resources())} resources in the state")
    drift = stack.drift()
    say("  a second plan changes nothing" if drift is None else f"  a second plan still changes things:\n{drift}")
    return 0 if drift is None else 1


def run(aws: Aws, stack: Stack, args) -> int:
    outputs = stack.outputs()
    machine, scheduled_input = follow.scheduled_target(aws.client("events"), outputs["schedule_rule_name"])
    execution_input = args.input if args.input is not None else scheduled_input
    heading("starting the backup")
    if args.input is None:
        say(f"  the EventBridge rule {outputs['schedule_rule_name']} fires now (schedules do not fire by"
            f" themselves here): input {scheduled_input}")
    else:
        say(f"  with the input {execution_input} (a rerun from the console)")
    say("  the same from a shell:")
    say(f"    {AWS_CLI} --endpoint-url {aws.endpoint} stepfunctions start-execution \\")
    say(f"      --state-machine-arn {machine} --input {shlex.quote(execution_input)}")
    say("  a rerun for one database:")
    say(f"    {AWS_CLI} --endpoint-url {aws.endpoint} stepfunctions start-execution \\")
    say(f"      --state-machine-arn {machine} --input '{json.dumps({'db_instance_ids': ['prod-database-2']})}'")

    say(f"  the local AWS's clock runs {CLOCK_SCALE} times faster than real time: snapshots, copies and"
        " exports take their simulated minutes, and the waits poll for them")
    control(aws.endpoint, "PUT", "settings", {"clock_scale": CLOCK_SCALE})
    drain_queue(aws, outputs["notification_inbox_url"])  # earlier runs' messages
    before = report.Inventory.take(aws)
    slack_seen = len(control(aws.endpoint, "GET", "slack"))
    sfn = aws.client("stepfunctions")
    if args.input is None:
        [fired] = control(aws.endpoint, "POST", "events/fire", {"rule": outputs["schedule_rule_name"]})
        if "execution_arn" not in fired:
            raise RuntimeError(f"the rule {outputs['schedule_rule_name']} did not start the backup: {fired}")
        arn = fired["execution_arn"]
    else:
        arn = sfn.start_execution(stateMachineArn=machine, input=execution_input)["executionArn"]
    heading(f"following {arn.rsplit(':', 1)[-1]}")
    execution = follow.follow(sfn, arn, say)
    heading("report (read from the local AWS)")
    result = report.collect(aws, outputs, execution, before, slack_seen)
    for line in result.lines():
        say(f"  {line}")
    if not result.succeeded:
        say()
        say(f"the backup did not succeed: {execution.description.get('error')}: {execution.description.get('cause')}")
    return 0 if result.succeeded else 1


def drill(aws: Aws, stack: Stack, _args) -> int:
    """One restore drill (restore_drill), as its weekly schedule starts it: the newest backup of a
    database restored to a new instance, checked, measured and deleted."""
    outputs = stack.outputs()
    machine = outputs["drill_state_machine_arn"]
    heading("a restore drill")
    say(f"  as the weekly schedule starts it: {AWS_CLI} --endpoint-url {aws.endpoint} stepfunctions start-execution \\")
    say(f"      --state-machine-arn {machine} --input '{{}}'")
    control(aws.endpoint, "PUT", "settings", {"clock_scale": CLOCK_SCALE})
    drain_queue(aws, outputs["notification_inbox_url"])
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    started = time.monotonic()
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() - started > 300:
            say("  the drill is still running after 300 s")
            return 1
        time.sleep(0.5)
    say(f"  {described['status']} in {time.monotonic() - started:.0f} s of real time")
    messages = [m for m in drain_queue(aws, outputs["notification_inbox_url"]) if "restore drill" in m.get("Subject", "")]
    for message in messages[-1:]:
        say(f"  SNS: {message['Subject']}")
        for line in message["Message"].splitlines():
            say(f"    {line}")
    times = report.restore_times(aws, outputs)
    for db, minutes in sorted(times.items()):
        say(f"  recovery time of {db} (metric RestoreTime): {minutes:.1f} min")
    if not times:
        say("  no recovery time was measured")
    return 0 if described["status"] == "SUCCEEDED" and times else 1


def down(aws: Aws, stack: Stack, _args) -> int:
    heading(f"terraform destroy of {stack.directory.relative_to(ROOT)} (terraform's output: {stack.log_name})")
    stack.destroy()
    if not RESOURCES_BEFORE_APPLY.is_file():
        say("  destroyed (no record of the local AWS before the apply to compare with)")
        return 0
    extra = resources.left_behind(json.loads(RESOURCES_BEFORE_APPLY.read_text()), resources.take(aws))
    for kind, names in extra.items():
        say(f"  left behind: {kind}: {', '.join(names)}")
    say("  nothing left behind; the snapshots and exports (the backups) stay" if not extra else "")
    return 1 if extra else 0


def hint(aws: Aws, stack: Stack, _args) -> int:
    outputs = stack.outputs()
    cli = f"{AWS_CLI} --endpoint-url {aws.endpoint}"
    heading("the stack is running in the local AWS")
    for line in (
        f"{cli} stepfunctions list-executions --state-machine-arn {outputs['state_machine_arn']}",
        f"{cli} rds describe-db-snapshots --snapshot-type manual --query 'DBSnapshots[].[DBSnapshotIdentifier,Status]'",
        f"{cli} --region {outputs['copy_region']} rds describe-db-snapshots --snapshot-type manual",
        f"{cli} rds describe-export-tasks",
        f"curl -s {aws.endpoint}/_gateway/slack        # the Slack messages received",
        "scripts/demo run                             # another scheduled-style run",
        "scripts/demo run --input '{\"db_instance_ids\": [\"prod-database-2\"]}'",
        "scripts/restore --db prod-database-1 --new-id prod-database-1-restored --dry-run",
        "scripts/demo plan                            # what retention keeps, deletes and costs",
        "scripts/demo drill                           # another restore drill",
        "scripts/demo stop                            # terraform destroy, then stop the local AWS",
    ):
        say(f"  {line}")
    state = os.environ.get("LOCAL_AWS_STATE") or ".tools/local-aws"
    say(f"  (the functions' logs: {state}/lambda/logs/; the gateway's: {state}/gateway.log)")
    return 0


def plan(aws: Aws, stack: Stack, args) -> int:
    """The retention plan of the deployed instance (scripts/retention-plan), as of the local AWS's clock."""
    arn = stack.outputs()["state_machine_arn"]
    at = control(aws.endpoint, "GET", "clock")["now"]
    command = [str(ROOT / "scripts" / "retention-plan"), arn, "--at", at, *(["--json"] if args.json else [])]
    return subprocess.run(command, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up").set_defaults(step=up)
    run_cmd = commands.add_parser("run")
    run_cmd.add_argument("--input", help="execution input (JSON); default: the schedule rule's input")
    run_cmd.set_defaults(step=run)
    commands.add_parser("drill").set_defaults(step=drill)
    commands.add_parser("down").set_defaults(step=down)
    commands.add_parser("hint").set_defaults(step=hint)
    plan_cmd = commands.add_parser("plan")
    plan_cmd.add_argument("--json", action="store_true", help="the plan as JSON")
    plan_cmd.set_defaults(step=plan)
    args = parser.parse_args()
    try:
        endpoint = local_endpoint()
    except RuntimeError as err:
        parser.error(str(err))
    if getattr(args, "input", None) is not None:
        try:
            json.loads(args.input)
        except ValueError as err:
            parser.error(f"--input is not JSON: {err}")
    try:
        return args.step(Aws(endpoint), Stack(endpoint, progress=lambda line: say(f"  {line}")), args)
    except TerraformError as err:
        say(str(err))
        return 1


if __name__ == "__main__":
    sys.exit(main())

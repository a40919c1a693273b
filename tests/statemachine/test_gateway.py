"""The local AWS gateway on its own: Lambda Invoke answered as Lambda answers
it, fault injection, the calls moto lacks, the Slack sink."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request
import zipfile
from datetime import datetime, timedelta

import boto3
import botocore.config
import botocore.exceptions

from harness import SOURCE, control, endpoint
from local_aws import databases
from local_aws.deploy import Aws
from local_aws.gateway import busy_seconds

# A function in Python speaking the Lambda Runtime API: the event decides what it does.
BOOTSTRAP = """#!/usr/bin/env python3
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
def post(path, body, headers={}):
    urllib.request.urlopen(urllib.request.Request(api + path, json.dumps(body).encode(), headers, method="POST"))
while True:
    with urllib.request.urlopen(api + "next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(response.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(response.read())
    print("handling", json.dumps(event), flush=True)
    action = event.get("do")
    if action == "fail":
        post(request_id + "/error", {"errorType": "SnapshotQuotaExceeded", "errorMessage": "full"})
    elif action == "exit":
        sys.exit(3)
    elif action == "sleep":
        time.sleep(30)
    else:
        post(request_id + "/response", {"pid": os.getpid(), "greeting": os.environ.get("GREETING"),
                                       "endpoint": os.environ.get("AWS_ENDPOINT_URL"), "handler": os.environ.get("_HANDLER"),
                                       "deadline_in_future": deadline > time.time() * 1000, "event": event})
"""


def package(bootstrap: str = BOOTSTRAP) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        archive.writestr(info, bootstrap)
    return buffer.getvalue()


class GatewayTest(unittest.TestCase):
    def setUp(self):
        control("POST", "reset")
        self.aws = Aws(endpoint())
        self.lambda_client = self.aws.client("lambda", SOURCE)
        role = self.aws.client("iam").create_role(RoleName="gateway-test", AssumeRolePolicyDocument="{}")
        self.role = role["Role"]["Arn"]

    def tearDown(self):
        control("DELETE", "faults")

    def create_function(self, name="probe", timeout=3, code=None):
        self.lambda_client.create_function(
            FunctionName=name, Runtime="provided.al2023", Handler="probe-handler", Role=self.role,
            Code={"ZipFile": code or package()}, Timeout=timeout, Environment={"Variables": {"GREETING": "hello"}},
        )

    def invoke(self, event: dict, name="probe", **kwargs):
        response = self.lambda_client.invoke(FunctionName=name, Payload=json.dumps(event), **kwargs)
        return response, json.loads(response["Payload"].read() or b"null")


class LambdaInvoke(GatewayTest):
    def test_the_function_runs_warm_with_its_environment_and_the_local_endpoint(self):
        self.create_function()
        first, body = self.invoke({"n": 1}, LogType="Tail")
        self.assertNotIn("FunctionError", first)
        self.assertEqual(body["event"], {"n": 1})
        self.assertEqual(body["greeting"], "hello")
        self.assertEqual(body["endpoint"], endpoint())
        # A custom runtime reads the function's handler setting from _HANDLER, as on Lambda.
        self.assertEqual(body["handler"], "probe-handler")
        self.assertTrue(body["deadline_in_future"])
        self.assertIn('handling {"n": 1}', base64.b64decode(first["LogResult"]).decode())
        _, again = self.invoke({"n": 2})
        self.assertEqual(again["pid"], body["pid"], "the second invocation reuses the warm environment")
        invocations = control("GET", "invocations")
        self.assertEqual([i["cold_start"] for i in invocations], [True, False])

    def test_a_function_error_comes_back_as_lambda_returns_it(self):
        self.create_function()
        response, body = self.invoke({"do": "fail"})
        self.assertEqual(response["FunctionError"], "Unhandled")
        self.assertEqual(body, {"errorType": "SnapshotQuotaExceeded", "errorMessage": "full"})

    def test_a_runtime_that_exits_is_runtime_exit_error_and_the_next_call_starts_afresh(self):
        self.create_function()
        response, body = self.invoke({"do": "exit"})
        self.assertEqual(response["FunctionError"], "Unhandled")
        self.assertEqual(body["errorType"], "Runtime.ExitError")
        self.assertIn("exit status 3", body["errorMessage"])
        _, body = self.invoke({"n": 3})
        self.assertEqual(body["event"], {"n": 3})

    def test_a_function_over_its_timeout_is_sandbox_timedout(self):
        self.create_function(timeout=1)
        response, body = self.invoke({"do": "sleep"})
        self.assertEqual(response["FunctionError"], "Unhandled")
        self.assertEqual(body["errorType"], "Sandbox.Timedout")
        self.assertIn("Task timed out after 1.00 seconds", body["errorMessage"])

    def test_a_new_configuration_gets_a_new_environment(self):
        self.create_function()
        _, before = self.invoke({})
        self.lambda_client.update_function_configuration(FunctionName="probe", Environment={"Variables": {"GREETING": "bye"}})
        _, after = self.invoke({})
        self.assertEqual(after["greeting"], "bye")
        self.assertNotEqual(after["pid"], before["pid"])

    def test_unknown_functions_dry_runs_and_packages_without_bootstrap(self):
        with self.assertRaises(self.lambda_client.exceptions.ResourceNotFoundException):
            self.invoke({}, name="nobody")
        self.create_function()
        self.assertEqual(self.lambda_client.invoke(FunctionName="probe", InvocationType="DryRun")["StatusCode"], 204)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("handler.py", "print('no bootstrap')")
        self.create_function(name="no-bootstrap", code=buffer.getvalue())
        response, body = self.invoke({}, name="no-bootstrap")
        self.assertEqual((response["FunctionError"], body["errorType"]), ("Unhandled", "Runtime.InvalidEntrypoint"))


class Faults(GatewayTest):
    def test_the_next_calls_fail_with_the_given_code_then_pass(self):
        sns = self.aws.client("sns", SOURCE)
        control("POST", "faults", {"action": "sns:CreateTopic", "count": 2, "error_code": "Throttling"})
        for _ in range(2):
            with self.assertRaises(botocore.exceptions.ClientError) as raised:
                sns.create_topic(Name="t")
            self.assertEqual(raised.exception.response["Error"]["Code"], "Throttling")
        self.assertTrue(sns.create_topic(Name="t")["TopicArn"].endswith(":t"))
        self.assertEqual(control("GET", "calls")["sns:CreateTopic"], 3)

    def test_status_only_faults_match_and_json_protocol_errors(self):
        sfn = self.aws.client("stepfunctions", SOURCE)
        control("POST", "faults", {"action": "states:ListStateMachines", "http_status": 503})
        with self.assertRaises(botocore.exceptions.ClientError) as raised:
            sfn.list_state_machines()
        self.assertEqual(raised.exception.response["ResponseMetadata"]["HTTPStatusCode"], 503)
        rds = self.aws.client("rds", SOURCE)
        control("POST", "faults", {"action": "rds:DescribeDBInstances", "match": "wanted-db", "error_code": "DBInstanceNotFound"})
        self.assertEqual(rds.describe_db_instances()["DBInstances"], [])  # no match: passes through
        with self.assertRaises(rds.exceptions.DBInstanceNotFoundFault):
            rds.describe_db_instances(DBInstanceIdentifier="wanted-db")

    def test_a_reset_drops_the_connection_unanswered_then_calls_pass(self):
        rds = self.aws.client("rds", SOURCE)  # one attempt per call
        control("POST", "faults", {"action": "rds:DescribeDBInstances", "reset": True})
        with self.assertRaises(botocore.exceptions.ConnectionClosedError):
            rds.describe_db_instances()
        self.assertEqual(rds.describe_db_instances()["DBInstances"], [])
        self.assertEqual(control("GET", "calls")["rds:DescribeDBInstances"], 2)

    def test_the_interpreters_polling_of_a_child_execution_is_not_faulted(self):
        # moto's interpreter signs its service integrations' calls with the key `ak`; its
        # DescribeExecution polling of a .sync:2 child is a call AWS does not make.
        interpreter = boto3.client("stepfunctions", endpoint_url=endpoint(), region_name=SOURCE,
                                   aws_access_key_id="ak", aws_secret_access_key="sk",
                                   config=botocore.config.Config(retries={"total_max_attempts": 1}))
        arn = "arn:aws:states:us-east-1:123456789012:execution:dbbackup-local-database:none"
        for action in ("states:DescribeExecution", "states:ListStateMachines"):
            control("POST", "faults", {"action": action, "count": None, "http_status": 503, "error_code": "Unavailable"})
        with self.assertRaises(interpreter.exceptions.ExecutionDoesNotExist):  # moto's own answer
            interpreter.describe_execution(executionArn=arn)
        with self.assertRaises(botocore.exceptions.ClientError) as raised:  # the interpreter's other calls are
            interpreter.list_state_machines()
        self.assertEqual(raised.exception.response["ResponseMetadata"]["HTTPStatusCode"], 503)
        with self.assertRaises(botocore.exceptions.ClientError) as raised:  # and everyone else's
            self.aws.client("stepfunctions", SOURCE).describe_execution(executionArn=arn)
        self.assertEqual(raised.exception.response["ResponseMetadata"]["HTTPStatusCode"], 503)

    def test_a_wrong_fault_is_refused_naming_the_field(self):
        for document, field in [({"action": "CreateDBSnapshot", "error_code": "X"}, "action"),
                                ({"action": "rds:X", "count": 0, "error_code": "X"}, "count"),
                                ({"action": "rds:X"}, "error_code"),
                                ({"action": "rds:X", "error_code": "X", "colour": 1}, "colour"),
                                ({"action": "rds:X", "error_code": "X", "reset": True}, "reset"),
                                ({"action": "rds:X", "reset": "yes"}, "reset")]:
            with self.assertRaises(urllib.error.HTTPError) as raised:
                control("POST", "faults", document)
            self.assertEqual(raised.exception.code, 400)
            self.assertIn(field, json.loads(raised.exception.read())["error"])


class MotoGaps(GatewayTest):
    def test_describe_account_attributes_counts_manual_snapshots_against_the_limit(self):
        rds = self.aws.client("rds", SOURCE)
        rds.create_db_instance(DBInstanceIdentifier="db1", Engine="postgres", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="correct-horse-battery")
        rds.create_db_snapshot(DBInstanceIdentifier="db1", DBSnapshotIdentifier="manual-1")
        control("PUT", "settings", {"snapshot_limit": 7})
        quotas = {q["AccountQuotaName"]: q for q in rds.describe_account_attributes()["AccountQuotas"]}
        # moto also keeps an automated snapshot of db1: it does not count.
        self.assertEqual((quotas["ManualSnapshots"]["Used"], quotas["ManualSnapshots"]["Max"]), (1, 7))
        self.assertEqual(quotas["DBInstances"]["Used"], 1)
        other_region = {q["AccountQuotaName"]: q for q in self.aws.client("rds", "eu-west-1").describe_account_attributes()["AccountQuotas"]}
        self.assertEqual(other_region["ManualSnapshots"]["Used"], 0)

    def test_validate_state_machine_definition_and_list_versions(self):
        sfn = self.aws.client("stepfunctions", SOURCE)
        good = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
        self.assertEqual(sfn.validate_state_machine_definition(definition=json.dumps(good))["result"], "OK")
        bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}
        answer = sfn.validate_state_machine_definition(definition=json.dumps(bad))
        self.assertEqual(answer["result"], "FAIL")
        self.assertEqual(answer["diagnostics"][0]["code"], "MISSING_TRANSITION_TARGET")
        typo = {"StartAt": "A", "States": {"A": {"Type": "Passs", "End": True}}}
        self.assertEqual(sfn.validate_state_machine_definition(definition=json.dumps(typo))["result"], "FAIL")
        role = self.aws.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = sfn.create_state_machine(name="m", definition=json.dumps(good), roleArn=role, publish=True)
        versions = sfn.list_state_machine_versions(stateMachineArn=machine["stateMachineArn"])["stateMachineVersions"]
        self.assertEqual([v["stateMachineVersionArn"] for v in versions], [machine["stateMachineArn"] + ":1"])


class ParsesOnManyThreads(unittest.TestCase):
    """moto's ASL Preprocessor keeps its query-language scopes in one list shared
    by every parse (a class attribute): opening a scope, it checks the list is
    not empty, then reads its last entry, and a parse on another thread can pop
    that entry in between (IndexError: list index out of range, on a valid
    definition). The gateway validates and runs definitions on many threads; its
    patch parses one at a time. Here the second parse is held in that gap until
    the first has ended, which the race otherwise needs luck for."""

    DEFINITION = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})

    def setUp(self):
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

        self.first_is_parsing, self.second_is_in_the_gap, self.first_has_ended = (threading.Event() for _ in range(3))
        read_scope = Preprocessor._get_current_query_language

        def read_in_turn(preprocessor):
            if threading.current_thread().name == "first" and not self.first_is_parsing.is_set():
                self.first_is_parsing.set()
                self.second_is_in_the_gap.wait(timeout=1)
            elif threading.current_thread().name == "second" and not self.second_is_in_the_gap.is_set():
                self.second_is_in_the_gap.set()
                self.first_has_ended.wait(timeout=5)
            return read_scope(preprocessor)

        Preprocessor._get_current_query_language = read_in_turn
        self.addCleanup(setattr, Preprocessor, "_get_current_query_language", read_scope)
        self.addCleanup(Preprocessor._query_language_per_scope.clear)
        self.parse = getattr(AmazonStateLanguageParser.parse, "__wrapped__", AmazonStateLanguageParser.parse)

    def second_parse_failure(self, parse) -> str | None:
        failures: list[str] = []

        def parse_and_note(name: str):
            try:
                parse(self.DEFINITION)
            except Exception as err:  # noqa: BLE001 - any failure of a valid definition counts
                failures.append(f"{name}: {type(err).__name__}: {err}")
            if name == "first":
                self.first_has_ended.set()

        first = threading.Thread(target=parse_and_note, args=("first",), name="first")
        second = threading.Thread(target=parse_and_note, args=("second",), name="second")
        first.start()
        self.assertTrue(self.first_is_parsing.wait(timeout=5))
        second.start()
        first.join()
        second.join()
        return failures

    def test_two_parses_at_once_fail_unguarded_and_pass_one_at_a_time(self):
        from local_aws.moto_patches import one_parse_at_a_time

        self.assertEqual(self.second_parse_failure(self.parse), ["second: IndexError: list index out of range"])
        for event in (self.first_is_parsing, self.second_is_in_the_gap, self.first_has_ended):
            event.clear()
        self.assertEqual(self.second_parse_failure(one_parse_at_a_time(self.parse)), [])


class CallTime(GatewayTest):
    def test_overlapping_calls_count_once_in_the_busy_time(self):
        self.assertEqual(busy_seconds([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.8)]), 4.0)
        self.assertEqual(busy_seconds([]), 0.0)

    def test_the_time_spent_answering_is_reported_and_reset_with_the_counts(self):
        control("DELETE", "calls")
        rds = self.aws.client("rds", SOURCE)
        for _ in range(3):
            rds.describe_db_snapshots()
        self.assertEqual(control("GET", "calls")["rds:DescribeDBSnapshots"], 3)
        self.assertGreater(control("GET", "calls/time")["busy_seconds"], 0)
        control("DELETE", "calls")
        self.assertEqual(control("GET", "calls/time"), {"busy_seconds": 0.0})


class SlackSink(GatewayTest):
    def test_messages_posted_to_the_webhook_can_be_read_back(self):
        request = urllib.request.Request(f"{endpoint()}/_gateway/slack/services/T/B/x", json.dumps({"text": "hi"}).encode(),
                                         {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request) as response:
            self.assertEqual(response.read(), b"ok")
        self.assertEqual(control("GET", "slack"), [{"path": "/slack/services/T/B/x", "message": {"text": "hi"}}])
        control("DELETE", "slack")
        self.assertEqual(control("GET", "slack"), [])


if __name__ == "__main__":
    unittest.main()


class AwsRefusals(GatewayTest):
    """The refusals of local_aws/rules.py: answered as AWS answers them, each one off by a setting."""

    def test_a_key_for_an_unencrypted_cluster_snapshot_copy_is_refused(self):
        source, destination = self.aws.client("rds", SOURCE), self.aws.client("rds", "us-west-2")
        for cluster, encrypted in (("plain", False), ("sealed", True)):
            source.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="admin",
                                     MasterUserPassword="correct-horse-battery", StorageEncrypted=encrypted)
            source.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-1")
        key = self.aws.client("kms", "us-west-2").create_key()["KeyMetadata"]["Arn"]

        def copy(cluster: str, **key_id):
            arn = f"arn:aws:rds:{SOURCE}:123456789012:cluster-snapshot:{cluster}-1"
            return destination.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn,
                                                        TargetDBClusterSnapshotIdentifier=f"{cluster}-copy", **key_id)

        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            copy("plain", KmsKeyId=key)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterCombination")
        self.assertEqual(refused.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertIn("not encrypted", refused.exception.response["Error"]["Message"])
        self.assertIs(copy("plain")["DBClusterSnapshot"]["StorageEncrypted"], False)
        self.assertIs(copy("sealed", KmsKeyId=key)["DBClusterSnapshot"]["StorageEncrypted"], True)

        control("PUT", "settings", {"copy_unencrypted_cluster_snapshot_with_key": 0})
        destination.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="plain-copy")
        self.assertIn("DBClusterSnapshot", copy("plain", KmsKeyId=key))

    def test_cluster_snapshot_identifiers_are_held_to_rds_rules(self):
        source, destination = self.aws.client("rds", SOURCE), self.aws.client("rds", "us-west-2")
        cluster = "c" * 63  # the longest cluster identifier: with a date it is over 63 characters
        source.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="admin",
                                 MasterUserPassword="correct-horse-battery")
        for bad in (f"{cluster}-20261124-020000", "1st", "two--hyphens", "trailing-"):
            with self.subTest(identifier=bad), self.assertRaises(botocore.exceptions.ClientError) as refused:
                source.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=bad)
            self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterValue")
            self.assertIn("DBClusterSnapshotIdentifier", refused.exception.response["Error"]["Message"])
        source.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier="fits")
        arn = f"arn:aws:rds:{SOURCE}:123456789012:cluster-snapshot:fits"
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            destination.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn,
                                                 TargetDBClusterSnapshotIdentifier="x" * 64)
        self.assertIn("TargetDBClusterSnapshotIdentifier", refused.exception.response["Error"]["Message"])
        control("PUT", "settings", {"cluster_snapshot_identifier": 0})
        source.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-1")

    def test_bucket_names_are_held_to_s3_rules(self):
        s3 = self.aws.client("s3", SOURCE)
        for bad in ("Capitals", "ab", "two..periods", "192.168.1.1", "xn--punycode", "an-access-point-s3alias",
                    "-hyphen-first", "under_score"):
            with self.subTest(bucket=bad), self.assertRaises(botocore.exceptions.ClientError) as refused:
                s3.create_bucket(Bucket=bad)
            self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidBucketName")
            self.assertEqual(refused.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        s3.create_bucket(Bucket="prod-db-backups.123456789012-1")
        control("PUT", "settings", {"bucket_name": 0})
        s3.create_bucket(Bucket="under_score")

    def test_a_function_in_a_vpc_needs_a_role_that_may_manage_its_network_interfaces(self):
        iam = self.aws.client("iam")
        iam.create_role(RoleName="in-vpc", AssumeRolePolicyDocument="{}")
        role = iam.get_role(RoleName="in-vpc")["Role"]["Arn"]
        vpc = {"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}

        def create(name: str, vpc_config: dict | None = None):
            return self.lambda_client.create_function(
                FunctionName=name, Runtime="provided.al2023", Handler="probe-handler", Role=role,
                Code={"ZipFile": package()}, **({"VpcConfig": vpc_config} if vpc_config else {}))

        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            create("in-vpc", vpc)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterValueException")
        self.assertEqual(refused.exception.response["Error"]["Message"],
                         "The provided execution role does not have permissions to call CreateNetworkInterface on EC2")
        create("outside")  # outside a VPC, the role needs none of it
        with self.assertRaises(botocore.exceptions.ClientError):
            self.lambda_client.update_function_configuration(FunctionName="outside", VpcConfig=vpc)

        iam.put_role_policy(RoleName="in-vpc", PolicyName="enis", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"]}]}))
        create("in-vpc", vpc)
        self.lambda_client.update_function_configuration(FunctionName="outside", VpcConfig=vpc)
        # The rule off: what moto alone accepts.
        control("PUT", "settings", {"vpc_function_role_without_network_interface_permissions": 0})
        self.addCleanup(control, "PUT", "settings", {"vpc_function_role_without_network_interface_permissions": 1})
        iam.delete_role_policy(RoleName="in-vpc", PolicyName="enis")
        create("in-vpc-unchecked", vpc)

    def test_a_roles_inline_policies_are_held_to_10240_characters_together(self):
        iam = self.aws.client("iam")

        def document(characters: int) -> str:
            """A policy of exactly `characters` characters without white space, and some white space."""
            statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::"}
            shell = len(json.dumps({"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":")))
            statement["Resource"] += "a" * (characters - shell)
            return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=4)

        iam.put_role_policy(RoleName="gateway-test", PolicyName="first", PolicyDocument=document(6000))
        # 6,000 and 4,240 fit; one character more does not, and the refused policy is not kept.
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            iam.put_role_policy(RoleName="gateway-test", PolicyName="second", PolicyDocument=document(4241))
        self.assertEqual(refused.exception.response["Error"]["Code"], "LimitExceeded")
        self.assertEqual(refused.exception.response["ResponseMetadata"]["HTTPStatusCode"], 409)
        self.assertEqual(refused.exception.response["Error"]["Message"],
                         "Maximum policy size of 10240 bytes exceeded for role gateway-test")
        self.assertEqual(iam.list_role_policies(RoleName="gateway-test")["PolicyNames"], ["first"])
        iam.put_role_policy(RoleName="gateway-test", PolicyName="second", PolicyDocument=document(4240))
        # A policy replaced by one of the same name no longer counts.
        iam.put_role_policy(RoleName="gateway-test", PolicyName="first", PolicyDocument=document(6000))
        control("PUT", "settings", {"role_inline_policy_size": 0})
        iam.put_role_policy(RoleName="gateway-test", PolicyName="third", PolicyDocument=document(4240))

    def test_a_vpc_takes_one_private_dns_endpoint_per_service_and_a_route_table_one_gateway_route(self):
        ec2 = self.aws.client("ec2", SOURCE)
        vpc, other_vpc = (ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"] for cidr in ("10.1.0.0/16", "10.2.0.0/16"))
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
        other_subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.2.1.0/24")["Subnet"]["SubnetId"]
        table, second_table = (ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(2))
        rds, s3 = f"com.amazonaws.{SOURCE}.rds", f"com.amazonaws.{SOURCE}.s3"

        def interface(in_vpc: str, in_subnet: str, **private_dns) -> str:
            return ec2.create_vpc_endpoint(VpcId=in_vpc, ServiceName=rds, VpcEndpointType="Interface",
                                           SubnetIds=[in_subnet], **private_dns)["VpcEndpoint"]["VpcEndpointId"]

        def gateway(*tables: str) -> str:
            return ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=s3, VpcEndpointType="Gateway",
                                           RouteTableIds=list(tables))["VpcEndpoint"]["VpcEndpointId"]

        first = interface(vpc, subnet)  # private DNS is the default
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            interface(vpc, subnet, PrivateDnsEnabled=True)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameter")
        self.assertEqual(refused.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertEqual(refused.exception.response["Error"]["Message"],
                         "private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
                         f"rds.{SOURCE}.amazonaws.com in the VPC {vpc}")
        interface(vpc, subnet, PrivateDnsEnabled=False)  # reached by its own DNS names only
        interface(other_vpc, other_subnet)
        ec2.delete_vpc_endpoints(VpcEndpointIds=[first])
        interface(vpc, subnet)

        gateway(table)
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            gateway(second_table, table)
        self.assertEqual(refused.exception.response["Error"]["Code"], "RouteAlreadyExists")
        self.assertRegex(refused.exception.response["Error"]["Message"],
                         f"^route table {table} already has a route with destination-prefix-list-id pl-")
        gateway(second_table)

        control("PUT", "settings", {"interface_endpoint_private_dns_per_vpc": 0, "gateway_endpoint_route_per_route_table": 0})
        interface(vpc, subnet)
        gateway(table)

    def test_invocations_beyond_the_reserved_concurrency_are_throttled(self):
        self.create_function()
        self.lambda_client.put_function_concurrency(FunctionName="probe", ReservedConcurrentExecutions=1)
        busy = threading.Thread(target=self.invoke, args=({"do": "sleep"},))  # until its 3 s timeout
        busy.start()
        time.sleep(1)
        with self.assertRaises(self.lambda_client.exceptions.TooManyRequestsException) as throttled:
            self.invoke({"n": 1})
        # Lambda answers the one beyond the reservation 429, naming why.
        self.assertEqual(throttled.exception.response["ResponseMetadata"]["HTTPStatusCode"], 429)
        self.assertEqual(throttled.exception.response["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded")
        self.assertEqual(control("GET", "lambda/throttles"), {"probe": 1})
        # An asynchronous one waits in Lambda's queue for the reservation, then runs.
        self.assertEqual(self.lambda_client.invoke(FunctionName="probe", InvocationType="Event",
                                                   Payload=b'{"n": 2}')["StatusCode"], 202)
        busy.join()
        deadline = time.monotonic() + 10
        while len(control("GET", "invocations")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([i["outcome"] for i in control("GET", "invocations")], ["Sandbox.Timedout", "ok"])
        # Without a reservation, the account's unreserved concurrency: two at once run.
        self.lambda_client.delete_function_concurrency(FunctionName="probe")
        busy = threading.Thread(target=self.invoke, args=({"do": "sleep"},))
        busy.start()
        time.sleep(1)
        self.assertEqual(self.invoke({"n": 3})[1]["event"], {"n": 3})
        busy.join()
        self.assertEqual(control("GET", "lambda/throttles"), {"probe": 1})

    def test_a_reservation_that_leaves_fewer_than_100_unreserved_executions_is_refused(self):
        self.create_function()
        self.lambda_client.put_function_concurrency(FunctionName="probe", ReservedConcurrentExecutions=1)
        # A new account: 10 concurrent executions, none to reserve.
        control("PUT", "settings", {"lambda_concurrency_quota": 10})
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.lambda_client.put_function_concurrency(FunctionName="probe", ReservedConcurrentExecutions=1)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterValueException")
        self.assertIn("decreases account's UnreservedConcurrentExecution below its minimum value",
                      refused.exception.response["Error"]["Message"])


VAULT = "111111111111"  # a second account, acted in by its administrator's key (local_aws/accounts.py)
SOURCE_ACCOUNT = "123456789012"


class PointInTimeRestores(GatewayTest):
    """A point-in-time restore goes within the window RDS reports, and not without automated backups."""

    def test_a_restore_goes_only_within_the_window_and_never_with_backups_off(self):
        rds = self.aws.client("rds", SOURCE)
        for name, retention in (("kept", 1), ("unkept", 0)):
            rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
                                   AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="correct-horse",
                                   BackupRetentionPeriod=retention)
        rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", MasterUsername="admin",
                              MasterUserPassword="correct-horse-battery", BackupRetentionPeriod=1)
        # An hour of the clock passes: the databases' windows open.
        control("PUT", "settings", {"clock_scale": 3600})
        time.sleep(1.2)
        control("PUT", "settings", {"clock_scale": 0})
        kept = rds.describe_db_instances(DBInstanceIdentifier="kept")["DBInstances"][0]
        latest, created = kept["LatestRestorableTime"], kept["InstanceCreateTime"]
        self.assertGreater(latest - created, timedelta(minutes=30))

        def restore(target: str, **when):
            return rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="kept",
                                                            TargetDBInstanceIdentifier=target, **when)

        for outside in (latest + timedelta(minutes=1), created - timedelta(minutes=1)):
            with self.subTest(time=outside), self.assertRaises(botocore.exceptions.ClientError) as refused:
                restore("kept-outside", RestoreTime=outside)
            self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidRestoreFault")
            self.assertIn("outside the restorable window", refused.exception.response["Error"]["Message"])
        self.assertEqual(restore("kept-inside", RestoreTime=latest - timedelta(minutes=10))
                         ["DBInstance"]["DBInstanceIdentifier"], "kept-inside")
        # A database of its own, not a read replica of its source (moto made it one).
        inside = rds.describe_db_instances(DBInstanceIdentifier="kept-inside")["DBInstances"][0]
        self.assertNotIn("ReadReplicaSourceDBInstanceIdentifier", inside)
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="unkept",
                                                     TargetDBInstanceIdentifier="unkept-1", UseLatestRestorableTime=True)
        self.assertEqual(refused.exception.response["Error"]["Code"], "PointInTimeRestoreNotEnabled")

        ledger = rds.describe_db_clusters(DBClusterIdentifier="ledger")["DBClusters"][0]
        self.assertEqual(ledger["EarliestRestorableTime"], ledger["ClusterCreateTime"])
        self.assertGreater(ledger["LatestRestorableTime"], ledger["EarliestRestorableTime"])
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier="ledger-early", SourceDBClusterIdentifier="ledger",
                                                    RestoreToTime=ledger["EarliestRestorableTime"] - timedelta(minutes=1))
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidRestoreFault")
        control("PUT", "settings", {"cluster_point_in_time_restore_outside_the_window": 0})
        rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier="ledger-early", SourceDBClusterIdentifier="ledger",
                                                RestoreToTime=ledger["EarliestRestorableTime"] - timedelta(minutes=1))


class Restores(GatewayTest):
    """A restore takes time on the clock, and can be made to end in a failed status."""

    def test_a_restored_instance_is_creating_for_a_while_then_available_or_what_it_was_told(self):
        rds = self.aws.client("rds", SOURCE)
        rds.create_db_instance(DBInstanceIdentifier="orders", Engine="postgres", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=100, MasterUsername="admin", MasterUserPassword="correct-horse")
        rds.create_db_snapshot(DBInstanceIdentifier="orders", DBSnapshotIdentifier="orders-1")
        # 600 s + 6 s a GB: 1,200 s of the clock for 100 GB, 2 s of real time at 600.
        control("PUT", "settings", {"clock_scale": 600})
        control("POST", "rds/restore-fails", {"region": SOURCE, "db_identifier": "orders-broken",
                                              "status": "incompatible-restore"})
        for target in ("orders-restored", "orders-broken"):
            rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=target, DBSnapshotIdentifier="orders-1")

        def status(identifier: str) -> str:
            return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"]

        self.assertEqual((status("orders-restored"), status("orders-broken")), ("creating", "creating"))
        deadline = time.monotonic() + 10
        while status("orders-restored") == "creating":
            self.assertLess(time.monotonic(), deadline, "the restore never ended")
            time.sleep(0.2)
        self.assertEqual((status("orders-restored"), status("orders-broken")), ("available", "incompatible-restore"))
        # Once only (in the instant mode, at once); an unknown status is refused naming the documented ones.
        control("PUT", "settings", {"clock_scale": 0})
        rds.delete_db_instance(DBInstanceIdentifier="orders-broken", SkipFinalSnapshot=True)
        rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="orders-broken", DBSnapshotIdentifier="orders-1")
        self.assertEqual(status("orders-broken"), "available")
        with self.assertRaises(urllib.error.HTTPError) as refused:
            control("POST", "rds/restore-fails", {"region": SOURCE, "db_identifier": "x", "status": "sad"})
        self.assertIn("incompatible-restore", refused.exception.read().decode())


    def test_a_restored_cluster_takes_a_db_instance_only_once_available_which_then_takes_its_time(self):
        rds = self.aws.client("rds", SOURCE)
        rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", MasterUsername="admin",
                              MasterUserPassword="correct-horse")
        rds.create_db_cluster_snapshot(DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="ledger-1")
        control("PUT", "settings", {"clock_scale": 600})
        rds.restore_db_cluster_from_snapshot(DBClusterIdentifier="ledger-copy", SnapshotIdentifier="ledger-1",
                                             Engine="aurora-postgresql")

        def add_writer():
            return rds.create_db_instance(DBInstanceIdentifier="ledger-copy-1", DBClusterIdentifier="ledger-copy",
                                          Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")

        with self.assertRaises(rds.exceptions.ClientError) as refused:
            add_writer()
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidDBClusterStateFault")
        self.assertIn("ledger-copy is creating", str(refused.exception))

        def cluster_status() -> str:
            return rds.describe_db_clusters(DBClusterIdentifier="ledger-copy")["DBClusters"][0]["Status"]

        deadline = time.monotonic() + 10
        while cluster_status() != "available":
            self.assertLess(time.monotonic(), deadline, "the restore never ended")
            time.sleep(0.2)
        add_writer()

        def writer_status() -> str:
            return rds.describe_db_instances(DBInstanceIdentifier="ledger-copy-1")["DBInstances"][0]["DBInstanceStatus"]

        # 420 s of the clock, 0.7 s of real time at 600.
        self.assertEqual(writer_status(), "creating")
        deadline = time.monotonic() + 10
        while writer_status() == "creating":
            self.assertLess(time.monotonic(), deadline, "the writer never became available")
            time.sleep(0.1)
        self.assertEqual(writer_status(), "available")
        # RDS deletes no cluster holding a DB instance that is not being deleted (moto's answer).
        with self.assertRaises(rds.exceptions.ClientError) as refused:
            rds.delete_db_cluster(DBClusterIdentifier="ledger-copy", SkipFinalSnapshot=True)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidDBClusterStateFault")
        rds.delete_db_instance(DBInstanceIdentifier="ledger-copy-1", SkipFinalSnapshot=True)
        rds.delete_db_cluster(DBClusterIdentifier="ledger-copy", SkipFinalSnapshot=True)


class RestoredDatabaseTest(GatewayTest):
    def restored_copy(self, engine: str, identifier: str, user: str, password: str, changed_since: str | None = None):
        """The port of `<identifier>-copy`, restored (in the instant mode) from a snapshot of a new
        `engine` instance whose master user is `user` and database `identifier`; with
        `changed_since`, the source's password changes after the snapshot."""
        rds = self.aws.client("rds", SOURCE)
        rds.create_db_instance(DBInstanceIdentifier=identifier, Engine=engine, DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, MasterUsername=user, DBName=identifier,
                               MasterUserPassword=password)
        rds.create_db_snapshot(DBInstanceIdentifier=identifier, DBSnapshotIdentifier=f"{identifier}-1")
        if changed_since:
            rds.modify_db_instance(DBInstanceIdentifier=identifier, MasterUserPassword=changed_since,
                                   ApplyImmediately=True)
        control("PUT", "settings", {"clock_scale": 0})
        rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=f"{identifier}-copy",
                                                 DBSnapshotIdentifier=f"{identifier}-1")
        # Instant mode: available at once, and the first look at it waits for its server.
        copy = rds.describe_db_instances(DBInstanceIdentifier=f"{identifier}-copy")["DBInstances"][0]
        self.assertEqual(copy["DBInstanceStatus"], "available")
        self.assertEqual(copy["Endpoint"]["Address"], "localhost")
        # The source, never restored, has no server: its endpoint is moto's.
        source = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["Endpoint"]
        self.assertNotEqual(source["Address"], "localhost")
        return copy["Endpoint"]["Port"]


class RestoredPostgres(RestoredDatabaseTest):
    """A restored RDS for PostgreSQL instance is a real PostgreSQL server (local_aws/databases.py):
    the snapshot's master user and password, its DBName, TLS only; deleted, it is gone."""

    def psql(self, port: int, password: str, sslmode: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(databases._postgres_bindir() / "psql"), f"host=localhost port={port} user=ledger_admin dbname=ledger "
             f"sslmode={sslmode} connect_timeout=5", "-Atc",
             "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"],
            env={**os.environ, "PGPASSWORD": password}, capture_output=True, text=True, timeout=30)

    def test_the_snapshots_master_user_logs_in_over_tls_only_until_the_instance_is_deleted(self):
        # Changed after the snapshot: the restored copy has the snapshot's password.
        port = self.restored_copy("postgres", "ledger", "ledger_admin", "at-snapshot-time", changed_since="changed-since")

        logged_in = self.psql(port, "at-snapshot-time", "require")
        self.assertEqual((logged_in.returncode, logged_in.stdout.strip()), (0, "ledger_admin|ledger|t"), logged_in.stderr)
        self.assertIn('password authentication failed for user "ledger_admin"',
                      self.psql(port, "changed-since", "require").stderr)
        self.assertIn("no encryption", self.psql(port, "at-snapshot-time", "disable").stderr)

        self.aws.client("rds", SOURCE).delete_db_instance(DBInstanceIdentifier="ledger-copy", SkipFinalSnapshot=True)
        self.assertIn("Connection refused", self.psql(port, "at-snapshot-time", "require").stderr)


class RestoredMySql(RestoredDatabaseTest):
    """A restored RDS for MySQL instance is a real MariaDB server (local_aws/databases.py): the
    snapshot's master user and password, its DBName, TLS only, no passwordless root over TCP;
    deleted, it is gone."""

    def mariadb(self, port: int, user: str, password: str, *tls: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [databases._mariadb_program("mariadb"), "--no-defaults", "--protocol=TCP", "--host=127.0.0.1",
             f"--port={port}", f"--user={user}", "--connect-timeout=5", *tls, "--batch", "--skip-column-names",
             "-e", "SELECT current_user(), database(), variable_value <> '' FROM information_schema.session_status "
                   "WHERE variable_name = 'Ssl_cipher'", "shop"],
            env={**os.environ, "MYSQL_PWD": password}, capture_output=True, text=True, timeout=30)

    def test_the_snapshots_master_user_logs_in_over_tls_only_until_the_instance_is_deleted(self):
        port = self.restored_copy("mysql", "shop", "shop_admin", "it's-at-snapshot\\time",
                                  changed_since="changed-since")

        # The password as set (a quote and a backslash in it), over TLS.
        logged_in = self.mariadb(port, "shop_admin", "it's-at-snapshot\\time", "--ssl")
        self.assertEqual((logged_in.returncode, logged_in.stdout.split()), (0, ["shop_admin@%", "shop", "1"]),
                         logged_in.stderr)
        self.assertIn("Access denied for user 'shop_admin'",
                      self.mariadb(port, "shop_admin", "changed-since", "--ssl").stderr)
        without_tls = self.mariadb(port, "shop_admin", "it's-at-snapshot\\time", "--skip-ssl")
        self.assertNotEqual(without_tls.returncode, 0, without_tls.stdout)
        # RDS has no root: the server's own root logs in on its socket only.
        self.assertIn("Access denied for user 'root'", self.mariadb(port, "root", "", "--ssl").stderr)

        self.aws.client("rds", SOURCE).delete_db_instance(DBInstanceIdentifier="shop-copy", SkipFinalSnapshot=True)
        self.assertIn("Can't connect", self.mariadb(port, "shop_admin", "it's-at-snapshot\\time", "--ssl").stderr)


class Accounts(GatewayTest):
    """Accounts kept apart (local_aws/accounts.py) and the sharing refusals of local_aws/rules.py:
    a snapshot reaches another account only as RDS, KMS and IAM let it."""

    def setUp(self):
        super().setUp()
        self.rds, self.kms = self.aws.client("rds", SOURCE), self.aws.client("kms", SOURCE)
        self.vault = Aws(endpoint(), account=VAULT)
        self.vault_rds = self.vault.client("rds", SOURCE)
        self.vault_key = self.vault.client("kms", SOURCE).create_key()["KeyMetadata"]["Arn"]

    def tearDown(self):
        control("PUT", "settings", {"iam_authorization": 1})
        super().tearDown()

    def snapshot(self, name: str, **encryption) -> dict:
        self.rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
                                    AllocatedStorage=20, MasterUsername="admin",
                                    MasterUserPassword="correct-horse-battery", **encryption)
        return self.rds.create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=f"{name}-1")["DBSnapshot"]

    def share(self, snapshot_id: str, *accounts: str):
        return self.rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=snapshot_id, AttributeName="restore",
                                                     ValuesToAdd=list(accounts))

    def refused(self, call, code: str, status: int) -> str:
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            call()
        error = refused.exception.response
        self.assertEqual((error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]), (code, status))
        return error["Error"]["Message"]

    def test_a_snapshot_under_the_aws_managed_key_cannot_be_shared_but_a_copy_under_a_customer_key_can(self):
        snapshot = self.snapshot("managed", StorageEncrypted=True)
        key = self.kms.describe_key(KeyId=snapshot["KmsKeyId"])["KeyMetadata"]
        self.assertEqual(key["KeyManager"], "AWS")
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in self.kms.list_aliases()["Aliases"]}
        self.assertEqual(aliases["alias/aws/rds"], key["KeyId"])
        message = self.refused(lambda: self.share("managed-1", VAULT), "InvalidParameterValue", 400)
        self.assertIn("managed-1", message)
        self.assertIn("default KMS key", message)

        customer_key = self.kms.create_key()["KeyMetadata"]["Arn"]
        self.rds.copy_db_snapshot(SourceDBSnapshotIdentifier="managed-1", TargetDBSnapshotIdentifier="managed-cmk",
                                  KmsKeyId=customer_key)
        self.assertEqual(self.share("managed-cmk", VAULT)["DBSnapshotAttributesResult"]["DBSnapshotAttributes"][0]
                         ["AttributeValues"], [VAULT])
        self.refused(lambda: self.share("managed-cmk", "all"), "InvalidParameterValue", 400)

        control("PUT", "settings", {"share_encrypted_with_aws_managed_key": 0})
        self.share("managed-1", VAULT)

    def test_a_cluster_under_the_aws_managed_key_has_snapshots_that_cannot_be_shared(self):
        self.rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql", MasterUsername="admin",
                                   MasterUserPassword="correct-horse-battery", StorageEncrypted=True)
        snapshot = self.rds.create_db_cluster_snapshot(DBClusterIdentifier="aurora",
                                                       DBClusterSnapshotIdentifier="aurora-1")["DBClusterSnapshot"]
        self.assertEqual(self.kms.describe_key(KeyId=snapshot["KmsKeyId"])["KeyMetadata"]["KeyManager"], "AWS")

        def share(*accounts: str):
            return self.rds.modify_db_cluster_snapshot_attribute(
                DBClusterSnapshotIdentifier="aurora-1", AttributeName="restore", ValuesToAdd=list(accounts))

        self.assertIn("aurora-1", self.refused(lambda: share(VAULT), "InvalidParameterValue", 400))
        # Another account naming the snapshot by ARN meets moto's own answer, not a sharing rule.
        arn = snapshot["DBClusterSnapshotArn"]
        self.refused(lambda: self.vault_rds.modify_db_cluster_snapshot_attribute(
            DBClusterSnapshotIdentifier=arn, AttributeName="restore", ValuesToAdd=[VAULT]),
            "DBClusterSnapshotNotFoundFault", 404)

    def test_a_shared_cluster_snapshot_crosses_account_and_region_in_two_copies_each_naming_its_source(self):
        self.rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", MasterUsername="admin",
                                   MasterUserPassword="correct-horse-battery")
        arn = self.rds.create_db_cluster_snapshot(DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="ledger-1"
                                                  )["DBClusterSnapshot"]["DBClusterSnapshotArn"]
        self.rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier="ledger-1", AttributeName="restore",
                                                      ValuesToAdd=[VAULT])
        elsewhere = self.vault.client("rds", "us-west-2")

        def copy(client, source: str, target: str) -> dict:
            return client.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=source,
                                                   TargetDBClusterSnapshotIdentifier=target)["DBClusterSnapshot"]

        message = self.refused(lambda: copy(elsewhere, arn, "ledger-west"), "InvalidParameterCombination", 400)
        self.assertIn("across Regions and accounts in a single step", message)
        # One step for each: into the vault account in the snapshot's region, then to the other region.
        here = copy(self.vault_rds, arn, "ledger-here")
        self.assertEqual(here["SourceDBClusterSnapshotArn"], arn)
        west = copy(elsewhere, here["DBClusterSnapshotArn"], "ledger-west")
        self.assertEqual(west["SourceDBClusterSnapshotArn"], here["DBClusterSnapshotArn"])
        # A DB snapshot names its source only when copied from another account or region.
        self.snapshot("plain")
        self.share("plain-1", VAULT)
        plain_arn = f"arn:aws:rds:{SOURCE}:{SOURCE_ACCOUNT}:snapshot:plain-1"
        copied = self.vault_rds.copy_db_snapshot(SourceDBSnapshotIdentifier=plain_arn,
                                                 TargetDBSnapshotIdentifier="plain-vault")["DBSnapshot"]
        self.assertEqual(copied["SourceDBSnapshotIdentifier"], plain_arn)
        again = self.vault_rds.copy_db_snapshot(SourceDBSnapshotIdentifier="plain-vault",
                                                TargetDBSnapshotIdentifier="plain-vault-2")["DBSnapshot"]
        self.assertNotIn("SourceDBSnapshotIdentifier", again)

        control("PUT", "settings", {"cluster_copy_across_region_and_account": 0})
        self.assertEqual(copy(elsewhere, arn, "ledger-west-in-one")["SourceDBClusterSnapshotArn"], arn)

    def test_another_account_copies_a_shared_snapshot_only_as_rds_and_kms_let_it(self):
        source_key = self.kms.create_key()["KeyMetadata"]["Arn"]
        sealed = self.snapshot("sealed", StorageEncrypted=True, KmsKeyId=source_key)["DBSnapshotArn"]

        def copy(target: str, source: str = sealed, **key):
            return self.vault_rds.copy_db_snapshot(SourceDBSnapshotIdentifier=source,
                                                   TargetDBSnapshotIdentifier=target, **key)["DBSnapshot"]

        self.refused(lambda: copy("early", KmsKeyId=self.vault_key), "DBSnapshotNotFound", 404)
        self.share("sealed-1", VAULT)
        self.assertIn("[None]", self.refused(lambda: copy("keyless"), "KMSKeyNotAccessibleFault", 400))
        # The source key's default policy trusts its own account only.
        self.assertIn(source_key, self.refused(lambda: copy("ungranted", KmsKeyId=self.vault_key),
                                               "KMSKeyNotAccessibleFault", 400))
        self.kms.put_key_policy(KeyId=source_key, PolicyName="default", Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "Vault", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{VAULT}:root"},
                 "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*"], "Resource": "*"},
            ],
        }))
        copied = copy("vaulted", KmsKeyId=self.vault_key)
        self.assertTrue(copied["Encrypted"])
        self.assertEqual(copied["KmsKeyId"], self.vault_key)
        self.assertEqual(copied["DBSnapshotArn"].split(":")[4], VAULT)
        manual = self.rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        self.assertEqual([s["DBSnapshotIdentifier"] for s in manual], ["sealed-1"])  # the copy is the vault's

        self.rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="sealed-1", AttributeName="restore",
                                              ValuesToRemove=[VAULT])
        self.refused(lambda: copy("unshared", KmsKeyId=self.vault_key), "DBSnapshotNotFound", 404)

        plain = self.snapshot("plain")["DBSnapshotArn"]
        self.share("plain-1", "all")
        self.assertFalse(copy("plain-copy", source=plain)["Encrypted"])

    def test_assume_role_is_held_to_the_trust_policy_and_the_role_to_its_policies(self):
        plain = self.snapshot("plain")["DBSnapshotArn"]
        self.share("plain-1", VAULT)
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "vault-of-production"}}}]}
        iam = self.vault.client("iam")
        role = iam.create_role(RoleName="vault-copier", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName="vault-copier", PolicyName="copy", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["rds:CopyDBSnapshot", "rds:AddTagsToResource"],
                 "Resource": [f"arn:aws:rds:*:{VAULT}:snapshot:vault-*", f"arn:aws:rds:*:{SOURCE_ACCOUNT}:snapshot:*"]},
                {"Effect": "Allow", "Action": "rds:DescribeDBSnapshots", "Resource": "*"},
                {"Effect": "Deny", "Action": "rds:Delete*", "Resource": "*"},
            ],
        }))
        sts = self.aws.client("sts", SOURCE)

        def assume(role_arn: str = role, **external_id) -> dict:
            return sts.assume_role(RoleArn=role_arn, RoleSessionName="copy", **external_id)["Credentials"]

        self.refused(lambda: assume(f"arn:aws:iam::{VAULT}:role/absent", ExternalId="vault-of-production"),
                     "AccessDenied", 403)
        self.refused(lambda: assume(), "AccessDenied", 403)
        self.refused(lambda: assume(ExternalId="guessed"), "AccessDenied", 403)
        credentials = assume(ExternalId="vault-of-production")
        keys = {"aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"]}
        # Who am I needs no permission, even of a role that allows nothing of STS.
        identity = self.vault.client("sts", SOURCE, **keys).get_caller_identity()
        self.assertEqual((identity["Account"], identity["Arn"]),
                         (VAULT, f"arn:aws:sts::{VAULT}:assumed-role/vault-copier/copy"))
        copier = self.vault.client("rds", SOURCE, **keys)

        copier.copy_db_snapshot(SourceDBSnapshotIdentifier=plain, TargetDBSnapshotIdentifier="vault-plain")
        self.assertEqual([s["DBSnapshotIdentifier"] for s in copier.describe_db_snapshots()["DBSnapshots"]],
                         ["vault-plain"])
        self.assertIn("no identity-based policy allows", self.refused(
            lambda: copier.copy_db_snapshot(SourceDBSnapshotIdentifier=plain, TargetDBSnapshotIdentifier="elsewhere"),
            "AccessDenied", 403))
        message = self.refused(lambda: copier.delete_db_snapshot(DBSnapshotIdentifier="vault-plain"),
                               "AccessDenied", 403)
        self.assertIn(f"arn:aws:rds:{SOURCE}:{VAULT}:snapshot:vault-plain", message)
        self.assertIn("explicit deny", message)
        self.assertEqual(len(self.vault_rds.describe_db_snapshots()["DBSnapshots"]), 1)

        control("PUT", "settings", {"iam_authorization": 0})
        copier.delete_db_snapshot(DBSnapshotIdentifier="vault-plain")


class OneTimeSchedules(GatewayTest):
    """EventBridge Scheduler's one-time schedules, fired on the clock (local_aws/scheduler.py)."""

    def setUp(self):
        super().setUp()
        control("PUT", "settings", {"clock_scale": 600})
        # What the SDK would refuse itself reaches the Scheduler too, as from any other client.
        self.scheduler = boto3.client("scheduler", endpoint_url=endpoint(), region_name=SOURCE,
                                      aws_access_key_id="test", aws_secret_access_key="test",
                                      config=botocore.config.Config(parameter_validation=False))
        self.scheduler.create_schedule_group(Name="polls")
        self.create_function()
        self.arn = self.lambda_client.get_function(FunctionName="probe")["Configuration"]["FunctionArn"]

    def tearDown(self):
        control("PUT", "settings", {"clock_scale": 0})
        super().tearDown()

    def schedule(self, name: str, at: str, **changes):
        request = {"Name": name, "GroupName": "polls", "ScheduleExpression": f"at({at})",
                   "ScheduleExpressionTimezone": "UTC", "FlexibleTimeWindow": {"Mode": "OFF"},
                   "ActionAfterCompletion": "DELETE",
                   "Target": {"Arn": self.arn, "RoleArn": self.role, "Input": json.dumps({"n": 7})}}
        request.update(changes)
        return self.scheduler.create_schedule(**{k: v for k, v in request.items() if v is not None})

    @staticmethod
    def clock_in(seconds: int) -> str:
        now = datetime.fromisoformat(control("GET", "clock")["now"])
        return (now + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")

    def test_a_schedule_invokes_its_function_asynchronously_at_its_time_then_is_deleted(self):
        # Ten simulated minutes ahead: a real second.
        self.schedule("poll-1", self.clock_in(600))
        time.sleep(0.3)
        self.assertEqual(control("GET", "invocations"), [])
        deadline = time.monotonic() + 10
        while not control("GET", "invocations") and time.monotonic() < deadline:
            time.sleep(0.05)
        [invocation] = control("GET", "invocations")
        self.assertEqual(json.loads(invocation["output"])["event"], {"n": 7})
        self.assertEqual(control("GET", "scheduler"), {"fired": 1})
        deadline = time.monotonic() + 5
        while self.scheduler.list_schedules(GroupName="polls")["Schedules"] and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.assertRaises(self.scheduler.exceptions.ResourceNotFoundException):
            self.scheduler.get_schedule(GroupName="polls", Name="poll-1")

    def test_create_schedule_is_refused_as_the_scheduler_refuses_it(self):
        at = self.clock_in(3600)
        for changes, says in (
                ({"FlexibleTimeWindow": None}, "FlexibleTimeWindow is required"),
                ({"Target": {"Arn": self.arn}}, "Target is required, with its Arn and RoleArn"),
                ({"ScheduleExpression": "at(2026-12-04 10:00)"}, "at(yyyy-mm-ddThh:mm:ss)"),
                ({"Name": "a name with spaces"}, "must be 1 to 64 characters"),
        ):
            with self.subTest(changes=changes):
                with self.assertRaises(botocore.exceptions.ClientError) as refused:
                    self.schedule("poll-1", at, **changes)
                self.assertEqual(refused.exception.response["Error"]["Code"], "ValidationException")
                self.assertIn(says, refused.exception.response["Error"]["Message"])
        self.schedule("poll-1", at)
        with self.assertRaises(self.scheduler.exceptions.ConflictException):
            self.schedule("poll-1", at)
        self.assertEqual(control("GET", "scheduler"), {"fired": 0})

    def test_an_asynchronous_invocation_that_fails_is_tried_twice_more(self):
        # Lambda's own retries: one and two (simulated) minutes after.
        self.lambda_client.invoke(FunctionName="probe", InvocationType="Event", Payload=b'{"do": "fail"}')
        deadline = time.monotonic() + 10
        while len(control("GET", "invocations")) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([i["outcome"] for i in control("GET", "invocations")], ["SnapshotQuotaExceeded"] * 3)

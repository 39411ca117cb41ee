"""Seed the AWS fake with a large account for the scan benchmark: 17 regions, 3,000+ resources.

    python bench/seed_large_account.py --endpoint http://127.0.0.1:PORT [--scale 1.0] [--workers 16] [--force]

Resources go into moto's default account (123456789012, where plain test keys act) through boto3, many
calls at once from a thread pool. Seeding is idempotent per endpoint: a marker bucket holds the summary of
what was seeded, and a second run against the same running fake only reads it back (use --force to add
another round anyway). Keep one fake running (`scan_benchmark.py --keep`) to seed once and measure often.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"
# The regions enabled by default in every AWS account (no opt-in): the benchmark scans exactly these.
REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
)
MARKER_BUCKET = "cw-bench-seed-marker"
MARKER_KEY = "summary.json"
SEED_VERSION = 1
# Per region, at scale 1.0.
PER_REGION = {
    "security_groups": 50, "instances": 10, "volumes": 20, "snapshots": 10, "queues": 10, "topics": 10,
    "kms_keys": 5, "dynamodb_tables": 5, "secrets": 5, "rds_instances": 2, "lambda_functions": 3,
    "efs_file_systems": 2, "load_balancers": 1,
}
# Account-wide, at scale 1.0.
GLOBAL = {"buckets": 200, "iam_users": 300, "iam_roles": 300, "iam_policies": 150}

LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
READ_ONLY_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}


class Seeder:
    """boto3 clients per (service, region), built once and shared by the worker threads (calls on a
    client are thread-safe; building clients is not)."""

    def __init__(self, endpoint: str, workers: int) -> None:
        self.endpoint = endpoint
        self.workers = workers
        self.session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str = "us-east-1") -> Any:
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.session.client(
                    service, region_name=region, endpoint_url=self.endpoint,
                    config=Config(retries={"mode": "standard", "total_max_attempts": 3},
                                  max_pool_connections=self.workers + 4))
            return self._clients[key]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def seeded_summary(endpoint: str) -> dict[str, Any] | None:
    """What an earlier run seeded into this fake, or None."""
    s3 = Seeder(endpoint, 1).client("s3")
    try:
        body = s3.get_object(Bucket=MARKER_BUCKET, Key=MARKER_KEY)["Body"].read()
    except s3.exceptions.ClientError:
        return None
    summary = json.loads(body)
    return summary if summary.get("version") == SEED_VERSION else None


def seed(endpoint: str, *, scale: float = 1.0, workers: int = 16, log: Callable[[str], None] = print) -> dict:
    """Create the account's resources; returns {"resources": {type: n}, "total": n, "seconds": s}."""
    seeder = Seeder(endpoint, workers)
    n = {k: max(1, round(v * scale)) for k, v in PER_REGION.items()}
    g = {k: max(1, round(v * scale)) for k, v in GLOBAL.items()}
    started = time.monotonic()
    tag = f"{int(time.time())}"   # names stay unique when --force seeds another round

    iam = seeder.client("iam")
    lambda_role = iam.create_role(RoleName=f"bench-lambda-{tag}",
                                  AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
    code = _zip()

    # Wave 1: everything that needs nothing else.
    def regional(region: str) -> list[tuple[str, Callable[[], Any]]]:
        ec2 = seeder.client("ec2", region)
        zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]][:2]
        sqs, sns, kms = seeder.client("sqs", region), seeder.client("sns", region), seeder.client("kms", region)
        ddb, sm = seeder.client("dynamodb", region), seeder.client("secretsmanager", region)
        rds, lam = seeder.client("rds", region), seeder.client("lambda", region)
        efs, elb = seeder.client("efs", region), seeder.client("elbv2", region)
        out: list[tuple[str, Callable[[], Any]]] = []

        def security_group(i: int) -> None:
            group = ec2.create_security_group(GroupName=f"bench-{tag}-{i}", Description=f"bench group {i}")
            if i % 5 == 0:   # every fifth one opens SSH to the world: something to find
                ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
                    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

        out += [("security_groups", lambda i=i: security_group(i)) for i in range(n["security_groups"])]
        out.append(("instances", lambda: ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=n["instances"], MaxCount=n["instances"], InstanceType="t3.micro")))
        out += [("volumes", lambda i=i: ec2.create_volume(Size=8, AvailabilityZone=zone, Encrypted=i % 2 == 0))
                for i in range(n["volumes"])]
        out += [("queues", lambda i=i: sqs.create_queue(QueueName=f"bench-{tag}-{i}")) for i in range(n["queues"])]
        out += [("topics", lambda i=i: sns.create_topic(Name=f"bench-{tag}-{i}")) for i in range(n["topics"])]

        def key(i: int) -> None:
            key_id = kms.create_key(Description=f"bench key {i}")["KeyMetadata"]["KeyId"]
            if i % 2 == 0:
                kms.enable_key_rotation(KeyId=key_id)

        out += [("kms_keys", lambda i=i: key(i)) for i in range(n["kms_keys"])]
        out += [("dynamodb_tables", lambda i=i: ddb.create_table(
            TableName=f"bench-{tag}-{i}", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])) for i in range(n["dynamodb_tables"])]
        out += [("secrets", lambda i=i: sm.create_secret(Name=f"bench-{tag}-{i}", SecretString="not-a-real-secret"))
                for i in range(n["secrets"])]
        out += [("rds_instances", lambda i=i: rds.create_db_instance(
            DBInstanceIdentifier=f"bench-{tag}-{i}", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="bench", MasterUserPassword="bench-password-1", AllocatedStorage=20,
            StorageEncrypted=i % 2 == 0)) for i in range(n["rds_instances"])]
        out += [("lambda_functions", lambda i=i: lam.create_function(
            FunctionName=f"bench-{tag}-{i}", Runtime="python3.12", Role=lambda_role, Handler="handler.handler",
            Code={"ZipFile": code})) for i in range(n["lambda_functions"])]
        out += [("efs_file_systems", lambda i=i: efs.create_file_system(CreationToken=f"bench-{tag}-{i}"))
                for i in range(n["efs_file_systems"])]
        if len(subnets) == 2:
            out += [("load_balancers", lambda i=i: elb.create_load_balancer(Name=f"bench-{tag}-{i}",
                                                                             Subnets=subnets))
                    for i in range(n["load_balancers"])]
        return out

    s3, iam = seeder.client("s3"), seeder.client("iam")

    def bucket(i: int) -> None:
        name = f"cw-bench-{tag}-{i}"
        s3.create_bucket(Bucket=name)
        if i % 3 == 0:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        if i % 4 == 0:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})

    def user(i: int) -> None:
        name = f"bench-{tag}-{i}"
        iam.create_user(UserName=name)
        if i % 3 == 0:
            iam.create_access_key(UserName=name)

    def role(i: int) -> None:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": f"arn:aws:iam::{'444455556666' if i % 10 == 0 else ACCOUNT}:root"}}]}
        iam.create_role(RoleName=f"bench-{tag}-{i}", AssumeRolePolicyDocument=json.dumps(trust))

    log(f"seeding {len(REGIONS)} regions and the account-wide services with {workers} threads…")
    waves: list[tuple[str, Callable[[], Any]]] = []
    with ThreadPoolExecutor(min(workers, len(REGIONS))) as pool:
        for tasks in pool.map(regional, REGIONS):
            waves += tasks
    waves += [("buckets", lambda i=i: bucket(i)) for i in range(g["buckets"])]
    waves += [("iam_users", lambda i=i: user(i)) for i in range(g["iam_users"])]
    waves += [("iam_roles", lambda i=i: role(i)) for i in range(g["iam_roles"])]
    waves += [("iam_policies", lambda i=i: iam.create_policy(
        PolicyName=f"bench-{tag}-{i}", PolicyDocument=json.dumps(READ_ONLY_POLICY))) for i in range(g["iam_policies"])]
    by_label: dict[str, list[Callable[[], Any]]] = {}
    for label, task in waves:
        by_label.setdefault(label, []).append(task)
    # One pool over everything: moto serves one request per thread, so a wide queue keeps it busy.
    flat = [(label, task) for label, tasks in by_label.items() for task in tasks]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda item: item[1](), flat))
    counts = Counter(label for label, _ in flat)
    counts["instances"] = counts["instances"] * n["instances"]

    # Wave 2: snapshots of the volumes just made (some shared publicly), policies attached to users.
    def snapshots(region: str) -> list[Callable[[], Any]]:
        ec2 = seeder.client("ec2", region)
        volumes = [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]][: n["snapshots"]]

        def snapshot(i: int, volume: str) -> None:
            snap = ec2.create_snapshot(VolumeId=volume, Description=f"bench snapshot {i}")
            if i == 0:
                ec2.modify_snapshot_attribute(SnapshotId=snap["SnapshotId"], Attribute="createVolumePermission",
                                              OperationType="add", GroupNames=["all"])

        return [lambda i=i, v=v: snapshot(i, v) for i, v in enumerate(volumes)]

    with ThreadPoolExecutor(min(workers, len(REGIONS))) as pool:
        snapshot_tasks = [t for tasks in pool.map(snapshots, REGIONS) for t in tasks]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda task: task(), snapshot_tasks))
    counts["snapshots"] = len(snapshot_tasks)

    summary = {"version": SEED_VERSION, "account_id": ACCOUNT, "regions": list(REGIONS), "scale": scale,
               "resources": dict(sorted(counts.items())), "total": sum(counts.values()),
               "seconds": round(time.monotonic() - started, 1)}
    s3.create_bucket(Bucket=MARKER_BUCKET)
    s3.put_object(Bucket=MARKER_BUCKET, Key=MARKER_KEY, Body=json.dumps(summary).encode())
    return summary


def ensure_seeded(endpoint: str, *, scale: float = 1.0, workers: int = 16, force: bool = False,
                  log: Callable[[str], None] = print) -> tuple[dict, bool]:
    """(summary, seeded now?): seeds unless this fake already holds a seeded account."""
    existing = None if force else seeded_summary(endpoint)
    if existing is not None:
        return existing, False
    return seed(endpoint, scale=scale, workers=workers, log=log), True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="the running fake, e.g. http://127.0.0.1:5000")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every resource count")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--force", action="store_true", help="seed again even if the fake is seeded")
    args = parser.parse_args(argv)
    summary, fresh = ensure_seeded(args.endpoint, scale=args.scale, workers=args.workers, force=args.force,
                                   log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(summary | {"seeded_now": fresh}, indent=2))


if __name__ == "__main__":
    main()

"""Run the AWS fake (moto's server app behind FakeAws) as its own threaded process; prints one ready line.

    python -m app.fakes.server --host 127.0.0.1 --port 5000      (--port 0 picks a free port)

The ready line is `cwfake ready http://HOST:PORT`; GET /_cwfake/health answers once it is printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

# moto reads these when its backends are first built; they must be in place before moto is imported.
MOTO_ENV = {
    # Otherwise every account shows 1,301 public snapshots and AMIs.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    # Otherwise SecurityAudit and the other AWS managed policies do not exist.
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
}


def speed_up_moto() -> bool:
    """Make moto's resets and first calls cheap without changing what it answers; False if moto changed.

    Every request looks its access key up in all six partitions of every account, which builds an IAM
    backend per partition, each parsing moto's 4.7 MB of AWS managed policies: about 1.2 s after every
    reset. Here a partition that was never built is skipped (it holds no keys), and the policy JSON is
    parsed once per process.
    """
    import json
    from functools import cache

    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iam import models as iam_models
        from moto.settings import load_iam_aws_managed_policies
        from moto.utilities.utils import PARTITION_NAMES

        iam_backends = iam_models.iam_backends
        managed_policies = iam_models.aws_managed_policies_data
        policy_class = iam_models.AWSManagedPolicy
        backend_class = iam_models.IAMBackend
    except (ImportError, AttributeError):
        return False

    def get_account_id_from(access_key: str) -> str:
        for account_id, account in list(iam_backends.items()):
            for partition in PARTITION_NAMES:
                backend = dict.get(account, partition)  # not account[...]: that would build it
                if backend is not None and access_key in backend.access_keys:
                    return account_id
        return DEFAULT_ACCOUNT_ID

    @cache
    def parsed_policies() -> dict[str, Any]:
        return json.loads(managed_policies)

    def init_aws_policies(self: Any) -> list[Any]:
        if not load_iam_aws_managed_policies():
            return []
        return [policy_class.from_data(name, self.account_id, self.region_name, data)
                for name, data in parsed_policies().items()]

    iam_models.get_account_id_from = get_account_id_from
    backend_class._init_aws_policies = init_aws_policies
    return True


def build_app(caller_arn: str | None = None) -> Any:
    """moto's dispatcher wrapped by FakeAws; the caller must have set MOTO_ENV first."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from app.fakes.aws import FakeAws

    speed_up_moto()
    return FakeAws(DomainDispatcherApplication(create_backend_app), caller_arn=caller_arn)


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.fakes.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument("--caller-arn", default=None,
                        help="principal that unknown access keys act as (default: $CW_FAKE_CALLER_ARN or "
                             "arn:aws:iam::111111111111:role/CloudWizardScanner)")
    parser.add_argument("--quiet", action="store_true", help="do not log every request")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started this one dies (test runs killed mid-way)")
    args = parser.parse_args(argv)

    os.environ.update(MOTO_ENV)
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = build_app(args.caller_arn)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    # moto addresses itself through MOTO_PORT for a few cross-service calls.
    os.environ["MOTO_PORT"] = str(server.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.exit_with_parent:
        _exit_with_parent()
    print(f"cwfake ready http://{host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

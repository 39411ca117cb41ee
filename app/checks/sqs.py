"""SQS checks: server-side encryption and public queue policies."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.checks.resource_policies import public_statements, summarize
from app.scanners.sqs import SqsQueue

DESCRIBED = frozenset({"sqs:ListQueues", "sqs:GetQueueAttributes"})


@resource_check("sqs_queue_encrypted", SqsQueue, requires=DESCRIBED)
def sqs_queue_encrypted(queue: SqsQueue) -> Result:
    if queue.kms_key_id:
        return passed(queue, f"SQS queue {queue.resource_id} is encrypted with KMS key {queue.kms_key_id} (SSE-KMS).",
                      kms_key_id=queue.kms_key_id)
    if queue.sqs_managed_sse:
        return passed(queue, f"SQS queue {queue.resource_id} is encrypted with SQS-managed keys (SSE-SQS).")
    return failed(queue, f"SQS queue {queue.resource_id} has no server-side encryption: messages are stored "
                         "unencrypted.")


@resource_check("sqs_queue_not_public", SqsQueue, requires=DESCRIBED)
def sqs_queue_not_public(queue: SqsQueue) -> Result:
    public = public_statements(queue.policy)
    if public:
        return failed(queue, f"The access policy of SQS queue {queue.resource_id} lets anyone use the queue without a "
                             "limiting condition.", statements=[summarize(s) for s in public])
    return passed(queue, f"The access policy of SQS queue {queue.resource_id} grants no public access."
                  if queue.policy else f"SQS queue {queue.resource_id} has no access policy.")

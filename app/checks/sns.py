"""SNS checks: encryption at rest and public topic policies."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.checks.resource_policies import public_statements, summarize
from app.scanners.sns import SnsTopic

DESCRIBED = frozenset({"sns:ListTopics", "sns:GetTopicAttributes"})


@resource_check("sns_topic_encrypted", SnsTopic, requires=DESCRIBED)
def sns_topic_encrypted(topic: SnsTopic) -> Result:
    if topic.kms_key_id:
        return passed(topic, f"SNS topic {topic.name} is encrypted at rest with KMS key {topic.kms_key_id}.",
                      kms_key_id=topic.kms_key_id)
    return failed(topic, f"SNS topic {topic.name} has no server-side encryption: messages are stored unencrypted "
                         "until delivered.")


@resource_check("sns_topic_not_public", SnsTopic, requires=DESCRIBED)
def sns_topic_not_public(topic: SnsTopic) -> Result:
    public = public_statements(topic.policy)
    if public:
        return failed(topic, f"The access policy of SNS topic {topic.name} lets anyone publish or subscribe without a "
                             "limiting condition.", statements=[summarize(s) for s in public])
    return passed(topic, f"The access policy of SNS topic {topic.name} grants no public access.")

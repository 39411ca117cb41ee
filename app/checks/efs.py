"""EFS checks: encryption at rest and public file system policies."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.checks.resource_policies import public_statements, summarize
from app.scanners.efs import EfsFileSystem


@resource_check("efs_file_system_encrypted", EfsFileSystem, requires={"elasticfilesystem:DescribeFileSystems"})
def efs_file_system_encrypted(fs: EfsFileSystem) -> Result:
    if fs.encrypted:
        return passed(fs, f"EFS file system {fs.resource_id} is encrypted at rest.", kms_key_id=fs.kms_key_id)
    return failed(fs, f"EFS file system {fs.resource_id} is not encrypted at rest; encryption can only be chosen "
                      "when a file system is created.")


@resource_check("efs_file_system_policy_not_public", EfsFileSystem,
                requires={"elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeFileSystemPolicy"})
def efs_file_system_policy_not_public(fs: EfsFileSystem) -> Result:
    public = public_statements(fs.policy)
    if public:
        return failed(fs, f"The policy of EFS file system {fs.resource_id} grants access to anyone without a limiting "
                          "condition.", statements=[summarize(s) for s in public])
    if fs.policy is None:
        return passed(fs, f"EFS file system {fs.resource_id} has no file system policy: only IAM principals of the "
                          "account with network access to a mount target can use it.")
    return passed(fs, f"The policy of EFS file system {fs.resource_id} grants no public access.")

"""AWS Config checks (CIS AWS Foundations 3.0, 3.3): a recorder on, recording every supported resource type,
with a delivery channel, in every region; global resources (IAM) recorded in at least one region."""

from __future__ import annotations

from app.checks.base import Result, account_check, account_result, regional_check
from app.scanners.awsconfig import ConfigRecorder, ConfigRegion
from app.scanners.base import Inventory

RECORDERS = "config:DescribeConfigurationRecorders"
STATUS = "config:DescribeConfigurationRecorderStatus"
CHANNELS = "config:DescribeDeliveryChannels"
ALL_TYPES = "ALL_SUPPORTED_RESOURCE_TYPES"
IAM_TYPES = frozenset({"AWS::IAM::User", "AWS::IAM::Role", "AWS::IAM::Group", "AWS::IAM::Policy"})


def _regions(inventory: Inventory) -> dict[str, ConfigRegion]:
    return {r.region: r for r in inventory.of(ConfigRegion) if isinstance(r, ConfigRegion)}


def _records_everything(recorder: ConfigRecorder) -> bool:
    if recorder.excluded_resource_types:
        return False
    return recorder.all_supported or recorder.strategy == ALL_TYPES


def _failing(recorder: ConfigRecorder) -> bool:
    return (recorder.last_status or "").upper() == "FAILURE"


def _problems(recorder: ConfigRecorder, channels: list[str]) -> list[str]:
    out = []
    if not recorder.recording:
        out.append(f"recorder {recorder.name} is stopped")
    if not _records_everything(recorder):
        if recorder.excluded_resource_types:
            out.append(f"recorder {recorder.name} excludes {len(recorder.excluded_resource_types)} resource type(s)")
        else:
            out.append(f"recorder {recorder.name} records only {len(recorder.resource_types)} selected resource "
                       "type(s)")
    if not channels and not recorder.service_principal:
        out.append("there is no delivery channel")
    if _failing(recorder):
        out.append(f"recorder {recorder.name} reports a failure ({recorder.last_error_code or 'no error code'})")
    return out


@regional_check("config_recorder_enabled", requires={RECORDERS, STATUS, CHANNELS})
def config_recorder_enabled(inventory: Inventory, region: str) -> Result | None:
    data = _regions(inventory).get(region)
    if data is None:
        return None
    kwargs = {"region": region, "resource_type": data.resource_type, "arn": data.arn}
    customer = [r for r in data.recorders if not r.service_principal]
    if not data.recorders:
        return account_result(inventory, False, f"AWS Config has no configuration recorder in {region}: resource "
                                                "configurations and their changes are not recorded.", **kwargs)
    problems: dict[str, list[str]] = {}
    for recorder in customer or data.recorders:
        found = _problems(recorder, data.delivery_channels)
        if not found:
            return account_result(inventory, True, f"AWS Config recorder {recorder.name} records all supported "
                                                   f"resource types in {region} and delivers through channel "
                                                   f"{', '.join(data.delivery_channels) or 'of its service'}.",
                                  recorder=recorder.name, last_status=recorder.last_status, **kwargs)
        problems[recorder.name] = found
    flat = [p for found in problems.values() for p in found]
    return account_result(inventory, False, f"AWS Config is not recording all resources in {region}: "
                                            f"{'; '.join(flat)}.", problems=problems, **kwargs)


@account_check("config_global_resources_recorded", requires={RECORDERS, STATUS})
def config_global_resources_recorded(inventory: Inventory) -> Result | None:
    regions = _regions(inventory)
    if not regions:
        return None
    recording_global: list[str] = []
    active: list[str] = []
    for region, data in sorted(regions.items()):
        for recorder in data.recorders:
            if not recorder.recording or _failing(recorder):
                continue
            active.append(region)
            everything = _records_everything(recorder) and recorder.include_global_resource_types
            if everything or IAM_TYPES <= set(recorder.resource_types):
                recording_global.append(region)
    if recording_global:
        return account_result(inventory, True, "AWS Config records global resources (IAM users, roles, groups "
                                               f"and policies) in {', '.join(sorted(set(recording_global)))}.",
                              regions=sorted(set(recording_global)))
    where = f" (recorders run in {', '.join(sorted(set(active)))})" if active else " (no recorder is running)"
    return account_result(inventory, False, "No AWS Config recorder records global resources such as IAM users, "
                                            f"roles and policies in any scanned region{where}: changes to them "
                                            "are not recorded.", recording_regions=sorted(set(active)))

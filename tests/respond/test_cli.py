"""`stackwatch orphans` and `stackwatch respond list/approve/reject/run`, with clouds.yaml."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from stackwatch.cli.main import cli
from tests.respond.conftest import build_world
from tests.respond.fake_openstack import FakeOpenStack


@pytest.fixture
def clouds_yaml(api: FakeOpenStack, tmp_path, monkeypatch):
    auth = api.auth()
    region = auth.pop("region_name")
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"fake": {"auth": auth, "region_name": region}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    return path


def _policy(tmp_path, **values) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"respond": values}))
    return str(path)


def test_orphans_dry_run_prints_the_plan_and_changes_nothing(api, clouds_yaml, tmp_path):
    world = build_world(api)
    del api.projects[world.project]
    config = _policy(tmp_path, instances="terminate", volumes="delete", grace=0, approval=False)
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["orphans", "--cloud", "fake", "--dry-run", "--config", config,
                                      "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert f"project {world.project} is gone (sweep)" in result.output
    assert f"would terminate_instance instance {world.servers[0]} (legacy-app-1)" in result.output
    assert api.mutations() == [] and not data.exists()


def test_orphans_with_approval_then_respond_approve_and_run(api, clouds_yaml, tmp_path):
    world = build_world(api)
    del api.projects[world.project]
    config = _policy(tmp_path, instances="terminate", grace=0, approval=True, retry_delay=0)
    data = str(tmp_path / "data")
    runner = CliRunner()
    result = runner.invoke(cli, ["orphans", "--cloud", "fake", "--config", config, "--data", data])
    assert result.exit_code == 0, result.output
    assert "2 action(s) wait for approval" in result.output and api.mutations() == []

    listed = runner.invoke(cli, ["respond", "list", "--format", "json", "--data", data])
    ids = [json.loads(line)["id"] for line in listed.output.splitlines()]
    assert len(ids) == 2
    rejected = runner.invoke(cli, ["respond", "reject", str(ids[1]), "--reason", "keep", "--actor", "bob",
                                   "--data", data])
    assert rejected.exit_code == 0 and "rejected" in rejected.output
    approved = runner.invoke(cli, ["respond", "approve", str(ids[0]), "--actor", "alice", "--data", data])
    assert approved.exit_code == 0 and "approved" in approved.output
    again = runner.invoke(cli, ["respond", "approve", str(ids[1]), "--data", data])
    assert again.exit_code == 1 and "not pending" in again.output

    run = runner.invoke(cli, ["respond", "run", "--cloud", "fake", "--config", config, "--data", data])
    assert run.exit_code == 0, run.output
    assert "complete: 1 done" in run.output
    assert len(set(world.servers) & set(api.servers)) == 1
    everything = runner.invoke(cli, ["respond", "list", "--all", "--data", data])
    assert "done" in everything.output and "rejected" in everything.output


def test_orphans_reports_only_by_default(api, clouds_yaml, tmp_path):
    world = build_world(api)
    del api.projects[world.project]
    result = CliRunner().invoke(cli, ["orphans", "--cloud", "fake", "--data", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "policy: report only" in result.output and api.mutations() == []


def test_bad_policy_is_reported_with_its_line(api, clouds_yaml, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("respond:\n  instances: nuke\n")
    result = CliRunner().invoke(cli, ["orphans", "--cloud", "fake", "--config", str(path), "--dry-run"])
    assert result.exit_code != 0 and f"{path}:2: respond.instances" in result.output

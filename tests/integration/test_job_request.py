"""Job requests resolved against the cluster and sent with the real SDK."""

from __future__ import annotations

import apolo_sdk
import pytest

from airflow_neuro.client import TaskIdentity
from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.job_request import JobRequest

from ..conftest import PlatformProcess


def test_default_preset_custom_resources_and_everything_else(
    platform_process: PlatformProcess,
) -> None:
    with NeuroHook() as hook:
        client = hook.client
        default = JobRequest(job_command="true", job_image="ubuntu").resolve(client, ["id:1"])
        assert default.preset == next(iter(client.config.presets))  # the cluster's default
        assert default.tags == ["id:1"]

        custom = JobRequest(
            job_command="sh -c 'echo $A'",
            job_image="image://local/local/default/trainer:v1",
            job_entrypoint="/usr/bin/env",
            job_resources=apolo_sdk.Resources(cpu=0.5, memory=256 * 2**20),
            job_volumes=["storage:data:/data:ro", "storage:out:/out"],
            job_environ={"A": "1"},
            job_http_port="8888",
            job_http_auth=False,
            job_name="custom-job",
            job_tags=["b", "a"],
            job_description="custom",
            job_lifespan=600,
        ).resolve(client, ["id:2"])
        assert custom.preset is None
        job = hook.run(custom.submit(client))
        assert job.preset_name is None
        assert job.container.resources.cpu == 0.5
        assert job.container.resources.memory == 256 * 2**20
        assert str(job.container.image) == "image://local/local/default/trainer:v1"
        assert job.container.entrypoint == "/usr/bin/env"
        assert job.container.env == {"A": "1"}
        assert [
            (str(v.storage_uri), v.container_path, v.read_only) for v in job.container.volumes
        ] == [
            ("storage://local/local/default/data", "/data", True),
            ("storage://local/local/default/out", "/out", False),
        ]
        assert job.container.http is not None
        assert (job.container.http.port, job.container.http.requires_auth) == (8888, False)
        assert (job.name, job.description, job.life_span) == ("custom-job", "custom", 600)
        assert list(job.tags) == ["a", "b", "id:2"]
        hook.run(client.jobs.kill(job.id))


def test_working_dir_schedule_timeout_and_what_the_local_platform_refuses(
    platform_process: PlatformProcess,
) -> None:
    with NeuroHook() as hook:
        client = hook.client
        request = JobRequest(
            job_command="pwd", job_image="ubuntu", job_working_dir="/tmp", job_schedule_timeout=90
        )
        job = hook.run(request.resolve(client).submit(client))
        assert (job.container.working_dir, job.schedule_timeout) == ("/tmp", 90)
        done = hook.wait_for_job(job.id, {apolo_sdk.JobStatus.SUCCEEDED}, 0.2)
        assert list(hook.iter_job_log(done.id)) == ["/tmp"]
        for refused, field in (
            ({"job_pass_config": True}, "pass_config"),
            ({"job_restart_policy": "on-failure"}, "restart_policy"),
        ):
            prepared = JobRequest(job_command="true", job_image="ubuntu", **refused)
            with pytest.raises(apolo_sdk.IllegalArgumentError, match=f"{field}: .*local platform"):
                hook.run(prepared.resolve(client).submit(client))


def test_unknown_preset_is_caught_before_sending(platform_process: PlatformProcess) -> None:
    with NeuroHook() as hook:
        with pytest.raises(JobArgumentError, match="unknown preset 'huge'; the cluster has"):
            JobRequest(job_command="true", job_image="ubuntu", job_resources_preset="huge").resolve(
                hook.client
            )
        with pytest.raises(JobArgumentError, match=r"job_volumes\[0\]"):
            JobRequest(job_command="true", job_image="ubuntu", job_volumes=["disk:x:/x"]).resolve(
                hook.client
            )


def test_a_taken_name_is_taken_over_only_from_the_same_task(
    platform_process: PlatformProcess,
) -> None:
    with NeuroHook() as hook:
        request = JobRequest(job_command="sleep 30", job_image="ubuntu", job_name="named-once")
        first = hook.submit_job(request, TaskIdentity("d", "t", "r", -1, 1))
        again = hook.submit_job(request, TaskIdentity("d", "t", "r", -1, 2))
        assert again.id == first.id  # the platform refused the name; the job was ours
        other = TaskIdentity("other", "t", "r", -1, 1)
        with pytest.raises(JobArgumentError, match="job_name: 'named-once' is taken by live job"):
            hook.submit_job(request, other)
        hook.cancel_job(first.id)

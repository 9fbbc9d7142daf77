"""Live flow files -> job requests, as apolo-flow computes them, and what is refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from airflow_neuro.flow import FlowFileError, LiveFlow, find_flow_file, load_flow_job


def project(
    tmp_path: Path, live: str, project_yml: str | None = None, config: str = ".apolo"
) -> Path:
    folder = tmp_path / "my-project"
    (folder / config).mkdir(parents=True)
    (folder / config / "live.yml").write_text(textwrap.dedent(live))
    if project_yml is not None:
        (folder / config / "project.yml").write_text(textwrap.dedent(project_yml))
    return folder


FULL = """\
    kind: live
    id: web
    defaults:
      env: {A: from-defaults, B: from-defaults}
      tags: [team-x]
      volumes: ["storage:${{ project.id }}/data:/data:ro"]
      life_span: 2h
      preset: cpu-small
      workdir: /srv
      schedule_timeout: 90
    volumes:
      data: {remote: "storage:${{ project.id }}/data", mount: /data, read_only: true}
      out: {remote: "storage:out", mount: /out}
    images:
      img: {ref: "ubuntu:22.04", context: ., dockerfile: Dockerfile}
    mixins:
      gpu:
        preset: gpu-small
        env: {B: from-mixin, C: from-mixin}
        tags: [gpu]
      out:
        volumes: ["${{ volumes.out.ref }}"]
    jobs:
      train:
        image: ${{ images.img.ref }}
        mixins: [gpu, out]
        title: Training
        params:
          epochs: "3"
          lr: {default: "0.1", descr: learning rate}
        env: {C: "${{ params.lr }}", D: "${{ flow.flow_id }}-${{ env.A }}"}
        cmd: python train.py --epochs ${{ params.epochs }} --name "a b"
        life_span: 1d6h15m
        http_port: 8080
        http_auth: false
        tags: ["${{ 'e' + params.epochs }}"]
        restart: on-failure
        detach: true
"""


def test_a_job_with_defaults_mixins_params_volumes_and_images(tmp_path: Path) -> None:
    folder = project(tmp_path, FULL, "id: proj_one\ndefaults:\n  env: {A: from-project, P: p}\n")
    job = LiveFlow.load(folder).job("train", {"epochs": 5})
    request = job.request
    assert request.job_image == "ubuntu:22.04"
    assert request.job_command == "python train.py --epochs 5 --name 'a b'"
    assert request.job_environ == {
        "A": "from-defaults", "B": "from-mixin", "C": "0.1", "D": "web-from-defaults", "P": "p",
    }  # fmt: skip
    # The flow's default volumes first, then the job's (a mixin's list joins the job's).
    assert list(request.job_volumes) == ["storage:proj_one/data:/data:ro", "storage:out:/out:rw"]
    assert request.job_resources_preset == "gpu-small"  # a mixin's value beats the defaults
    assert request.job_lifespan == 86400 + 6 * 3600 + 15 * 60
    assert (request.job_http_port, request.job_http_auth) == (8080, False)
    assert request.job_working_dir == "/srv"
    assert request.job_schedule_timeout == 90
    assert request.job_restart_policy == "on-failure"
    assert request.job_description == "Training"
    assert set(request.job_tags) == {
        "project:proj-one", "flow:web", "job:train", "team-x", "gpu", "e5",
    }  # fmt: skip
    assert job.detach is True


@pytest.mark.parametrize(
    ("form", "script", "command"),
    [
        ("cmd", "echo hi", "echo hi"),
        ("cmd", "sleep", "sleep"),
        (
            "bash",
            "echo one\necho 'two'\n",
            "bash -euo pipefail -c 'echo one\necho '\"'\"'two'\"'\"'\n'",
        ),
        ("python", "print('x')", "python3 -uc 'print('\"'\"'x'\"'\"')'"),
    ],
)
def test_each_command_form_as_the_cli_gets_it(
    tmp_path: Path, form: str, script: str, command: str
) -> None:
    folder = project(
        tmp_path, yaml.safe_dump({"kind": "live", "jobs": {"j": {"image": "u", form: script}}})
    )
    assert load_flow_job(folder, "j").job_command == command


def test_defaults_when_the_file_says_little(tmp_path: Path) -> None:
    folder = project(tmp_path, "kind: live\njobs:\n  hello:\n    image: ubuntu\n    cmd: echo hi\n")
    job = LiveFlow.load(folder).job("hello")
    # No project.yml: the id is the folder's name; no id in the flow: the file's name.
    assert set(job.request.job_tags) == {"project:my-project", "flow:live", "job:hello"}
    assert job.request.job_lifespan == 86400  # the CLI's default of one day
    assert job.request.job_description == "live.hello"
    assert job.request.job_name is None  # runs of a DAG may overlap: no name unless given
    assert (job.request.job_http_port, job.request.job_http_auth) == (80, True)  # as the CLI
    assert job.detach is False


def test_the_neuro_folder_and_a_file_path_both_work(tmp_path: Path) -> None:
    folder = project(tmp_path, "kind: live\njobs: {j: {image: u, cmd: c}}\n", config=".neuro")
    assert find_flow_file(folder) == (folder / ".neuro" / "live.yml").resolve()
    assert find_flow_file("my-project", (tmp_path / "nowhere", tmp_path)) == find_flow_file(folder)


@pytest.mark.parametrize(
    ("live", "message"),
    [
        ("kind: batch\ntasks: []\n", "kind: 'batch' is not supported"),
        ("kind: live\njobs:\n  j:\n    action: gh:x/y@v1\n", ":4: jobs.j.action: action calls"),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    multi: true\n    cmd: c\n",
            ":5: jobs.j.multi: multi jobs",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: c\n    colour: red\n",
            ":6: jobs.j: unknown field 'colour'",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: ${{ upload(volumes.x) }}\n",
            ":5: jobs.j.cmd:",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: ${{ hash_files('*.py') }}\n",
            ":5: jobs.j.cmd:",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: ${{ inspect_job('x').id }}\n",
            ":5: jobs.j.cmd:",
        ),
        ("kind: live\njobs:\n  j:\n    image: u\n    cmd: ${{ secrets.x }}\n", ":5: jobs.j.cmd:"),
        (
            "kind: live\nvolumes:\n  d: {remote: 'disk:d-1', mount: /d}\n"
            "jobs:\n  j: {image: u, cmd: c}\n",
            ":3: volumes.d.remote:",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: c ${{ params.x }}\n"
            "    params:\n      x: {descr: no default}\n",
            ":7: jobs.j.params.x: no value given",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: c\n    bash: b\n",
            "cmd and bash exclude each other",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: c\n    mixins: [nope]\n",
            ":6: jobs.j.mixins: unknown mixin 'nope'",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: c\n    life_span: forever\n",
            ":6: jobs.j.life_span: 'forever'",
        ),
        ("kind: live\njobs:\n  j:\n    cmd: c\n", "jobs.j.image: missing"),
        (
            "kind: live\njobs:\n  j: {image: u, cmd: c}\n  j: {image: u, cmd: c}\n",
            ":4: 'j' is given twice",
        ),
        ("kind: live\njobs: [\n", "not valid YAML"),
    ],
)
def test_what_is_not_supported_is_refused_with_file_and_line(
    tmp_path: Path, live: str, message: str
) -> None:
    folder = project(tmp_path, live)
    with pytest.raises(FlowFileError) as caught:
        LiveFlow.load(folder).job("j")
    assert str(folder / ".apolo" / "live.yml") in str(caught.value)
    assert message in str(caught.value)


def test_unknown_params_and_jobs_are_named(tmp_path: Path) -> None:
    folder = project(
        tmp_path, "kind: live\njobs:\n  j:\n    image: u\n    cmd: c\n    params: {a: '1'}\n"
    )
    with pytest.raises(FlowFileError, match=r"no param 'b'; it has: a"):
        LiveFlow.load(folder).job("j", {"b": "2"})
    with pytest.raises(FlowFileError, match=r"no job 'k'; the file has: j"):
        LiveFlow.load(folder).job("k")
    with pytest.raises(FlowFileError, match=r"no live flow file"):
        LiveFlow.load(tmp_path / "elsewhere")


def test_merges_follow_apolo_flow(tmp_path: Path) -> None:
    live = """\
        kind: live
        defaults:
          tags: [flow-level]
          life_span: 0
        mixins:
          base:
            params: {a: "1", b: "2"}
            env: {FROM_MIXIN: m, SHARED: mixin}
            tags: [from-mixin]
            preset: cpu-large
        jobs:
          j:
            image: u
            mixins: [base]
            params: {a: "9"}
            env: "${{ {'SHARED': 'job', 'T': join(',', tags)} }}"
            preset:
            workdir: /app/
            http_port: 0
            tags: [mine]
    """
    job = LiveFlow.load(project(tmp_path, live)).job("j")
    request = job.request
    # The job's params replace the mixin's; env given as an expression still joins.
    assert LiveFlow.load(tmp_path / "my-project").declared_params("j") == ["a"]
    assert request.job_environ == {
        "FROM_MIXIN": "m",
        "SHARED": "job",
        "T": "flow-level,flow:live,project:my-project",
    }  # fmt: skip  (the tags context is the flow's, not the job's)
    assert request.job_resources_preset is None  # the job's explicit null wins over the mixin
    assert request.job_working_dir == "/app"
    assert request.job_http_port is None  # 0: no HTTP port
    assert request.job_lifespan is None  # a life span of 0: no limit, as the CLI reads it
    assert request.job_command is None  # no command: the image's own
    assert {"mine", "from-mixin", "flow-level", "job:j"} <= set(request.job_tags)


def test_project_defaults_for_batch_flows_are_accepted_and_ids_have_aliases(
    tmp_path: Path,
) -> None:
    folder = project(
        tmp_path,
        "kind: live\njobs:\n  j: {image: u, cmd: 'echo ${{ flow.id }} ${{ project.id }}'}\n",
        "id: p1\ndefaults:\n  fail_fast: true\n  max_parallel: 2\n  cache: {strategy: none}\n",
    )
    assert load_flow_job(folder, "j").job_command == "echo live p1"


@pytest.mark.parametrize(
    ("live", "message"),
    [
        ("kind: live\njobs:\n  j: {image: u, cmd: c, http_port: abc}\n", ":3: jobs.j.http_port:"),
        ("kind: live\njobs:\n  j: {image: u, cmd: c, life_span: .inf}\n", ":3: jobs.j.life_span"),
        ("kind: live\njobs:\n  j: {image: u, cmd: c, env: {A: [1]}}\n", ":3: jobs.j.env.A: must"),
        ("kind: live\njobs:\n  b: &b {image: u}\n  j: {<<: *b, cmd: c}\n", ":4: not valid YAML"),
        ("kind: live\njobs:\n  j: {image: !thing u, cmd: c}\n", ":3: not valid YAML"),
        ("kind: live\nmixins: 3\njobs:\n  j: {image: u, cmd: c}\n", ":2: the flow.mixins: must"),
        (
            "kind: live\ndefaults:\n  volumes:\n    - storage:a:/a\n    - disk:d-1:/d\n"
            "jobs:\n  j: {image: u, cmd: c}\n",
            ":5: defaults.volumes[1]: 'disk:d-1:/d'",
        ),
        (
            "kind: live\njobs:\n  j:\n    image: u\n    cmd: c\n    volumes:\n"
            "      - storage:a:/a\n      - ${{ 'secret:s' }}:/s\n",
            ":8: jobs.j.volumes[1]",
        ),
    ],
)
def test_bad_values_are_refused_where_they_are_written(
    tmp_path: Path, live: str, message: str
) -> None:
    folder = project(tmp_path, live)
    with pytest.raises(FlowFileError) as caught:
        LiveFlow.load(folder).job("j")
    assert message in str(caught.value)

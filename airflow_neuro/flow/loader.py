"""Live jobs of neuro-flow / apolo-flow project files, made into job requests.

``load_flow_job(".apolo/live.yml", "train", {"epochs": "3"})`` gives the ``JobRequest`` that
``apolo-flow run train --param epochs 3`` would start: the same image, command, env,
volumes, tags, preset, life span, working directory and HTTP settings, computed the way
apolo-flow computes them (project and flow defaults, mixins, params, ``${{ }}``
expressions) and then the ``apolo run`` CLI (its defaults, the command joined from words).
What this subset does not cover is refused with the file, the line and the construct,
before any job exists.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from airflow_neuro.flow.expressions import FlowExpressionError, evaluate, render
from airflow_neuro.job_request import RESTART_POLICIES, JobRequest

CONFIG_DIRS = (".apolo", ".neuro")
EXTENSIONS = (".yml", ".yaml")
# What `apolo run` does when apolo-flow passes nothing: a day to live, port 80 exposed.
DEFAULT_LIFE_SPAN = 86400.0
DEFAULT_HTTP_PORT = 80
TIME_DELTA = re.compile(r"^((?P<d>\d+)d)?((?P<h>\d+)h)?((?P<m>\d+)m)?((?P<s>\d+)s)?$")
SHELLS = ("cmd", "bash", "python")

EXEC_FIELDS = frozenset({
    "title", "name", "image", "preset", "schedule_timeout", "entrypoint", *SHELLS, "workdir",
    "env", "volumes", "tags", "life_span", "http_port", "http_auth", "pass_config", "restart",
})  # fmt: skip
JOB_FIELDS = EXEC_FIELDS | {"detach", "browse", "params", "mixins"}
PROJECT_MIXIN_FIELDS = EXEC_FIELDS | {"mixins"}
DEFAULT_FIELDS = frozenset(
    {"tags", "env", "volumes", "workdir", "life_span", "preset", "schedule_timeout"}
)
# project.yml's defaults also serve batch flows: their batch-only fields are left alone.
PROJECT_DEFAULT_FIELDS = DEFAULT_FIELDS | {"fail_fast", "max_parallel", "cache"}
FLOW_FIELDS = frozenset({"kind", "id", "title", "images", "volumes", "defaults", "jobs", "mixins"})
PROJECT_FIELDS = frozenset(
    {"id", "project_name", "owner", "role", "images", "volumes", "defaults", "mixins"}
)
VOLUME_FIELDS = frozenset({"remote", "mount", "read_only", "local"})
IMAGE_FIELDS = frozenset({
    "ref", "context", "dockerfile", "build_args", "env", "volumes", "build_preset",
    "force_rebuild", "extra_kaniko_args",
})  # fmt: skip
# Fields whose values apolo-flow joins when a job and its mixins (or two levels of
# defaults) both give them: lists are concatenated, mappings merged. Others: the job's wins.
JOINED = frozenset({"env", "volumes", "tags"})
# Known to apolo-flow, refused here with the reason.
NOT_HERE = {
    "action": "action calls are not supported; define the job in the file",
    "module": "module calls are not supported; define the job in the file",
    "multi": "multi jobs are not supported; use Airflow's dynamic task mapping",
    "port_forward": "port forwarding needs a terminal; an Airflow task cannot keep one",
    "tasks": "batch flows are not supported; this reads live flows",
    "params": "flow-level params belong to batch flows; give params per job",
    "life_span": "a flow-level life_span belongs to batch flows; use defaults.life_span",
}


class FlowFileError(ValueError):
    """A flow file this loader cannot run: the message has the file, the line and why."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Located:
    """A value from a flow file with where it was written, for errors that point at it."""

    value: Any
    path: Path
    line: int

    def fail(self, problem: str) -> FlowFileError:
        return FlowFileError(self.path, self.line, problem)


@dataclass(frozen=True)
class Section:
    """A YAML mapping whose values keep their lines (list items are ``Located`` too)."""

    fields: dict[str, Located]
    path: Path
    line: int

    def get(self, name: str) -> Located | None:
        return self.fields.get(name)

    def at(self, name: str) -> Located:
        """The field, or where the section starts: a place to point an error at."""
        return self.fields.get(name) or Located(None, self.path, self.line)

    def section(self, name: str, where: str) -> Section | None:
        found = self.fields.get(name)
        if found is None or found.value is None:
            return None
        if not isinstance(found.value, Section):
            raise found.fail(f"{where}.{name}: must be a mapping")
        return found.value


@dataclass(frozen=True)
class Shell:
    """A job's command as written: ``cmd``, ``bash`` or ``python`` and its text (apolo-flow
    reads the three as one field, so a mixin's ``bash`` yields to a job's ``cmd``)."""

    form: str
    text: Any


@dataclass(frozen=True)
class Joined:
    """A list or mapping field given at several levels (job, mixins, defaults), nearest
    first; evaluated part by part, as apolo-flow does, so an expression joins too."""

    parts: tuple[Located, ...]


@dataclass(frozen=True)
class FlowJob:
    """One job of a live flow, evaluated: the request and what only the runner needs."""

    request: JobRequest
    detach: bool
    job_id: str
    flow_id: str
    project_id: str
    project_name: str | None


Contexts = dict[str, Any]


def find_flow_file(flow_file: str | Path, search: tuple[Path, ...] = ()) -> Path:
    """A ``live.yml`` itself, or the one in a project's ``.apolo`` / ``.neuro`` folder.

    A relative path is looked up under each folder of ``search`` in turn.
    """
    given = Path(flow_file)
    bases = [given] if given.is_absolute() else [base / given for base in search] or [given]
    for candidate in bases:
        if candidate.is_file():
            return candidate.resolve()
        for config in CONFIG_DIRS:
            for ext in EXTENSIONS:
                live = candidate / config / f"live{ext}"
                if live.is_file():
                    return live.resolve()
    looked = ", ".join(str(b) for b in bases)
    raise FlowFileError(
        given,
        None,
        f"no live flow file: looked for a file or a project folder with .apolo/live.yml"
        f" or .neuro/live.yml at {looked}",
    )


def load_flow_job(
    flow_file: str | Path,
    job: str,
    params: Mapping[str, Any] | None = None,
    *,
    username: str = "",
    project_name: str | None = None,
) -> JobRequest:
    """The ``JobRequest`` for job ``job`` of a live flow file (or project folder)."""
    flow = LiveFlow.load(flow_file)
    return flow.job(job, params, username=username, project_name=project_name).request


class LiveFlow:
    """A parsed live flow with its project file; ``job()`` evaluates one job."""

    def __init__(self, path: Path, flow: Section, project: Section | None, workspace: Path):
        self.path = path
        self.flow = flow
        self.project = project
        self.workspace = workspace
        kind = flow.get("kind")
        if kind is None:
            raise FlowFileError(path, flow.line, "kind: missing; this reads 'kind: live'")
        if kind.value != "live":
            raise kind.fail(f"kind: {kind.value!r} is not supported; this reads 'kind: live'")
        _check_fields(flow, FLOW_FIELDS, "the flow")
        if project is not None:
            _check_fields(project, PROJECT_FIELDS, "project.yml")
        self.jobs = _mappings(flow, "jobs", "")
        self.mixins = self._resolve_mixins()

    @classmethod
    def load(cls, flow_file: str | Path, search: tuple[Path, ...] = ()) -> LiveFlow:
        path = find_flow_file(flow_file, search)
        config_dir = path.parent
        workspace = config_dir.parent if config_dir.name in CONFIG_DIRS else config_dir
        # As apolo-flow: project.yml beside the flow file, else in the project folder.
        for folder in (config_dir, workspace):
            for ext in EXTENSIONS:
                candidate = folder / f"project{ext}"
                if candidate.is_file():
                    return cls(path, _read(path), _read(candidate), workspace)
        return cls(path, _read(path), None, workspace)

    # -- ids ------------------------------------------------------------------------------
    def project_id(self) -> str:
        given = self.project.get("id") if self.project else None
        if given is not None:
            return str(given.value)
        project_id = self.workspace.stem.replace("-", "_")
        if not project_id.isidentifier() or project_id == project_id.upper():
            raise FlowFileError(
                self.path, None,
                f"the project folder {self.workspace.name!r} is not a valid project id: add"
                " project.yml with an 'id'",
            )  # fmt: skip
        return project_id

    def flow_id(self) -> str:
        given = self.flow.get("id")
        return str(given.value) if given is not None else self.path.stem.replace("-", "_")

    # -- jobs -----------------------------------------------------------------------------
    def declared_params(self, job_id: str) -> list[str]:
        """The names of the params job ``job_id`` declares (through its mixins too)."""
        params = self._spec(job_id).section("params", f"jobs.{job_id}")
        return list(params.fields) if params else []

    def job(
        self,
        job_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        username: str = "",
        project_name: str | None = None,
    ) -> FlowJob:
        """Job ``job_id`` evaluated with ``params``, as apolo-flow would start it."""
        spec = self._spec(job_id)
        where = f"jobs.{job_id}"
        flow_id, project_id = self.flow_id(), self.project_id()
        own_project = _plain(self.project.get("project_name")) if self.project else None
        contexts: Contexts = {
            "flow": {
                "flow_id": flow_id,
                "id": flow_id,  # deprecated in apolo-flow, still common in files
                "project_id": project_id,
                "workspace": str(self.workspace),
                "title": str(_plain(self.flow.get("title")) or flow_id),
                "username": username,
            },
            "project": {
                "id": project_id,
                "owner": _plain(self.project.get("owner")) if self.project else None,
                "project_name": str(own_project) if own_project else project_name,
            },
        }
        # As in apolo-flow, defaults, volumes and images see the flow and the project only.
        defaults = self._defaults()
        volumes = self._volumes(contexts)
        images = self._images(contexts)
        env = _mapping(defaults.get("env"), contexts, "defaults.env")
        flow_tags = {*_strings(defaults.get("tags"), contexts, "defaults.tags"),
                     f"project:{_id2tag(project_id)}", f"flow:{_id2tag(flow_id)}"}  # fmt: skip
        contexts.update(env=env, tags=sorted(flow_tags), volumes=volumes, images=images)
        contexts["params"] = _params(spec, where, params or {}, contexts)

        tags = flow_tags | {f"job:{_id2tag(job_id)}"}
        tags.update(_strings(spec.get("tags"), contexts, f"{where}.tags"))
        env = {**env, **_mapping(spec.get("env"), contexts, f"{where}.env")}
        for name, value in env.items():
            if value.startswith("secret:"):
                raise spec.at("env").fail(
                    f"{where}.env.{name}: secrets are not supported; use an Airflow connection"
                    " or variable"
                )
        mounts = [
            *_strings(defaults.get("volumes"), contexts, "defaults.volumes", _check_volume),
            *_strings(spec.get("volumes"), contexts, f"{where}.volumes", _check_volume),
        ]
        image = _text(spec.get("image"), contexts, f"{where}.image")
        if image is None:
            raise FlowFileError(spec.path, spec.line, f"{where}.image: missing")

        def either(read: Callable[[Located | None, Contexts, str], Any], name: str) -> Any:
            """The job's value, else the defaults' (apolo-flow's ``job or defaults``: a
            job's empty or 0 value falls through too)."""
            mine = read(spec.get(name), contexts, f"{where}.{name}")
            return mine or read(defaults.get(name), contexts, f"defaults.{name}")

        restart = _text(spec.get("restart"), contexts, f"{where}.restart")
        if restart is not None and restart not in RESTART_POLICIES:
            raise spec.at("restart").fail(
                f"{where}.restart: {restart!r}; choose from {', '.join(RESTART_POLICIES)}"
            )
        workdir = either(_value, "workdir")
        request = JobRequest(
            job_command=_command(spec, contexts, where),
            job_image=image,
            job_volumes=mounts,
            job_name=_text(spec.get("name"), contexts, f"{where}.name"),
            job_resources_preset=_str_or_none(either(_value, "preset")),
            job_tags=sorted(tags),
            job_description=_text(spec.get("title"), contexts, f"{where}.title")
            or f"{flow_id}.{job_id}",
            job_lifespan=_life_span(either(_seconds, "life_span")),
            job_environ=env,
            job_entrypoint=_text(spec.get("entrypoint"), contexts, f"{where}.entrypoint") or None,
            job_http_port=_http_port(spec.get("http_port"), contexts, f"{where}.http_port"),
            job_http_auth=_flag(spec.get("http_auth"), contexts, f"{where}.http_auth", True),
            job_working_dir=str(PurePosixPath(str(workdir))) if workdir else None,
            job_schedule_timeout=_whole_seconds(either(_seconds, "schedule_timeout")),
            job_restart_policy=restart or "never",
            job_pass_config=_flag(spec.get("pass_config"), contexts, f"{where}.pass_config", False),
        )
        return FlowJob(
            request=request,
            detach=_flag(spec.get("detach"), contexts, f"{where}.detach", False),
            job_id=job_id,
            flow_id=flow_id,
            project_id=project_id,
            project_name=str(own_project) if own_project else None,
        )

    # -- the parts ------------------------------------------------------------------------
    def _spec(self, job_id: str) -> Section:
        """The job's fields with its mixins applied."""
        if job_id not in self.jobs:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise FlowFileError(self.path, None, f"no job {job_id!r}; the file has: {known}")
        spec = self.jobs[job_id]
        for key in ("action", "module"):
            if key in spec.fields:
                raise spec.fields[key].fail(f"jobs.{job_id}.{key}: {NOT_HERE[key]}")
        _check_fields(spec, JOB_FIELDS, f"jobs.{job_id}")
        return self._apply_mixins(_shells(spec, f"jobs.{job_id}"), f"jobs.{job_id}")

    def _resolve_mixins(self) -> dict[str, Section]:
        """Every mixin, the project's and the flow's (the flow's win), with the mixins it
        names applied; checked at load, used or not."""
        raw: dict[str, Section] = {}
        if self.project is not None:
            for name, mixin in _mappings(self.project, "mixins", "project.yml ").items():
                _check_fields(mixin, PROJECT_MIXIN_FIELDS, f"mixins.{name}")
                raw[name] = _shells(mixin, f"mixins.{name}")
        for name, mixin in _mappings(self.flow, "mixins", "").items():
            _check_fields(mixin, JOB_FIELDS, f"mixins.{name}")
            raw[name] = _shells(mixin, f"mixins.{name}")
        resolved: dict[str, Section] = {}

        def resolve(name: str, chain: tuple[str, ...]) -> Section:
            if name in chain:
                cycle = " -> ".join((*chain, name))
                raise FlowFileError(raw[name].path, raw[name].line, f"mixins: a cycle: {cycle}")
            if name not in resolved:

                def inner(mixin: str) -> Section:
                    return resolve(mixin, (*chain, name))

                resolved[name] = self._apply_mixins(raw[name], f"mixins.{name}", inner, raw)
            return resolved[name]

        for name in raw:
            resolve(name, ())
        return resolved

    def _apply_mixins(
        self,
        spec: Section,
        where: str,
        mixin_of: Callable[[str], Section] | None = None,
        known: Mapping[str, Section] | None = None,
    ) -> Section:
        """apolo-flow's order: the spec's own fields first, then its mixins from the last
        listed to the first."""
        listed = spec.get("mixins")
        if listed is None or listed.value is None:
            return spec
        names = [item.value for item in listed.value] if isinstance(listed.value, list) else None
        if names is None or not all(isinstance(name, str) for name in names):
            raise listed.fail(f"{where}.mixins: must be a list of mixin names")
        available = known if known is not None else self.mixins
        merged = spec
        for name in reversed(names):
            if name not in available:
                defined = ", ".join(sorted(available)) or "none"
                raise listed.fail(f"{where}.mixins: unknown mixin {name!r}; defined: {defined}")
            mixin = mixin_of(name) if mixin_of is not None else available[name]
            merged = _merge(merged, mixin)
        return merged

    def _defaults(self) -> Section:
        flow = self.flow.section("defaults", "the flow")
        project = self.project.section("defaults", "project.yml") if self.project else None
        if flow is not None:
            _check_fields(flow, DEFAULT_FIELDS, "defaults")
        if project is not None:
            _check_fields(project, PROJECT_DEFAULT_FIELDS, "project.yml defaults")
        if flow is not None and project is not None:
            return _merge(flow, project)
        return flow or project or Section({}, self.path, 1)

    def _volumes(self, contexts: Contexts) -> dict[str, dict[str, Any]]:
        volumes: dict[str, dict[str, Any]] = {}
        for key, spec in self._definitions("volumes").items():
            where = f"volumes.{key}"
            _check_fields(spec, VOLUME_FIELDS, where)
            remote = _text(spec.get("remote"), contexts, f"{where}.remote")
            mount = _text(spec.get("mount"), contexts, f"{where}.mount")
            if remote is None or mount is None:
                raise FlowFileError(spec.path, spec.line, f"{where}: needs remote and mount")
            if not remote.startswith("storage:"):
                raise spec.at("remote").fail(
                    f"{where}.remote: {remote!r}; only storage: volumes are supported"
                    " (disk: and secret: are not)"
                )
            mount = str(PurePosixPath(mount))
            read_only = _flag(spec.get("read_only"), contexts, f"{where}.read_only", False)
            volumes[key] = {
                "id": key,
                "remote": remote,
                "mount": mount,
                "read_only": read_only,
                "local": _text(spec.get("local"), contexts, f"{where}.local"),
                "ref": f"{remote}:{mount}:{'ro' if read_only else 'rw'}",
                "ref_ro": f"{remote}:{mount}:ro",
                "ref_rw": f"{remote}:{mount}:rw",
            }
        return volumes

    def _images(self, contexts: Contexts) -> dict[str, dict[str, Any]]:
        images: dict[str, dict[str, Any]] = {}
        for key, spec in self._definitions("images").items():
            _check_fields(spec, IMAGE_FIELDS, f"images.{key}")
            ref = _text(spec.get("ref"), contexts, f"images.{key}.ref")
            if ref is None:
                raise FlowFileError(spec.path, spec.line, f"images.{key}: needs ref")
            images[key] = {"id": key, "ref": ref}
        return images

    def _definitions(self, name: str) -> dict[str, Section]:
        """``volumes`` or ``images`` of the project and the flow (the flow's win)."""
        found = _mappings(self.project, name, "project.yml ") if self.project else {}
        return {**found, **_mappings(self.flow, name, "")}


# -- reading --------------------------------------------------------------------------------
def _read(path: Path) -> Section:
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        if not isinstance(node, yaml.MappingNode):
            raise FlowFileError(path, 1, "must be a YAML mapping")
        section = _convert(node, path, yaml.SafeLoader(""))
    except OSError as e:
        raise FlowFileError(path, None, f"cannot be read: {e.strerror}") from None
    except yaml.MarkedYAMLError as e:  # a syntax error, a merge key, an unknown tag
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise FlowFileError(path, line, f"not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise FlowFileError(path, None, f"not valid YAML: {e}") from None
    except UnicodeDecodeError:
        raise FlowFileError(path, None, "not UTF-8 text") from None
    assert isinstance(section, Section)
    return section


def _convert(node: yaml.Node, path: Path, scalars: yaml.SafeLoader, line: int = 0) -> Any:
    """Nodes to values as ``yaml.safe_load`` types them, each mapping value with the line of
    its key (where a person looks for ``jobs.train``), each list item with its own."""
    if isinstance(node, yaml.MappingNode):
        fields: dict[str, Located] = {}
        for key, value in node.value:
            name = str(scalars.construct_object(key))
            at = key.start_mark.line + 1
            if name in fields:
                raise FlowFileError(path, at, f"{name!r} is given twice")
            fields[name] = Located(_convert(value, path, scalars, at), path, at)
        return Section(fields, path, line or node.start_mark.line + 1)
    if isinstance(node, yaml.SequenceNode):
        return [
            Located(_convert(item, path, scalars), path, item.start_mark.line + 1)
            for item in node.value
        ]
    return scalars.construct_object(node)


def _check_fields(section: Section, allowed: frozenset[str], where: str) -> None:
    for name, value in section.fields.items():
        if name in allowed:
            continue
        if name in NOT_HERE:
            raise value.fail(f"{where}.{name}: {NOT_HERE[name]}")
        raise value.fail(f"{where}: unknown field {name!r}; allowed: {', '.join(sorted(allowed))}")


def _mappings(section: Section, name: str, where: str) -> dict[str, Section]:
    """A mapping of named mappings (``jobs``, ``mixins``, ``volumes``, ``images``)."""
    found = section.section(name, where.strip() or "the flow")
    named: dict[str, Section] = {}
    for key, spec in (found.fields if found else {}).items():
        if not isinstance(spec.value, Section):
            raise spec.fail(f"{where}{name}.{key}: must be a mapping")
        named[key] = spec.value
    return named


def _shells(spec: Section, where: str) -> Section:
    """``cmd``, ``bash`` and ``python`` as the one ``cmd`` field apolo-flow makes of them."""
    forms = [name for name in SHELLS if name in spec.fields]
    if len(forms) > 1:
        raise spec.fields[forms[1]].fail(f"{where}: {' and '.join(forms)} exclude each other")
    if not forms:
        return spec
    fields = {k: v for k, v in spec.fields.items() if k not in SHELLS}
    given = spec.fields[forms[0]]
    fields["cmd"] = Located(Shell(forms[0], given.value), given.path, given.line)
    return Section(fields, spec.path, spec.line)


def _merge(child: Section, parent: Section) -> Section:
    """apolo-flow's merge of a spec with a mixin, or of flow defaults with the project's: a
    field the child gives wins, except ``env``, ``volumes`` and ``tags``, which are joined
    (the child's first); a child's empty list or mapping field takes the parent's."""
    fields = dict(child.fields)
    for name, theirs in parent.fields.items():
        if name == "mixins":
            continue
        mine = fields.get(name)
        if mine is None or (mine.value is None and name in JOINED):
            fields[name] = theirs
        elif name in JOINED and theirs.value is not None:
            parts = (*_parts(mine), *_parts(theirs))
            fields[name] = Located(Joined(parts), mine.path, mine.line)
    return Section(fields, child.path, child.line)


def _parts(found: Located) -> tuple[Located, ...]:
    return found.value.parts if isinstance(found.value, Joined) else (found,)


# -- evaluating -----------------------------------------------------------------------------
def _value(found: Located | None, contexts: Contexts, where: str) -> Any:
    """A scalar with its expressions evaluated (a lone ``${{ }}`` keeps its type)."""
    if found is None or found.value is None:
        return None
    value = found.value
    if isinstance(value, Section | list | Joined):
        raise found.fail(f"{where}: must be a single value")
    if not isinstance(value, str):
        return value
    try:
        return evaluate(value, contexts)
    except FlowExpressionError as e:
        raise found.fail(f"{where}: {e}") from None
    except RecursionError:
        raise found.fail(f"{where}: the expression is nested too deeply") from None


def _text(found: Located | None, contexts: Contexts, where: str) -> str | None:
    return _str_or_none(_value(found, contexts, where))


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _flag(found: Located | None, contexts: Contexts, where: str, default: bool) -> bool:
    value = _value(found, contexts, where)
    return default if value is None else bool(value)


def _scalar_text(item: Located, contexts: Contexts, where: str) -> str:
    """One env value or list item: a scalar, its expressions rendered."""
    if isinstance(item.value, Section | list):
        raise item.fail(f"{where}: must be a single value, not a list or mapping")
    if not isinstance(item.value, str):
        return str(item.value)
    try:
        return render(item.value, contexts)
    except FlowExpressionError as e:
        raise item.fail(f"{where}: {e}") from None
    except RecursionError:
        raise item.fail(f"{where}: the expression is nested too deeply") from None


def _mapping(found: Located | None, contexts: Contexts, where: str) -> dict[str, str]:
    """A mapping field (``env``), its joined parts merged: the nearer part's names win."""
    merged: dict[str, str] = {}
    for part in reversed(_parts(found) if found is not None else ()):
        if part.value is None:
            continue
        if isinstance(part.value, Section):
            merged.update({
                name: _scalar_text(item, contexts, f"{where}.{name}")
                for name, item in part.value.fields.items()
                if item.value is not None
            })  # fmt: skip
            continue
        value = _value(part, contexts, where)
        if not isinstance(value, Mapping):
            raise part.fail(f"{where}: must be a mapping of names to values")
        merged.update({str(k): str(v) for k, v in value.items() if v is not None})
    return merged


def _strings(found: Located | None, contexts: Contexts, where: str, check: Any = None) -> list[str]:
    """A list field (``tags``, ``volumes``), its joined parts concatenated, empty items
    dropped; ``check(item, value, where)`` may refuse an item."""
    items: list[str] = []
    for part in _parts(found) if found is not None else ():
        if part.value is None:
            continue
        if isinstance(part.value, list):
            for index, item in enumerate(part.value):
                if item.value is not None:
                    text = _scalar_text(item, contexts, f"{where}[{index}]")
                    if check is not None:
                        check(item, text, f"{where}[{index}]")
                    items.append(text)
            continue
        value = _value(part, contexts, where)
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise part.fail(f"{where}: must be a list")
        for text in (str(v) for v in value if v is not None):
            if check is not None:
                check(part, text, where)
            items.append(text)
    return [item for item in items if item]


def _check_volume(found: Located, volume: str, where: str) -> None:
    if volume.startswith(("disk:", "secret:")):
        raise found.fail(f"{where}: {volume!r}: only storage: volumes are supported")


def _seconds(found: Located | None, contexts: Contexts, where: str) -> float | None:
    """A life span or timeout: seconds, or ``"1d6h15m"`` as apolo-flow writes them."""
    value = _value(found, contexts, where)
    if value is None:
        return None
    assert found is not None
    if not isinstance(value, bool):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            match = TIME_DELTA.match(str(value))
            if match and str(value):
                d, h, m, s = (int(match.group(unit) or 0) for unit in "dhms")
                return float(((d * 24 + h) * 60 + m) * 60 + s)
        else:
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    raise found.fail(f"{where}: {value!r} is not seconds or a time like '1d6h15m'")


def _life_span(seconds: float | None) -> float | None:
    """None: the CLI's day; 0 seconds: the CLI's "no limit"."""
    return DEFAULT_LIFE_SPAN if seconds is None else _whole_seconds(seconds)


def _whole_seconds(seconds: float | None) -> float | None:
    """As apolo-flow passes them to the CLI: whole seconds, 0 being none."""
    return float(int(seconds)) or None if seconds else None


def _http_port(found: Located | None, contexts: Contexts, where: str) -> int | None:
    value = _value(found, contexts, where)
    if value is None:
        return DEFAULT_HTTP_PORT
    assert found is not None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise found.fail(f"{where}: {value!r} is not a port number") from None
    return port or None  # 0: no HTTP port, as `apolo run --http-port 0`


def _params(
    spec: Section, where: str, given: Mapping[str, Any], contexts: Contexts
) -> dict[str, str]:
    """The job's params: each given value, else its default; unknown names refused."""
    declared = spec.section("params", where)
    found: dict[str, str] = {}
    for name, item in (declared.fields if declared else {}).items():
        if isinstance(item.value, Section):
            _check_fields(item.value, frozenset({"default", "descr"}), f"{where}.params.{name}")
            default: Located | None = item.value.get("default")
        else:
            default = item
        if given.get(name) is not None:
            found[name] = str(given[name])
            continue
        value = _text(default, contexts, f"{where}.params.{name}")
        if value is None:
            raise item.fail(f"{where}.params.{name}: no value given and no default")
        found[name] = value
    extra = sorted(set(given) - set(found))
    if extra:
        known = ", ".join(sorted(found)) or "none"
        raise FlowFileError(
            spec.path, declared.line if declared else spec.line,
            f"params: the job {where.removeprefix('jobs.')!r} has no param"
            f" {', '.join(map(repr, extra))};"
            f" it has: {known}",
        )  # fmt: skip
    return found


def _command(spec: Section, contexts: Contexts, where: str) -> str | None:
    """The command as ``apolo run`` gets it from apolo-flow: bash and python wrapped, then
    split into words and joined again quoted (one word stays as it is); none: the image's."""
    found = spec.get("cmd")
    if found is None or not isinstance(found.value, Shell):
        return None
    shell = found.value
    text = _value(Located(shell.text, found.path, found.line), contexts, f"{where}.{shell.form}")
    if text is None or text == "":
        return None
    if shell.form == "bash":
        text = " ".join(["bash", "-euo", "pipefail", "-c", shlex.quote(str(text))])
    elif shell.form == "python":
        text = " ".join(["python3", "-uc", shlex.quote(str(text))])
    try:
        words = shlex.split(str(text))
    except ValueError as e:
        raise found.fail(f"{where}.{shell.form}: {e}") from None
    if not words:
        return None
    return words[0] if len(words) == 1 else shlex.join(words)


def _plain(found: Located | None) -> Any:
    return None if found is None else found.value


def _id2tag(value: str) -> str:
    return value.replace("_", "-").lower()

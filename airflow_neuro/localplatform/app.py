"""The aiohttp application: every API the SDK uses, joined behind one token check."""

from __future__ import annotations

import os

from aiohttp import web

from .auth import auth_middleware
from .config_api import config_routes
from .errors import error_middleware
from .faults import fault_middleware
from .flow_api import FlowApi
from .flow_store import FlowStore
from .jobs import JobService, job_user
from .jobs_api import JobsApi
from .proxy import PREFIX as HTTP_PROXY_PREFIX
from .proxy import JobHttpProxy
from .settings import Settings
from .stats import RequestStats
from .storage import PREFIX as STORAGE_PREFIX
from .storage import Storage
from .store import JobStore

JOBS_KEY = web.AppKey("jobs", JobService)


def create_app(settings: Settings) -> web.Application:
    # Only the platform's user enters the data dir: it holds the token, the database and
    # every job's log and environment. chmod too: mkdir's mode yields to the umask, and the
    # directory may be an old one.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.db_path)
    flow_store = FlowStore(settings.db_path)
    # Jobs run as their own user when the platform is root: what storage makes is theirs.
    user = job_user(settings)
    owner = (user.uid, user.gid) if user is not None else None
    storage = Storage(settings.storage_dir, settings.cluster, owner)
    jobs = JobService(settings, store, storage.paths, user)
    proxy = JobHttpProxy(settings, jobs)
    # Job ports check the token themselves: only jobs that ask for it require one.
    stats = RequestStats()
    app = web.Application(
        # Faults come first: a real outage does not care whether the token is right. Errors
        # are answered innermost: a missing token is still auth's plain 401, and an injected
        # reset (an OSError) is never taken for a storage error.
        middlewares=[
            stats.middleware(),
            fault_middleware(settings.faults),
            auth_middleware(settings.token, (HTTP_PROXY_PREFIX,)),
            error_middleware(file_api_prefixes=(STORAGE_PREFIX,)),
        ],
        client_max_size=1024**3,
    )
    app[JOBS_KEY] = jobs
    app.add_routes(config_routes(settings))
    app.add_routes(JobsApi(settings, jobs).routes())
    app.add_routes(storage.routes())
    app.add_routes(FlowApi(settings, flow_store).routes())
    app.add_routes(proxy.routes())
    app.add_routes(stats.routes())

    async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
        await jobs.start()
        yield
        await jobs.shutdown()
        await proxy.close()
        store.close()
        flow_store.close()

    app.cleanup_ctx.append(lifecycle)
    return app

"""Running the app under uvicorn (httptools + uvloop when installed)."""
from __future__ import annotations

import os

from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace

ENV_CONFIG = "CHAINTRACE_SCREEN_CONFIG"
ENV_BUILD = "CHAINTRACE_SCREEN_BUILD"
ENV_AUTO = "CHAINTRACE_SCREEN_AUTO_INDEX"


def app_factory():
    """uvicorn factory for worker processes: the workspace and options come from the environment."""
    from chaintrace.api.app import create_app
    from chaintrace.api.fastpath import FastPath
    from chaintrace.screen import load_config

    import gc

    ws = Workspace(os.environ.get("CHAINTRACE_DATA"))
    app = FastPath(create_app(ws, config=load_config(os.environ.get(ENV_CONFIG) or None),
                              build_index=os.environ.get(ENV_BUILD) == "1",
                              auto_index=os.environ.get(ENV_AUTO, "1") == "1"))
    # the snapshot's millions of long-lived objects (registry facts, address maps) leave the cyclic
    # collector's view: a full collection in the middle of a request was the largest latency outlier
    gc.collect()
    gc.freeze()
    return app


def serve(ws: Workspace, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          config_path: str | None = None, build_index: bool = True, auto_index: bool = True,
          forwarded_allow_ips: str | None = None,
          ssl_keyfile: str | None = None, ssl_certfile: str | None = None, log_level: str = "warning") -> None:
    """Serve workspace `ws` until interrupted."""
    import uvicorn

    from chaintrace.screen import load_config

    if workers < 1:
        raise UserError(f"--workers {workers}: at least 1")
    if (ssl_keyfile is None) != (ssl_certfile is None):
        raise UserError("--ssl-keyfile and --ssl-certfile go together")
    cfg = load_config(config_path)  # fail early on a bad file
    if build_index:
        from chaintrace.screen.index import build_index as build, current_name

        if current_name(ws, cfg) is not None:
            build(ws, cfg)
    from chaintrace.intel.registry import ENV_REGISTRY, default_registry_dir

    os.environ["CHAINTRACE_DATA"] = str(ws.path)
    os.environ[ENV_REGISTRY] = str(default_registry_dir())  # --registry reaches the worker processes
    if config_path:
        os.environ[ENV_CONFIG] = str(config_path)
    os.environ[ENV_AUTO] = "1" if auto_index else "0"
    opts = dict(host=host, port=port, workers=workers, factory=True, log_level=log_level,
                forwarded_allow_ips=forwarded_allow_ips, ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile,
                access_log=False, server_header=False)
    try:
        import httptools  # noqa: F401

        opts["http"] = "httptools"
    except ImportError:
        pass
    try:
        import uvloop  # noqa: F401

        opts["loop"] = "uvloop"
    except ImportError:
        pass
    uvicorn.run("chaintrace.api.server:app_factory", **opts)

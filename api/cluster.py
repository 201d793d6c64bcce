"""The HTTP API as a Ray Serve application: shard deployments, and answer deployments in front.

``qa serve --ray`` runs it. Each shard deployment (``shard-0`` ... ``shard-{n-1}``) holds some of
the index's segments (``qa.shards.assign``) and searches them; each answer replica runs the same
FastAPI app as ``qa serve`` (``api.main.create_app``), whose engine asks every shard and merges
(``qa.shards.ShardedSearch``), then scores, extracts and cites as in one process. Replicas of a
deployment are interchangeable, and Serve replaces one that dies; a request whose shard does not
answer gets a 503, never an answer from the other shards alone.

Writes (uploads, deletions) are committed by whichever answer replica receives them, one at a time
under the index directory's writer lock, as between ``qa serve --workers`` processes; every replica
and shard then loads the new commit before it answers from it. The index directory must be on a
file system every node reads (one machine, or a shared volume).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from api.main import create_app
from qa.cluster import connect
from qa.config import Settings
from qa.filters import Filter
from qa.index import VectorIndex
from qa.retrieve import Ranking
from qa.shards import STALE, Shard, ShardedSearch, ShardUnavailable, StaleCommit
from qa.storage import load_index

logger = logging.getLogger(__name__)

APP_NAME = "qa"
# Seconds an answer replica waits for a shard before answering 503.
SHARD_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClusterOptions:
    """How the application is laid out.

    Attributes:
        shards: Shard deployments; the segments are spread over them.
        shard_replicas: Replicas of each shard deployment (each loads that shard's segments).
        answer_replicas: Replicas of the answer deployment (each loads the embedding model).
    """

    shards: int = 2
    shard_replicas: int = 1
    answer_replicas: int = 2


def listen_on_node_address() -> None:
    """Make this replica's inter-deployment gRPC server listen on its node's address only.

    Ray Serve 2.60 binds it on every interface (``[::]:0``), though other replicas dial it at the
    address the node announces; so a cluster on 127.0.0.1 would still listen on the network. Each
    deployment calls this first in its constructor, which Serve runs before it starts that server.
    """
    import ray
    from ray.serve._private import replica

    add_port = replica.add_port_to_grpc_server
    host = ray.util.get_node_ip_address()
    host = f"[{host}]" if ":" in host else host
    replica.add_port_to_grpc_server = lambda server, address: add_port(server, address.replace("[::]", host, 1))


@serve.deployment(ray_actor_options={"num_cpus": 0}, health_check_period_s=2, health_check_timeout_s=10)
class ShardDeployment:
    """Dense and lexical search over one shard's segments of the current commit."""

    def __init__(self, index_dir: str, model: str, shard: int, shards: int) -> None:
        listen_on_node_address()
        folder = Path(index_dir)

        def load(previous: VectorIndex | None) -> VectorIndex:
            return load_index(folder, model=model, previous=previous, search=False)

        self.shard = Shard(load, shard, shards)

    def search(
        self, commit: str, query: np.ndarray | None, tokens: list[str] | None, n: int, where: Filter | None = None
    ) -> tuple[Ranking, Ranking]:
        return self.shard.search(commit, query, tokens, n, where)


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress()
class AnswerDeployment:
    """The FastAPI app of ``qa serve``, its first-stage searches fanned out to the shards."""

    def __init__(self, settings: Settings, shards: list[DeploymentHandle]) -> None:
        listen_on_node_address()
        self.settings = settings
        self.shards = shards

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.settings, searcher=ShardedSearch(self.fan_out))

    def fan_out(
        self, commit: str, query: np.ndarray | None, tokens: list[str] | None, n: int, where: Filter | None
    ) -> list[tuple[Ranking, Ranking]]:
        """Every shard's rankings, asked at once; ShardUnavailable if any shard does not answer in time."""
        responses = [handle.search.remote(commit, query, tokens, n, where) for handle in self.shards]
        lists = []
        for shard, response in enumerate(responses):
            try:
                lists.append(response.result(timeout_s=SHARD_TIMEOUT_S))
            except Exception as exc:  # a dead replica, a timeout, a shard that failed: all mean no whole answer
                if isinstance(exc, StaleCommit):  # Ray re-raises it as a subclass of both
                    raise StaleCommit(STALE) from exc
                logger.warning("shard %d did not answer: %r", shard, exc)
                raise ShardUnavailable(f"shard {shard} of the index is not answering; try again shortly") from exc
        return lists


def application(settings: Settings, options: ClusterOptions) -> Any:
    """The bound application: ``options.shards`` shard deployments behind the answer deployment."""
    # Deployments (mypy reads a decorated class as the class itself).
    shard_deployment: Any = ShardDeployment
    answer_deployment: Any = AnswerDeployment
    shards = [
        shard_deployment.options(name=f"shard-{i}", num_replicas=options.shard_replicas).bind(
            str(settings.index_dir.resolve()), settings.model, i, options.shards
        )
        for i in range(options.shards)
    ]
    return answer_deployment.options(name="answer", num_replicas=options.answer_replicas).bind(settings, shards)


def serve_on_ray(settings: Settings, address: str | None, host: str, port: int, options: ClusterOptions) -> None:
    """Run the application on the cluster at ``address``, its HTTP proxy at host:port, until SIGINT or SIGTERM."""
    connect(address)
    serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.run(application(settings, options), name=APP_NAME, route_prefix="/", blocking=False)
        logger.warning("serving on http://%s:%d (%d shards)", host, port, options.shards)
        stop.wait()
    finally:
        serve.shutdown()

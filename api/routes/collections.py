"""``/v1/collections``: list the collections a caller may read; create and delete them with an admin key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from api.collections import Collections
from api.deps import SettingsDep, presented_key, reads_need_key, require_admin, require_json, run_sync
from api.routes import problems
from api.schemas import CollectionIn, CollectionList, CollectionOut
from qa.collections import NAME, Collection, list_collections
from qa.keys import KeysFile, allows

router = APIRouter(prefix="/v1", tags=["collections"])

Name = Annotated[str, Path(pattern=NAME.pattern, description="The collection's name")]


@router.get("/collections", responses=problems(429))
async def get_collections(request: Request, settings: SettingsDep) -> CollectionList:
    """The collections this caller may read: open ones, and those its key has a read scope on (admin: all).

    The key is optional here (a caller without one sees the open collections), so the route declares none.
    """
    collections: Collections = request.app.state.collections
    keys: KeysFile = request.app.state.keys
    key = presented_key(request)
    scopes = keys.ring().scopes_of(key) if key is not None else None
    found = await run_sync(list_collections, collections.index_dir)

    def readable(collection: Collection) -> bool:
        if not reads_need_key(settings, collection):
            return True
        return scopes is not None and (allows(scopes, "admin", None) or allows(scopes, "read", collection.name))

    shown = [CollectionOut(name=c.name, require_key_for_reads=c.require_key_for_reads) for c in found if readable(c)]
    return CollectionList(collections=shown)


@router.post(
    "/collections",
    status_code=201,
    dependencies=[Depends(require_admin), Depends(require_json)],
    responses=problems(400, 401, 403, 409, 413, 415, 422, 429, 503),
)
async def post_collection(body: CollectionIn, request: Request) -> CollectionOut:
    """Create an empty collection (its documents are then added under /v1/collections/{name}/documents)."""
    collections: Collections = request.app.state.collections
    await run_sync(collections.create, Collection(body.name, body.require_key_for_reads))
    return CollectionOut(name=body.name, require_key_for_reads=body.require_key_for_reads)


@router.delete(
    "/collections/{name}",
    status_code=204,
    response_class=Response,
    dependencies=[Depends(require_admin)],
    responses=problems(401, 403, 404, 409, 422, 429),
)
async def delete_collection(name: Name, request: Request) -> Response:
    """Delete a collection with its documents and index (``default`` cannot be deleted: 409)."""
    collections: Collections = request.app.state.collections
    await run_sync(collections.delete, name)
    return Response(status_code=204)

"""Dependencies shared by the routes, as ``Annotated`` aliases.

``SettingsDep`` reads what ``create_app`` stored on the app; ``ServiceDep`` is the service of the
collection the path names (``/v1/collections/{collection}/...``; ``default`` for the other routes);
``EngineDep`` is the engine it serves (503 while there is none); ``require_reader``,
``require_writer`` and ``require_admin`` check ``Authorization: Bearer <key>`` against the keys'
scopes (``qa.keys``) for that collection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.collections import Collections
from api.state import Service, refresh_if_stale
from qa.collections import DEFAULT, NAME, Collection
from qa.config import Settings
from qa.engine import Engine
from qa.errors import CollectionNotFound
from qa.keys import Action, KeysFile, allows, needed_scope

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="An API key from QA_API_KEYS or QA_KEYS_FILE")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_settings(request: Request) -> Settings:
    """The settings the app was made with (``create_app(settings)``); async, as every cheap dependency here,
    because FastAPI runs a plain ``def`` dependency in a worker thread: a hop per request for nothing."""
    settings: Settings = request.app.state.settings
    return settings


async def collection_path(
    collection: Annotated[
        str, Path(pattern=NAME.pattern, description="The collection's name ([a-z0-9][a-z0-9_-]{0,63})")
    ],
) -> str:
    """Declares the ``{collection}`` path parameter of the collection routes (read by ``collection_name``)."""
    return collection


def collection_name(request: Request) -> str:
    """The collection the request is for: the path's ``{collection}``, else ``default``.

    Raises:
        RequestValidationError: For a name no collection can have (422, as ``collection_path`` says).
    """
    name = str(request.path_params.get("collection", DEFAULT))
    if not NAME.fullmatch(name):
        message = f"String should match pattern '{NAME.pattern}'"
        raise RequestValidationError(
            [{"type": "string_pattern_mismatch", "loc": ("path", "collection"), "msg": message}]
        )
    return name


async def get_service(request: Request) -> Service:
    """The service of the request's collection (404 problem for an unknown one).

    While some collection needs a key to be read, an unknown name first gets the answer a private collection
    would get (401 without a key, 403 for one that may not read that name), and the 404 only when the key
    could read it (or admin it): otherwise 404 against 401 would tell which private collections exist. A
    private collection is opened only for a caller who may read it (or admin it).
    """
    collections: Collections = request.app.state.collections
    settings: Settings = request.app.state.settings
    name = collection_name(request)
    try:
        if not collections.is_open(name):
            # Opening a collection loads its index: a caller who may not read it (it is private) is answered
            # first, so that requests without a key cannot make the process load every private index.
            if reads_need_key(settings, await run_sync(collections.record, name)):
                await run_sync(check_existence_rights, request)
        return await collections.service(name)
    except CollectionNotFound:
        if await run_sync(collections.any_private, settings.require_key_for_reads):
            await run_sync(check_existence_rights, request)
        raise


def check_existence_rights(request: Request) -> None:
    """The read rule of a private collection of the request's name (``check_key``), passed by an admin key too."""
    key = presented_key(request)
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=key) if key else None
    keys: KeysFile = request.app.state.keys
    scopes = keys.ring().scopes_of(key) if key else None
    if scopes is None or not allows(scopes, "admin", None):
        check_key(request, credentials, "read")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]


async def get_engine(service: ServiceDep) -> Engine:
    """The engine to answer this request from, grabbed once.

    Raises:
        HTTPException: 503 with the reason while no index is loaded.
    """
    await refresh_if_stale(service)
    engine = service.engine
    if engine is None:
        raise HTTPException(503, service.unavailable or "no index is loaded", headers={"Retry-After": "5"})
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def check_key(request: Request, credentials: HTTPAuthorizationCredentials | None, action: Action) -> None:
    """401 without a key; 403 with a wrong one, one without the scope, or when no keys are configured."""
    keys: KeysFile = request.app.state.keys
    ring = keys.ring()
    noun = {"read": "reads", "write": "writes", "admin": "collection changes"}[action]
    if ring.empty:
        raise HTTPException(403, f"{noun} are disabled on this server: no API keys are set (QA_API_KEYS, QA_KEYS_FILE)")
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            401, "an API key is required: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
        )
    scopes = ring.scopes_of(credentials.credentials)
    if scopes is None:
        raise HTTPException(
            403, "the API key is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    collection = None if action == "admin" else collection_name(request)
    if not allows(scopes, action, collection):
        scope = needed_scope(action, collection)
        raise HTTPException(
            403,
            f"the API key lacks the scope {scope!r} that this needs",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )


def reads_need_key(settings: Settings, collection: Collection) -> bool:
    """The read rule: ``QA_REQUIRE_KEY_FOR_READS`` for every collection, or the collection's own flag."""
    return settings.require_key_for_reads or collection.require_key_for_reads


async def require_reader(
    request: Request, settings: SettingsDep, service: ServiceDep, credentials: Credentials
) -> None:
    """Reads are open unless the collection's read rule asks for a key with a read scope on it; the check
    runs in a thread, as it may reread the keys file, so an open read never leaves the event loop."""
    if reads_need_key(settings, service.collection):
        await run_sync(check_key, request, credentials, "read")


def require_writer(request: Request, service: ServiceDep, credentials: Credentials) -> None:
    """Adding and deleting documents always needs a key with a write scope on the collection."""
    check_key(request, credentials, "write")


def presented_key(request: Request) -> str | None:
    """The bearer key a request carries, if any, read without declaring a security scheme: for the routes
    where a key is optional (``GET /v1/collections`` shows more with one)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def require_admin(request: Request, credentials: Credentials) -> None:
    """Creating and deleting collections needs a key with the admin scope."""
    check_key(request, credentials, "admin")


def media_type(request: Request) -> str:
    """The request body's media type, lower case, without its parameters ("" when none is sent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def require_json(request: Request) -> None:
    """A route whose body is JSON refuses another media type with 415 (``application/json`` or a ``+json``
    type, as FastAPI reads them): read as something else, the body would get a 422 about its shape ("Input
    should be a valid dictionary") for what is the header's fault. Async, like ``get_settings``: no hop to a
    worker thread for a header check."""
    kind = media_type(request)
    if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
        raise HTTPException(415, "send the body as application/json")


async def run_sync(func: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    """Run blocking work in a thread that the request deadline can abandon."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), abandon_on_cancel=True)

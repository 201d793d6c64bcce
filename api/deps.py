"""Dependencies shared by the routes, as ``Annotated`` aliases.

``SettingsDep`` and ``ServiceDep`` read what ``create_app`` stored on the app;
``EngineDep`` is the engine being served (503 while there is none);
``require_reader`` and ``require_writer`` check ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.state import Service, refresh_if_stale
from qa.config import Settings
from qa.engine import Engine

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="An API key from QA_API_KEYS")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_settings(request: Request) -> Settings:
    """The settings the app was made with (``create_app(settings)``)."""
    settings: Settings = request.app.state.settings
    return settings


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]


async def get_engine(request: Request, service: ServiceDep) -> Engine:
    """The engine to answer this request from, grabbed once.

    Raises:
        HTTPException: 503 with the reason while no index is loaded.
    """
    await refresh_if_stale(service)
    engine: Engine | None = request.app.state.engine
    if engine is None:
        raise HTTPException(503, service.unavailable or "no index is loaded", headers={"Retry-After": "5"})
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def key_matches(given: str, keys: list[str]) -> bool:
    """Compare a presented key with every configured one in constant time.

    Header values arrive decoded as latin-1, so encoding them back gives the
    bytes on the wire; configured keys are UTF-8 text.
    """
    presented = given.encode("latin-1", "replace")
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented, key.encode("utf-8"))
    return found


def configured_keys(settings: Settings) -> list[str]:
    return [key for key in settings.api_keys if key]


def check_key(settings: Settings, credentials: HTTPAuthorizationCredentials | None, *, action: str) -> None:
    """401 without a key, 403 with a wrong one (or when no keys are configured)."""
    keys = configured_keys(settings)
    if not keys:
        raise HTTPException(403, f"{action} are disabled on this server: QA_API_KEYS is unset")
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            401, "an API key is required: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
        )
    if not key_matches(credentials.credentials, keys):
        raise HTTPException(
            403, "the API key is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )


def require_reader(settings: SettingsDep, credentials: Credentials) -> None:
    """Reads are open unless QA_REQUIRE_KEY_FOR_READS is set."""
    if settings.require_key_for_reads:
        check_key(settings, credentials, action="reads")


def require_writer(settings: SettingsDep, credentials: Credentials) -> None:
    """Adding and deleting documents always needs a key."""
    check_key(settings, credentials, action="writes")


async def run_sync(func: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    """Run blocking work in a thread that the request deadline can abandon."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), abandon_on_cancel=True)

"""Routes: the API docs page — the OpenAPI description rendered for people by Swagger UI, whose files come
from the swagger-ui-bundle-v2 package (requirements.txt) and are served by the app like the Backups page:
no CDN, nothing fetched from elsewhere."""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from swagger_ui_bundle import swagger_ui_path

from functions.http import PUBLIC, ApiBlueprint, ApiRequest, Reply, RouteSpec
from shared.errors import NotFound

bp = ApiBlueprint()

OWN_FILES = Path(__file__).resolve().parent / "docs_files"
SWAGGER_UI = Path(str(swagger_ui_path))
# The few files of Swagger UI the page uses; nothing else of the package is served.
SWAGGER_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
OWN_MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
TAG = "Service"


def _reply(path: Path, media_type: str) -> Reply:
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Reply(200, content=path.read_bytes(), content_type=media_type, headers=headers)


def _asset(name: str) -> Reply:
    if name in SWAGGER_FILES:
        return _reply(SWAGGER_UI / name, SWAGGER_FILES[name])
    path = (OWN_FILES / name).resolve()
    if OWN_FILES in path.parents and path.is_file() and path.suffix in OWN_MEDIA_TYPES and path.name != "index.html":
        return _reply(path, OWN_MEDIA_TYPES[path.suffix])
    raise NotFound(f"The API docs page has no file {name!r}.", code="file_not_found")


@bp.api("docs", "GET", RouteSpec("The API docs page", PUBLIC, media_types=("text/html",), also_success=(308,), tag=TAG))
def docs_page(request: ApiRequest) -> Reply:
    path = urlsplit(request.raw.url).path
    if path.endswith("/"):
        # The route matches /api/docs/ too, where the page's relative addresses would be one folder off.
        page = path.rstrip("/")
        link = f'<!doctype html><title>API</title><a href="{escape(page)}">The API docs</a>'.encode()
        return Reply(308, content=link, content_type="text/html", headers={"Location": page})
    return _reply(OWN_FILES / "index.html", "text/html")


@bp.api(
    "docs/{*asset}",
    "GET",
    RouteSpec(
        "The API docs page's scripts and styles",
        PUBLIC,
        media_types=tuple(sorted({*SWAGGER_FILES.values(), *OWN_MEDIA_TYPES.values()})),
        tag=TAG,
    ),
)
def docs_asset(request: ApiRequest) -> Reply:
    return _asset(request.route("asset"))

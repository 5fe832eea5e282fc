"""Routes: the Backups page — static files from the package, served by the function app. The page
itself is public; everything it shows comes from the same API, with the caller's own access."""

from __future__ import annotations

import mimetypes
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from functions.http import PUBLIC, ApiBlueprint, ApiRequest, Reply, RouteSpec
from shared.errors import NotFound

bp = ApiBlueprint()

FILES = Path(__file__).resolve().parent / "portal_files"
MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
TAG = "Backups page"


def _file(name: str) -> Reply:
    path = (FILES / name).resolve()
    if FILES not in path.parents or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise NotFound(f"The Backups page has no file {name!r}.", code="file_not_found")
    media = MEDIA_TYPES[path.suffix] or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Reply(200, content=path.read_bytes(), content_type=media, headers=headers)


@bp.api(
    "portal", "GET", RouteSpec("The Backups page", PUBLIC, media_types=("text/html",), also_success=(308,), tag=TAG)
)
def portal_page(request: ApiRequest) -> Reply:
    path = urlsplit(request.raw.url).path
    if path.endswith("/"):
        # The route matches /api/portal/ too, where the page's relative addresses would be one folder off.
        page = path.rstrip("/")
        link = f'<!doctype html><title>Backups</title><a href="{escape(page)}">The Backups page</a>'.encode()
        return Reply(308, content=link, content_type="text/html", headers={"Location": page})
    return _file("index.html")


@bp.api(
    "portal/{*asset}",
    "GET",
    RouteSpec(
        "The Backups page's scripts, styles and images",
        PUBLIC,
        media_types=tuple(sorted(set(MEDIA_TYPES.values()))),
        tag=TAG,
    ),
)
def portal_asset(request: ApiRequest) -> Reply:
    return _file(request.route("asset"))

"""Route templates and the router of the development host ({name} and {*name}, on werkzeug's router)."""

from __future__ import annotations

import pytest

from devhost.routing import MethodNotAllowed, RouteMatch, RouteNotFound, Router, RouteTemplate


def match(template: str, path: str) -> dict[str, str] | None:
    """Route values when ``path`` (below the prefix ``api``) matches ``template``, else None."""
    result = Router([(template, None, "target")]).resolve("GET", f"/api/{path}")
    return result.params if isinstance(result, RouteMatch) else None


def target(router: Router, method: str, path: str) -> str | None:
    result = router.resolve(method, path)
    return result.route.target if isinstance(result, RouteMatch) else None


# -- parameters and literals


def test_literal_segments_match_case_insensitively() -> None:
    assert match("Users/Active", "users/ACTIVE") == {}
    assert match("users/active", "users/inactive") is None
    assert match("users", "users/extra") is None
    assert match("users/active", "users") is None


def test_parameters_capture_segments_and_keep_their_case() -> None:
    assert match("users/{user}/posts/{post}", "USERS/Ada/posts/42") == {"user": "Ada", "post": "42"}


def test_route_values_are_url_decoded_after_the_path_is_split() -> None:
    assert match("files/{name}", "files/annual%20report%2Efinal") == {"name": "annual report.final"}
    assert match("files/{name}", "files/a%2Fb") == {"name": "a/b"}
    assert match("files/{name}", "files/a/b") is None
    assert match("café/{x}", "caf%C3%A9/1") == {"x": "1"}
    assert match("files/{name}", "files/%C3%89t%C3%A9") == {"name": "Été"}


def test_a_parameter_does_not_match_an_empty_segment() -> None:
    assert match("a/{b}/c", "a//c") is None


def test_empty_template_matches_only_the_root() -> None:
    assert match("", "") == {}
    assert match("", "x") is None


def test_catch_all_takes_the_rest_of_the_path() -> None:
    assert match("files/{*path}", "files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert match("files/{**path}", "files/a%20b/c") == {"path": "a b/c"}
    assert match("files/{*path}", "files/..%2Fsecret") == {"path": "../secret"}
    assert match("files/{*path}", "Files/A/B/") == {"path": "A/B"}


def test_a_catch_all_takes_one_segment_or_more() -> None:
    # The app declares the literal route beside its catch-all (portal, portal/{*asset}); see the module docstring.
    assert match("files/{*path}", "files") is None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("files/{*path}/more", "catch-all parameter 'path' must be the last segment"),
        ("a/{x}/{X}", "more than once"),
        ("a//b", "empty segment"),
        ("a/{x", "mixes literal text and parameters"),
        ("a/x}", "mixes literal text and parameters"),
        ("files/{name}.{ext}", "mixes literal text and parameters"),
        ("a/{}", "is not supported by the development host"),
        ("items/{id:int}", "no constraints, optional or default values"),
        ("items/{id?}", "no constraints, optional or default values"),
        ("pages/{page=1}", "no constraints, optional or default values"),
        ("a/b?c", "not a valid literal segment"),
        ("a/<b>", "not a valid literal segment"),
    ],
)
def test_templates_the_development_host_does_not_read_are_refused_naming_the_problem(
    template: str, message: str
) -> None:
    with pytest.raises(ValueError, match="invalid route template") as caught:
        RouteTemplate.parse(template)
    assert message in str(caught.value)
    with pytest.raises(ValueError, match="invalid route template"):
        Router([(template, None, "target")])


# -- router: prefix, precedence, methods


@pytest.fixture
def router() -> Router:
    return Router(
        [
            ("items/{*rest}", ["GET"], "catch_all"),
            ("items/{slug}", ["GET", "delete"], "by_slug"),
            ("items/new", ["GET"], "new"),
            ("items/{id}/parts/{part}", ["GET", "PUT"], "part"),
            ("items/{id}/parts/spare", ["GET"], "spare"),
            ("anything", None, "any_method"),
            ("docs", ["GET"], "docs"),
            ("docs/{*asset}", ["GET"], "docs_asset"),
        ],
        prefix="api",
    )


def test_literal_beats_parameter_beats_catch_all_whatever_the_registration_order(router: Router) -> None:
    assert target(router, "GET", "/api/items/new") == "new"
    assert target(router, "GET", "/api/items/NEW") == "new"
    assert target(router, "GET", "/api/items/shoes") == "by_slug"
    assert target(router, "GET", "/api/items/a/b/c") == "catch_all"
    assert target(router, "GET", "/api/items/7/parts/spare") == "spare"
    assert target(router, "GET", "/api/items/7/parts/wheel") == "part"


def test_a_literal_route_and_its_catch_all(router: Router) -> None:
    assert target(router, "GET", "/api/docs") == "docs"
    assert target(router, "GET", "/api/docs/") == "docs"  # the app's docs page answers this with a 308
    result = router.resolve("GET", "/api/docs/swagger-ui.css")
    assert isinstance(result, RouteMatch)
    assert (result.route.target, result.params) == ("docs_asset", {"asset": "swagger-ui.css"})


def test_route_params_and_trailing_slash(router: Router) -> None:
    result = router.resolve("GET", "/api/items/5/parts/wheel%20nut/")
    assert isinstance(result, RouteMatch)
    assert result.route.target == "part"
    assert result.params == {"id": "5", "part": "wheel nut"}


def test_prefix_is_required_and_case_insensitive(router: Router) -> None:
    assert target(router, "GET", "/API/anything") == "any_method"
    assert isinstance(router.resolve("GET", "/anything"), RouteNotFound)
    assert isinstance(router.resolve("GET", "/api"), RouteNotFound)


def test_empty_and_longer_prefixes() -> None:
    bare = Router([("hello", None, "hello")], prefix="")
    assert target(bare, "GET", "/hello") == "hello"
    assert isinstance(bare.resolve("GET", "/api/hello"), RouteNotFound)
    nested = Router([("hello/{who}", None, "hello")], prefix="/v1/api/")
    result = nested.resolve("GET", "/v1/API/hello/Ada")
    assert isinstance(result, RouteMatch)
    assert result.params == {"who": "Ada"}


def test_methods_are_case_insensitive_and_unrestricted_routes_take_any(router: Router) -> None:
    assert target(router, "delete", "/api/items/shoes") == "by_slug"
    for method in ("GET", "POST", "PATCH", "OPTIONS", "HEAD"):
        assert target(router, method, "/api/anything") == "any_method"


def test_method_not_allowed_lists_the_methods_of_every_matching_route(router: Router) -> None:
    result = router.resolve("POST", "/api/items/new")
    assert isinstance(result, MethodNotAllowed)
    # new (GET), by_slug (GET, DELETE) and catch_all (GET) all match the path
    assert result.allowed == ("DELETE", "GET")


def test_head_is_not_taken_as_get(router: Router) -> None:
    # werkzeug adds HEAD to GET rules; the Functions host serves only the methods a function declares.
    result = router.resolve("HEAD", "/api/docs")
    assert isinstance(result, MethodNotAllowed)
    assert result.allowed == ("GET",)


def test_the_method_picks_among_matching_routes(router: Router) -> None:
    # items/new wins the path but does not take DELETE; items/{slug} does
    assert target(router, "DELETE", "/api/items/new") == "by_slug"


def test_no_route(router: Router) -> None:
    result = router.resolve("GET", "/api/nothing/here")
    assert isinstance(result, RouteNotFound)
    assert result.path == "/api/nothing/here"


def test_query_string_is_ignored(router: Router) -> None:
    assert target(router, "GET", "/api/items/new?x=1") == "new"


def test_url_path_for_listing(router: Router) -> None:
    paths = [router.url_path(route) for route in router.routes]
    assert paths[:3] == ["/api/items/{*rest}", "/api/items/{slug}", "/api/items/new"]  # in registration order

"""Route templates and the router of the development host."""

from __future__ import annotations

import pytest

from devhost.routing import MethodNotAllowed, RouteMatch, RouteNotFound, Router, RouteTemplate


def match(template: str, path: str) -> dict[str, str] | None:
    """Route values when ``path`` (below the prefix) matches ``template``, else None."""
    segments = path.strip("/").split("/") if path.strip("/") else []
    return RouteTemplate.parse(template).match(segments)


def resolve(router: Router, method: str, path: str) -> RouteMatch | RouteNotFound | MethodNotAllowed:
    return router.resolve(method, path)


def target(router: Router, method: str, path: str) -> str | None:
    result = router.resolve(method, path)
    return result.route.target if isinstance(result, RouteMatch) else None


# -- parameters and literals


def test_literal_segments_match_case_insensitively() -> None:
    assert match("Users/Active", "users/ACTIVE") == {}
    assert match("users/active", "users/inactive") is None
    assert match("users", "users/extra") is None
    assert match("users/active", "users") is None


def test_parameters_capture_segments() -> None:
    assert match("users/{user}/posts/{post}", "users/ada/posts/42") == {"user": "ada", "post": "42"}


def test_route_values_are_url_decoded() -> None:
    assert match("files/{name}", "files/annual%20report%2Efinal") == {"name": "annual report.final"}
    assert match("files/{name}", "files/a%2Fb") == {"name": "a/b"}
    assert match("café/{x}", "caf%C3%A9/1") == {"x": "1"}


def test_a_parameter_does_not_match_an_empty_segment() -> None:
    assert match("a/{b}/c", "a//c") is None


def test_empty_template_matches_only_the_root() -> None:
    assert match("", "") == {}
    assert match("", "x") is None


def test_mixed_segments_split_at_the_last_literal() -> None:
    assert match("files/{name}.{ext}", "files/archive.tar.gz") == {"name": "archive.tar", "ext": "gz"}
    assert match("files/{name}.{ext}", "files/README") is None
    assert match("files/{name}.{ext?}", "files/README") == {"name": "README"}
    assert match("v{major:int}-{minor:int}", "V2-10") == {"major": "2", "minor": "10"}
    assert match("v{major:int}-{minor:int}", "vX-10") is None


# -- optional, defaults, catch-all


def test_optional_parameter() -> None:
    assert match("items/{id?}", "items") == {}
    assert match("items/{id?}", "items/5") == {"id": "5"}
    assert match("items/{id:int?}", "items/x") is None
    assert match("items/{id:int?}", "items") == {}


def test_default_value() -> None:
    assert match("pages/{page:int=1}", "pages") == {"page": "1"}
    assert match("pages/{page:int=1}", "pages/3") == {"page": "3"}


def test_catch_all_takes_the_rest_of_the_path() -> None:
    assert match("files/{*path}", "files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert match("files/{**path}", "files/a%20b/c") == {"path": "a b/c"}
    assert match("files/{*path}", "files") == {}
    assert match("files/{*path:minlength(3)}", "files/ab") is None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("files/{*path}/more", "catch-all"),
        ("a/{id?}/b", "optional"),
        ("a/{x}/{X}", "more than once"),
        ("a/{x", "not closed"),
        ("a/x}", "unmatched"),
        ("a/{}", "invalid parameter name"),
        ("a/{x:nosuch}", "unknown route constraint 'nosuch'"),
        ("a/{x:min}", "needs an argument"),
        ("a/{x:length(a)}", "takes 1 integer or 2 integers"),
        ("a/{x:range(5,1)}", "minimum is larger"),
        ("a/{x:regex([)}", "not a valid regular expression"),
        ("a/{x:int(3)}", "takes no argument"),
        ("a/{x}{y}", "two parameters"),
        ("a//b", "empty segment"),
        ("a/{x=3?}", "both optional and have a default"),
    ],
)
def test_invalid_templates_raise_value_error_naming_the_problem(template: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid route template") as caught:
        RouteTemplate.parse(template)
    assert message in str(caught.value)


# -- constraints

CONSTRAINT_CASES = [
    ("int", ["0", "42", "-7", "+3", "2147483647", "-2147483648"], ["x", "4.2", "2147483648", "1e3", ""]),
    ("long", ["9223372036854775807", "-12"], ["9223372036854775808", "1.0", "ten"]),
    ("bool", ["true", "False", "TRUE"], ["yes", "1", "truth"]),
    (
        "guid",
        [
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "0F8FAD5BD9CB469FA16570867728950E",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "(0f8fad5b-d9cb-469f-a165-70867728950e)",
        ],
        ["0f8fad5b-d9cb-469f-a165", "zf8fad5b-d9cb-469f-a165-70867728950e", "123"],
    ),
    ("alpha", ["abc", "ABCdef"], ["abc1", "a-b", "é"]),
    ("datetime", ["2024-02-29", "2024-02-29T13:45:00", "2024-02-29T13:45:00Z"], ["2023-02-29", "tomorrow", "42"]),
    ("decimal", ["1", "-1.5", "1,000.25", ".5"], ["1e3", "abc", "1.2.3"]),
    ("double", ["1", "-1.5e-3", "NaN", "Infinity", "1,000.5"], ["abc", "1.2.3", "e5"]),
    ("float", ["3.14", "2E10", "-Infinity"], ["pi", "--1"]),
    ("minlength(3)", ["abc", "abcdef"], ["ab"]),
    ("maxlength(3)", ["a", "abc"], ["abcd"]),
    ("length(3)", ["abc"], ["ab", "abcd"]),
    ("length(2,4)", ["ab", "abcd"], ["a", "abcde"]),
    ("min(10)", ["10", "11"], ["9", "x", "-11"]),
    ("max(10)", ["10", "-3"], ["11", "x"]),
    ("range(1,5)", ["1", "5", "3"], ["0", "6", "x"]),
    ("regex(^\\d{{3}}-\\d{{4}}$)", ["555-1234"], ["5555-1234", "abc-defg"]),
    ("regex(^[a-z]+$)", ["ABC"], ["abc1"]),  # case-insensitive, as ASP.NET's RegexRouteConstraint
    ("regex(\\d)", ["a1b"], ["abc"]),  # not anchored unless the pattern says so
    ("int:min(1)", ["1", "99"], ["0", "x"]),
    ("alpha:maxlength(2)", ["ab"], ["abc", "a1"]),
    ("required", ["x"], []),
]


@pytest.mark.parametrize(("constraint", "good", "bad"), CONSTRAINT_CASES, ids=[c[0] for c in CONSTRAINT_CASES])
def test_constraints(constraint: str, good: list[str], bad: list[str]) -> None:
    template = f"v/{{value:{constraint}}}"
    for value in good:
        assert match(template, f"v/{value}") == {"value": value}, f"{constraint} should accept {value!r}"
    for value in bad:
        assert match(template, f"v/{value}") is None, f"{constraint} should refuse {value!r}"


def test_constraints_see_the_decoded_value() -> None:
    assert match("n/{name:alpha}", "n/ab%63") == {"name": "abc"}
    assert match("n/{name:length(3)}", "n/a%20b") == {"name": "a b"}


def test_regex_constraint_may_contain_colons_and_parentheses() -> None:
    assert match("t/{time:regex(^\\d\\d:\\d\\d$)}", "t/10:30") == {"time": "10:30"}
    assert match("t/{code:regex(^(ab|cd)-(\\d+)$):minlength(4)}", "t/cd-12") == {"code": "cd-12"}
    assert match("t/{code:regex(^(ab|cd)-(\\d+)$):minlength(5)}", "t/cd-1") is None


def test_a_parenthesis_followed_by_a_colon_ends_a_regex_argument_as_in_aspnet() -> None:
    # ASP.NET Core's parser ends a constraint argument at the first ')' followed by ':' or the end.
    with pytest.raises(ValueError, match="regex"):
        RouteTemplate.parse("t/{time:regex(^(\\d\\d):(\\d\\d)$)}")


# -- router: prefix, precedence, methods


@pytest.fixture
def router() -> Router:
    return Router(
        [
            ("items/{slug}", ["GET", "delete"], "by_slug"),
            ("items/{id:int}", ["GET"], "by_id"),
            ("items/new", ["GET"], "new"),
            ("items/{*rest}", ["GET"], "catch_all"),
            ("items/{id:int}/parts/{part}", ["GET", "PUT"], "part"),
            ("anything", None, "any_method"),
            ("docs/{page?}", ["GET"], "docs"),
            ("docs", ["GET"], "docs_index"),
        ],
        prefix="api",
    )


def test_literal_beats_parameter_beats_catch_all(router: Router) -> None:
    assert target(router, "GET", "/api/items/new") == "new"
    assert target(router, "GET", "/api/items/NEW") == "new"
    assert target(router, "GET", "/api/items/42") == "by_id"
    assert target(router, "GET", "/api/items/shoes") == "by_slug"
    assert target(router, "GET", "/api/items/a/b/c") == "catch_all"


def test_precedence_does_not_depend_on_registration_order() -> None:
    reversed_router = Router(
        [("items/{*rest}", None, "catch_all"), ("items/{slug}", None, "slug"), ("items/{id:int}", None, "id")]
    )
    assert target(reversed_router, "GET", "/api/items/7") == "id"
    assert target(reversed_router, "GET", "/api/items/x") == "slug"
    assert target(reversed_router, "GET", "/api/items/x/y") == "catch_all"


def test_a_template_that_ends_beats_one_with_an_optional_segment(router: Router) -> None:
    assert target(router, "GET", "/api/docs") == "docs_index"
    assert target(router, "GET", "/api/docs/intro") == "docs"


def test_route_params_and_trailing_slash(router: Router) -> None:
    result = router.resolve("GET", "/api/items/5/parts/wheel%20nut/")
    assert isinstance(result, RouteMatch)
    assert result.route.target == "part"
    assert result.params == {"id": "5", "part": "wheel nut"}


def test_prefix_is_required_and_case_insensitive(router: Router) -> None:
    assert target(router, "GET", "/API/anything") == "any_method"
    assert isinstance(router.resolve("GET", "/anything"), RouteNotFound)
    assert isinstance(router.resolve("GET", "/api"), RouteNotFound)


def test_empty_prefix() -> None:
    bare = Router([("hello", None, "hello")], prefix="")
    assert target(bare, "GET", "/hello") == "hello"
    assert isinstance(bare.resolve("GET", "/api/hello"), RouteNotFound)


def test_methods_are_case_insensitive_and_unrestricted_routes_take_any(router: Router) -> None:
    assert target(router, "delete", "/api/items/shoes") == "by_slug"
    for method in ("GET", "POST", "PATCH", "OPTIONS"):
        assert target(router, method, "/api/anything") == "any_method"


def test_method_not_allowed_lists_the_methods_of_every_matching_route(router: Router) -> None:
    result = router.resolve("POST", "/api/items/42")
    assert isinstance(result, MethodNotAllowed)
    # by_id (GET), by_slug (GET, DELETE) and catch_all (GET) all match the path
    assert result.allowed == ("DELETE", "GET")


def test_the_method_picks_among_matching_routes(router: Router) -> None:
    # by_id has better precedence but does not take DELETE; by_slug does
    assert target(router, "DELETE", "/api/items/42") == "by_slug"


def test_no_route(router: Router) -> None:
    result = router.resolve("GET", "/api/nothing/here")
    assert isinstance(result, RouteNotFound)
    assert result.path == "/api/nothing/here"


def test_query_string_is_ignored(router: Router) -> None:
    assert target(router, "GET", "/api/items/new?x=1") == "new"


def test_url_path_for_listing(router: Router) -> None:
    paths = {router.url_path(route) for route in router.routes}
    assert "/api/items/{id:int}/parts/{part}" in paths

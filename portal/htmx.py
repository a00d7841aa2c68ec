"""One URL, page or fragment: full page for browsers and boosted links, the partial for
HTMX requests that target part of the page."""

from flask import make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_fragment() -> bool:
    # A boosted navigation (or htmx 4's "full" request type) swaps the whole body: give it the page.
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-Request-Type") != "full"
    )


def render(page: str, fragment: str | None = None, status: int = 200, **context):
    """Render `fragment` for a partial HTMX request, `page` otherwise; always Vary: HX-Request."""
    template = fragment if fragment and wants_fragment() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response

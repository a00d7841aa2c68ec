"""One URL serves the page to browsers and the partial to HTMX."""

import pytest

from portal import htmx


@pytest.fixture
def page_app(app, tmp_path):
    app.jinja_loader.searchpath.append(str(tmp_path))
    (tmp_path / "page.html").write_text('<html><body><div id="rows">{% include "_rows.html" %}</div></body></html>')
    (tmp_path / "_rows.html").write_text('<ul id="rows-list"><li>{{ item }}</li></ul>')
    app.add_url_rule("/rows", "rows", lambda: htmx.render("page.html", fragment="_rows.html", item="合同"))
    return app


def test_a_browser_gets_the_whole_page(page_app):
    response = page_app.test_client().get("/rows")
    assert response.get_data(as_text=True).startswith("<html>")
    assert "HX-Request" in response.headers["Vary"]


def test_an_htmx_request_gets_only_the_fragment(page_app):
    response = page_app.test_client().get("/rows", headers={"HX-Request": "true"})
    assert response.get_data(as_text=True) == '<ul id="rows-list"><li>合同</li></ul>'
    assert "HX-Request" in response.headers["Vary"]


def test_a_boosted_navigation_gets_the_whole_page(page_app):
    client = page_app.test_client()
    boosted = client.get("/rows", headers={"HX-Request": "true", "HX-Boosted": "true"})
    full = client.get("/rows", headers={"HX-Request": "true", "HX-Request-Type": "full"})
    assert boosted.get_data(as_text=True).startswith("<html>")
    assert full.get_data(as_text=True).startswith("<html>")

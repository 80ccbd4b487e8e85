"""The interactive documentation works on a server without internet access."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from poreml.api import create_app
from poreml.api.app import DOCS_STATIC_URL
from poreml.settings import Settings

ASSET_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def token_docs_client(
    make_settings: Callable[..., Settings], api_token: str
) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(api_token=api_token))) as test_client:
        yield test_client


def _asset_urls(html: str) -> list[str]:
    return ASSET_URL.findall(html)


@pytest.mark.parametrize(("page", "n_assets"), [("/docs", 3), ("/redoc", 2)])
def test_docs_pages_reference_only_assets_the_app_serves(
    client: TestClient, page: str, n_assets: int
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?://", html), "a docs page must not load anything from the web"
    assert "fonts.googleapis" not in html
    urls = _asset_urls(html)
    assert len(urls) == n_assets
    for url in urls:
        assert url.startswith(f"{DOCS_STATIC_URL}/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
        assert len(asset.content) > 1000, url  # the real file, not an empty placeholder


def test_swagger_ui_has_the_online_validator_badge_off(client: TestClient) -> None:
    html = client.get("/docs").text
    assert '"validatorUrl": null' in html
    assert "url: '/openapi.json'" in html


def test_missing_asset_is_404(client: TestClient) -> None:
    assert client.get(f"{DOCS_STATIC_URL}/no-such-file.js").status_code == 404


def test_docs_assets_and_schema_stay_open_while_v1_needs_the_token(
    token_docs_client: TestClient,
) -> None:
    for page in ("/docs", "/redoc"):
        response = token_docs_client.get(page)
        assert response.status_code == 200
        for url in _asset_urls(response.text):
            assert token_docs_client.get(url).status_code == 200, url
    assert token_docs_client.get("/openapi.json").status_code == 200
    assert token_docs_client.get("/v1/model").status_code == 401

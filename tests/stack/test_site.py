"""What a visitor sees through nginx."""

import re


def hashed_asset(page: str, pattern: str) -> str:
    match = re.search(pattern, page)
    assert match, f"no {pattern} in the page"
    return match.group(0)


ADMIN_CSS = r"/static/admin/css/base\.[0-9a-f]{12}\.css"


def test_hashed_static_files_are_cached_for_ever_and_compressed(http):
    css = hashed_asset(http.get("/admin/login/").text, ADMIN_CSS)
    response = http.get(css, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    assert "--body-fg" in response.text  # decompressed: really the admin's stylesheet


def test_unhashed_static_names_are_not_cached_for_ever(http):
    response = http.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert "immutable" not in response.headers.get("cache-control", "")


def test_admin_styles_are_served_by_nginx(http):
    css = hashed_asset(http.get("/admin/login/").text, ADMIN_CSS)
    response = http.get(css)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    # Served from the file by nginx (ETag), not through Django (which adds its COOP header).
    assert "etag" in response.headers
    assert "cross-origin-opener-policy" not in response.headers


def test_favicon_is_served_by_nginx_with_a_long_cache(http):
    response = http.get("/favicon.ico")
    assert response.status_code == 200
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age=31536000" in response.headers["cache-control"]
    assert "etag" in response.headers  # from the file, by nginx


def test_probes(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "redis": "ok",
        "cache": "ok",
        "migrations": "ok",
    }

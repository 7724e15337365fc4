"""The demo's pages and JSON views, through Django's test client."""

import pytest

pytestmark = pytest.mark.django_db


def test_info_describes_the_interface(client):
    info = client.get("/api/info/").json()
    assert info["interface"] == "wsgi"
    assert set(info) >= {"interface", "server", "worker_class", "python", "django"}


def test_status_page_links_hashed_static_files(client):
    page = client.get("/").content.decode()
    assert "Django stack" in page
    assert "/static/demo/status." in page
    assert "/static/demo/status.css" not in page  # the hashed name, not the original

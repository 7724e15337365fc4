import pytest
import redis
from django.conf import settings
from django.test.utils import override_settings

from config.celery import app as celery_app

# Redis databases of the tests' own, so a running stack's worker never takes the tests' messages
# and the tests never see the stack's cache.
TEST_BROKER_URL = f"{settings.REDIS_URL}/15"
TEST_CACHE_URL = f"{settings.REDIS_CACHE_URL}/14"


@pytest.fixture(autouse=True, scope="session")
def isolated_redis():
    celery_app.conf.broker_url = TEST_BROKER_URL
    caches = {"default": {**settings.CACHES["default"], "LOCATION": TEST_CACHE_URL}}
    with override_settings(CACHES=caches):
        yield


@pytest.fixture
def broker():
    """The real Redis database the tests' Celery messages go to, emptied after each test."""
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.delete("celery")
    yield client
    client.delete("celery")
    client.close()

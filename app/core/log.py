"""Logging filters for config/settings.py's LOGGING."""

import logging


class RequestNoiseAsWarning(logging.Filter):
    """One WARNING line, without a traceback, for requests Django refuses as suspicious.

    Django logs each request with a disallowed Host header at ERROR with a full traceback: anyone
    on the internet can fill the logs and page whoever watches ERRORs. The 400 it answers is the
    whole story, and nginx's access log has the request.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True

"""Passwords in tracking URIs never leave the process: masked in what seecam prints, logs and writes.

A team's store is often named with its credentials, `http://user:pass@host` (MLflow server behind basic
auth) or `postgresql://user:pass@host/db` (the database itself). Everything seecam shows or records
(messages, run.json, the report, the printed `mlflow server` command) carries `user:***@` instead; a
`password=` query parameter (libpq's other spelling) becomes `password=***` too.

Passwords therefore live only in the environment (params.yaml refuses one: DVC copies params into dvc.lock).
run.json keeps the masked URI, so a later stage reconnects with `resolve`: MLFLOW_TRACKING_URI when it
names the same store, else, for an http(s) server, the URI without credentials, which MLflow completes
from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from seecam.errors import SeecamError

MASK = "***"
# In a URI or in any text holding URIs (params.yaml shown in the report): `scheme://user:PASSWORD@`, the
# password running to the last @ before the host (an unencoded @ in it stays hidden), and `password=...`.
_USERINFO_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/]*@")
_PASSWORD_QUERY = re.compile(r"(?i)([?&]password=)[^&#\s]*")


def masked(text: str) -> str:
    """`text` (a URI, or text with URIs in it) with every password replaced by ***; idempotent."""
    return _PASSWORD_QUERY.sub(rf"\g<1>{MASK}", _USERINFO_PASSWORD.sub(rf"\g<1>{MASK}@", text))


def without_credentials(uri: str) -> str:
    """`uri` with its `user:pass@` part removed."""
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def mlflow_uri(uri: str) -> str:
    """The URI to hand MLflow: an http(s) server's `user:pass@` moves into MLFLOW_TRACKING_USERNAME/PASSWORD.

    MLflow sends those as basic auth, and then its own output ("View run ... at: <url>", error messages)
    names the server without the password. Variables the user already set win. Database URIs keep their
    credentials: SQLAlchemy needs them in the URI, and MLflow prints no database URI.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.password is None:
        return uri
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", urllib.parse.unquote(parts.username or ""))
    os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", urllib.parse.unquote(parts.password))
    return without_credentials(uri)


def resolve(stored: str, configured: str) -> str:
    """The real URI behind `stored` (as run.json keeps it, masked), given the URI configured now."""
    if masked(configured) == stored:
        return configured
    if MASK not in stored:
        return stored
    if urllib.parse.urlsplit(stored).scheme in ("http", "https"):
        return without_credentials(stored)
    raise SeecamError(f"the run was logged to {stored}, whose password run.json does not keep: set "
                      "MLFLOW_TRACKING_URI to that URI with its password and rerun")

"""Store URLs: telling them from folder paths, and refusing the ones that carry secrets.

A store URL may be saved in a store's config (as a remote) and is echoed in messages and
shell histories, so credentials never belong in it: not in the query
(``?secret_access_key=...``), not as user information before the host
(``s3://KEY:SECRET@bucket/prefix``), and not in a fragment (``#...``), which fsstore has
no use for. These checks need no object-store client, so a URL can be checked (and saved)
where obstore is not installed.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import SplitResult, parse_qsl, urlsplit

from fsstore.errors import StoreURLError

__all__ = ["check_url", "is_url", "split_url"]

SECRET_WORDS: Final = ("secret", "token", "password", "account_key", "access_key", "sas")
"""Query option names holding any of these are taken for secrets."""


def is_url(location: str) -> bool:
    """Whether a store location is a URL (``scheme://...``) rather than a folder path."""
    return "://" in location


def split_url(location: str) -> tuple[str, dict[str, str]]:
    """A store URL without its query, and the query's options.

    Raises :class:`~fsstore.errors.StoreURLError` for a URL that carries a secret (see
    :func:`check_url`).
    """
    parts = check_url(location)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    base = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return base, options


def check_url(location: str) -> SplitResult:
    """The parts of a store URL, once checked to carry no credentials.

    Refused, with a message that names the URL without the secret: user information
    (``user:password@``), a fragment, and query options whose names look like secrets or
    whose values are URLs with user information.
    """
    parts = urlsplit(location)
    host = parts.netloc.rpartition("@")[2]
    shown = f"{parts.scheme}://{host}{parts.path}"
    if "@" in parts.netloc:
        _refuse(shown, "a user name or password (before '@')")
    if parts.fragment or location.endswith("#"):
        _refuse(shown, "a fragment (after '#')")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if any(word in name.lower() for word in SECRET_WORDS):
            _refuse(shown, f"the secret {name!r}")
        if is_url(value) and "@" in urlsplit(value).netloc:
            _refuse(shown, f"a user name or password in its option {name!r}")
    return parts


def _refuse(shown: str, what: str) -> None:
    raise StoreURLError(
        f"the store URL {shown} carries {what}; URLs are saved in store configs and shell "
        "histories, so give credentials in environment variables (e.g. "
        "AWS_SECRET_ACCESS_KEY)"
    )

"""The start-up warning for an API that other machines can reach while it has no API token.

`serve` prints it; `up` runs `serve` as its API child and relays its lines, so both warn. Binding beyond
loopback is the user's choice (`--host 0.0.0.0`), but without S2C_API_TOKEN anyone who reaches the port can
launch training and delete models, datasets and jobs: the user should hear that once, at start.
"""

import ipaddress

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) and `localhost`; a wildcard (0.0.0.0, ::, "") or any other address
    or name is reachable from elsewhere."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, api_token: str | None) -> str | None:
    """The warning for listening on `host` with this token, or None when there is nothing to warn about."""
    if api_token or is_loopback(host):
        return None
    return (
        f"warning: the API listens on {host or 'every address'}, reachable from other machines, and "
        "S2C_API_TOKEN is not set: anyone who reaches it can launch training and delete models, datasets "
        "and jobs. Set S2C_API_TOKEN (the page asks for it), or listen on 127.0.0.1 only (--host 127.0.0.1)."
    )

"""What every `sketch2color remote ...` command shares: the server's address and token, and one JSON call
whose refusal is one clear line."""

from typing import Annotated, Any

import typer

from cli.api_client import ApiClient, detail
from cli.errors import fail

DEFAULT_URL = "http://127.0.0.1:8000"
Url = Annotated[str, typer.Option(envvar="S2C_URL", help="The server's address.")]
Token = Annotated[
    str | None,
    typer.Option(envvar="S2C_API_TOKEN", help="The server's API token, if it has one.", show_default=False),
]


def call(client: ApiClient, method: str, path: str, body: Any = None) -> Any:
    """The decoded answer; a refusal or an unreachable server ends the command with the server's reason."""
    try:
        status, answer = client.request(method, path, body=body, timeout=60)
    except OSError as error:
        fail(f"cannot reach {client.base_url}: {error}")
    if status >= 400:
        fail(f"{method} {path} answered {status}: {detail(answer)}")
    return answer


def number(value: Any, digits: int) -> str:
    """A metric as people read it (`0.1235`), or `-` when there is none."""
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"

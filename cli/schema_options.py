"""Command-line options generated from a pydantic model, so a parameter is declared (and documented) once.

Each field becomes `--field-name` with the field's description as help, its default, and its bounds or
choices in the help; the command receives them as keyword arguments and validates them with the model
itself, so the CLI accepts exactly what the API's schema accepts.
"""

import enum
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

import annotated_types
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def with_options_of(model: type[BaseModel], command: Callable[..., Any]) -> Callable[..., Any]:
    """`command` (whose `**kwargs` receive the values) with one option per field of `model` in its signature."""
    signature = inspect.signature(command)
    fixed = [
        parameter for parameter in signature.parameters.values() if parameter.kind != parameter.VAR_KEYWORD
    ]
    generated = [option_parameter(name, field) for name, field in model.model_fields.items()]
    parameters = fixed + generated

    def wrapper(**values: Any) -> Any:
        plain = {
            name: value.value if isinstance(value, enum.Enum) else value for name, value in values.items()
        }
        return command(**plain)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return wrapper


def option_parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    annotation, default = _option_type(name, field)
    help_text = " ".join(part for part in (field.description or "", _bounds(field)) if part)
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[annotation, typer.Option(help=help_text)],
        default=default,
    )


def _option_type(name: str, field: FieldInfo) -> tuple[Any, Any]:
    """The type Typer parses (choices become an Enum), and the default it shows."""
    declared: Any = field.annotation
    optional = False
    if typing.get_origin(declared) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(declared) if member is not type(None)]
        optional = len(members) < len(typing.get_args(declared))
        declared = members[0]
    default = field.default
    if typing.get_origin(declared) is typing.Literal:
        choices = typing.get_args(declared)
        make_enum: Any = (
            enum.Enum
        )  # a functional Enum with computed members: fine at run time, opaque to mypy
        choice_type = make_enum(f"{name}_choice", {choice: choice for choice in choices}, type=str)
        declared, default = choice_type, (choice_type(default) if default is not None else None)
    return (declared | None if optional else declared), default


def _bounds(field: FieldInfo) -> str:
    """`[>= 1, <= 1024]`-style bounds from the field's constraints."""
    symbols = {
        annotated_types.Ge: (">=", "ge"),
        annotated_types.Gt: (">", "gt"),
        annotated_types.Le: ("<=", "le"),
        annotated_types.Lt: ("<", "lt"),
    }
    bounds = []
    for constraint in field.metadata:
        for kind, (symbol, attribute) in symbols.items():
            if isinstance(constraint, kind):
                bounds.append(f"{symbol} {getattr(constraint, attribute)}")
    return f"[{', '.join(bounds)}]" if bounds else ""

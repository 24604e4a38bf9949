"""Syntax tree of an attestation policy: typed, frozen, positioned.

Positions are 1-based ``line``/``column`` of the first character of the node in the policy text,
so every later error (static check, evaluation) can point back at the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = [
    "Pos",
    "Literal",
    "ClaimRef",
    "Var",
    "Call",
    "Expr",
    "PropCond",
    "Condition",
    "Arg",
    "Action",
    "Rule",
    "Section",
    "PolicyAst",
    "CONFIGURATION",
    "AUTHORIZATION",
    "ISSUANCE",
    "SECTION_ORDER",
]

CONFIGURATION = "configurationrules"
AUTHORIZATION = "authorizationrules"
ISSUANCE = "issuancerules"
SECTION_ORDER = (CONFIGURATION, AUTHORIZATION, ISSUANCE)


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int
    offset: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, integer or boolean written in the policy."""

    value: str | int | bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """``c.value`` / ``c.type`` / ``c.issuer``: a property of the claims bound to identifier ``c``."""

    name: str
    prop: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Var:
    """A bare identifier, only meaningful as ``claim=c`` in an action."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Call:
    """``JmesPath(c.value, "query")`` - a version 1.2 function call."""

    name: str
    args: tuple["Expr", ...]
    pos: Pos


Expr = Union[Literal, ClaimRef, Var, Call]


@dataclass(frozen=True, slots=True)
class PropCond:
    """``type == "x"`` inside a condition: claim property, operator, expected value."""

    prop: str
    op: str
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Condition:
    """``c:[type=="x", value==true]`` or ``![type=="x"]`` (negated: no claim matches)."""

    binding: str | None
    negated: bool
    props: tuple[PropCond, ...]
    pos: Pos
    source: str


@dataclass(frozen=True, slots=True)
class Arg:
    """An action argument: ``type="x"`` (named) or a bare expression (positional, rejected by the checker)."""

    name: str | None
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Action:
    verb: str
    args: tuple[Arg, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Rule:
    conditions: tuple[Condition, ...]
    action: Action
    pos: Pos
    source: str


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    rules: tuple[Rule, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class PolicyAst:
    version: str
    version_pos: Pos
    sections: tuple[Section, ...]

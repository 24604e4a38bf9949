"""Static checks: everything that can be wrong with a policy before it sees a claim.

Run by :func:`attestd.policy.compile_policy` after parsing. Each failure is a
:class:`PolicySyntaxError` with its own stable code and the line/column of the offending node:

``policy.version_feature``   configurationrules before 1.1; functions or ``![...]`` before 1.2
``policy.missing_section``   no authorizationrules (a policy without one could never permit)
``policy.action_not_allowed`` e.g. ``issue()`` in authorizationrules, ``permit()`` in issuancerules
``policy.arguments``         wrong/missing/positional action arguments
``policy.unknown_function``  not one of the six 1.2 functions (with a did-you-mean)
``policy.arity``             wrong number of function arguments
``policy.unbound_identifier`` ``c1.value`` where no earlier condition binds ``c1``
``policy.duplicate_identifier`` two conditions of one rule bind the same name
``policy.type_error``        ``type < "x"``, ``value > "abc"``, ``NegateBool("x")``...
``policy.unknown_issuer``    ``issuer=="AttestationServices"``
``policy.invalid_query``     a literal JmesPath query that does not compile
``policy.read_only_claim``   ``add``/``issue`` of a service-owned type (``pcrs``, ``events``, ``x-ms-*``)
``policy.unknown_property``  ``issueproperty`` of a property the engine does not know
``policy.misplaced_property`` an engine property outside configurationrules
``policy.property_value``    a property value of the wrong type or range
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Callable

from attestd.policy.ast import (
    AUTHORIZATION,
    CONFIGURATION,
    ISSUANCE,
    Action,
    Call,
    ClaimRef,
    Expr,
    Literal,
    PolicyAst,
    Pos,
    Rule,
    Var,
)
from attestd.policy.claims import ISSUERS, is_reserved
from attestd.policy.errors import PolicySyntaxError
from attestd.policy.functions import SPECS, FunctionFailure, compile_query
from attestd.policy.parser import FUNCTIONS, suggest

__all__ = ["Configuration", "PropertySpec", "PROPERTIES", "check", "validate_property"]

_VERSION_ORDER = {"1.0": 0, "1.1": 1, "1.2": 2}
_ALLOWED_ACTIONS = {
    CONFIGURATION: ("issueproperty",),
    AUTHORIZATION: ("permit", "deny", "add"),
    ISSUANCE: ("add", "issue", "issueproperty"),
}


@dataclass(frozen=True)
class Configuration:
    """The engine properties a policy sets (``configurationrules`` and static ``issueproperty``)."""

    #: TPM/VBS: the AIK certificate must chain to a trusted root (Azure default true).
    require_valid_aik_cert: bool = True
    #: TPM/VBS: PCRs that must be in the quote, bit n = PCR n (Azure default 0xFFFFFF).
    required_pcr_mask: int = 0xFFFFFF
    #: lifetime of the issued attestation token, in minutes (None: the service default).
    report_validity_in_minutes: int | None = None
    #: leave the signing certificate chain (x5c) out of the token header.
    omit_x5c: bool = False
    #: SGX: the TCB baseline to enforce (``x-ms-sgx-tcbidentifier``), e.g. "azuredefault".
    sgx_tcb_identifier: str | None = None

    @property
    def required_pcrs(self) -> tuple[int, ...]:
        return tuple(i for i in range(24) if self.required_pcr_mask >> i & 1)

    def as_properties(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in PROPERTIES.values():
            value = getattr(self, spec.attribute)
            if value is not None:
                out[spec.name] = value
        return out


@dataclass(frozen=True)
class PropertySpec:
    name: str
    attribute: str
    kind: type
    #: sections issueproperty may set it in.
    sections: tuple[str, ...]
    check: Callable[[Any], str | None]
    description: str


def _no_check(_: Any) -> str | None:
    return None


PROPERTIES: dict[str, PropertySpec] = {
    s.name: s
    for s in (
        PropertySpec(
            "require_valid_aik_cert",
            "require_valid_aik_cert",
            bool,
            (CONFIGURATION,),
            _no_check,
            "a valid AIK certificate is required",
        ),
        PropertySpec(
            "required_pcr_mask",
            "required_pcr_mask",
            int,
            (CONFIGURATION,),
            lambda v: None if 0 <= v <= 0xFFFFFF else "must be between 0 and 0xFFFFFF (24 PCRs)",
            "PCRs that must be in the quote, bit n = PCR n",
        ),
        PropertySpec(
            "report_validity_in_minutes",
            "report_validity_in_minutes",
            int,
            (CONFIGURATION, ISSUANCE),
            lambda v: None if 1 <= v <= 7 * 24 * 60 else "must be between 1 and 10080 (7 days)",
            "token lifetime in minutes",
        ),
        PropertySpec(
            "omit_x5c",
            "omit_x5c",
            bool,
            (CONFIGURATION, ISSUANCE),
            _no_check,
            "leave x5c out of the token header",
        ),
        PropertySpec(
            "x-ms-sgx-tcbidentifier",
            "sgx_tcb_identifier",
            str,
            (CONFIGURATION,),
            lambda v: None if v else "must not be empty",
            "SGX TCB baseline identifier",
        ),
    )
}


def validate_property(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for property ``name`` (None if it is)."""
    spec = PROPERTIES[name]
    if spec.kind is int and (type(value) is not int):
        return f"{name} takes an integer, not {value!r}"
    if spec.kind is bool and type(value) is not bool:
        return f"{name} takes true or false, not {value!r}"
    if spec.kind is str and not isinstance(value, str):
        return f"{name} takes a string, not {value!r}"
    problem = spec.check(value)
    return f"{name} {problem}" if problem else None


def _err(code: str, message: str, pos: Pos, hint: str | None = None) -> PolicySyntaxError:
    return PolicySyntaxError(code, message, line=pos.line, column=pos.column, hint=hint)


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", str: "string"}[type(value)]


class _Checker:
    def __init__(self, ast: PolicyAst) -> None:
        self.ast = ast
        self.level = _VERSION_ORDER[ast.version]
        self.config: dict[str, Any] = {}

    def need(self, level: int, what: str, pos: Pos) -> None:
        if self.level < level:
            want = {1: "1.1", 2: "1.2"}[level]
            raise _err(
                "policy.version_feature",
                f"{what} needs policy version {want}; this policy declares version={self.ast.version}",
                pos,
                hint=f"declare version={want}",
            )

    def run(self) -> Configuration:
        names = [s.name for s in self.ast.sections]
        if AUTHORIZATION not in names:
            raise _err(
                "policy.missing_section",
                "the policy has no authorizationrules section, so it could never permit",
                self.ast.version_pos,
                hint="add: authorizationrules { => permit(); };",
            )
        for section in self.ast.sections:
            if section.name == CONFIGURATION:
                self.need(1, "configurationrules", section.pos)
            for rule in section.rules:
                self.rule(section.name, rule)
        values = {PROPERTIES[k].attribute: v for k, v in self.config.items()}
        return Configuration(**{f.name: values[f.name] for f in fields(Configuration) if f.name in values})

    # -- rules
    def rule(self, section: str, rule: Rule) -> None:
        action = rule.action
        if action.verb not in _ALLOWED_ACTIONS[section]:
            raise _err(
                "policy.action_not_allowed",
                f"{action.verb}() is not allowed in {section}",
                action.pos,
                hint=self.action_hint(section, action.verb),
            )
        if section == CONFIGURATION and rule.conditions:
            raise _err(
                "policy.action_not_allowed",
                "configuration rules take no conditions",
                rule.pos,
                hint='write => issueproperty(type="...", value=...);',
            )
        bound: dict[str, Pos] = {}
        for cond in rule.conditions:
            if cond.negated:
                self.need(2, "the not-condition operator '!'", cond.pos)
            for prop in cond.props:
                self.expr(prop.expr, bound, cond.binding)
                self.prop(prop)
            if cond.binding is not None:
                if cond.binding in bound:
                    raise _err(
                        "policy.duplicate_identifier",
                        f"identifier '{cond.binding}' is already bound at "
                        f"line {bound[cond.binding].line} of this rule",
                        cond.pos,
                        hint="give each condition its own identifier (c1, c2, ...)",
                    )
                bound[cond.binding] = cond.pos
        self.action(section, action, bound)

    @staticmethod
    def action_hint(section: str, verb: str) -> str:
        if section == AUTHORIZATION and verb in ("issue", "issueproperty"):
            return "authorizationrules cannot put claims in the token: use add() here and issue() in issuancerules"
        if section == ISSUANCE and verb in ("permit", "deny"):
            return "issuancerules cannot fail attestation: put permit()/deny() in authorizationrules"
        return f"{section} allows " + ", ".join(a + "()" for a in _ALLOWED_ACTIONS[section])

    def prop(self, prop) -> None:
        lit = prop.expr if isinstance(prop.expr, Literal) else None
        if prop.prop in ("type", "issuer", "valueType"):
            if prop.op not in ("==", "!="):
                raise _err(
                    "policy.type_error", f"{prop.prop} is a string: compare it with == or !=", prop.pos
                )
            if lit is not None and not isinstance(lit.value, str):
                raise _err(
                    "policy.type_error",
                    f"{prop.prop} is a string, not {_kind(lit.value)} {lit.value!r}",
                    lit.pos,
                    hint=f'write {prop.prop}=="{lit.value}"' if prop.prop == "type" else None,
                )
            if prop.prop == "issuer" and lit is not None and lit.value not in ISSUERS:
                guess = suggest(lit.value, ISSUERS)
                raise _err(
                    "policy.unknown_issuer",
                    f"unknown claim issuer {lit.value!r}",
                    lit.pos,
                    hint=f"did you mean {guess}?" if guess else "issuers are " + ", ".join(ISSUERS),
                )
        elif prop.op not in ("==", "!=") and lit is not None and type(lit.value) is not int:
            raise _err(
                "policy.type_error",
                f"{prop.op} compares integers, not {_kind(lit.value)} {lit.value!r}",
                lit.pos,
                hint="strings and booleans compare with == and != only",
            )

    # -- expressions
    def expr(self, expr: Expr, bound: dict[str, Pos], own: str | None, depth: int = 0) -> None:
        if isinstance(expr, Literal):
            return
        if isinstance(expr, ClaimRef):
            self.reference(expr.name, expr.pos, bound, own)
            return
        if isinstance(expr, Var):
            if expr.name in bound:
                raise _err(
                    "policy.syntax",
                    f"'{expr.name}' is a claim set, not a value",
                    expr.pos,
                    hint=f"did you mean {expr.name}.value?",
                )
            if expr.name.lower() == "null":
                hint = 'there is no null literal; a JmesPath result that is null is the string "null"'
            else:
                hint = "strings are written in double quotes; booleans are true and false"
            raise _err("policy.syntax", f"unknown name '{expr.name}'", expr.pos, hint=hint)
        if isinstance(expr, Call):
            self.call(expr, bound, own, depth)

    def reference(self, name: str, pos: Pos, bound: dict[str, Pos], own: str | None) -> None:
        if name in bound:
            return
        if name == own:
            raise _err(
                "policy.unbound_identifier",
                f"'{name}' is used inside the condition that binds it",
                pos,
                hint="a condition can only refer to identifiers bound by earlier conditions",
            )
        guess = suggest(name, list(bound)) if bound else None
        raise _err(
            "policy.unbound_identifier",
            f"identifier '{name}' is not bound by an earlier condition of this rule",
            pos,
            hint=f"did you mean {guess}?" if guess else f'bind it first: {name}:[type=="..."] && ...',
        )

    def call(self, call: Call, bound: dict[str, Pos], own: str | None, depth: int) -> None:
        spec = SPECS.get(call.name.lower())
        if spec is None:
            guess = suggest(call.name, FUNCTIONS)
            raise _err(
                "policy.unknown_function",
                f"unknown function '{call.name}'",
                call.pos,
                hint=f"did you mean {guess}?" if guess else "functions are " + ", ".join(FUNCTIONS),
            )
        self.need(2, f"function {spec.name}", call.pos)
        if len(call.args) != spec.arity:
            raise _err(
                "policy.arity",
                f"{spec.name} takes {spec.arity} argument{'s' if spec.arity > 1 else ''}, "
                f"not {len(call.args)}",
                call.pos,
            )
        for arg, kind in zip(call.args, spec.literal_kinds, strict=True):
            self.expr(arg, bound, own, depth + 1)
            if isinstance(arg, Literal):
                self.literal_arg(spec.name, arg, kind)

    @staticmethod
    def literal_arg(fname: str, arg: Literal, kind: str) -> None:
        value = arg.value
        if kind in ("json", "query", "str") and not isinstance(value, str):
            if kind == "json" and fname == "JsonToClaimValue":
                return
            raise _err(
                "policy.type_error", f"{fname} expects a string here, not {_kind(value)} {value!r}", arg.pos
            )
        if kind == "bool" and type(value) is not bool:
            raise _err(
                "policy.type_error", f"{fname} expects a boolean, not {_kind(value)} {value!r}", arg.pos
            )
        if kind == "query":
            try:
                compile_query(value)
            except FunctionFailure as f:
                raise _err(f.code, f.message, arg.pos) from None
        if kind == "json" and isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                raise _err(
                    "policy.type_error",
                    f"{fname}: {value!r} is not JSON text",
                    arg.pos,
                    hint='a JSON string literal needs escaped quotes, e.g. "[\\"a\\", \\"b\\"]"',
                ) from None

    # -- actions
    def action(self, section: str, action: Action, bound: dict[str, Pos]) -> None:
        verb = action.verb
        names = [a.name for a in action.args]
        if verb in ("permit", "deny"):
            if action.args:
                raise _err("policy.arguments", f"{verb}() takes no arguments", action.args[0].pos)
            return
        for arg in action.args:
            if arg.name is None:
                hint = None
                if isinstance(arg.expr, Literal) and isinstance(arg.expr.value, str) and "type" not in names:
                    hint = f'arguments are named: did you mean type="{arg.expr.value}"?'
                raise _err(
                    "policy.arguments",
                    f"{verb}() arguments must be named (type=..., value=... or claim=...)",
                    arg.pos,
                    hint=hint,
                )
            if arg.name not in ("type", "value", "claim"):
                guess = suggest(arg.name, ("type", "value", "claim"))
                raise _err(
                    "policy.arguments",
                    f"{verb}() has no argument '{arg.name}'",
                    arg.pos,
                    hint=f"did you mean {guess}?" if guess else None,
                )
            if names.count(arg.name) > 1:
                raise _err("policy.arguments", f"argument '{arg.name}' given twice", arg.pos)
        args = {a.name: a for a in action.args}
        if "claim" in args:
            if len(args) != 1:
                raise _err("policy.arguments", f"{verb}(claim=...) takes no other arguments", action.pos)
            if verb == "issueproperty":
                raise _err("policy.arguments", "issueproperty() needs type=... and value=...", action.pos)
            target = args["claim"].expr
            if not isinstance(target, Var):
                raise _err(
                    "policy.arguments",
                    "claim= takes an identifier bound by a condition, e.g. claim=c",
                    args["claim"].pos,
                )
            self.reference(target.name, target.pos, bound, None)
            return
        for need in ("type", "value"):
            if need not in args:
                raise _err("policy.arguments", f"{verb}() needs {need}=...", action.pos)
        type_expr, value_expr = args["type"].expr, args["value"].expr
        self.expr(type_expr, bound, None)
        self.expr(value_expr, bound, None)
        if isinstance(type_expr, Literal):
            if not isinstance(type_expr.value, str) or not type_expr.value:
                raise _err("policy.type_error", "a claim type is a non-empty string", type_expr.pos)
            if verb == "issueproperty":
                self.property(section, type_expr, value_expr)
            elif is_reserved(type_expr.value):
                raise _err(
                    "policy.read_only_claim",
                    f"claim type {type_expr.value!r} belongs to the attestation "
                    "service and cannot be added or issued by a policy",
                    type_expr.pos,
                    hint='issue it under a name of your own, e.g. type="my-' + type_expr.value + '"',
                )
        elif verb == "issueproperty":
            raise _err("policy.type_error", "issueproperty() needs a literal property name", type_expr.pos)
        elif section == CONFIGURATION:
            raise _err("policy.type_error", "configuration values must be literals", value_expr.pos)

    def property(self, section: str, type_expr: Literal, value_expr: Expr) -> None:
        name = type_expr.value
        spec = PROPERTIES.get(name)
        if spec is None:
            guess = suggest(name, PROPERTIES)
            raise _err(
                "policy.unknown_property",
                f"unknown property {name!r}",
                type_expr.pos,
                hint=f"did you mean {guess}?" if guess else "properties are " + ", ".join(PROPERTIES),
            )
        if section not in spec.sections:
            raise _err(
                "policy.misplaced_property",
                f"{name} can only be set in " + " or ".join(spec.sections),
                type_expr.pos,
                hint="it controls evidence validation, which happens before the rules run",
            )
        if isinstance(value_expr, Literal):
            problem = validate_property(name, value_expr.value)
            if problem:
                raise _err("policy.property_value", problem, value_expr.pos)
            if section == CONFIGURATION:
                if name in self.config:
                    raise _err("policy.duplicate_property", f"{name} is set twice", type_expr.pos)
                self.config[name] = value_expr.value
        elif section == CONFIGURATION:
            raise _err("policy.type_error", "configuration values must be literals", value_expr.pos)


def check(ast: PolicyAst) -> Configuration:
    """Check ``ast`` statically; return the configuration it declares. Raises PolicySyntaxError."""
    return _Checker(ast).run()

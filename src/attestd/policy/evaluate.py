"""Compile a policy once into closures, evaluate it against many claim sets.

Semantics (Azure's claim rule grammar, made precise):

* Sections run in order: ``authorizationrules`` then, only if permitted, ``issuancerules``.
  ``configurationrules`` are static and exposed as :attr:`Policy.configuration`.
* Rules run in order. A rule's conditions are tested left to right against the claim set as it is
  *now* (incoming claims plus those added/issued by earlier rules). A condition selects the claims
  whose every property test holds; it is satisfied when it selects at least one (``![...]``: none).
  An identifier (``c:[...]``) names the *set* selected, so ``c.value`` is a set of values: a
  comparison against it holds if it holds for one of them, and ``issue(type="x", value=c.value)``
  issues one claim per value (Azure's set semantics, which ``ContainsOnlyValue(c.value, true)`` needs).
* ``add`` makes a claim visible to later rules; ``issue`` also puts it in the token;
  ``issueproperty`` also sets a token property. New claims have issuer ``AttestationPolicy``.
  An empty value (``JsonToClaimValue("null")``) makes add/issue a no-op.
* authorizationrules: ``deny()`` stops evaluation and wins; otherwise at least one ``permit()`` must
  have run, else the decision is "denied: no permit() rule matched".
* A value derived from a read-only claim (``pcrs``) cannot be issued (``policy.read_only_claim``).
"""

from __future__ import annotations

import functools

import json
from operator import itemgetter
from dataclasses import dataclass, field
from functools import cached_property
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from attestd.policy.ast import (
    AUTHORIZATION,
    CONFIGURATION,
    ISSUANCE,
    Action,
    Call,
    ClaimRef,
    Condition,
    Expr,
    Literal,
    PolicyAst,
    Var,
)
from attestd.policy.check import PROPERTIES, Configuration, check, validate_property
from attestd.policy.claims import (
    ISSUER,
    POLICY,
    TYPE,
    VALUE,
    Claim,
    ClaimTuple,
    compare,
    ingest,
    is_reserved,
    value_type,
    values_equal,
)
from attestd.policy.errors import PolicyEvaluationError
from attestd.policy.functions import SPECS, FunctionFailure
from attestd.policy.hashing import policy_hash
from attestd.policy.parser import parse

__all__ = ["Policy", "Decision", "TraceEntry", "ConditionTrace", "compile_policy", "evaluate", "render_value"]

#: claims a ConditionTrace records per condition (a condition without type== sees every claim).
MAX_SEEN = 16

Env = dict  # identifier -> tuple[ClaimTuple, ...]
Values = tuple


# --------------------------------------------------------------------------------------- results


def render_value(value: Any, limit: int = 120) -> Any:
    """A value as shown in traces: JSON documents longer than ``limit`` characters are summarised."""
    if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > limit):
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if len(text) > limit:
            kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "string"
            return f"<{kind}, {len(text)} chars: {text[: limit - 20]}...>"
        return value
    return value


@dataclass(frozen=True)
class ConditionTrace:
    """One condition of a rule as evaluated: did it hold, and which claim values did it see."""

    source: str
    satisfied: bool
    #: (issuer, value) of the claims it selected - or, when it failed or is negated, of the claims
    #: of the type it asked for that were present.
    seen: tuple[tuple[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.source,
            "satisfied": self.satisfied,
            "seen": [{"issuer": i, "value": render_value(v)} for i, v in self.seen],
        }


@dataclass(frozen=True)
class TraceEntry:
    section: str
    #: 1-based position of the rule in its section.
    rule: int
    line: int
    source: str
    matched: bool
    conditions: tuple[ConditionTrace, ...]
    #: the rule's action verb: permit, deny, add, issue or issueproperty
    verb: str
    #: what the rule did: "permit()", "deny()", "issue(secureBootEnabled=true)", ... (None: not matched)
    action: str | None

    @property
    def unmet(self) -> ConditionTrace | None:
        for c in self.conditions:
            if not c.satisfied:
                return c
        return None

    def describe(self) -> str:
        return f"{self.section} rule {self.rule} (line {self.line}): {self.source}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "rule": self.rule,
            "line": self.line,
            "source": self.source,
            "matched": self.matched,
            "verb": self.verb,
            "action": self.action,
            "conditions": [c.to_dict() for c in self.conditions],
        }


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating a policy. ``trace``, ``denied_by`` and ``explanation`` are built on
    first access from the raw record the evaluator keeps (so the fast path pays nothing for them)."""

    permitted: bool
    #: claim type -> value (a list when several distinct values were issued), in issue order.
    issued_claims: Mapping[str, Any]
    #: token properties: configuration plus issueproperty() of issuancerules.
    properties: Mapping[str, Any]
    policy_hash: str
    _records: tuple = field(repr=False, compare=False)
    _denied_index: int | None = field(repr=False, compare=False)
    _permit_rule: "_CRule | None" = field(repr=False, compare=False)

    @cached_property
    def trace(self) -> tuple[TraceEntry, ...]:
        """Every rule evaluated, in order (empty when evaluated with ``trace=False`` and permitted)."""
        return tuple(_entry(r) for r in self._records)

    @cached_property
    def denied_by(self) -> TraceEntry | None:
        """The rule whose deny() decided, if any."""
        return self.trace[self._denied_index] if self._denied_index is not None else None

    @cached_property
    def explanation(self) -> str:
        """One paragraph a denied user can act on (or which rule permitted)."""
        return _explain(self.permitted, self.trace, self.denied_by, self._permit_rule)

    def to_dict(self, *, trace: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "permitted": self.permitted,
            "decision": "permit" if self.permitted else "deny",
            "explanation": self.explanation,
            "issued_claims": dict(self.issued_claims),
            "properties": dict(self.properties),
            "policy_hash": self.policy_hash,
        }
        if self.denied_by is not None:
            out["denied_by"] = {
                "section": self.denied_by.section,
                "rule": self.denied_by.rule,
                "line": self.denied_by.line,
                "source": self.denied_by.source,
            }
        if trace:
            out["trace"] = [t.to_dict() for t in self.trace]
        return out


# --------------------------------------------------------------------------------------- state


class _State:
    __slots__ = ("by_type", "all", "issued", "properties", "permitted", "denied")

    def __init__(self, claims: list[ClaimTuple]) -> None:
        self.all = claims
        by_type: dict[str, list[ClaimTuple]] = {}
        for c in claims:
            lst = by_type.get(c[0])
            if lst is None:
                by_type[c[0]] = [c]
            else:
                lst.append(c)
        self.by_type = by_type
        self.issued: list[tuple[str, Any]] = []
        self.properties: dict[str, Any] = {}
        self.permitted = False
        self.denied = False

    def add(self, claim: ClaimTuple) -> None:
        self.all.append(claim)
        lst = self.by_type.get(claim[0])
        if lst is None:
            self.by_type[claim[0]] = [claim]
        else:
            lst.append(claim)


# --------------------------------------------------------------------------------------- compiling

_GETTERS: dict[str, Callable[[ClaimTuple], Any]] = {
    "type": itemgetter(TYPE),
    "value": itemgetter(VALUE),
    "issuer": itemgetter(ISSUER),
    "valueType": lambda c: value_type(c[VALUE]),
}


def _literal_pred(prop: str, op: str, lit: Any) -> Callable[[ClaimTuple], bool]:
    if op == "==":
        if prop == "issuer":
            return lambda c: c[2] == lit
        if prop == "type":
            return lambda c: c[0] == lit
        if prop == "value":
            if type(lit) is bool:
                return lambda c: c[1] is lit
            if type(lit) is int:
                return lambda c: c[1] == lit and type(c[1]) is not bool
            return lambda c: c[1] == lit
    get = _GETTERS[prop]
    return lambda c: compare(op, get(c), lit)


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text

    def expr(self, e: Expr) -> Callable[[Env], Values]:
        if isinstance(e, Literal):
            const = (e.value,)
            return lambda env: const
        if isinstance(e, ClaimRef):
            name = e.name
            if e.prop == "value":
                return lambda env: [c[1] for c in env[name]]
            get = _GETTERS[e.prop]
            return lambda env: [get(c) for c in env[name]]
        if isinstance(e, Call):
            spec = SPECS[e.name.lower()]
            args = tuple(self.expr(a) for a in e.args)
            impl, line, column = spec.impl, e.pos.line, e.pos.column

            def call(env: Env) -> Values:
                try:
                    return impl(*[a(env) for a in args])
                except FunctionFailure as f:
                    raise PolicyEvaluationError(f.code, f.message, line=line, column=column) from None

            return call
        raise AssertionError(f"unchecked expression {e!r}")  # pragma: no cover - the checker rejects Var here

    @staticmethod
    def taint(e: Expr) -> frozenset[str]:
        """Identifiers whose read-only values flow into ``e``'s value."""
        if isinstance(e, ClaimRef):
            return frozenset({e.name}) if e.prop == "value" else frozenset()
        if isinstance(e, Call):
            if not SPECS[e.name.lower()].propagates_read_only:
                return frozenset()
            out: frozenset[str] = frozenset()
            for a in e.args:
                out |= _Compiler.taint(a)
            return out
        return frozenset()

    def condition(self, cond: Condition) -> "_Cond":
        key = None
        static: list[Callable[[ClaimTuple], bool]] = []
        dynamic: list[tuple[Callable[[ClaimTuple], Any], str, Callable[[Env], Values]]] = []
        for p in cond.props:
            if isinstance(p.expr, Literal):
                if key is None and p.prop == "type" and p.op == "==":
                    key = p.expr.value
                else:
                    static.append(_literal_pred(p.prop, p.op, p.expr.value))
            else:
                dynamic.append((_GETTERS[p.prop], p.op, self.expr(p.expr)))
        return _Cond(cond.source, cond.binding, cond.negated, key, _all_of(static), tuple(dynamic))

    def action(self, section: str, action: Action) -> "_Act":
        verb = action.verb
        if verb in ("permit", "deny"):
            return _Act(verb, None, None, None, frozenset(), action)
        args = {a.name: a.expr for a in action.args}
        if "claim" in args:
            target = args["claim"]
            assert isinstance(target, Var)
            return _Act(verb, None, None, target.name, frozenset(), action)
        return _Act(
            verb,
            self.expr(args["type"]),
            self.expr(args["value"]),
            None,
            self.taint(args["value"]),
            action,
            isinstance(args["type"], Literal),
        )


def _all_of(preds: list[Callable[[ClaimTuple], bool]]) -> Callable[[ClaimTuple], bool] | None:
    """One predicate for the conjunction (None: accept every candidate)."""
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda c: a(c) and b(c)
    if len(preds) == 3:
        a, b, d = preds
        return lambda c: a(c) and b(c) and d(c)
    frozen = tuple(preds)
    return lambda c: all(p(c) for p in frozen)


class _Cond:
    __slots__ = ("source", "binding", "negated", "key", "static", "dynamic")

    def __init__(self, source, binding, negated, key, static, dynamic) -> None:
        self.source, self.binding, self.negated = source, binding, negated
        self.key, self.static, self.dynamic = key, static, dynamic

    def candidates(self, state: _State) -> list[ClaimTuple]:
        return state.by_type.get(self.key, ()) if self.key is not None else state.all  # type: ignore[return-value]

    def select(self, state: _State, env: Env) -> list[ClaimTuple]:
        """The claims this condition selects now (a fresh list; empty if none)."""
        key = self.key
        cands = state.by_type.get(key, ()) if key is not None else state.all
        if not cands:
            return []
        pred = self.static
        if self.dynamic:
            dyn = [(get, op, rhs(env)) for get, op, rhs in self.dynamic]
            return [
                c
                for c in cands
                if (pred is None or pred(c))
                and all(any(compare(op, get(c), v) for v in vals) for get, op, vals in dyn)
            ]
        if pred is None:
            return list(cands)
        return [c for c in cands if pred(c)]


class _Act:
    __slots__ = ("verb", "type_of", "value_of", "claim_var", "taint", "node", "literal_type", "fast")

    def __init__(self, verb, type_of, value_of, claim_var, taint, node, literal_type=False) -> None:
        self.verb, self.type_of, self.value_of = verb, type_of, value_of
        self.claim_var, self.taint, self.node = claim_var, taint, node
        #: the claim type is a literal the checker already vetted (string, not reserved)
        self.literal_type = literal_type
        self.fast = _fast_action(self)

    def fail(self, code: str, message: str) -> PolicyEvaluationError:
        return PolicyEvaluationError(code, message, line=self.node.pos.line, column=self.node.pos.column)

    def run(self, state: _State, env: Env) -> tuple:
        """Do the action; return the (type, value) pairs it produced (empty for permit/deny)."""
        verb = self.verb
        if verb == "permit":
            state.permitted = True
            return ()
        if verb == "deny":
            state.denied = True
            return ()
        if self.claim_var is not None:
            pairs = [(c[0], c[1], c[3]) for c in env[self.claim_var]]
        else:
            read_only = any(c[3] for name in self.taint for c in env[name]) if self.taint else False
            types = self.type_of(env)
            values = self.value_of(env)
            if (
                len(types) == 1
                and len(values) == 1
                and self.literal_type
                and verb != "issueproperty"
                and not (read_only and verb == "issue")
            ):
                t, v = types[0], values[0]  # the common case, already vetted by the checker
                state.add((t, v, POLICY, read_only))
                if verb == "issue":
                    state.issued.append((t, v))
                return ((t, v),)
            pairs = [(t, v, read_only) for t in types for v in values]
        vetted = self.literal_type
        produced = []
        for t, v, ro in pairs:
            if not vetted and (not isinstance(t, str) or not t):
                raise self.fail("policy.type_error", f"{verb}(): claim type {t!r} is not a string")
            if verb == "issueproperty":
                if t not in PROPERTIES:
                    raise self.fail("policy.unknown_property", f"unknown property {t!r}")
                problem = validate_property(t, v)
                if problem:
                    raise self.fail("policy.property_value", problem)
                state.properties[t] = v
            elif not vetted and is_reserved(t):
                raise self.fail(
                    "policy.read_only_claim",
                    f"claim type {t!r} belongs to the attestation service "
                    f"and cannot be {'added' if verb == 'add' else 'issued'} by a policy",
                )
            elif ro and verb == "issue":
                raise self.fail(
                    "policy.read_only_claim",
                    f"the value for {t!r} comes from a read-only claim "
                    "(pcrs) and cannot be issued; add() it and issue a claim computed from it",
                )
            state.add((t, v, POLICY, ro))
            if verb == "issue":
                state.issued.append((t, v))
            produced.append((t, v))
        return tuple(produced)


def _fast_action(act: _Act) -> Callable[[_State, Env], tuple]:
    """A specialised closure for the common actions; anything unusual goes through ``act.run``."""
    if act.verb == "permit":

        def permit(state: _State, env: Env) -> tuple:
            state.permitted = True
            return ()

        return permit
    if act.verb == "deny":

        def deny(state: _State, env: Env) -> tuple:
            state.denied = True
            return ()

        return deny
    if act.verb in ("add", "issue") and act.literal_type and not act.taint and act.claim_var is None:
        claim_type = act.type_of({})[0]
        value_of, slow, issue = act.value_of, act.run, act.verb == "issue"

        def add_or_issue(state: _State, env: Env) -> tuple:
            values = value_of(env)
            if len(values) != 1:
                return slow(state, env)
            v = values[0]
            claim = (claim_type, v, POLICY, False)
            state.all.append(claim)
            lst = state.by_type.get(claim_type)
            if lst is None:
                state.by_type[claim_type] = [claim]
            else:
                lst.append(claim)
            if issue:
                state.issued.append((claim_type, v))
            return ((claim_type, v),)

        return add_or_issue
    return act.run


def _fast_rule(rule: "_CRule") -> Callable[[_State], bool]:
    """The rule as one closure for untraced evaluation: True if it fired."""
    conds = tuple((c.select, c.negated, c.binding) for c in rule.conds)
    act = _fast_action(rule.act)

    def run(state: _State) -> bool:
        env: Env = {}
        for select, negated, binding in conds:
            selected = select(state, env)
            if negated:
                if selected:
                    return False
            elif not selected:
                return False
            elif binding is not None:
                env[binding] = selected
        act(state, env)
        return True

    return run


def _action_text(verb: str, produced: tuple) -> str:
    if verb in ("permit", "deny"):
        return f"{verb}()"
    if not produced:
        return f"{verb}(nothing: empty value)"
    return f"{verb}(" + ", ".join(f"{t}={_show(v)}" for t, v in produced) + ")"


def _show(v: Any) -> str:
    r = render_value(v, 60)
    if isinstance(r, str) and r is v:
        return json.dumps(v, ensure_ascii=False)
    if isinstance(r, bool):
        return "true" if r else "false"
    return str(r)


@dataclass(frozen=True)
class _CRule:
    section: str
    index: int
    line: int
    source: str
    conds: tuple[_Cond, ...]
    act: _Act
    fast: Callable[[_State], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", _fast_rule(self))


@dataclass(frozen=True)
class _Program:
    authorization: tuple[_CRule, ...]
    issuance: tuple[_CRule, ...]


def _compile(ast: PolicyAst, text: str) -> _Program:
    comp = _Compiler(text)
    parts: dict[str, list[_CRule]] = {AUTHORIZATION: [], ISSUANCE: []}
    for section in ast.sections:
        if section.name == CONFIGURATION:
            continue
        for i, rule in enumerate(section.rules, 1):
            parts[section.name].append(
                _CRule(
                    section.name,
                    i,
                    rule.pos.line,
                    rule.source,
                    tuple(comp.condition(c) for c in rule.conditions),
                    comp.action(section.name, rule.action),
                )
            )
    return _Program(tuple(parts[AUTHORIZATION]), tuple(parts[ISSUANCE]))


# --------------------------------------------------------------------------------------- running


def _run_rule(rule: _CRule, state: _State, tracing: bool) -> tuple | None:
    """Run one rule. With ``tracing``, return its raw trace record (built into a TraceEntry lazily)."""
    env: Env = {}
    seen: list | None = [] if tracing else None
    ok = True
    for cond in rule.conds:
        selected = cond.select(state, env)
        if cond.negated:
            satisfied = not selected
            if seen is not None:
                seen.append((cond, satisfied, selected if selected else tuple(cond.candidates(state))))
        else:
            satisfied = bool(selected)
            if seen is not None:
                seen.append((cond, satisfied, selected if selected else tuple(cond.candidates(state))))
        if not satisfied:
            ok = False
            break
        if cond.binding is not None:
            env[cond.binding] = selected
    produced = rule.act.fast(state, env) if ok else None
    return (rule, ok, seen, produced) if tracing else None


def _entry(record: tuple) -> TraceEntry:
    rule, ok, seen, produced = record
    conds = tuple(
        ConditionTrace(c.source, sat, tuple((x[2], x[1]) for x in shown[:MAX_SEEN])) for c, sat, shown in seen
    )
    return TraceEntry(
        rule.section,
        rule.index,
        rule.line,
        rule.source,
        ok,
        conds,
        rule.act.verb,
        _action_text(rule.act.verb, produced) if ok else None,
    )


def _seen_text(c: ConditionTrace) -> str:
    if not c.seen:
        return "no such claim"
    vals = ", ".join(f"{_show(v)} ({i})" for i, v in c.seen[:4])
    more = f" and {len(c.seen) - 4} more" if len(c.seen) > 4 else ""
    return f"saw {vals}{more}"


def _explain(
    permitted: bool, trace: tuple[TraceEntry, ...], denied_by: TraceEntry | None, permit_rule: "_CRule | None"
) -> str:
    if denied_by is not None:
        reasons = []
        for c in denied_by.conditions:
            if c.source.startswith("!"):
                reasons.append(f"no claim matched {c.source[1:]} ({_seen_text(c)})")
            else:
                reasons.append(f"{c.source} matched ({_seen_text(c)})")
        because = ": " + "; ".join(reasons) if reasons else " (unconditional)"
        return (
            f"denied by deny() in {denied_by.section} rule {denied_by.rule} (line {denied_by.line}){because}"
        )
    if permitted:
        if permit_rule is None:
            return "permitted"
        return f"permitted by permit() in {permit_rule.section} rule {permit_rule.index} (line {permit_rule.line})"
    lines = ["denied: no permit() rule matched in authorizationrules"]
    for t in trace:
        if t.section != AUTHORIZATION or t.matched or t.verb != "permit":
            continue
        unmet = t.unmet
        if unmet is None:
            continue
        if unmet.source.startswith("!"):
            lines.append(
                f"- rule {t.rule} (line {t.line}) needs no claim matching {unmet.source[1:]}; "
                f"{_seen_text(unmet)}"
            )
        else:
            lines.append(f"- rule {t.rule} (line {t.line}) needs {unmet.source}; {_seen_text(unmet)}")
    return "\n".join(lines)


def _collect(issued: list[tuple[str, Any]]) -> dict[str, Any]:
    grouped: dict[str, list[Any]] = {}
    for t, v in issued:
        lst = grouped.setdefault(t, [])
        if not any(values_equal(v, seen) and type(v) is type(seen) for seen in lst):
            lst.append(v)
    return {t: (vals[0] if len(vals) == 1 else vals) for t, vals in grouped.items()}


# --------------------------------------------------------------------------------------- public


@dataclass(frozen=True, eq=False)
class Policy:
    """A compiled policy: parse and check once, then :meth:`evaluate` many claim sets."""

    text: str
    ast: PolicyAst = field(repr=False)
    configuration: Configuration
    hash: str
    _program: _Program = field(repr=False)
    _properties: Mapping[str, Any] = field(repr=False)

    @property
    def version(self) -> str:
        return self.ast.version

    @property
    def rule_count(self) -> int:
        return sum(len(s.rules) for s in self.ast.sections)

    def incoming_claim_types(self) -> frozenset[str]:
        """Claim types this policy expects from the attestation service: types tested by a literal
        ``type==`` whose condition does not ask for ``issuer=="AttestationPolicy"`` or
        ``"CustomClaim"`` and that the policy does not add itself (unless a condition insists on
        ``issuer=="AttestationService"``). This is what a claims engine must produce for it."""
        return self._incoming_claim_types

    @functools.cached_property
    def _incoming_claim_types(self) -> frozenset[str]:
        read: set[str] = set()
        explicit: set[str] = set()
        produced: set[str] = set()
        for section in self.ast.sections:
            for rule in section.rules:
                for cond in rule.conditions:
                    props = {
                        p.prop: p.expr.value
                        for p in cond.props
                        if p.op == "==" and isinstance(p.expr, Literal)
                    }
                    ctype, issuer = props.get("type"), props.get("issuer")
                    if isinstance(ctype, str) and issuer in (None, "AttestationService"):
                        read.add(ctype)
                        if issuer == "AttestationService":
                            explicit.add(ctype)
                target = next((a.expr for a in rule.action.args if a.name == "type"), None)
                if isinstance(target, Literal) and isinstance(target.value, str):
                    produced.add(target.value)
        return frozenset(t for t in read if t in explicit or t not in produced)

    @functools.cached_property
    def reads_all_claims(self) -> bool:
        """True when some condition does not fix the claim type with a literal ``type==`` (it can
        match a claim of any type), so a claims engine must hand over every claim it has."""
        for section in self.ast.sections:
            for rule in section.rules:
                for cond in rule.conditions:
                    if not any(p.prop == "type" and p.op == "==" and isinstance(p.expr, Literal) for p in cond.props):
                        return True
        return False

    def evaluate(self, claims: Iterable[Claim] | Mapping[str, Any], *, trace: bool = True) -> Decision:
        return _evaluate(self, ingest(claims), trace)


def _evaluate(policy: Policy, claims: list[ClaimTuple], tracing: bool) -> Decision:
    state = _State(list(claims))
    program = policy._program
    records: list[tuple] = []
    denied_index: int | None = None
    permit_rule = None
    for rule in program.authorization:
        if tracing:
            records.append(_run_rule(rule, state, True))
        else:
            rule.fast(state)
        if permit_rule is None and state.permitted:
            permit_rule = rule
        if state.denied:
            denied_index = len(records) - 1 if tracing else None
            break
    permitted = state.permitted and not state.denied
    if not permitted and not tracing:
        # the explanation needs the trace: run again with it (denial is the rare path)
        return _evaluate(policy, claims, True)
    if permitted:
        for rule in program.issuance:
            if tracing:
                records.append(_run_rule(rule, state, True))
            else:
                rule.fast(state)
    properties = dict(policy._properties)
    if state.properties:
        properties.update(state.properties)
    issued = _collect(state.issued) if permitted else {}
    return Decision(
        permitted,
        MappingProxyType(issued),
        MappingProxyType(properties),
        policy.hash,
        tuple(records),
        denied_index,
        permit_rule,
    )


@lru_cache(maxsize=256)
def compile_policy(text: str) -> Policy:
    """Parse, check and compile policy text (cached by text). Raises PolicySyntaxError."""
    ast = parse(text)
    configuration = check(ast)
    return Policy(
        text,
        ast,
        configuration,
        policy_hash(text),
        _compile(ast, text),
        MappingProxyType(configuration.as_properties()),
    )


def evaluate(
    policy: Policy | str, claims: Iterable[Claim] | Mapping[str, Any], *, trace: bool = True
) -> Decision:
    """Evaluate ``policy`` (compiled, or text - compiled once and cached) against ``claims``."""
    if isinstance(policy, str):
        policy = compile_policy(policy)
    return policy.evaluate(claims, trace=trace)

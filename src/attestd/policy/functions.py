"""The functions of policy version 1.2.

Semantics follow Azure's "claim rule functions" documentation:

=====================  =====  ==========================================================================
function               args   result
=====================  =====  ==========================================================================
``JmesPath(j, q)``     2      JSON text of JMESPath query ``q`` over JSON ``j`` (``"null"`` if nothing)
``JsonToClaimValue(j)``1      JSON number/bool/string -> that value; array of primitives -> a set;
                              null -> empty (the add/issue is a no-op); object or fraction -> error
``IsSubsetOf(a, b)``   2      every value of set ``a`` is in set ``b``
``AppendString(a, b)`` 2      ``a + b`` (strings only)
``NegateBool(b)``      1      ``not b`` (booleans only)
``ContainsOnlyValue``  2      set ``a`` is non-empty and every value equals ``b``
=====================  =====  ==========================================================================

Every expression evaluates to a tuple of values (a claim-value set; one element for a scalar).
Scalar functions apply element-wise over the product of their arguments' sets. ``JmesPath`` also
accepts a JSON object/array claim value directly (no text round trip), and understands Azure's
``equals_ignore_case(a, b)`` JMESPath extension used in its ELAM sample.
"""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import jmespath
from jmespath import exceptions as jmes_errors
from jmespath import functions as jmes_functions

from attestd.policy.claims import values_equal

__all__ = ["FunctionSpec", "SPECS", "JsonText", "compile_query", "FunctionFailure"]

Values = tuple


class FunctionFailure(Exception):
    """Raised by a function body; the evaluator turns it into a located PolicyEvaluationError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JsonText(str):
    """JSON text as the language sees it (a string), remembering the parsed document."""

    doc: Any


def _json_text(doc: Any) -> JsonText:
    try:
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # e.g. an expression reference (&foo) or NaN
        raise FunctionFailure("policy.function_error", "JmesPath result is not a JSON value") from None
    t = JsonText(text)
    t.doc = doc
    return t


class _AzureFunctions(jmes_functions.Functions):
    @jmes_functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_equals_ignore_case(self, a: str, b: str) -> bool:
        return a.casefold() == b.casefold()


_OPTIONS = jmespath.Options(custom_functions=_AzureFunctions())


@lru_cache(maxsize=1024)
def compile_query(query: str):
    """Compile a JMESPath query (cached); raises FunctionFailure if it is not valid."""
    if not query:
        raise FunctionFailure("policy.function_error", "JmesPath query is empty")
    try:
        with warnings.catch_warnings():  # jmespath warns about its legacy `literal` form; Azure uses it
            warnings.simplefilter("ignore")
            return jmespath.compile(query)
    except jmes_errors.JMESPathError as exc:
        raise FunctionFailure(
            "policy.invalid_query", f"invalid JmesPath query {query!r}: {str(exc).splitlines()[0]}"
        ) from None


def _as_json(value: Any, fname: str) -> Any:
    if isinstance(value, JsonText):
        return value.doc
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, str):
        if not value:
            raise FunctionFailure("policy.function_error", f"{fname}: empty string is not JSON")
        try:
            return json.loads(value)
        except ValueError:
            short = value if len(value) <= 40 else value[:37] + "..."
            raise FunctionFailure("policy.function_error", f"{fname}: {short!r} is not JSON") from None
    raise FunctionFailure(
        "policy.type_error", f"{fname}: expected JSON text, got {type(value).__name__} {value!r}"
    )


def _jmespath(doc_value: Any, query: Any) -> JsonText:
    if not isinstance(query, str):
        raise FunctionFailure("policy.type_error", f"JmesPath: the query must be a string, not {query!r}")
    compiled = compile_query(query)
    doc = _as_json(doc_value, "JmesPath")
    try:
        result = compiled.search(doc, options=_OPTIONS)
    except (jmes_errors.JMESPathError, TypeError, ValueError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FunctionFailure("policy.function_error", f"JmesPath {query!r}: {first}") from None
    return _json_text(result)


def _primitive(item: Any, fname: str) -> tuple:
    if item is None:
        return ()
    if isinstance(item, (bool, int, str)):
        return (item,)
    if isinstance(item, float):
        if item.is_integer():
            return (int(item),)
        raise FunctionFailure("policy.function_error", f"{fname}: {item} is a fraction; claims hold integers")
    raise FunctionFailure(
        "policy.function_error", f"{fname}: JSON {type(item).__name__}s are not claim values"
    )


def _json_to_claim_value(value: Any) -> tuple:
    if type(value) in (bool, int):
        return (value,)
    doc = _as_json(value, "JsonToClaimValue")
    if isinstance(doc, list):
        out: list = []
        for item in doc:
            if isinstance(item, (list, dict)):
                raise FunctionFailure(
                    "policy.function_error",
                    "JsonToClaimValue: arrays may hold only numbers, booleans, strings and null",
                )
            out.extend(_primitive(item, "JsonToClaimValue"))
        return tuple(out)
    if isinstance(doc, dict):
        raise FunctionFailure("policy.function_error", "JsonToClaimValue: JSON objects are not claim values")
    return _primitive(doc, "JsonToClaimValue")


def _append_string(a: Any, b: Any) -> str:
    if not isinstance(a, str) or not isinstance(b, str):
        bad = a if not isinstance(a, str) else b
        raise FunctionFailure("policy.type_error", f"AppendString: expected strings, got {bad!r}")
    return str(a) + str(b)


def _negate_bool(a: Any) -> bool:
    if type(a) is not bool:
        raise FunctionFailure("policy.type_error", f"NegateBool: expected a boolean, got {a!r}")
    return not a


def _is_subset_of(a: Values, b: Values) -> Values:
    return (all(any(values_equal(x, y) for y in b) for x in a),)


def _contains_only_value(a: Values, b: Values) -> Values:
    if len(b) != 1:
        raise FunctionFailure(
            "policy.function_error", f"ContainsOnlyValue: the second argument must be one value, got {len(b)}"
        )
    want = b[0]
    return (len(a) > 0 and all(values_equal(x, want) for x in a),)


def _elementwise(fn: Callable[..., Any], flatten: bool = False) -> Callable[..., Values]:
    def apply(*sets: Values) -> Values:
        if all(len(s) == 1 for s in sets):
            r = fn(*(s[0] for s in sets))
            return r if flatten else (r,)
        out: list = []
        for combo in itertools.product(*sets):
            r = fn(*combo)
            if flatten:
                out.extend(r)
            else:
                out.append(r)
        return tuple(out)

    return apply


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arity: int
    impl: Callable[..., Values]
    #: True when a read-only argument makes the result read-only (Azure's "effect of read-only arguments").
    propagates_read_only: bool
    #: the literal kind each argument must have when written as a literal ("json", "str", "bool", "any").
    literal_kinds: tuple[str, ...]


SPECS: dict[str, FunctionSpec] = {
    s.name.lower(): s
    for s in (
        FunctionSpec("JmesPath", 2, _elementwise(_jmespath), True, ("json", "query")),
        FunctionSpec(
            "JsonToClaimValue", 1, _elementwise(_json_to_claim_value, flatten=True), True, ("json",)
        ),
        FunctionSpec("IsSubsetOf", 2, _is_subset_of, False, ("any", "any")),
        FunctionSpec("AppendString", 2, _elementwise(_append_string), True, ("str", "str")),
        FunctionSpec("NegateBool", 1, _elementwise(_negate_bool), True, ("bool",)),
        FunctionSpec("ContainsOnlyValue", 2, _contains_only_value, False, ("any", "any")),
    )
}

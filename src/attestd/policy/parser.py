"""Policy text -> :class:`~attestd.policy.ast.PolicyAst`, with located, hinted errors.

The grammar (``grammar.lark``) is LALR(1) with lark's contextual lexer. Keywords are ordinary names
checked here, case-insensitively (Azure's own examples write ``Version= 1.0``; the ADFS claim
language it derives from writes ``Type``/``Value``). Every failure - lexer, parser or conversion -
becomes a :class:`PolicySyntaxError` with a 1-based line and column; lark exceptions never escape.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from importlib import resources
from typing import Iterable

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from attestd.policy.ast import (
    SECTION_ORDER,
    Action,
    Arg,
    Call,
    ClaimRef,
    Condition,
    Expr,
    Literal,
    PolicyAst,
    Pos,
    PropCond,
    Rule,
    Section,
    Var,
)
from attestd.policy.errors import PolicySyntaxError

__all__ = ["parse", "SUPPORTED_VERSIONS", "ACTIONS", "CLAIM_PROPERTIES", "FUNCTIONS", "suggest"]

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")
ACTIONS = ("permit", "deny", "add", "issue", "issueproperty")
CLAIM_PROPERTIES = ("type", "value", "issuer", "valueType")
#: canonical spelling of the version 1.2 functions, looked up case-insensitively.
FUNCTIONS = ("JmesPath", "JsonToClaimValue", "IsSubsetOf", "AppendString", "NegateBool", "ContainsOnlyValue")
MAX_DEPTH = 48

_FRIENDLY = {
    "VERSION": "a version number such as 1.2",
    "INT": "an integer",
    "STRING": 'a string "..."',
    "NAME": "a name",
    "COMPOP": "a comparison (==, !=, <, <=, >, >=)",
    "ARROW": "'=>'",
    "EQUAL": "'='",
    "AND": "'&&'",
    "BANG": "'!'",
    "SEMI": "';'",
    "COLON": "':'",
    "COMMA": "','",
    "DOT": "'.'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LPAR": "'('",
    "RPAR": "')'",
    "$END": "the end of the policy",
}
_ORDER = list(_FRIENDLY)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}
_TYPOGRAPHIC_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u2018\u2019"


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("attestd.policy").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=True)


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (case-insensitive), for "did you mean" hints."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def parse(text: str | bytes) -> PolicyAst:
    """Parse policy text. Raises :class:`PolicySyntaxError` (line, column, hint) on any mistake."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicySyntaxError(
                "policy.encoding",
                f"policy is not UTF-8 (byte {exc.start})",
                line=_line_col(bytes(text)[: exc.start].decode("utf-8", "replace"), exc.start)[0],
            ) from None
    text = text.removeprefix("\ufeff")
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _translate(exc, text) from None
    except LarkError as exc:  # defensive: any other lark failure is still a typed error
        raise PolicySyntaxError("policy.syntax", f"cannot parse policy: {exc}", line=1, column=1) from None
    except RecursionError:
        raise PolicySyntaxError("policy.syntax", "policy is nested too deeply", line=1, column=1) from None
    return _Builder(text).build(tree)


# --------------------------------------------------------------------------------------- errors


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _prev_char(text: str, offset: int) -> str:
    """Last significant character before ``offset`` (skipping whitespace and // comments)."""
    i = offset - 1
    while i >= 0:
        ch = text[i]
        if ch in " \t\r\n\f":
            i -= 1
            continue
        # skip a // comment on this line
        line_start = text.rfind("\n", 0, i + 1) + 1
        comment = text.find("//", line_start, i + 1)
        if comment != -1 and '"' not in text[line_start:comment]:
            i = comment - 1
            continue
        return ch
    return ""


def _expected_text(expected: Iterable[str]) -> str:
    names = sorted({e for e in expected if e in _FRIENDLY}, key=_ORDER.index)
    words = [_FRIENDLY[n] for n in names]
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "the end of the policy"
    value = str(token)
    if len(value) > 30:
        value = value[:27] + "..."
    return f"'{value}'"


def _translate(exc: UnexpectedInput, text: str) -> PolicySyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        offset = exc.pos_in_stream if exc.pos_in_stream is not None else 0
        line, column = _line_col(text, offset)
        ch = text[offset] if offset < len(text) else ""
        hint = None
        message = f"unexpected character {ch!r}"
        if ch in _TYPOGRAPHIC_QUOTES:
            hint = 'typographic quote: write a plain double quote "'
        elif ch == '"':
            message = "unterminated string"
            hint = 'a string ends with " on the same line; write \\" for a quote inside it'
        elif ch == "|":
            hint = "there is no '||': write one rule per alternative that adds the same claim, then test that claim"
        elif ch == "/" and text.startswith("/*", offset):
            message = "unterminated comment"
            hint = "a /* comment */ must be closed"
        elif ch == "&":
            hint = "conditions are joined with '&&'"
        elif exc.allowed:
            message += f": expected {_expected_text(exc.allowed)}"
        return PolicySyntaxError("policy.syntax", message, line=line, column=column, hint=hint)

    token: Token = getattr(exc, "token", None) or Token("$END", "")
    expected = set(getattr(exc, "expected", None) or ())
    if isinstance(exc, UnexpectedEOF) or token.type == "$END":
        offset = len(text)
    else:
        offset = token.start_pos if token.start_pos is not None else 0
    line, column = _line_col(text, offset)
    message = f"expected {_expected_text(expected)}, found {_describe(token)}"
    hint = None
    prev = _prev_char(text, offset)
    if token.type in ("EQUAL", "ARROW") and "COMPOP" in expected:
        hint = "did you mean '=='? conditions compare with '==' ('=' only names action arguments)"
    elif (token.type == "COMPOP" and str(token) == "==" and "EQUAL" in expected) or (
        token.type == "EQUAL" and prev == "=" and {"STRING", "INT", "NAME"} & expected
    ):
        hint = "action arguments take a single '=', as in type=\"x\""
    elif "RSQB" in expected and token.type in ("ARROW", "AND", "SEMI", "$END"):
        hint = "missing ']' to close the condition"
    elif token.type == "COMPOP" and str(token) == "<" and {"STRING", "INT", "NAME"} & expected:
        hint = "'<...>' looks like a documentation placeholder: put the real value there"
    elif "SEMI" in expected and prev == "}":
        hint = "missing ';' after the closing '}' of a section"
    elif "SEMI" in expected and prev == ")":
        hint = "missing ';' at the end of the rule"
    elif "SEMI" in expected and "RBRACE" not in expected and prev == "]":
        hint = "a rule needs '=>' and an action after its conditions"
    elif "ARROW" in expected and token.type == "SEMI":
        hint = "a rule needs '=>' and an action after its conditions"
    elif token.type == "$END" and "RBRACE" in expected:
        hint = "missing '}' to close the section"
    elif token.type == "NAME" and expected == {"SEMI"}:
        hint = "missing ';'"
    return PolicySyntaxError("policy.syntax", message, line=line, column=column, hint=hint)


# --------------------------------------------------------------------------------------- building


def _pos(tok: Token) -> Pos:
    return Pos(tok.line, tok.column, tok.start_pos)


def _tree_pos(tree: Tree) -> Pos:
    return Pos(tree.meta.line, tree.meta.column, tree.meta.start_pos)


def _tokens(tree: Tree) -> list[Token]:
    return [c for c in tree.children if isinstance(c, Token)]


def _trees(tree: Tree) -> list[Tree]:
    return [c for c in tree.children if isinstance(c, Tree)]


_WS = re.compile(r"\s+")


class _Builder:
    def __init__(self, text: str) -> None:
        self.text = text

    def err(
        self, message: str, pos: Pos, *, hint: str | None = None, code: str = "policy.syntax"
    ) -> PolicySyntaxError:
        return PolicySyntaxError(code, message, line=pos.line, column=pos.column, hint=hint)

    def source(self, tree: Tree) -> str:
        raw = self.text[tree.meta.start_pos : tree.meta.end_pos]
        raw = re.sub(r"//[^\n]*", " ", raw) if "//" in raw and '"' not in raw else raw
        return _WS.sub(" ", raw).strip()

    # -- top level
    def build(self, tree: Tree) -> PolicyAst:
        decl, *sections = _trees(tree)
        name, _eq, ver, _semi = _tokens(decl)
        if name.lower() != "version":
            raise self.err(
                f"a policy starts with 'version=1.x;', found '{name}'",
                _pos(name),
                hint="write version=1.0, version=1.1 or version=1.2 first",
            )
        if str(ver) not in SUPPORTED_VERSIONS:
            raise self.err(
                f"unsupported policy version {ver}",
                _pos(ver),
                code="policy.unsupported_version",
                hint="supported versions are " + ", ".join(SUPPORTED_VERSIONS),
            )
        built: list[Section] = []
        seen: dict[str, Pos] = {}
        for s in sections:
            sec = self.section(s)
            if sec.name in seen:
                raise self.err(
                    f"section {sec.name} appears twice (first at line {seen[sec.name].line})", sec.pos
                )
            for later in SECTION_ORDER[SECTION_ORDER.index(sec.name) + 1 :]:
                if later in seen:
                    raise self.err(
                        f"section {sec.name} must come before {later}",
                        sec.pos,
                        hint="order: " + ", ".join(SECTION_ORDER),
                    )
            seen[sec.name] = sec.pos
            built.append(sec)
        return PolicyAst(version=str(ver), version_pos=_pos(ver), sections=tuple(built))

    def section(self, tree: Tree) -> Section:
        name = _tokens(tree)[0]
        canonical = name.lower()
        if canonical not in SECTION_ORDER:
            guess = suggest(str(name), SECTION_ORDER)
            raise self.err(
                f"unknown section '{name}'",
                _pos(name),
                hint=f"did you mean {guess}?" if guess else "sections are " + ", ".join(SECTION_ORDER),
            )
        rules = tuple(self.rule(r) for r in _trees(tree))
        return Section(canonical, rules, _pos(name))

    def rule(self, tree: Tree) -> Rule:
        conds_tree = tree.children[0]
        action_tree = _trees(tree)[-1]
        conditions: tuple[Condition, ...] = ()
        if isinstance(conds_tree, Tree):
            conditions = tuple(self.condition(c) for c in _trees(conds_tree))
        pos = _tree_pos(tree)
        return Rule(conditions, self.action(action_tree), pos, self.source(tree))

    def condition(self, tree: Tree) -> Condition:
        negated = tree.data == "negated"
        binding = None
        names = [t for t in _tokens(tree) if t.type == "NAME"]
        if names:
            binding = str(names[0])
        props: list[PropCond] = []
        for sub in _trees(tree):  # the proplist
            for p in _trees(sub):
                pname, op = _tokens(p)[:2]
                canonical = (
                    suggest(str(pname), CLAIM_PROPERTIES)
                    if pname.lower() in {c.lower() for c in CLAIM_PROPERTIES}
                    else None
                )
                if canonical is None:
                    guess = suggest(str(pname), CLAIM_PROPERTIES)
                    raise self.err(
                        f"unknown claim property '{pname}'",
                        _pos(pname),
                        hint=(
                            f"did you mean {guess}?"
                            if guess
                            else "a condition tests type, value, issuer or valueType"
                        ),
                    )
                props.append(PropCond(canonical, str(op), self.expr(_trees(p)[0], 0), _pos(pname)))
        return Condition(binding, negated, tuple(props), _tree_pos(tree), self.source(tree))

    def action(self, tree: Tree) -> Action:
        verb = _tokens(tree)[0]
        canonical = verb.lower()
        if canonical not in ACTIONS:
            guess = suggest(str(verb), ACTIONS)
            if str(verb).lower() in {f.lower() for f in FUNCTIONS}:
                hint = "a function computes a value: use it as value=... inside add() or issue()"
            else:
                hint = (
                    f"did you mean {guess}()?"
                    if guess
                    else "actions are " + ", ".join(a + "()" for a in ACTIONS)
                )
            raise self.err(f"unknown action '{verb}'", _pos(verb), hint=hint, code="policy.unknown_action")
        args: list[Arg] = []
        for sub in _trees(tree):  # arglist
            for a in _trees(sub):
                if a.data == "named_arg":
                    aname = _tokens(a)[0]
                    args.append(
                        Arg(
                            str(aname).lower() if aname.lower() in ("type", "value", "claim") else str(aname),
                            self.expr(_trees(a)[0] if _trees(a) else a.children[-1], 0),
                            _pos(aname),
                        )
                    )
                else:
                    e = self.expr(a.children[0], 0)
                    args.append(Arg(None, e, e.pos))
        return Action(canonical, tuple(args), _pos(verb))

    # -- expressions
    def expr(self, node: Tree | Token, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            pos = _pos(node) if isinstance(node, Token) else _tree_pos(node)
            raise self.err("expression nested too deeply", pos)
        if isinstance(node, Token):  # a bare token can only come from a named_arg's inline expr
            raise self.err(f"unexpected '{node}'", _pos(node))
        kind = node.data
        toks = _tokens(node)
        if kind == "string":
            return Literal(self.unescape(toks[0]), _pos(toks[0]))
        if kind == "integer":
            raw = str(toks[0])
            return Literal(int(raw, 16) if raw.lower().startswith("0x") else int(raw), _pos(toks[0]))
        if kind == "claim_ref":
            name, _dot, prop = toks
            canonical = prop.lower()
            if canonical not in ("value", "type", "issuer", "valuetype"):
                raise self.err(
                    f"unknown claim property '{prop}' in {name}.{prop}",
                    _pos(prop),
                    hint=f"did you mean {name}.value?",
                )
            return ClaimRef(str(name), "valueType" if canonical == "valuetype" else canonical, _pos(name))
        if kind == "call":
            name = toks[0]
            args: list[Expr] = []
            for sub in _trees(node):  # the exprlist
                args.extend(self.expr(e, depth + 1) for e in _trees(sub))
            return Call(str(name), tuple(args), _pos(name))
        if kind == "bare":
            tok = toks[0]
            low = tok.lower()
            if low == "true":
                return Literal(True, _pos(tok))
            if low == "false":
                return Literal(False, _pos(tok))
            return Var(str(tok), _pos(tok))
        raise self.err(f"unexpected {kind}", _tree_pos(node))  # pragma: no cover - grammar has no other forms

    def unescape(self, tok: Token) -> str:
        body = str(tok)[1:-1]
        if "\\" not in body:
            return body
        out: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                nxt = body[i + 1]
                if nxt not in _ESCAPES:
                    raise PolicySyntaxError(
                        "policy.syntax",
                        f"unknown escape '\\{nxt}' in string",
                        line=tok.line,
                        column=tok.column + 1 + i,
                        hint='escape only \\" and \\\\ (also \\n, \\t, \\r, \\/)',
                    )
                out.append(_ESCAPES[nxt])
                i += 2
            else:
                out.append(ch)
                i += 1
        return "".join(out)

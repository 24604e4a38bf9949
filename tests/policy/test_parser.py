"""Parsing: the grammar accepts Azure's documented forms; every mistake is a located, typed error."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestd.policy import PolicySyntaxError, compile_policy, parse
from attestd.policy.ast import Call, ClaimRef, Var


def err(text: str) -> PolicySyntaxError:
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(text)
    return info.value


# ---------------------------------------------------------------------------------------- accepted


def test_structure_and_positions():
    ast = parse(
        'version=1.2;\nauthorizationrules {\n  c:[type=="a", issuer=="AttestationService"] &&\n'
        '  ![type=="b"] => add(type="x", value=JmesPath(c.value, "q"));\n  => permit();\n};'
    )
    assert ast.version == "1.2"
    (section,) = ast.sections
    assert section.name == "authorizationrules"
    rule, permit = section.rules
    assert (rule.pos.line, rule.pos.column) == (3, 3)
    assert rule.conditions[0].binding == "c" and not rule.conditions[0].negated
    assert rule.conditions[1].negated and rule.conditions[1].binding is None
    value = dict((a.name, a.expr) for a in rule.action.args)["value"]
    assert isinstance(value, Call) and value.name == "JmesPath"
    assert isinstance(value.args[0], ClaimRef) and value.args[0].prop == "value"
    assert (value.pos.line, value.pos.column) == (4, 39)
    assert permit.conditions == () and permit.action.verb == "permit"
    assert rule.source.startswith('c:[type=="a", issuer=="AttestationService"] && ![type=="b"] =>')


def test_literals_and_escapes():
    ast = parse(
        r'version=1.0; issuancerules { => issue(type="a\"b\\c", value=0x1F); => issue(type="n", value=-3);'
        r' => issue(type="t", value=TRUE); };'
    )
    args = [dict((a.name, a.expr) for a in r.action.args) for r in ast.sections[0].rules]
    assert args[0]["type"].value == 'a"b\\c' and args[0]["value"].value == 31
    assert args[1]["value"].value == -3
    assert args[2]["value"].value is True
    assert isinstance(
        parse('version=1.0; issuancerules { c:[type=="x"] => issue(claim=c); };')
        .sections[0]
        .rules[0]
        .action.args[0]
        .expr,
        Var,
    )


def test_keywords_case_insensitive_and_comments():
    # Azure's SGX sample writes "Version= 1.0"; the ADFS claim language it derives from writes Type/Value.
    text = (
        "Version= 1.0; /* block\n comment */ AuthorizationRules { // line comment\n"
        '  C1:[Type=="x", Value==true] => Permit(); };'
    )
    ast = parse(text)
    cond = ast.sections[0].rules[0].conditions[0]
    assert ast.sections[0].name == "authorizationrules"
    assert [p.prop for p in cond.props] == ["type", "value"] and cond.binding == "C1"
    assert ast.sections[0].rules[0].action.verb == "permit"


def test_empty_sections_and_bytes_input():
    ast = parse(
        b"\xef\xbb\xbfversion=1.2; configurationrules { }; authorizationrules { }; issuancerules { };"
    )
    assert [s.name for s in ast.sections] == ["configurationrules", "authorizationrules", "issuancerules"]


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, line, column, needle",
    [
        # Azure's own samples write issuer="AttestationPolicy" inside a condition.
        (
            'version=1.2;\nauthorizationrules {\n  c:[type=="x", issuer="AttestationPolicy"] => permit();\n};',
            3,
            23,
            "did you mean '=='",
        ),
        # author-sign-policy sample: rules without ';'
        (
            'version=1.0;\nauthorizationrules {\n  c:[type=="x"] => permit()\n};',
            4,
            1,
            "missing ';' at the end of the rule",
        ),
        (
            "version=1.0;\nauthorizationrules {\n  => permit();\n}\nissuancerules { };",
            5,
            1,
            "missing ';' after the closing '}'",
        ),
        (
            "version=1.0;\nauthorizationrules {\n  c:[type==\u201d$x\u201d] => permit();\n};",
            3,
            12,
            "typographic quote",
        ),
        (
            'version= 1.0;\nauthorizationrules {\n [ type=="x-ms-sgx-product-id", value==<product-id> ] => permit();\n};',
            3,
            40,
            "placeholder",
        ),
        ('version=1.0;\nauthorizationrules {\n  [type=="x"] || [type=="y"] => permit();\n};', 3, 15, "'||'"),
        ('version=1.0;\nauthorizationrules {\n  [type=="x] => permit();\n};', 3, 10, "unterminated string"),
        ('version=1.0;\nauthorizationrules {\n  [type=="x" => permit();\n};', 3, 14, "missing ']'"),
        ("version=1.0;\nauthorizationrules {\n  => permit();\n", 4, 1, "missing '}'"),
        ('version=1.0;\nissuancerules {\n  => issue(type=="x", value=1);\n};', 3, 17, "single '='"),
        ('version=1.0;\nissuancerules {\n  [type=="x"];\n};', 3, 14, "'=>'"),
        ('version=1.0;\nissuancerules {\n  => issue(type="a\\[", value=1);\n};', 3, 19, "escape"),
        ("version=1.0;\nauthorisationrules { };", 2, 1, "did you mean authorizationrules"),
        ("version=1.0;\nauthorizationrules { => permitt(); };", 2, 25, "did you mean permit()"),
        ('version=1.0;\nauthorizationrules { [typ=="x"] => permit(); };', 2, 23, "did you mean type"),
        ("version=1.0;\nauthorizationrules { => permit(); /* open", 2, 35, "unterminated comment"),
    ],
)
def test_syntax_errors_are_located_with_hints(text, line, column, needle):
    e = err(text)
    assert e.code in ("policy.syntax", "policy.unknown_action")
    assert (e.line, e.column) == (line, column), str(e)
    assert needle in (e.hint or "") + e.message, str(e)
    assert str(e).startswith(f"{e.code}: line {line}, column {column}: ")


def test_version_errors():
    e = err("version=2.0; authorizationrules { => permit(); };")
    assert e.code == "policy.unsupported_version" and (e.line, e.column) == (1, 9)
    e = err("version=1; authorizationrules { };")
    assert e.code == "policy.syntax" and "version number" in e.message
    e = err("authorizationrules { => permit(); };")
    assert e.code == "policy.syntax"
    e = err("version=1.0; authorizationrules { }; authorizationrules { };")
    assert "twice" in e.message
    e = err("version=1.1; authorizationrules { }; configurationrules { };")
    assert "must come before" in e.message


def test_error_is_picklable_and_a_problem_document():
    e = err('version=1.0;\nauthorizationrules {\n [type="x"] => permit();\n};')
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is PolicySyntaxError and (again.line, again.column, again.hint) == (
        e.line,
        e.column,
        e.hint,
    )
    problem = e.to_problem()
    assert problem["code"] == "policy.syntax" and problem["details"]["line"] == 3
    assert problem["detail"].startswith("line 3, column 7: ")


def test_deep_nesting_is_a_typed_error():
    deep = "NegateBool(" * 200 + "true" + ")" * 200
    e = err(f'version=1.2; authorizationrules {{ => add(type="x", value={deep}); }};')
    assert "nested too deeply" in e.message


# ---------------------------------------------------------------------------------------- fuzzing

_VALID = [
    'version=1.2; authorizationrules { c:[type=="a", value>=3] && ![type=="b"] => permit(); }; '
    'issuancerules { c:[type=="e"] => add(type="x", value=JmesPath(c.value, "Events[0]")); };',
    'version=1.0; authorizationrules { [type=="s", value==true] => permit(); }; '
    'issuancerules { c:[type=="s"] => issue(claim=c); };',
]
_ALPHABET = st.sampled_from(
    list('version=1.2;{}[]()!&|"\\:,.<>=_- \n\t/*abcxyzCT0123456789')
    + [
        "authorizationrules",
        "issuancerules",
        "configurationrules",
        "=>",
        "==",
        "&&",
        "permit()",
        "issue(",
        "add(",
        "type",
        "value",
        "issuer",
        "c:[",
        "JmesPath(",
        "\u201d",
        "\x00",
        "\u00e9",
    ]
)


def _only_typed_errors(text: str) -> None:
    try:
        compile_policy(text)
    except PolicySyntaxError as e:
        assert e.line is not None and e.line >= 1 and e.column is not None and e.column >= 1
        assert e.code.startswith("policy.")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_random_token_soup_gives_only_typed_errors(text):
    _only_typed_errors(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_gives_only_typed_errors(text):
    _only_typed_errors(text)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_VALID), st.data())
def test_mutated_valid_policies_give_only_typed_errors(base, data):
    i = data.draw(st.integers(0, len(base) - 1))
    j = data.draw(st.integers(i, min(len(base), i + 8)))
    insert = data.draw(st.text(alphabet='";[](){}=!<>&|.,:\\ xy1', max_size=4))
    _only_typed_errors(base[:i] + insert + base[j:])

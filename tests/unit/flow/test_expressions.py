"""The ``${{ }}`` expression language, as apolo-flow evaluates it."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_neuro.flow.expressions import (
    FlowExpressionError,
    evaluate,
    render,
)

CONTEXTS: dict[str, Any] = {
    "flow": {"id": "demo", "workspace": "/work"},
    "params": {
        "name": "Bob",
        "epochs": 3,
        "lr": 0.5,
        "gpu": True,
        "nothing": None,
        "empty": "",
        "items": [1, "a"],
        "words": ["x", "y"],
        "opts": {"k": "v", "n": 2},
    },
    "env": {"A": "1"},
}


def ev(expr: str) -> Any:
    return evaluate("${{ " + expr + " }}", CONTEXTS)


def fails(text: str) -> FlowExpressionError:
    with pytest.raises(FlowExpressionError) as info:
        render(text, CONTEXTS)
    return info.value


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("None", None),
        ("True", True),
        ("False", False),
        ("42", 42),
        ("-1234", -1234),
        ("12_34", 1234),
        ("0xff", 255),
        ("0X12_ab", 0x12AB),
        ("0o22", 18),
        ("0b1011", 11),
        ("12.34", 12.34),
        ("-12.34e-21", -12.34e-21),
        ("1.", 1.0),
        ("'str'", "str"),
        ("\"with 'single' quotes\"", "with 'single' quotes"),
        ("'a\\tb'", "a\tb"),
        ("'}}'", "}}"),
        ("[]", []),
        ("[1, 'a', True, None]", [1, "a", True, None]),
        ("[1,2,]", [1, 2]),
        ("{}", {}),
        ("{'a': 1, 'b': [2],}", {"a": 1, "b": [2]}),
        ("{'a': {'b': 1} }", {"a": {"b": 1}}),
    ],
)
def test_literals(expr: str, value: Any) -> None:
    result = ev(expr)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("params.name", "Bob"),
        ("params['name']", "Bob"),
        ('params["epochs"]', 3),
        ("params.opts.k", "v"),
        ("params.opts['n']", 2),
        ("params.items[0]", 1),
        ("params.items[-1]", "a"),
        ("params.name[0]", "B"),
        ("params[params.words[0] if False else 'lr']", 0.5),
        ("params.opts[fmt('{}', 'k')]", "v"),
        ("params . name", "Bob"),
        ("flow", {"id": "demo", "workspace": "/work"}),
    ],
)
def test_lookups(expr: str, value: Any) -> None:
    assert ev(expr) == value


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("params.name == 'Bob'", True),
        ("params.name != 'Bob'", False),
        ("4 < 5", True),
        ("4 > 5", False),
        ("params.epochs <= 3", True),
        ("params.epochs >= 4", False),
        ("'sdfdsf' == True", False),
        ("(4 > 5) or ((4 <= 5))", True),
        ("((((True))))", True),
        ("not True", False),
        ("not(True)", False),
        ("not params.epochs == 3", False),
        ("not (42 == 42) or not True", False),
        ("-2 < 4 and 7 < 6", False),
        ("-2 < -4 or 7 < 6", False),
        ("1 < -2 or 2 < 4", True),
        ("True or False and False", True),
        ("params.empty or 'default'", "default"),
        ("params.name and params.epochs", 3),
        ("1 or(2)", 1),
        # Comparisons do not chain: (1 == 1) == True.
        ("1 == 1 == True", True),
        ("3 > 2 > 1", False),
        ("4 * 5 + 2", 22),
        ("0 * 5 + 2 / 2", 1),
        ("2 * 6 / 12 + 5 - 2", 4),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("params.epochs % 2", 1),
        ("params.epochs / 2", 1.5),
        ("- params.epochs", -3),
        ("- - 2", 2),
        ("'a' + 'b'", "ab"),
        ("[1] + []", [1]),
        ("{'a': 1} | {'b': 2}", {"a": 1, "b": 2}),
        ("{'a': 1} | {'a': 2}", {"a": 2}),
        ("1 | 2 == 3", True),
        ("2 if True else 3", 2),
        ("2 if False else 3", 3),
        ("2 if True else 0 / 0", 2),
        ("0 / 0 if False else 2", 2),
        ("2 if (3 if (4 if False else False) else False) else 3", 3),
        ("'gpu' if params.gpu else 'cpu'", "gpu"),
    ],
)
def test_operators_and_precedence(expr: str, value: Any) -> None:
    assert ev(expr) == value


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("len('abc')", 3),
        ("len(params.items)", 2),
        ("len(params.opts)", 2),
        ("int('42')", 42),
        ("range(5)", [0, 1, 2, 3, 4]),
        ("range(1, 6, 2)", [1, 3, 5]),
        ("range(5, 1, -1)", [5, 4, 3, 2]),
        ("range(3, 0)", [0, 1, 2]),  # a zero stop counts as none in apolo-flow
        ("nothing()", None),
        ("fmt('{} {}', 1, 'a')", "1 a"),
        ("fmt('{}/{}/{}', True, None, params.items)", "True/None/[1, 'a']"),
        ("fmt('{0}-{0}', 'x')", "x-x"),
        ("fmt('no fields', 1)", "no fields"),
        ("str('just string')", "just string"),
        ("str(True)", "True"),
        ("str(222)", "222"),
        ("str(22.22)", "22.22"),
        ("str([1, 2, 3])", "[1, 2, 3]"),
        ("str(params.opts)", "{'k': 'v', 'n': 2}"),
        ("lower('aBcDeF')", "abcdef"),
        ("upper('aBcDeF')", "ABCDEF"),
        ("replace('22.22', '.', '_')", "22_22"),
        ("join('_', ['x', 'y', 'z'])", "x_y_z"),
        ("join(', ', params.words)", "x, y"),
        ("join('-', [1, None], True)", "1-None"),
        ("keys(params.opts)", ["k", "n"]),
        ("values(params.opts)", ["v", 2]),
        ("to_json(params.opts)", '{"k": "v", "n": 2}'),
        ("to_json([None, True, 'x'])", '[null, true, "x"]'),
        ('from_json(\'{"a": [1, 2], "b": null}\')', {"a": [1, 2], "b": None}),
        ("from_json('{\"a\": 1}').a", 1),
        ("from_json('[1, 2]')[1]", 2),
        ("len(keys(params))", 9),
    ],
)
def test_functions(expr: str, value: Any) -> None:
    result = ev(expr)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("${{ True }}", "True"),
        ("${{ False }}", "False"),
        ("${{ None }}", "None"),
        ("${{ params.nothing }}", "None"),
        ("${{ 42 }}", "42"),
        ("${{ 0.1 + 0.2 }}", "0.30000000000000004"),
        ("${{ 1.5e3 }}", "1500.0"),
        ("${{ params.items }}", "[1, 'a']"),
        ("${{ params.opts }}", "{'k': 'v', 'n': 2}"),
        ("${{ keys(params.opts) }}", "['k', 'n']"),
        ("a ${{ params.epochs }} b", "a 3 b"),
        ("${{ flow.id }}-${{ params.name }}", "demo-Bob"),
        ("--lr=${{ params.lr }} --gpu=${{ params.gpu }}", "--lr=0.5 --gpu=True"),
        ("$[[ params.name ]] and ${{ params.epochs }}", "Bob and 3"),
        ("${{ '${{' }}", "${{"),
        # No escape for `${{`: the extra `$` is plain text.
        ("$${{ params.name }}", "$Bob"),
        ("${{ params.name }}}", "Bob}"),
        ("{{ params.name }} and $ {{ x }}", "{{ params.name }} and $ {{ x }}"),
        (
            "python train.py\n  --data ${{ flow.workspace }}/data\n"
            "  --epochs ${{ params.epochs }}\n",
            "python train.py\n  --data /work/data\n  --epochs 3\n",
        ),
    ],
)
def test_render(text: str, rendered: str) -> None:
    assert render(text, CONTEXTS) == rendered


def test_evaluate_keeps_the_type_of_a_lone_expression() -> None:
    assert evaluate("${{ params.gpu }}", CONTEXTS) is True
    assert evaluate("${{ params.name == 'Bob' }}", CONTEXTS) is True
    assert evaluate("${{params.epochs}}", CONTEXTS) == 3
    assert evaluate("$[[ params.items ]]", CONTEXTS) == [1, "a"]
    assert evaluate("${{ params.opts }}", CONTEXTS) == {"k": "v", "n": 2}
    assert evaluate("${{ params.nothing }}", CONTEXTS) is None
    assert evaluate("${{ [params.name, 'x'] }}", CONTEXTS) == ["Bob", "x"]


def test_evaluate_renders_anything_else() -> None:
    # As in apolo-flow, any text around the expression, a space included, makes a string.
    assert evaluate(" ${{ params.epochs }}", CONTEXTS) == " 3"
    assert evaluate("${{ params.gpu }} ", CONTEXTS) == "True "
    assert evaluate("${{ params.epochs }}${{ params.epochs }}", CONTEXTS) == "33"
    assert evaluate("True", CONTEXTS) == "True"
    assert evaluate("", CONTEXTS) == ""


def test_unknown_context() -> None:
    error = fails("x ${{ volumes.data }}")
    assert error.message == "unknown context 'volumes'; available: env, flow, params"
    assert error.column == 7
    assert str(error) == f"{error.message} (at column 7)"


def test_missing_attribute_names_the_path() -> None:
    error = fails("${{ params.epoch }}")
    assert error.message.startswith("params.epoch is not defined")
    assert "params has: empty, epochs, gpu" in error.message
    assert fails("${{ params.opts.x }}").message.startswith("params.opts.x is not defined")
    assert fails("${{ params['x'] }}").message.startswith("params['x'] is not defined")
    assert fails("${{ params.items[5] }}").message.startswith("params.items[5] is not defined")
    assert (
        fails("${{ params.name.first }}").message
        == "params.name is a str, it has no attribute 'first'"
    )
    assert (
        fails("${{ params.epochs[0] }}").message == "params.epochs is a int, it cannot be indexed"
    )


@pytest.mark.parametrize(
    "name",
    [
        "upload",
        "hash_files",
        "hash_files_relative",
        "parse_volume",
        "inspect_job",
        "success",
        "failure",
        "always",
    ],
)
def test_refused_functions(name: str) -> None:
    error = fails("${{ " + name + "('x') }}")
    assert error.message.startswith(f"{name}() is not supported outside apolo-flow")
    assert error.column == 5


def test_unknown_function() -> None:
    error = fails("${{ parse_json('{}') }}")
    assert error.message.startswith("unknown function parse_json(); available: fmt, from_json")
    assert error.column == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${{ len() }}", "len() takes 1 argument(s), got 0"),
        ("${{ join(',') }}", "join() takes 2 to 3 argument(s), got 1"),
        ("${{ fmt() }}", "fmt() takes at least 1 argument(s), got 0"),
        ("${{ len(5) }}", "len() argument 1 should be a str, list, tuple, mapping or set, got 5"),
        ("${{ lower(1) }}", "lower() argument 1 should be a str, got 1"),
        ("${{ keys(params.items) }}", "keys() argument 1 should be a mapping, got [1, 'a']"),
        ("${{ join('_', [1]) }}", "join(): item 0 is 1, not a str"),
        ("${{ int('x') }}", "int(): invalid literal for int()"),
        ("${{ from_json('nope') }}", "from_json(): Expecting value"),
        ("${{ fmt('{} {}', 1) }}", "fmt(): Replacement index 1 out of range"),
        ("${{ fmt('{x}', 1) }}", "fmt(): named field {x}"),
        ("${{ 1 / 0 }}", "cannot evaluate 1 / 0: division by zero"),
        ("${{ 1 < 'a' }}", "cannot evaluate 1 < 'a': '<' not supported"),
    ],
)
def test_bad_calls_and_operations(text: str, message: str) -> None:
    assert fails(text).message.startswith(message)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("${{ a b }}", "syntax error: expected '}}', got 'b'", 7),
        ("${{ }}", "syntax error: expected an expression, got '}}'", 5),
        ("${{ params.name==1 }}", "syntax error: unexpected '=' (an operator needs a space", 16),
        ("${{ params.epochs -1 }}", "syntax error: expected '}}', got '-1' (an operator needs", 19),
        ("${{ -params.epochs }}", "syntax error: unexpected '-'", 5),
        ("${{ params. }}", "syntax error: expected a name after '.', got '}}'", 13),
        ("${{ params.x.0 }}", "syntax error: expected a name after '.', got '0'", 14),
        ("${{ (params).x }}", "syntax error: expected '}}', got '.'", 13),
        ("${{ [1, 2][0] }}", "syntax error: expected '}}', got '['", 11),
        ("${{ len('a',) }}", "syntax error: expected an argument, got ')'", 13),
        ("${{ 1 if 2 }}", "syntax error: expected 'else', got '}}'", 12),
        ("${{ {'a': {'b': 1}} }}", "syntax error: expected '}', got '}}' ('}}' always ends", 18),
        ("${{ a ]]", "syntax error: expected '}}' to close the expression, got ']]'", 7),
        ("${{ 007 }}", "syntax error: invalid number '007'", 5),
        ("${{ Nonex }}", "syntax error: expected '}}', got 'x'", 9),
        ("${{ [x for x in params.items] }}", "list comprehensions are not supported", 8),
    ],
)
def test_syntax_errors(text: str, message: str, column: int) -> None:
    error = fails(text)
    assert error.message.startswith(message)
    assert error.column == column
    assert error.line == 1


@pytest.mark.parametrize(
    ("text", "column"),
    [("${{", 1), ("echo ${{ params.name", 6), ("$[[ params.name }", 1), ("a }} b ${{ x }", 8)],
)
def test_unterminated_expression(text: str, column: int) -> None:
    error = fails(text)
    assert error.message.startswith(f"unterminated {text[column - 1 : column + 2]!r}: no ")
    assert error.column == column


def test_errors_in_multiline_text_give_the_line() -> None:
    error = fails("python train.py\n  --epochs ${{ params.epoch }}\n")
    assert (error.line, error.column) == (2, 16)
    assert str(error).endswith("(at line 2, column 16)")
    error = fails("echo ${{ params.name\n}}")
    assert error.message.startswith("line break inside '${{'")
    assert (error.line, error.column) == (1, 21)


def test_error_without_position() -> None:
    assert str(FlowExpressionError("bad")) == "bad"
    assert isinstance(FlowExpressionError("bad", 3), ValueError)

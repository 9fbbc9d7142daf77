"""The ``${{ ... }}`` expression language of neuro-flow / apolo-flow project files.

A ``live.yml`` value is literal text with any number of ``${{ expr }}`` parts (``$[[ expr ]]``
is the same thing, for files that go through other ``{{ }}`` templating). This module parses
and evaluates the subset of the language a job definition needs, synchronously, over plain
Python data: the contexts (``flow``, ``project``, ``params``, ``env``, ``volumes``...) are
dicts the caller builds.

It follows apolo-flow's tokenizer and evaluator, quirks included, so that a file means the
same here as under ``apolo-flow run``:

* a binary operator needs a space or tab after it, and ``-2`` is a negative literal, so
  ``a==b`` and ``a -2`` are syntax errors;
* ``}}`` and ``]]`` always end an expression, even inside a dict or list literal;
* ``and`` / ``or`` evaluate both sides; only ``x if cond else y`` is lazy;
* there is no escape: ``$${{ x }}`` is a ``$`` followed by the expression;
* a value goes into text through ``str()``: ``True``, ``None``, ``[1, 'a']``, ``{'k': 2}``;
* an expression cannot span lines.

Left out: list comprehensions, and the functions that need the platform, the file system or
a batch run (``upload()``, ``hash_files()``, ``success()``...), which are refused by name.
"""

from __future__ import annotations

import ast
import functools
import json
import operator
import re
import warnings
from collections.abc import Callable, Mapping, Sized
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["FlowExpressionError", "evaluate", "render"]


class FlowExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated.

    ``message`` says what is wrong; ``column`` (1-based) and ``line`` (1-based, counted within
    the text, for multi-line commands) point at the part at fault when it is known.
    """

    def __init__(self, message: str, column: int | None = None, line: int | None = None) -> None:
        super().__init__(message, column, line)
        self.message = message
        self.column = column
        self.line = line

    def __str__(self) -> str:
        if self.column is None:
            return self.message
        at = f"line {self.line}, column" if self.line not in (None, 1) else "column"
        return f"{self.message} (at {at} {self.column})"


class _Fail(Exception):
    """An error at an offset of the text; the public functions turn it into line and column."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# -- tokens ----------------------------------------------------------------------------------
class _Tok(NamedTuple):
    kind: str
    value: str
    start: int
    end: int


_OPEN_RE = re.compile(r"\$\{\{|\$\[\[")
_CLOSER = {"${{": "}}", "$[[": "]]"}
# Alternatives are tried in order, not longest first, as apolo-flow does: "Nonex" is None
# followed by the name "x", and an operator only counts when whitespace follows it.
_TOKEN_RE = re.compile(
    "|".join(
        f"(?P<{kind}>{pattern})"
        for kind, pattern in (
            ("open", r"\$\{\{|\$\[\["),
            ("close", r"\}\}|\]\]"),
            ("space", r"[ \t]+"),
            ("none", r"None"),
            ("bool", r"True|False"),
            (
                "num",
                r"-?[0-9]+\.[0-9]*(?:[Ee][+\-]?[0-9]+)*"
                r"|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|-?[0-9][0-9_]*",
            ),
            ("str", r"'[^']*'|\"[^\"]*\""),
            ("op", r"(?:==|!=|<=|<|>=|>|\||\+|-|\*|/|%)(?=[ \t])"),
            ("name", r"[A-Za-z][A-Za-z_0-9]*"),
            ("punct", r"[.,:()\[\]{}]"),
        )
    )
)


def _lex(text: str, opener: re.Match[str]) -> tuple[list[_Tok], int]:
    """The tokens of one expression, up to and including the one that closes it."""
    tokens: list[_Tok] = []
    i = opener.end()
    while i < len(text):
        m = _TOKEN_RE.match(text, i)
        if m is None:
            if text[i] in "\r\n":
                raise _Fail(f"line break inside {opener.group()!r}: write it on one line", i)
            hint = " (an operator needs a space after it)" if text[i] in "=!<>|+-*/%" else ""
            raise _Fail(f"syntax error: unexpected {text[i]!r}{hint}", i)
        i = m.end()
        if m.lastgroup != "space":
            tokens.append(_Tok(str(m.lastgroup), m.group(), m.start(), i))
            if m.lastgroup == "close":
                return tokens, i
    closer = _CLOSER[opener.group()]
    raise _Fail(f"unterminated {opener.group()!r}: no {closer!r} closes it", opener.start())


# -- parsing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Node:
    """One piece of an expression, ``text[start:end]``.

    ``kind`` is ``lit`` (``value`` is the literal), ``ref`` (``value`` names a context),
    ``attr`` / ``item`` (``args`` are the object and the key, a ``lit`` for an attr), ``call``
    (``value`` is the function), ``op`` (``value`` is the operator of one or two ``args``),
    ``if`` (``args``: then, test, else), ``list`` or ``dict`` (keys and values alternate).
    """

    kind: str
    start: int
    end: int
    value: Any = None
    args: tuple[_Node, ...] = ()


# Loosest first; None is the level of the prefix `not`.
_LEVELS = ("or", "and", None, "== != < <= > >=", "|", "+ -", "* / %")
_BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


class _Parser:
    """Recursive descent over one expression's tokens.

    Keywords and operators are matched by their text whatever their token kind, as apolo-flow
    does: ``not(x)`` and ``a or(b)`` are valid there, so they are here.
    """

    def __init__(self, tokens: list[_Tok], opener: str) -> None:
        self.tokens = tokens
        self.closer = _CLOSER[opener]
        self.i = 0

    def parse(self) -> _Node:
        node = self._expr()
        tok = self._peek()
        if tok.kind != "close":
            raise self._unexpected(tok, repr(self.closer))
        if tok.value != self.closer:
            message = f"syntax error: expected {self.closer!r} to close the expression"
            raise _Fail(f"{message}, got {tok.value!r}", tok.start)
        return node

    def _peek(self) -> _Tok:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def _next(self) -> _Tok:
        tok = self._peek()
        self.i += 1
        return tok

    def _expect(self, value: str) -> _Tok:
        tok = self._next()
        if tok.value != value:
            raise self._unexpected(tok, repr(value))
        return tok

    def _unexpected(self, tok: _Tok, wanted: str) -> _Fail:
        message = f"syntax error: expected {wanted}, got {tok.value!r}"
        if tok.kind == "close" and sum(_BRACKETS.get(t.value, 0) for t in self.tokens) > 0:
            message += f" ({tok.value!r} always ends an expression: put a space between brackets)"
        if tok.kind == "num" and tok.value.startswith("-"):
            message += " (an operator needs a space after it)"
        return _Fail(message, tok.start)

    def _expr(self) -> _Node:
        node = self._binary(0)
        if self._peek().value != "if":
            return node
        self.i += 1
        test = self._binary(0)
        self._expect("else")
        orelse = self._expr()
        return _Node("if", node.start, orelse.end, args=(node, test, orelse))

    def _binary(self, level: int) -> _Node:
        if level == len(_LEVELS):
            return self._factor()
        ops = _LEVELS[level]
        if ops is None:
            tok = self._peek()
            if tok.value != "not":
                return self._binary(level + 1)
            self.i += 1
            operand = self._binary(level)
            return _Node("op", tok.start, operand.end, "not", (operand,))
        node = self._binary(level + 1)
        while (tok := self._peek()).value in ops.split():
            self.i += 1
            right = self._binary(level + 1)
            node = _Node("op", node.start, right.end, tok.value, (node, right))
        return node

    def _factor(self) -> _Node:
        tok = self._peek()
        if tok.value not in ("+", "-"):
            return self._atom()
        self.i += 1
        operand = self._factor()
        return _Node("op", tok.start, operand.end, tok.value, (operand,))

    def _atom(self) -> _Node:
        tok = self._next()
        if tok.value == "(":
            node = self._expr()
            self._expect(")")
            return node
        if tok.kind in ("none", "bool", "num", "str"):
            return _Node("lit", tok.start, tok.end, _literal(tok))
        if tok.value in ("[", "{"):
            return self._collection(tok)
        if tok.kind != "name":
            raise self._unexpected(tok, "an expression")
        node = _Node("ref", tok.start, tok.end, tok.value)
        if self._peek().value == "(":
            node = self._call(tok)
        # Only names and calls take `.attr` / `[key]`, as in apolo-flow.
        while self._peek().value in (".", "["):
            if self._next().value == ".":
                name = self._next()
                if name.kind != "name":
                    raise self._unexpected(name, "a name after '.'")
                key = _Node("lit", name.start, name.end, name.value)
                node = _Node("attr", node.start, name.end, args=(node, key))
            else:
                key = self._expr()
                node = _Node("item", node.start, self._expect("]").end, args=(node, key))
        return node

    def _call(self, name: _Tok) -> _Node:
        self.i += 1
        args: list[_Node] = []
        while self._peek().value != ")":
            args.append(self._expr())
            if self._peek().value != ",":
                break
            self.i += 1
            if self._peek().value == ")":  # apolo-flow takes no trailing comma in a call
                raise self._unexpected(self._peek(), "an argument")
        end = self._expect(")").end
        _check_call(name, len(args))
        return _Node("call", name.start, end, name.value, tuple(args))

    def _collection(self, opener: _Tok) -> _Node:
        closer, items = ("]" if opener.value == "[" else "}"), []
        while self._peek().value != closer:
            items.append(self._expr())
            if closer == "}":
                self._expect(":")
                items.append(self._expr())
            if self._peek().value == "for":
                raise _Fail("list comprehensions are not supported here", self._peek().start)
            if self._peek().value != ",":
                break
            self.i += 1
        end = self._expect(closer).end
        return _Node("list" if closer == "]" else "dict", opener.start, end, args=tuple(items))


def _literal(tok: _Tok) -> Any:
    if tok.kind == "none":
        return None
    if tok.kind == "bool":
        return tok.value == "True"
    try:
        with warnings.catch_warnings():
            # A bad escape such as '\d' only warns, and stays as written, as in apolo-flow.
            warnings.simplefilter("ignore")
            return ast.literal_eval(tok.value)
    except (ValueError, SyntaxError):
        what = "number" if tok.kind == "num" else "string"
        raise _Fail(f"syntax error: invalid {what} {tok.value!r}", tok.start) from None


_Part = str | _Node


@functools.lru_cache(maxsize=512)
def _parse(text: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    i = 0
    while (opener := _OPEN_RE.search(text, i)) is not None:
        if opener.start() > i:
            parts.append(text[i : opener.start()])
        tokens, i = _lex(text, opener)
        parts.append(_Parser(tokens, opener.group()).parse())
    if i < len(text) or not parts:
        parts.append(text[i:])
    return tuple(parts)


# -- functions -------------------------------------------------------------------------------
class _Func(NamedTuple):
    call: Callable[..., Any]
    types: tuple[type | tuple[type, ...], ...]  # what each argument may be
    required: int  # how many of them must be given
    varargs: bool = False  # then any number of arguments of any type


def _range(start: int, stop: Any = None, step: Any = None) -> list[int]:
    # apolo-flow takes a zero stop or step for a missing one: range(3, 0) is range(3).
    args = [start, *([stop] if stop else []), *([step] if stop and step else [])]
    return list(range(*args))


def _fmt(spec: str, *args: Any) -> str:
    try:
        return spec.format(*args)
    except KeyError as e:
        raise ValueError(
            f"named field {{{e.args[0]}}}: only {{}} fields are filled, in order"
        ) from None


def _join(sep: str, items: Any, convert: bool = False) -> str:
    texts = [str(item) if convert else item for item in items]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"item {index} is {text!r}, not a str (pass True third to convert)")
    return sep.join(texts)


def _to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, AbstractSet):
            return sorted(obj)
        raise TypeError(f"a {type(obj).__name__} cannot be written as JSON")

    return json.dumps(value, default=default)


_FUNCTIONS = {
    "len": _Func(len, ((str, list, tuple, Mapping, AbstractSet),), 1),
    "int": _Func(int, ((int, str, float),), 1),
    "range": _Func(_range, (int, object, object), 1),
    "nothing": _Func(lambda: None, (), 0),
    "fmt": _Func(_fmt, (str,), 1, varargs=True),
    "str": _Func(str, (object,), 1),
    "replace": _Func(str.replace, (str, str, str), 3),
    "join": _Func(_join, (str, (list, tuple, str, Mapping), bool), 2),
    "keys": _Func(list, (Mapping,), 1),
    "values": _Func(lambda mapping: list(mapping.values()), (Mapping,), 1),
    "to_json": _Func(_to_json, (object,), 1),
    "from_json": _Func(json.loads, (str,), 1),
    "lower": _Func(str.lower, (str,), 1),
    "upper": _Func(str.upper, (str,), 1),
}
_REFUSED = {
    "upload": "it copies local files to the platform's storage",
    "hash_files": "it hashes files of the flow's workspace",
    "hash_files_relative": "it hashes local files",
    "parse_volume": "it needs an apolo client",
    "inspect_job": "it looks up running jobs",
    "success": "it checks the tasks of a batch",
    "failure": "it checks the tasks of a batch",
    "always": "it marks tasks of a batch",
}


def _check_call(name: _Tok, count: int) -> None:
    if name.value in _REFUSED:
        return  # refused when evaluated, so that referenced_contexts() can still read the text
    func = _FUNCTIONS.get(name.value)
    if func is None:
        known = ", ".join(sorted(_FUNCTIONS))
        raise _Fail(f"unknown function {name.value}(); available: {known}", name.start)
    most = None if func.varargs else len(func.types)
    if count < func.required or (most is not None and count > most):
        takes = f"{func.required} to {most}" if most != func.required else str(most)
        takes = f"at least {func.required}" if most is None else takes
        raise _Fail(f"{name.value}() takes {takes} argument(s), got {count}", name.start)


def _type_names(types: type | tuple[type, ...]) -> str:
    names = [t.__name__.lower() for t in (types if isinstance(types, tuple) else (types,))]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


# -- evaluation ------------------------------------------------------------------------------
def _merge_or(left: Any, right: Any) -> Any:
    # Mappings merge even when only one side is a mapping (the other side wins then), as in
    # apolo-flow, which predates dict | dict.
    if isinstance(left, Mapping):
        return {**left, **right}
    if isinstance(right, Mapping):
        return {**right, **left}
    return operator.or_(left, right)


_OPERATORS: dict[str, Callable[..., Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "|": _merge_or,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
    "and": lambda left, right: left and right,
    "or": lambda left, right: left or right,
}
_UNARY: dict[str, Callable[[Any], Any]] = {
    "not": operator.not_,
    "-": operator.neg,
    "+": operator.pos,
}
_ERRORS = (TypeError, ValueError, LookupError, ArithmeticError)


def _listing(value: Any, name: str) -> str:
    if isinstance(value, Mapping):
        keys = sorted(map(str, value))
        more = ", ..." if len(keys) > 20 else ""
        return f"; {name} has: {', '.join(keys[:20])}{more}" if keys else f"; {name} is empty"
    return f"; {name} has {len(value)} items" if isinstance(value, Sized) else ""


class _Evaluator:
    def __init__(self, text: str, contexts: Mapping[str, Any]) -> None:
        self.text = text
        self.contexts = contexts

    def src(self, node: _Node) -> str:
        return self.text[node.start : node.end]

    def eval(self, node: _Node) -> Any:
        kind, args = node.kind, node.args
        if kind == "lit":
            return node.value
        if kind == "ref":
            if node.value not in self.contexts:
                known = ", ".join(sorted(self.contexts))
                raise _Fail(f"unknown context {node.value!r}; available: {known}", node.start)
            return self.contexts[node.value]
        if kind in ("attr", "item"):
            return self._get(node)
        if kind == "call":
            return self._call(node)
        if kind == "if":
            return self.eval(args[0] if self.eval(args[1]) else args[2])
        # Both sides of `and` / `or` are evaluated first, as apolo-flow does.
        values = [self.eval(arg) for arg in args]
        try:
            if kind == "list":
                return values
            if kind == "dict":
                return dict(zip(values[::2], values[1::2], strict=True))
            if len(values) == 1:
                return _UNARY[node.value](values[0])
            return _OPERATORS[node.value](*values)
        except _ERRORS as e:
            raise _Fail(f"cannot evaluate {self.src(node)}: {e}", node.start) from None

    def _get(self, node: _Node) -> Any:
        obj, key = self.eval(node.args[0]), self.eval(node.args[1])
        where, kind = self.src(node.args[0]), type(obj).__name__
        if node.kind == "attr" and not isinstance(obj, Mapping):
            raise _Fail(f"{where} is a {kind}, it has no attribute {key!r}", node.start)
        if not isinstance(obj, Mapping | list | tuple | str):
            raise _Fail(f"{where} is a {kind}, it cannot be indexed", node.start)
        try:
            return obj[key]
        except (KeyError, IndexError):
            shown = f"{where}.{key}" if node.kind == "attr" else f"{where}[{key!r}]"
            raise _Fail(f"{shown} is not defined{_listing(obj, where)}", node.start) from None
        except TypeError as e:
            raise _Fail(f"cannot index {where} with {key!r}: {e}", node.start) from None

    def _call(self, node: _Node) -> Any:
        name = node.value
        if name in _REFUSED:
            raise _Fail(
                f"{name}() is not supported outside apolo-flow: {_REFUSED[name]}", node.start
            )
        func = _FUNCTIONS[name]
        values = [self.eval(arg) for arg in node.args]
        for index, (value, types) in enumerate(zip(values, func.types, strict=False)):
            if types is not object and not isinstance(value, types):
                wanted = _type_names(types)
                message = f"{name}() argument {index + 1} should be a {wanted}, got {value!r}"
                raise _Fail(message, node.args[index].start)
        try:
            return func.call(*values)
        except _ERRORS as e:
            raise _Fail(f"{name}(): {e}", node.start) from None


# -- public API ------------------------------------------------------------------------------
def _located(text: str, fail: _Fail) -> FlowExpressionError:
    line = text.count("\n", 0, fail.offset) + 1
    column = fail.offset - (text.rfind("\n", 0, fail.offset) + 1) + 1
    return FlowExpressionError(fail.message, column, line)


def _parsed(text: str) -> tuple[_Part, ...]:
    try:
        return _parse(text)
    except _Fail as fail:
        raise _located(text, fail) from None


def _values(text: str, contexts: Mapping[str, Any]) -> list[Any]:
    evaluator = _Evaluator(text, contexts)
    try:
        return [part if isinstance(part, str) else evaluator.eval(part) for part in _parsed(text)]
    except _Fail as fail:
        raise _located(text, fail) from None


def render(text: str, contexts: Mapping[str, Any]) -> str:
    """``text`` with each expression replaced by ``str()`` of its value."""
    return "".join(str(value) for value in _values(text, contexts))


def evaluate(text: str, contexts: Mapping[str, Any]) -> Any:
    """The value of ``text``: of any type when it is exactly one expression, else render()'s.

    Text around the expression, even a space, makes it a string, as in apolo-flow.
    """
    values = _values(text, contexts)
    if len(values) == 1 and not isinstance(_parsed(text)[0], str):
        return values[0]
    return "".join(str(value) for value in values)

"""Python reprs in attribute values (LiteLLM writes `str(usage_dict)`: single quotes, None, True) read as data
by walking their syntax tree; nothing is ever evaluated."""

from __future__ import annotations

import ast
from typing import Any

MAX_REPR_CHARS = 64_000  # a usage object is a few hundred characters; longer text is not read
MAX_DEPTH = 16


class _NotData(Exception):
    pass


def repr_object(text: str) -> dict[str, Any]:
    """The dict a Python repr spells, or {} when the text is anything else.

    Accepted: a dict display `{'prompt_tokens': 1200, 'details': {'cached_tokens': None}}` and an object built
    from keywords only, `Usage(prompt_tokens=1200, details=PromptTokensDetails(cached_tokens=0))`, which reads
    as the dict of its keywords. Values are str, int, float, bool, None, lists, tuples and those two shapes.
    """
    if len(text) > MAX_REPR_CHARS:
        return {}
    try:
        tree = ast.parse(text.strip(), mode="eval")
        value = _data(tree.body, 0)
    except (_NotData, SyntaxError, ValueError, MemoryError, RecursionError):
        return {}
    return value if type(value) is dict else {}


def _data(node: ast.AST, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _NotData
    kind = type(node)
    if kind is ast.Constant:
        value = node.value
        if value is None or type(value) in (str, int, float, bool):
            return value
        raise _NotData
    if kind is ast.Dict:
        result = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if type(key) is not ast.Constant or type(key.value) is not str:
                raise _NotData  # `**spread` or a non-string key
            result[key.value] = _data(value, depth + 1)
        return result
    if kind is ast.List or kind is ast.Tuple:
        return [_data(item, depth + 1) for item in node.elts]
    if kind is ast.Call:
        if node.args or not _is_dotted_name(node.func):
            raise _NotData
        result = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise _NotData
            result[keyword.arg] = _data(keyword.value, depth + 1)
        return result
    if kind is ast.UnaryOp and type(node.op) is ast.USub and type(node.operand) is ast.Constant:
        value = node.operand.value
        if type(value) in (int, float):
            return -value
    raise _NotData


def _is_dotted_name(node: ast.AST) -> bool:
    """`Usage` or `litellm.types.Usage`: a class name, not an expression that would compute something."""
    while type(node) is ast.Attribute:
        node = node.value
    return type(node) is ast.Name

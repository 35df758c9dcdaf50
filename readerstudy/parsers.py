"""The API's JSON parser: every JSON body is checked for shape before a view sees it.

A body nested deeper than `MAX_DEPTH` (a 10,000-level `[[[[...]]]]` used to raise RecursionError) or whose top
level is not what the view takes answers 400 with a message, like invalid JSON, so no view reads
`request.data.get` on a list or a string. The top level is an object unless the view says `json_body = list`
(an action: `@action(..., json_body=list)`).
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32  # levels of objects and arrays; the deepest body the API takes (a study's items) has three
KINDS = ((dict, "an object"), (list, "an array"), (str, "a string"), (bool, "true or false"),
         (int | float, "a number"), (type(None), "null"))


def kind(value: object) -> str:
    """What a parsed JSON value is, in the words of JSON."""
    return next(name for types, name in KINDS if isinstance(value, types))


def depth_over(value: object, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (strict: no NaN or Infinity) plus a depth limit and the top-level type the view takes."""

    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)  # invalid JSON: ParseError, 400
            too_deep = depth_over(data, self.max_depth)
        except RecursionError:  # deeper than the interpreter's recursion limit
            too_deep = True
        if too_deep:
            raise ParseError(f"The request body is nested deeper than {self.max_depth} levels.")
        expected = getattr((parser_context or {}).get("view"), "json_body", dict)
        if not isinstance(data, expected):
            raise ParseError(f"The request body must be {dict(KINDS)[expected]}, not {kind(data)}.")
        return data

# The JSON sections (META, RESIDENCY, SHADOW_POLICY, TRAIN_SCHEDULE): parsed with bounded
# nesting and checked against a small schema, so a capsule with valid checksums but odd JSON
# gets a CapsuleError naming the file and the field, never a TypeError later.
#
# A schema is a type name ("str", "int", "num", "bool", "any"), a tuple ("int", lo, hi), a
# list [item schema, max length] or [item schema, max length, exact length], or a dict
# {key: schema}; a key ending in "?" is optional. Keys a dict schema does not name are
# allowed and not checked; no section may nest deeper than _MAX_DEPTH.
import json

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import CapsuleError

_MAX_DEPTH = const(16)

_IO = {"name?": "str", "dtype?": "str", "shape?": [("int", 0, 0x7FFFFFFF), 8],
       "scale?": "num", "zero_point?": "int"}
META = {"name?": "str", "version?": "str", "inputs?": [_IO, 256], "outputs?": [_IO, 256],
        "ops?": ["str", 65536], "arena_bytes?": ("int", 0, 0x7FFFFFFF),
        "labels?": ["str", 65536]}
RESIDENCY = {"paged": [[("int", 0, 0x7FFFFFFF), 2, 2], 65536]}
ANY_OBJECT = {}


def _fail(name, field, what):
    raise CapsuleError("%s: %s %s" % (name, field, what))


def _depth_ok(value):
    # Iterative, so hostile nesting cannot exhaust the C stack checking it.
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > _MAX_DEPTH:
            return False
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            for item in v:
                if isinstance(item, (list, dict)):
                    stack.append((item, d + 1))
    return True


def check(value, schema, name, field):
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            _fail(name, field, "is not a JSON object")
        for key, sub in schema.items():
            optional = key.endswith("?")
            key = key[:-1] if optional else key
            if key in value:
                check(value[key], sub, name, field + "." + key)
            elif not optional:
                _fail(name, field, "has no %r" % key)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            _fail(name, field, "is not a JSON list")
        if len(value) > schema[1] or (len(schema) > 2 and len(value) != schema[2]):
            _fail(name, field, "has %d items (%s %d)" % (
                len(value), "need" if len(schema) > 2 else "at most",
                schema[2] if len(schema) > 2 else schema[1]))
        for i, item in enumerate(value):
            check(item, schema[0], name, "%s[%d]" % (field, i))
    elif isinstance(schema, tuple):
        if not isinstance(value, int) or isinstance(value, bool) \
                or not schema[1] <= value <= schema[2]:
            _fail(name, field, "is %r, not an integer in [%d, %d]"
                  % (value, schema[1], schema[2]))
    elif schema == "str":
        if not isinstance(value, str):
            _fail(name, field, "is not a string")
    elif schema == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(name, field, "is not an integer")
    elif schema == "num":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            _fail(name, field, "is not a number")
    elif schema == "bool":
        if not isinstance(value, bool):
            _fail(name, field, "is not true or false")


def parse(raw, schema, name, section):
    # JSON bytes -> checked value. A bad or hostile text is a CapsuleError naming the section.
    try:
        value = json.loads(raw)
    except (ValueError, RuntimeError, TypeError, UnicodeError):
        # RuntimeError: nesting past the parser's recursion limit (RecursionError on CPython).
        raise CapsuleError("%s: %s is not valid JSON" % (name, section))
    if not _depth_ok(value):
        _fail(name, section, "is nested deeper than %d" % _MAX_DEPTH)
    check(value, schema, name, section)
    return value

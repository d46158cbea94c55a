#!/usr/bin/env python3
"""Test oracle: renders chat templates with Jinja2 the way transformers' apply_chat_template does.

Usage:  python3 jinja_oracle.py cases.json > results.json
cases.json: [{"template": "...", "vars": {...}}, ...]
results:    [{"text": "..."} | {"error": "<ExceptionType>"}, ...] in the same order.

Environment: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[generation tag,
loopcontrols]), transformers' tojson, raise_exception, and strftime_now fixed to 2026-07-26 00:00:00.
"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(jinja2.ext.Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_gen"), [], [], body).set_lineno(lineno)

    def _gen(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime(2026, 7, 26, 0, 0, 0).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    env = make_env()
    out = []
    for c in cases:
        try:
            out.append({"text": env.from_string(c["template"]).render(**c["vars"])})
        except Exception as e:  # the template raised, or Jinja2 failed on it
            out.append({"error": type(e).__name__, "message": str(e)})
    sys.stdout.write(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""python-transform: the Python twin of the Rust `transform` guest, built with
componentize-py 0.25.1 into a component of world hookd:lambda/lambda (CPython
inside, ~18 MB, so the built .wasm is not committed: build.sh makes it). Same
visible contract as `transform`, with the name "python": it parses event.data
as a JSON object (anything else raises Err, i.e. handle returns an error),
uppercases entity.username when that is a string, sets
"transformed_by": "python", appends "python" to the array "chain" (created
when absent, replaced when not an array) and returns the new JSON; it calls
host.log(info, "python: <source> <event> <id>") once. Used by the lambda
handler's tests of non-Rust components and of chains mixing languages
(transform -> python-transform shows "chain": ["transform", "python"]).
"""

import json
from typing import Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

NAME = "python"


class WitWorld(wit_world.WitWorld):
    def handle(self, event: types.Event) -> Optional[str]:
        host.log(host.Level.INFO, f"{NAME}: {event.source} {event.event} {event.id}")
        try:
            data = json.loads(event.data)
        except ValueError as e:
            raise Err(f"{NAME}: event data is not JSON: {e}")
        if not isinstance(data, dict):
            raise Err(f"{NAME}: event data is not a JSON object")

        entity = data.get("entity")
        if isinstance(entity, dict) and isinstance(entity.get("username"), str):
            entity["username"] = entity["username"].upper()

        data["transformed_by"] = NAME
        chain = data.get("chain")
        if isinstance(chain, list):
            chain.append(NAME)
        else:
            data["chain"] = [NAME]
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

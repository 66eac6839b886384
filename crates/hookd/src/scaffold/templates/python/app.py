"""{{name}}: a guest of hookd's lambda handler. It parses the event data as
a JSON object (anything else is an error: the delivery fails and is
retried), logs one line into the server's log, sets
"handled_by": "{{name}}" and returns the object, the data for the next
guest of the hook's chain or the chain's result.

componentize-py generates `wit_world` from wit/lambda.wit when it builds.
"""

import json
from typing import Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

NAME = "{{name}}"


class WitWorld(wit_world.WitWorld):
    def handle(self, event: types.Event) -> Optional[str]:
        try:
            data = json.loads(event.data)
        except ValueError as e:
            raise Err(f"{NAME}: the event data is not JSON: {e}")
        if not isinstance(data, dict):
            raise Err(f"{NAME}: the event data is not a JSON object")
        host.log(host.Level.INFO, f"{NAME}: {event.source} {event.event} {event.id}")
        data["handled_by"] = NAME
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

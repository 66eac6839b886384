"""Verifies one received request with the Standard Webhooks reference
library (PyPI `standardwebhooks`), once per secret.

Reads a JSON object on stdin: `secrets` (a list), `headers` (name to
value) and `body_base64` (the exact body bytes). Writes a JSON list on
stdout, one item per secret in order: `true` when the request verifies
with it, else the library's error message. Exits 3 when the library
cannot be imported, so the caller can tell a missing tool from a failure.
"""

import base64
import json
import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError as e:
    print(f"standardwebhooks is not installed: {e}", file=sys.stderr)
    sys.exit(3)

request = json.load(sys.stdin)
body = base64.b64decode(request["body_base64"])
results = []
for secret in request["secrets"]:
    try:
        Webhook(secret).verify(body, request["headers"], json_parse=False)
        results.append(True)
    except Exception as e:  # the library's verdict, whatever its kind
        results.append(f"{type(e).__name__}: {e}")
json.dump(results, sys.stdout)

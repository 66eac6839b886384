// {{name}}: a guest of hookd's lambda handler. It parses the event data as
// a JSON object (anything else is an error: the delivery fails and is
// retried), logs one line into the server's log, sets
// "handled_by": "{{name}}" and returns the object, the data for the next
// guest of the hook's chain or the chain's result.
//
// componentize-js maps the WIT: `result<option<string>, string>` is a
// returned string (or undefined for none) or a thrown string; record fields
// are camelCase (event.hookId); enum cases are strings ('info').
import { log } from 'hookd:lambda/host@0.1.0';

const NAME = '{{name}}';

export function handle(event) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch (e) {
    throw `${NAME}: the event data is not JSON: ${e.message}`;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw `${NAME}: the event data is not a JSON object`;
  }
  log('info', `${NAME}: ${event.source} ${event.event} ${event.id}`);
  data.handled_by = NAME;
  return JSON.stringify(data);
}

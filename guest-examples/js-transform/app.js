// js-transform: the JavaScript twin of the Rust `transform` guest, built
// with componentize-js (package.json pins it) into a component of world
// hookd:lambda/lambda (SpiderMonkey inside, ~12 MB, so the built .wasm is not
// committed: build.sh makes it). Same visible contract as `transform`, with
// the name "js": it parses event.data as a JSON object (anything else throws,
// i.e. handle returns an error), uppercases entity.username when that is a
// string, sets "transformed_by": "js", appends "js" to the array "chain"
// (created when absent, replaced when not an array) and returns the new JSON;
// it calls host.log(info, "js: <source> <event> <id>") once. Used by the
// lambda handler's test of JavaScript components (transform -> js-transform
// shows "chain": ["transform", "js"]).
//
// componentize-js maps the WIT: `result<option<string>, string>` is a
// returned string (or undefined for none) or a thrown string; record fields
// are camelCase (event.hookId); enum cases are strings ('info').
import { log } from 'hookd:lambda/host@0.1.0';

const NAME = 'js';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

export function handle(event) {
  log('info', `${NAME}: ${event.source} ${event.event} ${event.id}`);
  let data;
  try {
    data = JSON.parse(event.data);
  } catch (e) {
    throw `${NAME}: event data is not JSON: ${e.message}`;
  }
  if (!isObject(data)) {
    throw `${NAME}: event data is not a JSON object`;
  }

  if (isObject(data.entity) && typeof data.entity.username === 'string') {
    data.entity.username = data.entity.username.toUpperCase();
  }

  data.transformed_by = NAME;
  if (Array.isArray(data.chain)) {
    data.chain.push(NAME);
  } else {
    data.chain = [NAME];
  }
  return JSON.stringify(data);
}

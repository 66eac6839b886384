//! A lambda hook's effective grant as its page and the audit show it: per
//! guest, the items of each kind it gets, what it can use, its limits, and
//! what was asked for or imported but is withheld, and why (the outbound
//! policy's verdict on a host among them).

use serde_json::{Map, Value, json};

/// The grant's members that are not a kind's items.
const NOT_ITEMS: &[&str] = &["mode", "limits", "usable", "withheld"];

/// An item as a line of text: a string as it is, anything else as JSON.
fn item_text(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `GET /event-hooks/{id}/capabilities` made ready for the page: each
/// guest with its items as text, kind by kind.
pub(crate) fn view(capabilities: &Value) -> Value {
    let guests: Vec<Value> = capabilities["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|guest| {
            let grant = &guest["grant"];
            let kinds: Map<String, Value> = grant
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(key, _)| !NOT_ITEMS.contains(&key.as_str()))
                .map(|(key, items)| {
                    let texts: Vec<String> = items
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(item_text)
                        .collect();
                    (key.clone(), json!(texts))
                })
                .collect();
            json!({
                "function": guest["function"],
                "guest": guest["guest"],
                "instance": guest["instance"],
                "error": guest["error"],
                "kinds": kinds,
                "usable": grant["usable"],
                "withheld": grant["withheld"],
                "limits": if grant["limits"].is_null() { String::new() } else {
                    serde_json::to_string_pretty(&grant["limits"]).unwrap_or_default()
                },
            })
        })
        .collect();
    json!({"mode": capabilities["mode"], "guests": guests})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_of_every_kind_read_as_text() {
        let view = view(&json!({
            "mode": "sandbox",
            "data": [{
                "function": "g", "guest": {"name": "g", "digest": "d"}, "instance": "per-event",
                "grant": {"mode": "sandbox", "http": [{"host": "a.example", "port": 443}],
                          "env": ["HOME"], "dirs": [], "limits": {"memory": 1},
                          "usable": ["http"], "withheld": [{"capability": "env", "item": "X", "reason": "no"}]}
            }, {"function": "missing", "error": "guest 'missing' does not exist"}]
        }));
        let guest = &view["guests"][0];
        assert_eq!(guest["kinds"]["env"], json!(["HOME"]));
        assert_eq!(
            guest["kinds"]["http"],
            json!([r#"{"host":"a.example","port":443}"#])
        );
        assert!(guest["kinds"].get("limits").is_none());
        assert_eq!(view["guests"][1]["error"], "guest 'missing' does not exist");
    }
}

//! The Lua side: the transform guest's job written in Lua and run by
//! LuaJIT through mlua, Kong's way (one state, the function loaded once,
//! called per event) and with a fresh state per event (the isolation a
//! fresh wasm instance gives).
//!
//! The data crosses as JSON, as it does for the guest: decoded by
//! serde_json straight into a Lua table and encoded back from it (the
//! native-code JSON Kong gets from lua-cjson), with no intermediate value.

use hookd_model::Event;
use mlua::{Function, Lua, Value};

/// What `transform.wasm` does: uppercase `entity.username`, set
/// `transformed_by`, append to `chain`, log one line through the host.
const TRANSFORM: &str = r#"
return function(source, event, id, data)
  log("info", "transform: " .. source .. " " .. event .. " " .. id)
  local entity = data.entity
  if type(entity) == "table" and type(entity.username) == "string" then
    entity.username = string.upper(entity.username)
  end
  data.transformed_by = "transform"
  -- A JSON array decodes to a sequence (or an empty table); anything
  -- else is replaced, as the guest replaces a non-array.
  local chain = data.chain
  if type(chain) == "table" and (#chain > 0 or next(chain) == nil) then
    chain[#chain + 1] = "transform"
  else
    data.chain = { "transform" }
  end
  return data
end
"#;

/// One Lua state with the transform loaded: Kong's model.
pub struct Shared {
    lua: Lua,
    transform: Function,
}

impl Shared {
    /// A state with the host's `log` and the transform loaded once.
    pub fn new() -> mlua::Result<Self> {
        let lua = Lua::new();
        let transform = load(&lua)?;
        Ok(Shared { lua, transform })
    }

    /// Runs the transform on one event's data: JSON in, JSON out.
    pub fn transform(&self, event: &Event, data: &str) -> anyhow::Result<String> {
        call(&self.lua, &self.transform, event, data)
    }

    /// `jit.version`, e.g. `LuaJIT 2.1.1744318430`.
    pub fn version(&self) -> mlua::Result<String> {
        self.lua
            .globals()
            .get::<mlua::Table>("jit")?
            .get::<String>("version")
    }
}

/// Runs the transform in a state made for this event alone.
pub fn fresh_transform(event: &Event, data: &str) -> anyhow::Result<String> {
    let lua = Lua::new();
    let transform = load(&lua)?;
    call(&lua, &transform, event, data)
}

/// Installs the `log` global and loads the transform. `log` stands for
/// the guest's `host.log`: the message crosses into Rust, which (like the
/// sandbox with no log subscriber) drops it.
fn load(lua: &Lua) -> mlua::Result<Function> {
    let globals = lua.globals();
    globals.set(
        "log",
        lua.create_function(|_, (_level, _message): (mlua::LuaString, mlua::LuaString)| Ok(()))?,
    )?;
    lua.load(TRANSFORM).set_name("transform").eval()
}

fn call(lua: &Lua, transform: &Function, event: &Event, data: &str) -> anyhow::Result<String> {
    let table = serde_transcode::transcode(
        &mut serde_json::Deserializer::from_str(data),
        mlua::serde::Serializer::new(lua),
    )?;
    let out: Value = transform.call((
        event.source.as_str(),
        event.event.as_str(),
        event.id.to_string(),
        table,
    ))?;
    Ok(serde_json::to_string(&out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_fresh_states_transform_alike() {
        let event = Event::new("crud", "consumers:create", serde_json::Value::Null, 0);
        let data = r#"{"entity":{"username":"bob","tags":[]},"chain":["x"]}"#;
        let shared = Shared::new().unwrap().transform(&event, data).unwrap();
        let fresh = fresh_transform(&event, data).unwrap();
        let expected = serde_json::json!({
            "entity": {"username": "BOB", "tags": []},
            "chain": ["x", "transform"],
            "transformed_by": "transform",
        });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&shared).unwrap(),
            expected
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&fresh).unwrap(),
            expected
        );
    }
}

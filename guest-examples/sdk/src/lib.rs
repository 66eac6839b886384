//! `hookd-guest`: write a guest for hookd's `lambda` handler (a WebAssembly
//! component of world `hookd:lambda/lambda`) as one `impl Handler` and one
//! [`export!`], without wiring wit-bindgen or `wasi:http` by hand.
//!
//! ```ignore
//! use hookd_guest::serde_json::{Map, Value};
//! use hookd_guest::{log, Event, Handler, Level, Outcome};
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn handle(event: Event) -> Outcome {
//!         // Anything but a JSON object is an Err: the delivery fails, and is retried.
//!         let mut data: Map<String, Value> = event.data()?;
//!         log(Level::Info, &format!("hello: {} {}", event.source, event.event));
//!         data.insert("greeted_by".into(), "hello".into());
//!         Ok(Some(data.into()))
//!     }
//! }
//!
//! hookd_guest::export!(Hello);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2`; README.md says how, and which
//! versions this crate pins.

use serde::de::DeserializeOwned;
use std::fmt;

pub mod http;

pub use serde_json;
pub use serde_json::Value;

/// The log levels of the host's `log` import.
pub use __private::hookd::lambda::host::Level;

/// wit-bindgen's output for the bundled `wit/` (a copy of the repository's
/// `wit/`, kept byte-identical by CI) and the glue around it. Only
/// [`export!`] reaches in here.
#[doc(hidden)]
pub mod __private {
    use super::Handler;

    wit_bindgen::generate!({
        world: "lambda",
        path: "wit",
        // The export macro is expanded in the guest's crate, not here.
        pub_export_macro: true,
        export_macro_name: "export_lambda",
    });

    /// Converts between the WIT's types and the SDK's around one call.
    pub fn run<H: Handler>(event: Event) -> Result<Option<String>, String> {
        let event = super::Event {
            id: event.id,
            hook_id: event.hook_id,
            source: event.source,
            event: event.event,
            data: event.data,
        };
        // Serialising a `Value` cannot fail (its keys are strings, its numbers
        // finite). `to_string` writes into the `String` directly; `Value`'s
        // Display would make the same text through `fmt::Formatter`, one
        // indirect call per fragment.
        H::handle(event)
            .map(|data| data.map(|data| serde_json::to_string(&data).expect("a Value serialises")))
            .map_err(|error| error.0)
    }
}

/// The event a guest handles.
#[derive(Debug, Clone)]
pub struct Event {
    /// Event id (uuid); stable across retries of the same delivery.
    pub id: String,
    /// Id of the event hook whose chain runs this guest.
    pub hook_id: String,
    /// The event's source, e.g. `crud`.
    pub source: String,
    /// The event's name within its source, e.g. `consumers:create`.
    pub event: String,
    data: String,
}

impl Event {
    /// The event data parsed as `T` (`Value` for any JSON). In a chain this
    /// is the previous guest's output.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.data)
    }

    /// The event data as the JSON text the host sent.
    pub fn raw_data(&self) -> &str {
        &self.data
    }
}

/// What a handler returns: `Ok(Some(data))` hands `data` to the next guest
/// (or is the chain's result), `Ok(None)` passes the input on unchanged, and
/// `Err` fails the delivery, which is then retried.
pub type Outcome = Result<Option<Value>, Error>;

/// Why a guest failed an event: its message is the delivery's error.
///
/// Anything that implements `Display` converts into it, so `?` works on
/// `serde_json` errors, [`http::Error`], `String` and `&str`. It does not
/// implement `Display` itself, which is what allows that blanket conversion.
pub struct Error(String);

impl<E: fmt::Display> From<E> for Error {
    fn from(error: E) -> Self {
        Error(error.to_string())
    }
}

impl Error {
    /// The message the delivery records.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A guest: hookd calls [`Handler::handle`] once per event.
pub trait Handler {
    fn handle(event: Event) -> Outcome;
}

/// Writes `message` into the server's log, tagged with hook and guest.
pub fn log(level: Level, message: &str) {
    __private::hookd::lambda::host::log(level, message)
}

/// Makes `$handler` (a type implementing [`Handler`]) the component's
/// `handle` export. Use it once, in the guest's crate root.
#[macro_export]
macro_rules! export {
    ($handler:ty) => {
        const _: () = {
            struct Export;

            impl $crate::__private::Guest for Export {
                fn handle(
                    event: $crate::__private::Event,
                ) -> ::core::result::Result<
                    ::core::option::Option<::std::string::String>,
                    ::std::string::String,
                > {
                    $crate::__private::run::<$handler>(event)
                }
            }

    $crate::__private::export_lambda!(Export with_types_in $crate::__private);
        };
    };
}

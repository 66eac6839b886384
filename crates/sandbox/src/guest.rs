//! Accepting a guest: what it is, what it imports, compiling it once per
//! digest and keeping the compiled form on disk.

use crate::invoke::{CommandState, bindings};
use crate::{CapabilityClass, Sandbox};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
use wasmtime::{Module, Precompiled};

use hookd_model::hook::InstanceMode;

const PREVIEW1: &str = "wasi_snapshot_preview1";

/// The two kinds of guest hookd runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    /// A component of world `hookd:lambda/lambda`.
    Component,
    /// A WASI preview-1 command module: event data on stdin, result on
    /// stdout, exit code 0 for success.
    Command,
}

impl GuestKind {
    /// How a guest of this kind is instantiated when its hook asks for
    /// `asked`: a command's `_start` runs once, so it always runs fresh.
    pub fn instance(self, asked: InstanceMode) -> InstanceMode {
        match self {
            GuestKind::Component => asked,
            GuestKind::Command => InstanceMode::PerEvent,
        }
    }
}

impl std::fmt::Display for GuestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GuestKind::Component => "component",
            GuestKind::Command => "command module",
        })
    }
}

/// What a guest is and what it can reach; stored with it at upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReport {
    /// sha256 of its bytes, hex.
    pub digest: String,
    /// Its size in bytes.
    pub size: usize,
    /// Component or command.
    pub kind: GuestKind,
    /// Interfaces (`wasi:http/types@0.2.12`) or preview-1 functions
    /// (`wasi_snapshot_preview1::fd_write`) it imports.
    pub imports: Vec<String>,
    /// Names it exports.
    pub exports: Vec<String>,
    /// The capability classes of its imports, sorted, without duplicates.
    pub capabilities: Vec<CapabilityClass>,
}

/// Why a guest is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum GuestRejected {
    /// No WebAssembly magic number.
    #[error("not WebAssembly: the file does not start with the \\0asm magic number")]
    NotWasm,
    /// Larger than the server accepts.
    #[error("the guest is {size} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// wasmtime could not compile it.
    #[error("not a valid WebAssembly {kind}: {}", hookd_model::error_chain(.source.as_ref()))]
    Invalid {
        /// What its header claims it is.
        kind: GuestKind,
        /// wasmtime's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A core module without `_start`.
    #[error(
        "a core module must be a WASI preview-1 command: it has no `_start` function export (a reactor or library module cannot be run)"
    )]
    NotACommand,
    /// A command that does not export its memory.
    #[error("a command module must export its linear memory as `memory`")]
    NoMemoryExport,
    /// A component without the `handle` export.
    #[error(
        "the component does not target world hookd:lambda/lambda: it exports no function `handle` (its exports: {exports})"
    )]
    WrongWorld {
        /// What it exports instead.
        exports: String,
    },
    /// `handle` of the wrong type.
    #[error(
        "the component's `handle` export has the wrong type: expected func(event: event) -> result<option<string>, string> ({})",
        hookd_model::error_chain(.source.as_ref())
    )]
    WrongSignature {
        /// wasmtime's type check.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An import hookd does not provide.
    #[error("unsupported import `{name}`: {reason}")]
    UnsupportedImport {
        /// The import.
        name: String,
        /// Why.
        reason: String,
    },
}

/// How many guests were compiled and how many were loaded precompiled
/// from the cache directory, since the sandbox started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheCounters {
    /// Guests compiled from their bytes.
    pub compiled: u64,
    /// Guests loaded from `<cache_dir>/<digest>.cwasm`.
    pub loaded_from_cache: u64,
}

/// A guest ready to run: compiled and linked once, instantiated per call.
pub struct Guest {
    report: GuestReport,
    pub(crate) prepared: Prepared,
    /// Whether it imports any WASI interface: one that imports none (such
    /// as `noop`) can never reach a WASI context, so none is built for it.
    pub(crate) imports_wasi: bool,
}

pub(crate) enum Prepared {
    Component(bindings::LambdaPre<crate::invoke::ComponentState>),
    Command(wasmtime::InstancePre<CommandState>),
}

impl Guest {
    /// Its report.
    pub fn report(&self) -> &GuestReport {
        &self.report
    }

    /// sha256 of its bytes, hex.
    pub fn digest(&self) -> &str {
        &self.report.digest
    }

    /// The engine it was compiled for, which its stores must use.
    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        match &self.prepared {
            Prepared::Component(pre) => pre.engine(),
            Prepared::Command(pre) => pre.module().engine(),
        }
    }
}

/// Prepared guests by digest, and the counters.
#[derive(Default)]
pub(crate) struct Guests {
    by_digest: Mutex<HashMap<String, Arc<Guest>>>,
    compiled: AtomicU64,
    loaded: AtomicU64,
}

enum Compiled {
    Component(Component),
    Module(Module),
}

impl Compiled {
    fn engine(&self) -> &wasmtime::Engine {
        match self {
            Compiled::Component(c) => c.engine(),
            Compiled::Module(m) => m.engine(),
        }
    }

    /// Its memories and tables, when they are known before instantiation.
    fn resources_required(&self) -> Option<wasmtime::ResourcesRequired> {
        match self {
            Compiled::Component(c) => c.resources_required(),
            Compiled::Module(m) => Some(m.resources_required()),
        }
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Compiled::Component(c) => c.serialize(),
            Compiled::Module(m) => m.serialize(),
        }
    }
}

/// sha256 of `bytes`, hex: the digest guests are known by.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Sandbox {
    /// Checks and compiles a guest and reports what it is; an accepted
    /// guest is kept prepared (and precompiled on disk) for
    /// [`Sandbox::invoke`]. Needs no server state: `hookd guest inspect`
    /// uses it offline. Compiling takes from ~100 ms to seconds of CPU:
    /// async callers should run it in `spawn_blocking`.
    pub fn inspect(&self, bytes: &[u8]) -> Result<GuestReport, GuestRejected> {
        self.prepare(bytes).map(|g| g.report.clone())
    }

    /// The guest with this digest, if it was prepared already.
    pub fn prepared(&self, digest: &str) -> Option<Arc<Guest>> {
        lock(&self.inner.guests.by_digest).get(digest).cloned()
    }

    /// Forgets a prepared guest and its cache file (after it was deleted).
    pub fn forget(&self, digest: &str) {
        lock(&self.inner.guests.by_digest).remove(digest);
        if let Some(path) = self.cache_path(digest) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// How many guests were compiled and loaded from the cache so far.
    pub fn counters(&self) -> CacheCounters {
        let g = &self.inner.guests;
        CacheCounters {
            compiled: g.compiled.load(Ordering::Relaxed),
            loaded_from_cache: g.loaded.load(Ordering::Relaxed),
        }
    }

    /// The prepared guest for these bytes: from memory, from the cache
    /// directory, or compiled now (and written to the cache directory).
    pub fn prepare(&self, bytes: &[u8]) -> Result<Arc<Guest>, GuestRejected> {
        let max = self.inner.config.max_guest_bytes;
        if bytes.len() > max {
            return Err(GuestRejected::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        let kind = kind_of(bytes)?;
        let digest = digest(bytes);
        if let Some(guest) = self.prepared(&digest) {
            return Ok(guest);
        }
        let (compiled, from_cache) = match self.load_cached(&digest, kind) {
            Some(c) => (c, true),
            None => (self.compile(bytes, kind, &digest)?, false),
        };
        let compiled = self.onto_its_engine(compiled, kind);
        let guest = Arc::new(self.link(compiled, digest.clone(), bytes.len())?);
        let counter = if from_cache {
            &self.inner.guests.loaded
        } else {
            &self.inner.guests.compiled
        };
        counter.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.guests.by_digest).insert(digest, guest.clone());
        Ok(guest)
    }

    fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.inner.config.cache_dir.as_ref()?;
        Some(dir.join(format!("{digest}.cwasm")))
    }

    fn compile(
        &self,
        bytes: &[u8],
        kind: GuestKind,
        digest: &str,
    ) -> Result<Compiled, GuestRejected> {
        let engine = &self.inner.runtime.scanning.engine;
        let started = Instant::now();
        let invalid = |e: wasmtime::Error| GuestRejected::Invalid {
            kind,
            source: e.into(),
        };
        let compiled = match kind {
            GuestKind::Component => {
                Compiled::Component(Component::new(engine, bytes).map_err(invalid)?)
            }
            GuestKind::Command => Compiled::Module(Module::new(engine, bytes).map_err(invalid)?),
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(digest, ?kind, ms = format!("{ms:.1}"), "guest compiled");
        if let Some(path) = self.cache_path(digest) {
            let written = compiled
                .serialize()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|b| write_atomically(&path, &b));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the compiled guest cache");
            }
        }
        Ok(compiled)
    }

    fn load_cached(&self, digest: &str, kind: GuestKind) -> Option<Compiled> {
        let path = self.cache_path(digest)?;
        // Read into memory rather than `deserialize_file`: that one maps
        // the file, and a file changed in place under a running server
        // (measured: truncated by another process) kills it with SIGBUS.
        let bytes = std::fs::read(&path).ok()?;
        let started = Instant::now();
        let engine = &self.inner.runtime.scanning.engine;
        let loaded = match wasmtime::Engine::detect_precompiled(&bytes) {
            Some(Precompiled::Component) if kind == GuestKind::Component => {
                deserialize(engine, &bytes, kind)
            }
            Some(Precompiled::Module) if kind == GuestKind::Command => {
                deserialize(engine, &bytes, kind)
            }
            _ => Err(wasmtime::format_err!(
                "not a precompiled guest of this kind"
            )),
        };
        match loaded {
            Ok(compiled) => {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                tracing::info!(
                    digest,
                    ?kind,
                    ms = format!("{ms:.2}"),
                    "guest loaded from the compiled cache"
                );
                Some(compiled)
            }
            Err(e) => {
                // Another wasmtime version or engine setting, or a damaged
                // file: compiling again replaces it.
                tracing::info!(digest, reason = %e, "compiled cache entry unusable; recompiling");
                None
            }
        }
    }

    /// `compiled` (for the scanning engine) on the engine its memories
    /// call for: a guest whose memories start small is loaded again onto
    /// the clearing one (engine.rs says why). If that fails it stays where
    /// it is, slower but the same guest.
    fn onto_its_engine(&self, compiled: Compiled, kind: GuestKind) -> Compiled {
        let rt = &self.inner.runtime;
        let linked = rt.for_resources(compiled.resources_required());
        if wasmtime::Engine::same(&linked.engine, compiled.engine()) {
            return compiled;
        }
        let moved = compiled
            .serialize()
            .and_then(|bytes| deserialize(&linked.engine, &bytes, kind));
        match moved {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(error = %e, "cannot move a small guest onto the clearing engine; it runs on the scanning one");
                compiled
            }
        }
    }

    fn link(
        &self,
        compiled: Compiled,
        digest: String,
        size: usize,
    ) -> Result<Guest, GuestRejected> {
        let rt = self.inner.runtime.for_engine(compiled.engine());
        let (kind, imports, exports, prepared) = match compiled {
            Compiled::Component(component) => {
                let ty = component.component_type();
                let imports: Vec<String> =
                    ty.imports(&rt.engine).map(|(n, _)| n.to_string()).collect();
                let exports: Vec<String> =
                    ty.exports(&rt.engine).map(|(n, _)| n.to_string()).collect();
                let handle = ty.exports(&rt.engine).find(|(n, _)| *n == "handle");
                match handle.map(|(_, e)| e.ty) {
                    None => {
                        return Err(GuestRejected::WrongWorld {
                            exports: if exports.is_empty() {
                                "none".into()
                            } else {
                                exports.join(", ")
                            },
                        });
                    }
                    Some(ComponentItem::ComponentFunc(_)) => {}
                    Some(other) => {
                        return Err(GuestRejected::WrongSignature {
                            source: format!("`handle` is not a function but {other:?}").into(),
                        });
                    }
                }
                let pre = rt
                    .components
                    .instantiate_pre(&component)
                    .map_err(|e| unsupported(e, &imports, "hookd provides no such interface"))?;
                let pre = bindings::LambdaPre::new(pre)
                    .map_err(|e| GuestRejected::WrongSignature { source: e.into() })?;
                (
                    GuestKind::Component,
                    imports,
                    exports,
                    Prepared::Component(pre),
                )
            }
            Compiled::Module(module) => {
                let imports: Vec<String> = module
                    .imports()
                    .map(|i| format!("{}::{}", i.module(), i.name()))
                    .collect();
                let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
                let func = |name| {
                    module
                        .exports()
                        .any(|e| e.name() == name && e.ty().func().is_some())
                };
                if !func("_start") {
                    return Err(GuestRejected::NotACommand);
                }
                if !module
                    .exports()
                    .any(|e| e.name() == "memory" && e.ty().memory().is_some())
                {
                    return Err(GuestRejected::NoMemoryExport);
                }
                if let Some(other) = module.imports().find(|i| i.module() != PREVIEW1) {
                    return Err(GuestRejected::UnsupportedImport {
                        name: format!("{}::{}", other.module(), other.name()),
                        reason: format!("a command module may import only {PREVIEW1}"),
                    });
                }
                let pre = rt.commands.instantiate_pre(&module).map_err(|e| {
                    unsupported(e, &imports, "not a WASI preview-1 function hookd provides")
                })?;
                (GuestKind::Command, imports, exports, Prepared::Command(pre))
            }
        };
        let mut capabilities: Vec<CapabilityClass> = imports
            .iter()
            .filter_map(|i| CapabilityClass::of_import(i))
            .collect();
        capabilities.sort();
        capabilities.dedup();
        let imports_wasi = imports
            .iter()
            .any(|i| i.starts_with("wasi:") || i.starts_with(PREVIEW1));
        Ok(Guest {
            imports_wasi,
            report: GuestReport {
                digest,
                size,
                kind,
                imports,
                exports,
                capabilities,
            },
            prepared,
        })
    }
}

/// Names the import a link error is about: the linker's message quotes
/// it, and the guest's own import list says which name to look for.
fn unsupported(err: wasmtime::Error, imports: &[String], reason: &str) -> GuestRejected {
    let message = format!("{err:#}");
    let quoted = |name: &str| message.contains(&format!("`{name}`"));
    let name = match imports.iter().find(|i| quoted(i)) {
        Some(name) => name.clone(),
        // Not one of the guest's own import names: the first name quoted.
        None => message.split('`').nth(1).unwrap_or("unknown").to_string(),
    };
    GuestRejected::UnsupportedImport {
        name,
        reason: format!("{reason} ({})", err.root_cause()),
    }
}

/// The kind the header claims: core modules are version 1, components
/// version 0xd, layer 1.
fn kind_of(bytes: &[u8]) -> Result<GuestKind, GuestRejected> {
    if !bytes.starts_with(b"\0asm") {
        return Err(GuestRejected::NotWasm);
    }
    Ok(match bytes.get(6..8) {
        Some([1, 0]) => GuestKind::Component,
        _ => GuestKind::Command,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Loads a guest precompiled by this sandbox.
// SAFETY: `deserialize` trusts that the bytes are code wasmtime produced.
// They come from the server's own cache directory (`<data_dir>/compiled`),
// where files appear only through `write_atomically` (written whole under
// a temporary name, then renamed) from `serialize` of a guest compiled and
// validated here. wasmtime itself refuses the output of another version or
// engine configuration, which is then recompiled.
#[allow(unsafe_code)]
fn deserialize(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    kind: GuestKind,
) -> wasmtime::Result<Compiled> {
    Ok(match kind {
        GuestKind::Component => {
            Compiled::Component(unsafe { Component::deserialize(engine, bytes) }?)
        }
        GuestKind::Command => Compiled::Module(unsafe { Module::deserialize(engine, bytes) }?),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_decides_the_kind() {
        assert!(matches!(
            kind_of(b"{\"not\": 1}"),
            Err(GuestRejected::NotWasm)
        ));
        assert_eq!(kind_of(b"\0asm\x01\0\0\0").unwrap(), GuestKind::Command);
        assert_eq!(kind_of(b"\0asm\x0d\0\x01\0").unwrap(), GuestKind::Component);
    }
}

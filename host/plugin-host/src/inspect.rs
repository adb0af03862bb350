//! Reading a component's world, contract version and imports without
//! compiling or running it.

use crate::error::LoadError;
use crate::policy::Grants;
use wasmparser::{Encoding, Parser, Payload};

/// The three worlds of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Scores responses.
    Scorer,
    /// Rewrites messages.
    Kernel,
    /// Turns records into messages.
    Benchmark,
}

impl World {
    /// The world's name in the WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Scorer => "scorer",
            World::Kernel => "kernel",
            World::Benchmark => "benchmark",
        }
    }

    /// The interface a component of this world exports.
    fn api(self) -> &'static str {
        match self {
            World::Scorer => "scorer-api",
            World::Kernel => "kernel-api",
            World::Benchmark => "benchmark-api",
        }
    }

    fn from_api(api: &str) -> Option<World> {
        [World::Scorer, World::Kernel, World::Benchmark]
            .into_iter()
            .find(|w| w.api() == api)
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a component says about itself in its import and export names.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentInfo {
    /// The world it targets.
    pub world: World,
    /// The `lem:plugin` version it was built against.
    pub wit_version: String,
    /// Its top-level imports, e.g. `wasi:io/streams@0.2.6`.
    pub imports: Vec<String>,
    /// Its top-level exports.
    pub exports: Vec<String>,
}

/// Reads world, version, imports and exports from a component's bytes.
pub fn inspect(label: &str, bytes: &[u8]) -> Result<ComponentInfo, LoadError> {
    check_header(label, bytes)?;
    let invalid = |reason: String| LoadError::Invalid {
        label: label.into(),
        reason,
    };
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| invalid(e.to_string()))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding == Encoding::Module {
                    return Err(LoadError::CoreModule {
                        label: label.into(),
                    });
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    imports.push(
                        import
                            .map_err(|e| invalid(e.to_string()))?
                            .name
                            .name
                            .to_string(),
                    );
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    exports.push(
                        export
                            .map_err(|e| invalid(e.to_string()))?
                            .name
                            .name
                            .to_string(),
                    );
                }
            }
            _ => {}
        }
    }
    let (world, wit_version) = exports
        .iter()
        .find_map(|name| {
            let rest = name.strip_prefix("lem:plugin/")?;
            let (api, version) = rest.split_once('@')?;
            Some((World::from_api(api)?, version.to_string()))
        })
        .ok_or_else(|| LoadError::NoWorld {
            label: label.into(),
            exports: if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            },
        })?;
    Ok(ComponentInfo {
        world,
        wit_version,
        imports,
        exports,
    })
}

/// Refuses what does not start like a WebAssembly file (a precompiled
/// `.cwasm` is named as such).
pub(crate) fn check_header(label: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.starts_with(b"\x7fELF") {
        return Err(LoadError::Precompiled {
            label: label.into(),
        });
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm {
            label: label.into(),
        });
    }
    Ok(())
}

impl ComponentInfo {
    /// Refuses a component that is not of `expected` world, targets an
    /// unsupported contract version, or imports what `grants` does not allow.
    pub fn check(&self, label: &str, expected: World, grants: &Grants) -> Result<(), LoadError> {
        self.check_world(label, expected)?;
        let denied: Vec<(String, String)> = self
            .imports
            .iter()
            .filter_map(|import| {
                import_allowed(import, self.world, grants)
                    .err()
                    .map(|hint| (import.clone(), hint))
            })
            .collect();
        if denied.is_empty() {
            Ok(())
        } else {
            Err(LoadError::ForbiddenImport {
                label: label.into(),
                denied,
            })
        }
    }

    /// Refuses a component that is not of `expected` world or targets an
    /// unsupported contract version.
    pub fn check_world(&self, label: &str, expected: World) -> Result<(), LoadError> {
        if !crate::SUPPORTED_WIT_VERSIONS.contains(&self.wit_version.as_str()) {
            return Err(LoadError::UnsupportedVersion {
                label: label.into(),
                found: self.wit_version.clone(),
                supported: crate::SUPPORTED_WIT_VERSIONS.join(", "),
            });
        }
        if self.world != expected {
            return Err(LoadError::WrongWorld {
                label: label.into(),
                expected: expected.to_string(),
                found: self.world.to_string(),
            });
        }
        Ok(())
    }
}

/// The import allowlist. `Err` carries how to allow it, or why it cannot be.
fn import_allowed(import: &str, world: World, grants: &Grants) -> Result<(), String> {
    let interface = import.split('@').next().unwrap_or(import);
    let (package, _) = interface.split_once('/').unwrap_or((interface, ""));
    let grant = |granted: bool, what: &str| {
        if granted {
            Ok(())
        } else {
            Err(format!(
                "plugins get no {what} unless their config grants it (`{what} = true` in the plugin's `grants` table)"
            ))
        }
    };
    match package {
        "lem:plugin" if interface == "lem:plugin/judge" && world != World::Scorer => {
            Err("only scorer plugins may call the judge".into())
        }
        "lem:plugin" | "wasi:io" | "wasi:cli" => Ok(()),
        "wasi:clocks" => grant(grants.clocks, "clocks"),
        "wasi:random" => grant(grants.random, "random"),
        "wasi:filesystem" => {
            if grants.dirs.is_empty() {
                Err("plugins get no filesystem unless their config grants a directory (`dirs = [{ host = \"...\", guest = \"/data\" }]` in the plugin's `grants` table)".into())
            } else {
                Ok(())
            }
        }
        "wasi:sockets" => grant(grants.network, "network"),
        _ => Err("lem does not provide this interface to plugins".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_wasm() {
        assert!(matches!(
            inspect("x", b"hello"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(
            inspect("x", b"\x7fELF\x02\x01"),
            Err(LoadError::Precompiled { .. })
        ));
        assert!(matches!(
            inspect("x", b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule { .. })
        ));
        assert!(matches!(
            inspect("x", b"\0asm\x0d\0\x01\0\xff"),
            Err(LoadError::Invalid { .. })
        ));
    }

    #[test]
    fn allowlist_follows_grants() {
        let none = Grants::default();
        for ok in [
            "wasi:io/streams@0.2.6",
            "wasi:cli/environment@0.2.6",
            "lem:plugin/log@0.1.0",
            "lem:plugin/judge@0.1.0",
        ] {
            assert!(import_allowed(ok, World::Scorer, &none).is_ok(), "{ok}");
        }
        for bad in [
            "wasi:filesystem/types@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:clocks/wall-clock@0.2.6",
            "wasi:random/random@0.2.6",
            "wasi:http/outgoing-handler@0.2.6",
            "acme:evil/x",
        ] {
            assert!(import_allowed(bad, World::Scorer, &none).is_err(), "{bad}");
        }
        assert!(import_allowed("lem:plugin/judge@0.1.0", World::Kernel, &none).is_err());
        let all = Grants {
            clocks: true,
            random: true,
            network: true,
            dirs: vec![crate::DirGrant {
                host: ".".into(),
                guest: "/data".into(),
                writable: false,
            }],
            env: Default::default(),
        };
        for ok in [
            "wasi:filesystem/types@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:clocks/wall-clock@0.2.6",
            "wasi:random/random@0.2.6",
        ] {
            assert!(import_allowed(ok, World::Scorer, &all).is_ok(), "{ok}");
        }
        assert!(import_allowed("wasi:http/outgoing-handler@0.2.6", World::Scorer, &all).is_err());
    }
}

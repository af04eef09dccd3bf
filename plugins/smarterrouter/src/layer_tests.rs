//! The module layers hold: a module uses only modules of its own layer or below, with no
//! cycle inside a layer, and only the top layers see `RouterState`. Checked on the source text
//! (`crate::x` paths outside comments), so a new dependency that breaks the layering fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first (the README's architecture section shows the same table).
const LAYERS: &[&[&str]] = &[
    &["config", "error", "model", "metrics"],
    &["api", "routing"],
    &["upstream", "store", "cluster"],
    &["profile", "cache", "vram", "ratelimit", "auth", "activity"],
    &["endpoints"],
    &["proxy", "admin", "lifecycle"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(path: &Path, out: &mut Vec<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(std::fs::read_to_string(path).unwrap());
    }
}

/// The crate modules a module's code (not its comments) names.
fn dependencies(root: &Path, module: &str) -> (BTreeSet<String>, bool) {
    let dir = root.join(module);
    let mut texts = Vec::new();
    sources(&dir, &mut texts);
    sources(&root.join(format!("{module}.rs")), &mut texts);
    let mut deps = BTreeSet::new();
    let mut sees_state = false;
    for text in texts {
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name == "RouterState" {
                    sees_state = true;
                } else if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
            if line.starts_with("use crate::{") && line.contains("RouterState") {
                sees_state = true;
            }
        }
    }
    (deps, sees_state)
}

#[test]
fn modules_form_layers_without_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        let (deps, sees_state) = dependencies(&root, module);
        let layer = layer_of(module).unwrap();
        for dep in &deps {
            let Some(dep_layer) = layer_of(dep) else {
                panic!("{module} uses crate::{dep}, which is in no layer of LAYERS");
            };
            assert!(
                dep_layer <= layer,
                "{module} (layer {layer}) uses {dep} (layer {dep_layer}), a higher layer"
            );
        }
        assert!(
            !sees_state || layer >= 4,
            "{module} (layer {layer}) takes RouterState; give it narrow handles"
        );
        graph.insert(module.to_string(), deps);
    }
    for (module, deps) in &graph {
        for dep in deps {
            assert!(
                !graph[dep].contains(module),
                "cycle between {module} and {dep}"
            );
        }
    }
    // Every module declared in lib.rs is in a layer.
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    for line in lib.lines().filter(|l| l.starts_with("pub mod ")) {
        let name = line.trim_start_matches("pub mod ").trim_end_matches(';');
        assert!(layer_of(name).is_some(), "module {name} is in no layer");
    }
}

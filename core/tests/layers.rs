//! The core's layering, as its crate documentation (`src/lib.rs`) writes it down: no module
//! imports from a module in a higher layer. Comment lines (doc links included) are not imports.

use std::collections::HashMap;
use std::path::Path;

/// Module → layer, read from the `| layer | module | holds |` table of `src/lib.rs`.
fn layers(lib: &str) -> HashMap<String, u32> {
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! | "))
        .filter_map(|row| {
            let mut cells = row.split('|').map(str::trim);
            let layer: u32 = cells.next()?.parse().ok()?;
            let module = cells
                .next()?
                .trim_matches(|c| "[]`".contains(c))
                .to_string();
            Some((module, layer))
        })
        .collect()
}

/// The crate modules a source file names in code (`crate::x`), comments left out.
fn uses(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = layers(&lib);
    assert!(
        layers.len() >= 20,
        "the layer table was not found: {layers:?}"
    );
    let mut problems = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "rs") || module == "lib" {
            continue;
        }
        let Some(&own) = layers.get(module) else {
            problems.push(format!(
                "{module}.rs is not in the layer table of src/lib.rs"
            ));
            continue;
        };
        seen += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        // Unit tests may use the test support.
        let code = source.split("#[cfg(test)]").next().unwrap_or("");
        for used in uses(code) {
            match layers.get(&used) {
                Some(&layer) if layer > own => problems.push(format!(
                    "{module} (layer {own}) imports {used} (layer {layer})"
                )),
                Some(_) => {}
                None if used == "testing" => {}
                None => problems.push(format!("{module} imports {used}, which has no layer")),
            }
        }
    }
    assert!(seen >= 20);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

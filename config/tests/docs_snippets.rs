//! The operator docs (`docs/`) and the README say nothing about the configuration that the code
//! does not accept:
//!
//! - every ```` ```toml ```` block parses: a complete file must pass [`Config::from_toml_str`] (the
//!   validation `proofgate check` runs); a block whose first line is `# fragment` must
//!   deserialize into [`ConfigFile`], so a misspelt key or a wrong type fails here too;
//! - the reference tables of `docs/configuration.md` list exactly the keys the file format has,
//!   section by section: the set of real keys is read from the file format itself, by asking it
//!   to parse an unknown key and reading the list of expected keys from its error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proofgate_config::{Config, ConfigFile};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Markdown files whose snippets are checked: everything under `docs/`, and the README.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/ exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The ```` ```toml ```` blocks of a Markdown text, with the line each starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence.starts_with("```toml") => current = Some((n + 2, String::new())),
            Some(_) if fence.starts_with("```") => blocks.push(current.take().unwrap()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```toml block");
    blocks
}

fn is_fragment(block: &str) -> bool {
    block
        .lines()
        .next()
        .is_some_and(|l| l.trim() == "# fragment")
}

#[test]
fn every_toml_snippet_in_the_docs_is_accepted() {
    let mut problems = Vec::new();
    let (mut complete, mut fragments) = (0, 0);
    for path in documents() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(root()).unwrap_or(&path).display();
        for (line, block) in toml_blocks(&text) {
            if is_fragment(&block) {
                fragments += 1;
                if let Err(e) = toml::from_str::<ConfigFile>(&block) {
                    problems.push(format!("{name}:{line}: fragment: {e}"));
                }
            } else {
                complete += 1;
                if let Err(e) = Config::from_toml_str(&block) {
                    problems.push(format!("{name}:{line}:\n{e}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(
        complete >= 3 && fragments >= 5,
        "found only {complete} complete snippets and {fragments} fragments: is docs/ there?"
    );
}

#[test]
fn a_broken_snippet_is_caught() {
    let bad_fragment = "# fragment\n[[policies]]\nname = \"x\"\nrule = \"any_of\"\nrequirements = [{ typs = [\"email\"] }]\n";
    assert!(is_fragment(bad_fragment));
    assert!(toml::from_str::<ConfigFile>(bad_fragment).is_err());
    let blocks =
        toml_blocks("text\n```toml\na = 1\n```\n```sh\nb\n```\n```toml\n# fragment\n```\n");
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0], (3, "a = 1\n".to_string()));
    assert!(is_fragment(&blocks[1].1));
}

/// The keys the file format accepts in `section` (`""` for the top level, `"upstreams.tls"`,
/// `"policies.requirements"`, …), read from the error for an unknown key there; `None` when
/// `section` is not a table (a string, a list of strings, …).
fn keys_of(section: &str) -> Option<BTreeSet<String>> {
    const ARRAYS: &[&str] = &[
        "listeners",
        "upstreams",
        "policies",
        "routes",
        "policies.requirements",
    ];
    let mut probe = String::new();
    let mut path = String::new();
    for part in section.split('.').filter(|p| !p.is_empty()) {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(part);
        if ARRAYS.contains(&path.as_str()) {
            probe.push_str(&format!("[[{path}]]\n"));
        } else {
            probe.push_str(&format!("[{path}]\n"));
        }
    }
    probe.push_str("zz_not_a_key = 1\n");
    let err = toml::from_str::<ConfigFile>(&probe)
        .expect_err("an unknown key is refused")
        .to_string();
    if !err.contains("unknown field `zz_not_a_key`") {
        return None;
    }
    let expected = err.split("expected").nth(1)?;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

fn real_keys(section: &str) -> BTreeSet<String> {
    keys_of(section).unwrap_or_else(|| panic!("{section:?} is not a table of the file format"))
}

/// `<!-- keys: SECTION -->` markers of `docs/configuration.md`, each with the keys of the table
/// that follows it.
fn documented_sections(text: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix("<!-- keys:") {
            let section = rest.trim_end_matches("-->").trim();
            let section = if section == "(top)" { "" } else { section };
            out.push((section.to_string(), BTreeSet::new()));
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        let Some(row) = line.trim().strip_prefix('|') else {
            if !line.trim().is_empty() {
                in_table = false;
            }
            continue;
        };
        let first = row.split('|').next().unwrap().trim();
        if let Some(key) = first.strip_prefix('`').and_then(|k| k.strip_suffix('`')) {
            out.last_mut().unwrap().1.insert(key.to_string());
        }
    }
    out
}

#[test]
fn the_configuration_reference_lists_exactly_the_real_keys() {
    let text = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let sections = documented_sections(&text);
    let names: BTreeSet<&str> = sections.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names.len(), sections.len(), "a section is documented twice");
    let mut problems = Vec::new();
    for (section, keys) in &sections {
        assert!(!keys.is_empty(), "no keys under the marker for {section:?}");
        // A section's real keys are its documented keys plus its documented sub-sections.
        let prefix = if section.is_empty() {
            String::new()
        } else {
            format!("{section}.")
        };
        let children: BTreeSet<String> = names
            .iter()
            .filter_map(|n| n.strip_prefix(prefix.as_str()))
            .filter(|rest| !rest.is_empty() && !rest.contains('.'))
            .map(str::to_string)
            .collect();
        let documented: BTreeSet<String> = keys.union(&children).cloned().collect();
        let real = real_keys(section);
        for missing in real.difference(&documented) {
            problems.push(format!(
                "[{section}] {missing}: exists but is not documented"
            ));
        }
        for extra in documented.difference(&real) {
            problems.push(format!(
                "[{section}] {extra}: documented but does not exist"
            ));
        }
    }
    // Every table of the file format has a section in the reference.
    for section in &names {
        for key in real_keys(section) {
            let nested = if section.is_empty() {
                key
            } else {
                format!("{section}.{key}")
            };
            if keys_of(&nested).is_some() && !names.contains(nested.as_str()) {
                problems.push(format!(
                    "[{nested}] is a table with no section in the reference"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

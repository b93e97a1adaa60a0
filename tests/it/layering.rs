//! The library's imports run one way. Every file under `src/` (the binary's `main.rs` and
//! `commands/` aside: they sit on top and reach the library as `aevb::`) is read, its
//! references to other modules collected (`crate::`, `super::`, `self::` paths, in `use`
//! declarations or inline, grouped `{..}` imports at any depth, and `use child::..` into a
//! child module; test modules left out), and each resolved to the file that defines the
//! longest module prefix. Two checks: no circle of files (a folder's `mod.rs` that re-exports
//! its children must not also define what they use), and every import between top-level
//! modules goes down [`LAYERS`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom up: a module may import those of lower layers only.
const LAYERS: &[&[&str]] = &[
    &[
        "lib",
        "spec",
        "fpu",
        "interrupt",
        "test_signal",
        "resources",
    ],
    &["backend", "data", "search"],
    &["model", "metrics"],
    &["objective"],
    &["engine"],
    &["eval"],
    &["train"],
    &["sweep"],
    &["sinks", "prepare"],
    &["checkpoint", "launch", "progress", "check", "report"],
    &["runner", "trained"],
];

/// Module path (`["engine", "fused", "layout"]`) → its file; the crate root is `[]`.
fn library_files(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(src, &mut paths);
    let mut files = BTreeMap::new();
    for path in paths {
        let rel = path.strip_prefix(src).unwrap().with_extension("");
        let mut module: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if module[0] == "main" || module[0] == "commands" {
            continue;
        }
        if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
            module.pop();
        }
        files.insert(module, path);
    }
    files
}

/// The text without `#[cfg(test)] mod name { .. }` blocks and `//` comments.
fn without_tests_and_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let is_mod = trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ");
        let Some(open) = after.find('{').filter(|_| is_mod) else {
            out.push_str(&rest[..at + "#[cfg(test)]".len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..at]);
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths of a use tree starting at `text` (just after `keyword::`): `a::b`, `a::{b, c::d}`
/// and `{a, b::{c}}` at any depth; `*` and `self` end a path where they stand.
fn use_tree(text: &str) -> Vec<Vec<String>> {
    fn parse(chars: &[char], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        loop {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
            if *i < chars.len() && chars[*i] == '{' {
                *i += 1;
                loop {
                    parse(chars, i, path.clone(), out);
                    while *i < chars.len() && chars[*i].is_whitespace() {
                        *i += 1;
                    }
                    match chars.get(*i) {
                        Some(',') => *i += 1,
                        Some('}') => {
                            *i += 1;
                            return;
                        }
                        _ => return,
                    }
                    while *i < chars.len() && chars[*i].is_whitespace() {
                        *i += 1;
                    }
                    if chars.get(*i) == Some(&'}') {
                        *i += 1;
                        return;
                    }
                }
            }
            let start = *i;
            while *i < chars.len() && is_ident(chars[*i]) {
                *i += 1;
            }
            let segment: String = chars[start..*i].iter().collect();
            if !segment.is_empty() && segment != "self" {
                path.push(segment);
            }
            if chars.get(*i) == Some(&':') && chars.get(*i + 1) == Some(&':') {
                *i += 2;
                continue;
            }
            out.push(path);
            return;
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    parse(&chars, &mut 0, Vec::new(), &mut out);
    out
}

/// The module paths `text` (of the file of module `here`) refers to.
fn references(text: &str, here: &[String]) -> Vec<Vec<String>> {
    // `self::` is this module and `super::` its parent, whether the module is a file or a
    // folder's mod.rs: paths here are module paths, not file paths.
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for keyword in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(keyword) {
            let at = from + found;
            from = at + keyword.len();
            if at > 0 && is_ident(bytes[at - 1] as char) {
                continue;
            }
            // `super::super::` climbs once more per `super`.
            let mut base: Vec<String> = match keyword {
                "crate::" => Vec::new(),
                "self::" => here.to_vec(),
                _ => here[..here.len().saturating_sub(1)].to_vec(),
            };
            let mut rest = &text[from..];
            while keyword == "super::" && rest.starts_with("super::") {
                base.pop();
                rest = &rest["super::".len()..];
            }
            for tail in use_tree(rest) {
                let mut path = base.clone();
                path.extend(tail);
                out.push(path);
            }
        }
    }
    // `use child::..` from a module into its own child.
    for (i, _) in text.match_indices("use ") {
        if i > 0 && is_ident(bytes[i - 1] as char) {
            continue;
        }
        let rest = &text[i + 4..];
        let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        if !name.is_empty() && rest[name.len()..].starts_with("::") {
            for tail in use_tree(rest) {
                let mut path = here.to_vec();
                path.extend(tail);
                out.push(path);
            }
        }
    }
    out
}

/// Files imported by each file (by its module path).
fn import_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = library_files(src);
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| files.contains_key(prefix))
    };
    let mut graph = BTreeMap::new();
    for (module, file) in &files {
        let text = without_tests_and_comments(&std::fs::read_to_string(file).unwrap());
        let targets: BTreeSet<Vec<String>> = references(&text, module)
            .iter()
            .filter_map(|p| resolve(p))
            .filter(|t| t != module)
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

/// Strongly connected sets of more than one node (Tarjan).
fn circles<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct State<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on: BTreeSet<N>,
        out: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(v: &N, g: &BTreeMap<N, BTreeSet<N>>, s: &mut State<N>) {
        let n = s.index.len();
        s.index.insert(v.clone(), n);
        s.low.insert(v.clone(), n);
        s.stack.push(v.clone());
        s.on.insert(v.clone());
        for w in g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v.clone(), low);
            } else if s.on.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v.clone(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(&w);
                let done = &w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(v, graph, &mut state);
        }
    }
    state.out
}

fn top(module: &[String]) -> String {
    module.first().cloned().unwrap_or_else(|| "lib".to_string())
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_file_imports_another_that_imports_it_back_however_far_round() {
    let graph = import_graph(&src());
    assert!(graph.len() > 100, "{} files read", graph.len());
    let found = circles(&graph);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect();
    assert!(shown.is_empty(), "import circles:\n{}", shown.join("\n"));
}

#[test]
fn every_import_between_top_level_modules_goes_down_the_layers() {
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (*n, i)))
        .collect();
    let mut wrong = Vec::new();
    for (from, targets) in import_graph(&src()) {
        let a = top(&from);
        let Some(&la) = layer_of.get(a.as_str()) else {
            wrong.push(format!("{a}: not in LAYERS; place it there"));
            continue;
        };
        for to in targets {
            let b = top(&to);
            if a == b {
                continue;
            }
            match layer_of.get(b.as_str()) {
                Some(&lb) if lb < la => {}
                _ => wrong.push(format!(
                    "{} imports {} ({a} must not import {b})",
                    from.join("::"),
                    to.join("::")
                )),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The checks themselves: a circle and an upward import, planted, are found.
#[test]
fn the_checks_find_a_planted_circle_and_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("spec")).unwrap();
    std::fs::create_dir_all(src.join("engine")).unwrap();
    let write = |p: &str, t: &str| std::fs::write(src.join(p), t).unwrap();
    write("lib.rs", "pub mod spec;\npub mod engine;\n");
    // The face re-exports a child and defines what the child uses: a circle.
    write(
        "spec/mod.rs",
        "mod load;\npub use load::load;\npub struct Spec;\n",
    );
    write(
        "spec/load.rs",
        "use super::{Spec, error::{Bad}};\npub fn load() {}\n",
    );
    write("spec/error.rs", "pub struct Bad;\n");
    // The bottom layer reaching up, inline and grouped.
    write("engine/mod.rs", "pub fn run() {}\n");
    write(
        "spec/other.rs",
        "fn f() { crate::engine::run(); }\n#[cfg(test)]\nmod tests { use crate::spec::Spec; }\n",
    );
    let graph = import_graph(src);
    let spec = |m: &str| {
        let mut v = vec!["spec".to_string()];
        v.extend(m.split("::").filter(|s| !s.is_empty()).map(String::from));
        v
    };
    assert!(graph[&spec("load")].contains(&spec("")));
    assert!(graph[&spec("load")].contains(&spec("error")));
    assert!(graph[&spec("")].contains(&spec("load")));
    assert!(graph[&spec("other")].contains(&vec!["engine".to_string()]));
    assert!(
        !graph[&spec("other")].contains(&spec("")),
        "test modules are left out"
    );
    let found = circles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 2);
}

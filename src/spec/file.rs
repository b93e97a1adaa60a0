//! Reading a spec file: its text (UTF-8, a byte-order mark dropped, nesting bounded) and a
//! figment provider that parses that text but reports the file as its source, so errors
//! and relative paths still point at the file.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml, Yaml};
use figment::value::{Dict, Map};
use figment::{Metadata, Profile, Provider};

use super::error::SpecError;

/// No spec is more than a few levels deep; a file nested deeper than this is refused
/// before any parser recurses into it (a 100,000-deep YAML took 54 s to reject).
const MAX_DEPTH: usize = 64;

/// The spec file's text: refused with a clear error when it cannot be read, is not text,
/// or nests deeper than any spec; a leading UTF-8 byte-order mark (which some editors
/// write, and YAML would read as a second document) is dropped.
pub fn read_text(path: &Path, file: &str) -> Result<String, SpecError> {
    let bytes = std::fs::read(path)
        .map_err(|e| SpecError::new(file, "-", format!("cannot read the spec file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        SpecError::new(
            file,
            "-",
            format!(
                "not a text file: byte {} is not UTF-8; expected a TOML or YAML spec",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
    if text.contains('\0') {
        return Err(SpecError::new(
            file,
            "-",
            "not a text file (it holds NUL bytes); expected a TOML or YAML spec",
        ));
    }
    let depth = nesting_depth(&text);
    if depth > MAX_DEPTH {
        return Err(SpecError::new(
            file,
            "-",
            format!(
                "nested {depth} levels deep; a spec is a few levels deep (at most {MAX_DEPTH})"
            ),
        ));
    }
    Ok(text)
}

/// An upper bound on how deep a TOML or YAML text nests: brackets and braces outside
/// quotes, plus block-sequence dashes and indentation steps of a line.
fn nesting_depth(text: &str) -> usize {
    let mut brackets = 0usize;
    let mut deepest = 0usize;
    let mut quote: Option<char> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        // `- - - x` nests one sequence per dash; indentation nests a block per step.
        let dashes = trimmed
            .split_inclusive(' ')
            .take_while(|t| t.trim_end() == "-")
            .count();
        let indent = line.len() - trimmed.len();
        deepest = deepest.max(dashes + indent / 2);
        let mut escaped = false;
        for c in line.chars() {
            match quote {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && q == '"' {
                        escaped = true;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '#' => break,
                    '[' | '{' => {
                        brackets += 1;
                        deepest = deepest.max(brackets);
                    }
                    ']' | '}' => brackets = brackets.saturating_sub(1),
                    _ => {}
                },
            }
        }
        // Quotes do not span lines in a spec; a stray one ends with its line.
        quote = None;
    }
    deepest
}

/// A spec file's text, parsed as TOML or YAML, with the file as the source of its values.
pub struct SpecFile {
    pub path: PathBuf,
    pub text: String,
    pub yaml: bool,
}

impl Provider for SpecFile {
    fn metadata(&self) -> Metadata {
        let name = if self.yaml { "YAML file" } else { "TOML file" };
        Metadata::from(name, self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        if self.yaml {
            Yaml::string(&self.text).data()
        } else {
            Toml::string(&self.text).data()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_dashes_and_indentation_but_not_quoted_text() {
        assert_eq!(nesting_depth("a = 1\n"), 0);
        assert_eq!(nesting_depth("a = [[1], [2]]\n"), 2);
        assert_eq!(nesting_depth("a = \"[[[[\"\n"), 0);
        assert_eq!(nesting_depth("x: {a: {b: [1]}}\n"), 3);
        assert_eq!(nesting_depth("- - - 1\n"), 3);
        assert_eq!(nesting_depth("a:\n  b:\n    c: 1\n"), 2);
        assert_eq!(nesting_depth(&"[".repeat(100_000)), 100_000);
    }
}

//! Spec errors: the file, the dotted key and what was expected; and the nearest valid name
//! for a misspelt one.

/// A spec problem, reported before anything runs (exit code 2). A problem with the file
/// as a whole (syntax, an empty or binary file) has no key: `key` is "-" and not shown.
#[derive(Debug)]
pub struct SpecError {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.key.as_str() {
            "-" | "" => write!(f, "{}: {}", self.file, self.message),
            key => write!(f, "{}: key `{key}`: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

impl SpecError {
    pub fn new(
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The candidate nearest to `word` by edit distance, if it is plausibly a typo of it.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let near = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3))
        .min()
        .map(|(_, c)| c);
    // A shortened key (`latent` for `latent_dim`) is far in edit distance but plain to see.
    near.or_else(|| {
        let mut prefixed = candidates
            .iter()
            .filter(|c| word.len() >= 3 && (c.starts_with(word) || word.starts_with(**c)));
        match (prefixed.next(), prefixed.next()) {
            (Some(c), None) => Some(*c),
            _ => None,
        }
    })
}

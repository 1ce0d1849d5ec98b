//! Cloud Foundry's `label_selector` grammar: comma-separated requirements, all of which must hold.
//!
//! Forms: `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`,
//! `key notin (v1,v2)`. `!=` and `notin` also match resources without the key.

use std::collections::BTreeMap;

use crate::metadata::{LabelKey, LabelValue, MetadataError};

/// Most requirements one selector may hold.
pub const MAX_REQUIREMENTS: usize = 50;

/// Why a selector was refused; `Display` is Cloud Foundry's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelSelectorError {
    #[error("Missing label_selector value")]
    Missing,
    #[error("Too many label_selector requirements (maximum is {MAX_REQUIREMENTS})")]
    TooManyRequirements,
    #[error("Invalid label_selector value")]
    Invalid,
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// One requirement on a resource's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(LabelKey),
    NotExists(LabelKey),
    Equals(LabelKey, LabelValue),
    NotEquals(LabelKey, LabelValue),
    In(LabelKey, Vec<LabelValue>),
    NotIn(LabelKey, Vec<LabelValue>),
}

impl Requirement {
    pub fn key(&self) -> &LabelKey {
        match self {
            Self::Exists(key)
            | Self::NotExists(key)
            | Self::Equals(key, _)
            | Self::NotEquals(key, _)
            | Self::In(key, _)
            | Self::NotIn(key, _) => key,
        }
    }

    /// Whether labels satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<LabelKey, LabelValue>) -> bool {
        let value = labels.get(self.key());
        match self {
            Self::Exists(_) => value.is_some(),
            Self::NotExists(_) => value.is_none(),
            Self::Equals(_, expected) => value == Some(expected),
            Self::NotEquals(_, expected) => value != Some(expected),
            Self::In(_, list) => value.is_some_and(|value| list.contains(value)),
            Self::NotIn(_, list) => !value.is_some_and(|value| list.contains(value)),
        }
    }
}

/// A parsed selector: 1 to 50 requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// # Errors
    /// A [`LabelSelectorError`] with Cloud Foundry's message.
    pub fn parse(input: &str) -> Result<Self, LabelSelectorError> {
        if input.trim().is_empty() {
            return Err(LabelSelectorError::Missing);
        }
        let parts = split_requirements(input)?;
        if parts.len() > MAX_REQUIREMENTS {
            return Err(LabelSelectorError::TooManyRequirements);
        }
        let requirements = parts
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// In-memory semantics, the reference the database implementation is tested against.
    pub fn matches(&self, labels: &BTreeMap<LabelKey, LabelValue>) -> bool {
        self.requirements
            .iter()
            .all(|requirement| requirement.matches(labels))
    }
}

/// Splits on commas outside parentheses.
fn split_requirements(input: &str) -> Result<Vec<&str>, LabelSelectorError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, c) in input.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err(LabelSelectorError::Invalid),
            ')' if depth == 1 => depth = 0,
            ')' => return Err(LabelSelectorError::Invalid),
            ',' if depth == 0 => {
                parts.push(&input[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(LabelSelectorError::Invalid);
    }
    parts.push(&input[start..]);
    Ok(parts)
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// A key as the grammar allows it, then the metadata rules.
fn key(text: &str) -> Result<LabelKey, LabelSelectorError> {
    if text.is_empty() || !text.chars().all(is_key_char) {
        return Err(LabelSelectorError::Invalid);
    }
    Ok(LabelKey::parse(text)?)
}

fn value(text: &str) -> Result<LabelValue, LabelSelectorError> {
    let text = text.trim();
    if text.contains(['(', ')', ',', '=', '!', ' ']) {
        return Err(LabelSelectorError::Invalid);
    }
    Ok(LabelValue::parse(text)?)
}

/// `(v1, v2)`: at least one value.
fn value_list(text: &str) -> Result<Vec<LabelValue>, LabelSelectorError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or(LabelSelectorError::Invalid)?;
    if inner.trim().is_empty() {
        return Err(LabelSelectorError::Invalid);
    }
    inner.split(',').map(value).collect()
}

/// Splits `key <word> (list)` when `word` follows the key as a separate word.
fn set_operation<'a>(text: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let (left, right) = text.split_once(char::is_whitespace)?;
    let right = right.trim_start();
    let rest = right.strip_prefix(word)?;
    rest.trim_start().starts_with('(').then_some((left, rest))
}

fn parse_requirement(text: &str) -> Result<Requirement, LabelSelectorError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(LabelSelectorError::Invalid);
    }
    if let Some((left, list)) = set_operation(text, "notin") {
        return Ok(Requirement::NotIn(key(left)?, value_list(list)?));
    }
    if let Some((left, list)) = set_operation(text, "in") {
        return Ok(Requirement::In(key(left)?, value_list(list)?));
    }
    if let Some((left, right)) = text.split_once("!=") {
        return Ok(Requirement::NotEquals(key(left.trim())?, value(right)?));
    }
    if let Some((left, right)) = text.split_once("==") {
        return Ok(Requirement::Equals(key(left.trim())?, value(right)?));
    }
    if let Some((left, right)) = text.split_once('=') {
        return Ok(Requirement::Equals(key(left.trim())?, value(right)?));
    }
    if let Some(rest) = text.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(rest.trim())?));
    }
    Ok(Requirement::Exists(key(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(text: &str) -> LabelKey {
        LabelKey::parse(text).unwrap()
    }

    fn v(text: &str) -> LabelValue {
        LabelValue::parse(text).unwrap()
    }

    #[test]
    fn every_form_parses() {
        let cases: Vec<(&str, Vec<Requirement>)> = vec![
            ("env", vec![Requirement::Exists(k("env"))]),
            ("!env", vec![Requirement::NotExists(k("env"))]),
            ("env=prod", vec![Requirement::Equals(k("env"), v("prod"))]),
            ("env==prod", vec![Requirement::Equals(k("env"), v("prod"))]),
            (
                "env!=prod",
                vec![Requirement::NotEquals(k("env"), v("prod"))],
            ),
            ("env=", vec![Requirement::Equals(k("env"), v(""))]),
            (
                "env in (a,b)",
                vec![Requirement::In(k("env"), vec![v("a"), v("b")])],
            ),
            (
                "env in ( a , b )",
                vec![Requirement::In(k("env"), vec![v("a"), v("b")])],
            ),
            (
                "env notin (a)",
                vec![Requirement::NotIn(k("env"), vec![v("a")])],
            ),
            (
                "example.com/tier=web",
                vec![Requirement::Equals(k("example.com/tier"), v("web"))],
            ),
            (
                "a,!b,c=1,d in (x,y),e notin (z)",
                vec![
                    Requirement::Exists(k("a")),
                    Requirement::NotExists(k("b")),
                    Requirement::Equals(k("c"), v("1")),
                    Requirement::In(k("d"), vec![v("x"), v("y")]),
                    Requirement::NotIn(k("e"), vec![v("z")]),
                ],
            ),
            (
                " env = prod ",
                vec![Requirement::Equals(k("env"), v("prod"))],
            ),
            ("in", vec![Requirement::Exists(k("in"))]),
        ];
        for (input, expected) in cases {
            let parsed = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(parsed.requirements(), expected.as_slice(), "{input}");
        }
    }

    #[test]
    fn malformed_selectors_are_refused_with_cloud_foundry_messages() {
        let invalid = "Invalid label_selector value";
        let cases = [
            ("", "Missing label_selector value"),
            ("   ", "Missing label_selector value"),
            ("a b", invalid),
            ("in (x)", invalid),
            ("a in x", invalid),
            ("a in ()", invalid),
            ("a in (x", invalid),
            ("a in x)", invalid),
            ("a=b=c", invalid),
            ("!", invalid),
            ("a,,b", invalid),
            ("a,", invalid),
            ("=v", invalid),
            ("a!=(x)", invalid),
            ("a in ((x))", invalid),
            ("bad key=v", invalid),
            ("k=bad value", invalid),
            (
                "-k",
                "Metadata label key error: '-k' starts or ends with invalid characters",
            ),
            (
                "k=-v",
                "Metadata label value error: '-v' starts or ends with invalid characters",
            ),
            (
                "cloudfoundry.org/k",
                "Metadata label key error: prefix 'cloudfoundry.org' is reserved",
            ),
        ];
        for (input, message) in cases {
            let error = LabelSelector::parse(input)
                .err()
                .unwrap_or_else(|| panic!("{input:?} parsed"));
            assert_eq!(error.to_string(), message, "{input:?}");
        }
        let fifty: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        assert!(LabelSelector::parse(&fifty.join(",")).is_ok());
        let fifty_one: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
        assert_eq!(
            LabelSelector::parse(&fifty_one.join(",")),
            Err(LabelSelectorError::TooManyRequirements)
        );
    }

    #[test]
    fn negative_forms_match_resources_without_the_key() {
        let labels: BTreeMap<LabelKey, LabelValue> = [(k("env"), v("prod"))].into_iter().collect();
        let empty = BTreeMap::new();
        let cases = [
            ("env", true, false),
            ("!env", false, true),
            ("env=prod", true, false),
            ("env!=prod", false, true),
            ("env!=dev", true, true),
            ("env in (prod,dev)", true, false),
            ("env notin (prod)", false, true),
            ("env notin (dev)", true, true),
            ("env=prod,!tier", true, false),
        ];
        for (input, with_labels, without) in cases {
            let selector = LabelSelector::parse(input).unwrap();
            assert_eq!(
                selector.matches(&labels),
                with_labels,
                "{input} on env=prod"
            );
            assert_eq!(selector.matches(&empty), without, "{input} on no labels");
        }
    }

    /// A small deterministic generator, so the round trip covers many shapes without a new crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    fn render(requirement: &Requirement) -> String {
        let list = |values: &[LabelValue]| {
            values
                .iter()
                .map(LabelValue::as_str)
                .collect::<Vec<_>>()
                .join(",")
        };
        match requirement {
            Requirement::Exists(key) => key.to_string(),
            Requirement::NotExists(key) => format!("!{key}"),
            Requirement::Equals(key, value) => format!("{key}={value}"),
            Requirement::NotEquals(key, value) => format!("{key}!={value}"),
            Requirement::In(key, values) => format!("{key} in ({})", list(values)),
            Requirement::NotIn(key, values) => format!("{key} notin ({})", list(values)),
        }
    }

    #[test]
    fn rendered_selectors_parse_back_to_the_same_requirements() {
        let keys = ["env", "tier", "example.com/team", "a.b-c_d", "x9"];
        let values = ["prod", "", "v1.2", "a_b", "Z"];
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..500 {
            let count = 1 + (random.next() % 8) as usize;
            let requirements: Vec<Requirement> = (0..count)
                .map(|_| {
                    let key = k(random.pick(&keys));
                    let n = 1 + (random.next() % 3) as usize;
                    let list: Vec<LabelValue> =
                        (0..n).map(|_| v(random.pick(&values[..1]))).collect();
                    match random.next() % 6 {
                        0 => Requirement::Exists(key),
                        1 => Requirement::NotExists(key),
                        2 => Requirement::Equals(key, v(random.pick(&values))),
                        3 => Requirement::NotEquals(key, v(random.pick(&values))),
                        4 => Requirement::In(key, list),
                        _ => Requirement::NotIn(key, list),
                    }
                })
                .collect();
            let text = requirements
                .iter()
                .map(render)
                .collect::<Vec<_>>()
                .join(",");
            let parsed = LabelSelector::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.requirements(), requirements.as_slice(), "{text}");
        }
    }
}

//! Cloud Foundry's `label_selector` query parameter: comma-separated requirements, all of which
//! must hold.
//!
//! Forms, tried in Cloud Foundry's order: `key in (v1,v2)`, `key notin (v1,v2)`, `key==value`,
//! `key=value`, `key!=value`, `key`, `!key`. `!=` and `notin` also match resources without the
//! key. Keys and values are checked by [`LabelKey::parse`] and [`LabelValue::parse`], so the
//! error texts are Cloud Foundry's.
//!
//! Where Cloud Foundry's regexes are stricter or looser than this parser, the differences are
//! deliberate and only affect which error a malformed selector gets:
//! - whitespace around a requirement, an operator, a keyword or a listed value is ignored;
//! - an empty requirement (`a,,b`, `a,`) is refused rather than silently dropped;
//! - `(`, `)`, `=`, `!` and `,` in a value position are syntax errors (`a=b=c`, `a in ((x))`)
//!   rather than "invalid characters" in the value;
//! - a whitespace-only selector is missing rather than invalid.

use std::collections::BTreeMap;

use crate::metadata::{LabelKey, LabelValue, MetadataError};

/// Most requirements one selector may hold.
pub const MAX_REQUIREMENTS: usize = 50;

/// Most values one `in` or `notin` list may hold: with [`MAX_REQUIREMENTS`] and the list
/// bounds of [`crate::listing`], the largest list query stays far under the databases' limits
/// on bound values.
pub const MAX_LIST_VALUES: usize = 50;

/// Characters that belong to the selector syntax and so can never start or sit inside a value.
const SYNTAX_CHARS: [char; 5] = ['(', ')', ',', '=', '!'];

/// Why a selector was refused; `Display` is Cloud Foundry's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelSelectorError {
    /// Missing label_selector value.
    #[error("Missing label_selector value")]
    Missing,
    /// Too many label_selector requirements (maximum is …).
    #[error("Too many label_selector requirements (maximum is {MAX_REQUIREMENTS})")]
    TooManyRequirements,
    /// Invalid label_selector value.
    #[error("Invalid label_selector value")]
    Invalid,
    #[error(
        "Too many values in a label_selector 'in' or 'notin' list (maximum is {MAX_LIST_VALUES})"
    )]
    /// Too many list values.
    TooManyListValues,
    /// A well-formed requirement whose key or value breaks the metadata rules.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// One requirement on a resource's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key`: the label is present, with any value.
    Exists(LabelKey),
    /// `!key`: the label is absent.
    NotExists(LabelKey),
    /// `key=value` or `key==value`.
    Equals(LabelKey, LabelValue),
    /// `key!=value`: absent, or present with another value.
    NotEquals(LabelKey, LabelValue),
    /// `key in (v1,v2)`: present with one of the values.
    In(LabelKey, Vec<LabelValue>),
    /// `key notin (v1,v2)`: absent, or present with none of the values.
    NotIn(LabelKey, Vec<LabelValue>),
}

impl Requirement {
    /// The label this requirement is about.
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

    /// Whether a resource with these labels satisfies the requirement.
    ///
    /// The negative forms (`!key`, `!=`, `notin`) hold for resources without the key, as in
    /// Cloud Foundry, where they are `NOT EXISTS` subqueries.
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

/// A parsed selector: 1 to [`MAX_REQUIREMENTS`] requirements, all of which must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `label_selector` query parameter.
    ///
    /// Requirements are counted before any is checked, as Cloud Foundry does, so 51 requirements
    /// are "too many" even if one of them is malformed. Otherwise the first failing requirement's
    /// error is returned.
    ///
    /// # Errors
    /// A [`LabelSelectorError`] whose `Display` is Cloud Foundry's message.
    pub fn parse(input: &str) -> Result<Self, LabelSelectorError> {
        if input.trim().is_empty() {
            return Err(LabelSelectorError::Missing);
        }
        let parts = split_requirements(input);
        if parts.len() > MAX_REQUIREMENTS {
            return Err(LabelSelectorError::TooManyRequirements);
        }
        let requirements = parts
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }

    /// The requirements in the order they were written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// In-memory semantics, the reference the SQL implementation is tested against.
    pub fn matches(&self, labels: &BTreeMap<LabelKey, LabelValue>) -> bool {
        self.requirements
            .iter()
            .all(|requirement| requirement.matches(labels))
    }
}

/// Splits on commas outside parentheses, exactly as Cloud Foundry's `/(?:\(.*?\)|[^,])+/` scan
/// does, except that empty pieces are kept so that `a,,b` can be refused.
///
/// A `(` groups up to the first `)` on the same line (`.` does not match a newline); without one
/// it is an ordinary character, so an unbalanced parenthesis never swallows the rest of the input
/// and is refused later as a malformed requirement.
fn split_requirements(input: &str) -> Vec<&str> {
    let bytes = input.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut index = 0;
    // Only ASCII bytes are inspected, so every slice boundary is a char boundary.
    while index < bytes.len() {
        match bytes[index] {
            b'(' => {
                let close = bytes[index..]
                    .iter()
                    .position(|&b| b == b')' || b == b'\n')
                    .filter(|&offset| bytes[index + offset] == b')');
                index += close.map_or(1, |offset| offset + 1);
            }
            b',' => {
                parts.push(&input[start..index]);
                index += 1;
                start = index;
            }
            _ => index += 1,
        }
    }
    parts.push(&input[start..]);
    parts
}

fn parse_requirement(text: &str) -> Result<Requirement, LabelSelectorError> {
    let text = text.trim();
    if let Some((key, list)) = set_operation(text, "in") {
        return Ok(Requirement::In(set_key(key)?, value_list(list)?));
    }
    if let Some((key, list)) = set_operation(text, "notin") {
        return Ok(Requirement::NotIn(set_key(key)?, value_list(list)?));
    }
    if let Some(index) = text.find('=') {
        let (left, right) = (&text[..index], &text[index + 1..]);
        return match left.strip_suffix('!') {
            Some(key) => Ok(Requirement::NotEquals(plain_key(key)?, value(right)?)),
            // `==` is the same as `=`.
            None => Ok(Requirement::Equals(
                plain_key(left)?,
                value(right.strip_prefix('=').unwrap_or(right))?,
            )),
        };
    }
    if let Some(key) = text.strip_prefix('!') {
        return Ok(Requirement::NotExists(plain_key(key)?));
    }
    Ok(Requirement::Exists(plain_key(text)?))
}

/// Matches `key <keyword> (list)` and returns the key and the text inside the parentheses.
///
/// Cloud Foundry's `/\A(?<key>.*?) in \((?<values>.*)\)\z/` takes the shortest key, so the
/// keyword is the first one that follows whitespace and precedes a `(`, and the list runs to the
/// final `)`.
fn set_operation<'a>(text: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    if !text.ends_with(')') {
        return None;
    }
    text.char_indices()
        .filter(|(_, c)| c.is_whitespace())
        .find_map(|(index, _)| {
            let list = text[index..]
                .trim_start()
                .strip_prefix(keyword)?
                .trim_start()
                .strip_prefix('(')?
                .strip_suffix(')')?;
            Some((&text[..index], list))
        })
}

/// The key of `in`/`notin`: Cloud Foundry accepts any text there and lets the metadata rules
/// refuse it, so `bad key in (x)` reports the bad key rather than a syntax error.
fn set_key(text: &str) -> Result<LabelKey, LabelSelectorError> {
    Ok(LabelKey::parse(text.trim())?)
}

/// Cloud Foundry's `[\w\-./]+` (`\w` is ASCII in Ruby): anything else means the requirement did
/// not match the operator's pattern at all.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// The key of every form but `in`/`notin`: the key characters, then the metadata rules.
fn plain_key(text: &str) -> Result<LabelKey, LabelSelectorError> {
    let text = text.trim();
    if text.is_empty() || !text.chars().all(is_key_char) {
        return Err(LabelSelectorError::Invalid);
    }
    Ok(LabelKey::parse(text)?)
}

fn value(text: &str) -> Result<LabelValue, LabelSelectorError> {
    let text = text.trim();
    if text.contains(SYNTAX_CHARS) {
        return Err(LabelSelectorError::Invalid);
    }
    Ok(LabelValue::parse(text)?)
}

/// `v1, v2`: at least one value; since label values may be empty, `(,prod)` means "" or `prod`.
fn value_list(text: &str) -> Result<Vec<LabelValue>, LabelSelectorError> {
    if text.trim().is_empty() {
        return Err(LabelSelectorError::Invalid);
    }
    // Counted before they are checked, like the requirements.
    if text.split(',').count() > MAX_LIST_VALUES {
        return Err(LabelSelectorError::TooManyListValues);
    }
    text.split(',').map(value).collect()
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

    fn exists(key: &str) -> Requirement {
        Requirement::Exists(k(key))
    }

    fn not_exists(key: &str) -> Requirement {
        Requirement::NotExists(k(key))
    }

    fn eq(key: &str, value: &str) -> Requirement {
        Requirement::Equals(k(key), v(value))
    }

    fn ne(key: &str, value: &str) -> Requirement {
        Requirement::NotEquals(k(key), v(value))
    }

    fn is_in(key: &str, values: &[&str]) -> Requirement {
        Requirement::In(k(key), values.iter().map(|value| v(value)).collect())
    }

    fn not_in(key: &str, values: &[&str]) -> Requirement {
        Requirement::NotIn(k(key), values.iter().map(|value| v(value)).collect())
    }

    fn parse(input: &str) -> Result<Vec<Requirement>, String> {
        LabelSelector::parse(input)
            .map(|selector| selector.requirements().to_vec())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn every_form_parses() {
        let cases: Vec<(&str, Vec<Requirement>)> = vec![
            // Each operator.
            ("env", vec![exists("env")]),
            ("!env", vec![not_exists("env")]),
            ("env=prod", vec![eq("env", "prod")]),
            ("env==prod", vec![eq("env", "prod")]),
            ("env!=prod", vec![ne("env", "prod")]),
            ("env in (a,b)", vec![is_in("env", &["a", "b"])]),
            ("env notin (a)", vec![not_in("env", &["a"])]),
            // Empty values.
            ("env=", vec![eq("env", "")]),
            ("env==", vec![eq("env", "")]),
            ("env!=", vec![ne("env", "")]),
            ("env in (,prod)", vec![is_in("env", &["", "prod"])]),
            ("env notin (prod, )", vec![not_in("env", &["prod", ""])]),
            // Whitespace around requirements, operators, keywords and listed values.
            (" env ", vec![exists("env")]),
            ("! env", vec![not_exists("env")]),
            (" env = prod ", vec![eq("env", "prod")]),
            ("env == prod", vec![eq("env", "prod")]),
            ("env != prod", vec![ne("env", "prod")]),
            ("\tenv=prod\t", vec![eq("env", "prod")]),
            ("env in ( a , b )", vec![is_in("env", &["a", "b"])]),
            ("env  in(a)", vec![is_in("env", &["a"])]),
            ("env\tnotin\t(a,b)", vec![not_in("env", &["a", "b"])]),
            ("a , b", vec![exists("a"), exists("b")]),
            // Prefixed keys and every key and value character.
            ("example.com/tier=web", vec![eq("example.com/tier", "web")]),
            ("!example.com/tier", vec![not_exists("example.com/tier")]),
            (
                "example.com/tier in (web,db)",
                vec![is_in("example.com/tier", &["web", "db"])],
            ),
            ("my-app_1.x==v1.2_3-X", vec![eq("my-app_1.x", "v1.2_3-X")]),
            // Commas inside parentheses do not split requirements.
            (
                "a,!b,c=1,d in (x,y),e notin (z,w),f!=2",
                vec![
                    exists("a"),
                    not_exists("b"),
                    eq("c", "1"),
                    is_in("d", &["x", "y"]),
                    not_in("e", &["z", "w"]),
                    ne("f", "2"),
                ],
            ),
            ("a in (x,y),b", vec![is_in("a", &["x", "y"]), exists("b")]),
            // Keywords are only keywords in their place.
            ("in", vec![exists("in")]),
            ("notin", vec![exists("notin")]),
            ("in in (in)", vec![is_in("in", &["in"])]),
            ("in notin (x)", vec![not_in("in", &["x"])]),
            ("notin in (x)", vec![is_in("notin", &["x"])]),
            ("index=in", vec![eq("index", "in")]),
            // Repeated keys are kept, in order.
            (
                "env=prod,env!=dev",
                vec![eq("env", "prod"), ne("env", "dev")],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn malformed_selectors_are_refused_with_cloud_foundry_messages() {
        const INVALID: &str = "Invalid label_selector value";
        const MISSING: &str = "Missing label_selector value";
        let long = "a".repeat(64);
        let long_key = format!("{long}=v");
        let long_value = format!("k={long}");
        let cases: Vec<(&str, &str)> = vec![
            ("", MISSING),
            ("   ", MISSING),
            ("\t\n", MISSING),
            // Matches no operator.
            ("a b", INVALID),
            ("in (x)", INVALID),
            ("notin (x)", INVALID),
            ("a in x", INVALID),
            ("a in ()", INVALID),
            ("a in ( )", INVALID),
            ("a inx (y)", INVALID),
            ("a=in (x)", INVALID),
            ("a=b=c", INVALID),
            ("a==b=c", INVALID),
            ("a===b", INVALID),
            ("a=b!=c", INVALID),
            ("a=!b", INVALID),
            ("a ! = b", INVALID),
            ("a!b", INVALID),
            ("!", INVALID),
            ("! ", INVALID),
            ("!!a", INVALID),
            ("!a=b", INVALID),
            ("=v", INVALID),
            ("==v", INVALID),
            ("!=v", INVALID),
            ("bad key=v", INVALID),
            ("!bad key", INVALID),
            ("\u{e9}t\u{e9}", INVALID),
            // Unbalanced or misplaced parentheses.
            ("a in (x", INVALID),
            ("a in x)", INVALID),
            ("a in (x))", INVALID),
            ("a in ((x))", INVALID),
            ("a in (x,(y))", INVALID),
            ("a in (x,y", INVALID),
            ("a in (x=y)", INVALID),
            ("a!=(x)", INVALID),
            ("a=(x,y)", INVALID),
            ("(a)", INVALID),
            // Empty requirements.
            ("a,,b", INVALID),
            ("a,", INVALID),
            (",a", INVALID),
            (" , ", INVALID),
            // Keys and values that break the metadata rules.
            (
                "-k",
                "Metadata label key error: '-k' starts or ends with invalid characters",
            ),
            (
                "k=-v",
                "Metadata label value error: '-v' starts or ends with invalid characters",
            ),
            (
                "k=bad value",
                "Metadata label value error: 'bad valu...' contains invalid characters",
            ),
            (
                "k=\u{e9}",
                "Metadata label value error: '\u{e9}' contains invalid characters",
            ),
            (
                "bad key in (x)",
                "Metadata label key error: 'bad key' contains invalid characters",
            ),
            (
                "k in (ok, x y)",
                "Metadata label value error: 'x y' contains invalid characters",
            ),
            (
                "k notin (ok,_bad)",
                "Metadata label value error: '_bad' starts or ends with invalid characters",
            ),
            (
                "cloudfoundry.org/k",
                "Metadata label key error: prefix 'cloudfoundry.org' is reserved",
            ),
            (
                "nodot/k!=v",
                "Metadata label key error: prefix 'nodot' must be in valid dns format",
            ),
            (
                "a/b/c=x",
                "Metadata label key error: key has more than one '/'",
            ),
            (
                "example.com/=x",
                "Metadata label key error: key cannot be empty string",
            ),
            (
                &long_key,
                "Metadata label key error: 'aaaaaaaa...' is greater than 63 characters",
            ),
            (
                &long_value,
                "Metadata label value error: 'aaaaaaaa...' is greater than 63 characters",
            ),
            // The first failing requirement decides.
            ("ok,a b,-k", INVALID),
            (
                "ok,-k,a b",
                "Metadata label key error: '-k' starts or ends with invalid characters",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse(input), Err(message.to_owned()), "{input:?}");
        }
    }

    #[test]
    fn at_most_fifty_requirements() {
        let many = |count: usize, form: &dyn Fn(usize) -> String| {
            (0..count).map(form).collect::<Vec<_>>().join(",")
        };
        let fifty = LabelSelector::parse(&many(50, &|i| format!("k{i}"))).unwrap();
        assert_eq!(fifty.requirements().len(), MAX_REQUIREMENTS);
        assert_eq!(
            parse(&many(51, &|i| format!("k{i}"))),
            Err("Too many label_selector requirements (maximum is 50)".to_owned())
        );
        // Each `in` and `notin` list holds at most 50 values.
        let values = |count: usize| many(count, &|i| format!("v{i}"));
        for operator in ["in", "notin"] {
            let at_bound = LabelSelector::parse(&format!("k {operator} ({})", values(50))).unwrap();
            assert_eq!(at_bound.requirements().len(), 1);
            assert_eq!(
                parse(&format!("k {operator} ({})", values(51))),
                Err(
                    "Too many values in a label_selector 'in' or 'notin' list (maximum is 50)"
                        .to_owned()
                )
            );
        }
        // Commas inside a list do not count as requirements.
        let lists = LabelSelector::parse(&many(50, &|i| format!("k{i} in (a,b,c)"))).unwrap();
        assert_eq!(lists.requirements().len(), 50);
        // Counted before they are checked, as Cloud Foundry does.
        assert_eq!(
            LabelSelector::parse(&many(51, &|i| if i == 0 {
                "a b".to_owned()
            } else {
                format!("k{i}")
            })),
            Err(LabelSelectorError::TooManyRequirements)
        );
    }

    #[test]
    fn requirement_key_names_the_label() {
        let selector = LabelSelector::parse("a,!b,c=1,d!=2,e in (x),f notin (y)").unwrap();
        let keys: Vec<&str> = selector
            .requirements()
            .iter()
            .map(|requirement| requirement.key().as_str())
            .collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn matches_follows_cloud_foundry_semantics() {
        let label_sets: [&[(&str, &str)]; 4] = [
            &[("env", "prod"), ("tier", "web")],
            &[("env", "dev")],
            &[("tier", "")],
            &[],
        ];
        let labels: Vec<BTreeMap<LabelKey, LabelValue>> = label_sets
            .iter()
            .map(|set| set.iter().map(|(key, value)| (k(key), v(value))).collect())
            .collect();
        // One expectation per label set above: {env=prod,tier=web}, {env=dev}, {tier=""}, {}.
        let cases: [(&str, [bool; 4]); 19] = [
            ("env", [true, true, false, false]),
            ("!env", [false, false, true, true]),
            ("env=prod", [true, false, false, false]),
            ("env==dev", [false, true, false, false]),
            ("env!=prod", [false, true, true, true]),
            ("env in (prod,dev)", [true, true, false, false]),
            ("env in (qa)", [false, false, false, false]),
            ("env notin (prod)", [false, true, true, true]),
            ("env notin (prod,dev)", [false, false, true, true]),
            ("tier=", [false, false, true, false]),
            ("tier!=", [true, true, false, true]),
            ("tier in (,web)", [true, false, true, false]),
            ("tier notin (,web)", [false, true, false, true]),
            ("tier", [true, false, true, false]),
            ("env=prod,tier=web", [true, false, false, false]),
            ("env=prod,!tier", [false, false, false, false]),
            ("!env,!tier", [false, false, false, true]),
            ("env,env!=prod", [false, true, false, false]),
            ("example.com/team notin (a)", [true, true, true, true]),
        ];
        for (input, expected) in cases {
            let selector = LabelSelector::parse(input).unwrap();
            for (set, (labels, expected)) in labels.iter().zip(expected).enumerate() {
                assert_eq!(
                    selector.matches(labels),
                    expected,
                    "{input:?} on {:?}",
                    label_sets[set]
                );
            }
        }
    }

    /// A small deterministic generator, so the property tests cover many shapes without a crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        /// A valid name: 1 to 10 characters, alphanumeric at both ends.
        fn name(&mut self) -> String {
            const ENDS: &[u8] = b"abcxyzABZ0189";
            const INNER: &[u8] = b"abz09Z._-";
            let len = 1 + self.below(10);
            (0..len)
                .map(|i| {
                    let set = if i == 0 || i == len - 1 { ENDS } else { INNER };
                    char::from(set[self.below(set.len())])
                })
                .collect()
        }

        fn key(&mut self) -> LabelKey {
            let prefix = self.pick(&["", "", "example.com/", "a-b.c9.io/"]);
            let name = match self.below(8) {
                0 => self.pick(&["in", "notin"]).to_owned(),
                _ => self.name(),
            };
            k(&format!("{prefix}{name}"))
        }

        fn value(&mut self) -> LabelValue {
            match self.below(5) {
                0 => v(""),
                1 => v(self.pick(&["in", "notin"])),
                _ => v(&self.name()),
            }
        }

        /// 1 to 4 values, never the single empty value, which `key in ()` cannot express.
        fn values(&mut self) -> Vec<LabelValue> {
            let mut values: Vec<LabelValue> =
                (0..1 + self.below(4)).map(|_| self.value()).collect();
            if values == [v("")] {
                values.push(v("x"));
            }
            values
        }

        fn requirement(&mut self) -> Requirement {
            let key = self.key();
            match self.below(6) {
                0 => Requirement::Exists(key),
                1 => Requirement::NotExists(key),
                2 => Requirement::Equals(key, self.value()),
                3 => Requirement::NotEquals(key, self.value()),
                4 => Requirement::In(key, self.values()),
                _ => Requirement::NotIn(key, self.values()),
            }
        }

        fn space(&mut self) -> &'static str {
            self.pick(&["", "", " ", "  ", "\t"])
        }
    }

    /// Writes a requirement as a client might, with random spacing and `=` or `==`.
    fn render(requirement: &Requirement, random: &mut XorShift) -> String {
        let list = |values: &[LabelValue], random: &mut XorShift| {
            values
                .iter()
                .map(|value| format!("{}{value}{}", random.space(), random.space()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (s1, s2) = (random.space(), random.space());
        let text = match requirement {
            Requirement::Exists(key) => key.to_string(),
            Requirement::NotExists(key) => format!("!{s1}{key}"),
            Requirement::Equals(key, value) => {
                let op = random.pick(&["=", "=="]);
                format!("{key}{s1}{op}{s2}{value}")
            }
            Requirement::NotEquals(key, value) => format!("{key}{s1}!={s2}{value}"),
            Requirement::In(key, values) => {
                format!("{key} {s1}in{s2}({})", list(values, random))
            }
            Requirement::NotIn(key, values) => {
                format!("{key} {s1}notin{s2}({})", list(values, random))
            }
        };
        format!("{}{text}{}", random.space(), random.space())
    }

    #[test]
    fn rendered_selectors_parse_back_to_the_same_requirements() {
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let count = 1 + random.below(MAX_REQUIREMENTS);
            let requirements: Vec<Requirement> = (0..count).map(|_| random.requirement()).collect();
            let text = requirements
                .iter()
                .map(|requirement| render(requirement, &mut random))
                .collect::<Vec<_>>()
                .join(",");
            let parsed = LabelSelector::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(parsed.requirements(), requirements.as_slice(), "{text:?}");
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_what_parses_round_trips() {
        const ALPHABET: [&str; 18] = [
            "a", "b", "in", "notin", "=", "!", ",", "(", ")", " ", ".", "/", "-", "_", "\u{e9}",
            "\n", "x.io/", "9",
        ];
        let mut random = XorShift(0x2545_f491_4f6c_dd1d);
        let mut parsed_count = 0;
        for _ in 0..20_000 {
            let text: String = (0..random.below(12))
                .map(|_| random.pick(&ALPHABET))
                .collect();
            let Ok(selector) = LabelSelector::parse(&text) else {
                continue;
            };
            parsed_count += 1;
            let again = selector
                .requirements()
                .iter()
                .map(|requirement| render(requirement, &mut random))
                .collect::<Vec<_>>()
                .join(",");
            assert_eq!(
                LabelSelector::parse(&again).as_ref(),
                Ok(&selector),
                "{text:?} rendered as {again:?}"
            );
        }
        // The alphabet is rich enough that some of the noise is a valid selector.
        assert!(parsed_count > 100, "only {parsed_count} parsed");
    }
}

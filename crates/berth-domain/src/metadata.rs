//! Labels and annotations, validated by Cloud Foundry's metadata rules.
//!
//! A key is an optional DNS prefix and a `/`, then a name of 1 to 63 characters drawn from
//! `[A-Za-z0-9_.-]`, beginning and ending alphanumeric. Label values follow the name rules but may
//! be empty; annotation values are free text of at most 5000 characters. Error texts are Cloud
//! Foundry's own, so clients that match on them keep working.

use std::collections::BTreeMap;
use std::fmt;

/// Most labels one resource may carry (`max_labels_per_resource`).
pub const MAX_LABELS_PER_RESOURCE: usize = 50;
/// Most annotations one resource may carry (`max_annotations_per_resource`).
pub const MAX_ANNOTATIONS_PER_RESOURCE: usize = 200;

const MAX_NAME_LEN: usize = 63;
const MAX_PREFIX_LEN: usize = 253;
const MAX_ANNOTATION_VALUE_LEN: usize = 5000;
const RESERVED_PREFIX: &str = "cloudfoundry.org";

/// Why a metadata key or value was refused; `Display` is Cloud Foundry's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Metadata label key error: ….
    #[error("Metadata label key error: {0}")]
    LabelKey(KeyProblem),
    /// Metadata label value error: ….
    #[error("Metadata label value error: {0}")]
    LabelValue(KeyProblem),
    /// Metadata annotation key error: ….
    #[error("Metadata annotation key error: {0}")]
    AnnotationKey(KeyProblem),
    /// Annotation value too long.
    #[error("Metadata annotation value error: '{}' is greater than {MAX_ANNOTATION_VALUE_LEN} characters", abbreviate(.0))]
    AnnotationValueTooLong(String),
}

/// What is wrong with one key or label value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// Empty.
    Empty,
    /// More than one slash.
    MoreThanOneSlash,
    /// Prefix not dns.
    PrefixNotDns(String),
    /// Prefix too long.
    PrefixTooLong(String),
    /// Prefix reserved.
    PrefixReserved(String),
    /// Invalid characters.
    InvalidCharacters(String),
    /// Invalid ends.
    InvalidEnds(String),
    /// Too long.
    TooLong(String),
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("key cannot be empty string"),
            Self::MoreThanOneSlash => f.write_str("key has more than one '/'"),
            Self::PrefixNotDns(p) => {
                write!(f, "prefix '{}' must be in valid dns format", abbreviate(p))
            }
            Self::PrefixTooLong(p) => {
                write!(
                    f,
                    "prefix '{}' is greater than {MAX_PREFIX_LEN} characters",
                    abbreviate(p)
                )
            }
            Self::PrefixReserved(p) => write!(f, "prefix '{p}' is reserved"),
            Self::InvalidCharacters(s) => {
                write!(f, "'{}' contains invalid characters", abbreviate(s))
            }
            Self::InvalidEnds(s) => {
                write!(
                    f,
                    "'{}' starts or ends with invalid characters",
                    abbreviate(s)
                )
            }
            Self::TooLong(s) => {
                write!(
                    f,
                    "'{}' is greater than {MAX_NAME_LEN} characters",
                    abbreviate(s)
                )
            }
        }
    }
}

/// Cloud Foundry shows at most the first eight characters of an offending text, then `...`.
fn abbreviate(s: &str) -> String {
    if s.chars().count() > 8 {
        let head: String = s.chars().take(8).collect();
        format!("{head}...")
    } else {
        s.to_owned()
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// Checks a key name or a label value. `allow_empty` is true for label values.
fn check_name(name: &str, allow_empty: bool) -> Result<(), KeyProblem> {
    if name.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err(KeyProblem::Empty)
        };
    }
    if !name.chars().all(is_name_char) {
        return Err(KeyProblem::InvalidCharacters(name.to_owned()));
    }
    let first = name.chars().next().unwrap_or('-');
    let last = name.chars().last().unwrap_or('-');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err(KeyProblem::InvalidEnds(name.to_owned()));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(KeyProblem::TooLong(name.to_owned()));
    }
    Ok(())
}

/// A DNS name with at least one dot, each label 1..63 of `[a-z0-9-]` not starting or ending with `-`.
fn is_dns_prefix(prefix: &str) -> bool {
    let labels: Vec<&str> = prefix.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_key(key: &str) -> Result<(), KeyProblem> {
    if key.is_empty() {
        return Err(KeyProblem::Empty);
    }
    let mut parts = key.split('/');
    let (prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, None) => (None, name),
        (Some(prefix), Some(name), None) => (Some(prefix), name),
        _ => return Err(KeyProblem::MoreThanOneSlash),
    };
    if let Some(prefix) = prefix {
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(KeyProblem::PrefixTooLong(prefix.to_owned()));
        }
        if !is_dns_prefix(prefix) {
            return Err(KeyProblem::PrefixNotDns(prefix.to_owned()));
        }
        if prefix.eq_ignore_ascii_case(RESERVED_PREFIX) {
            return Err(KeyProblem::PrefixReserved(prefix.to_owned()));
        }
    }
    check_name(name, false)
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Its text form, as stored and shown.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// A label key: `[prefix/]name`.
    LabelKey
);
text_newtype!(
    /// A label value: empty, or a name of at most 63 characters.
    LabelValue
);
text_newtype!(
    /// An annotation key: the same rules as a label key.
    AnnotationKey
);
text_newtype!(
    /// An annotation value: any text of at most 5000 characters.
    AnnotationValue
);

impl LabelKey {
    /// # Errors
    /// [`MetadataError::LabelKey`] when the key breaks a rule.
    pub fn parse(key: &str) -> Result<Self, MetadataError> {
        check_key(key).map_err(MetadataError::LabelKey)?;
        Ok(Self(key.to_owned()))
    }
}

impl LabelValue {
    /// # Errors
    /// [`MetadataError::LabelValue`] when the value breaks a rule.
    pub fn parse(value: &str) -> Result<Self, MetadataError> {
        check_name(value, true).map_err(MetadataError::LabelValue)?;
        Ok(Self(value.to_owned()))
    }
}

impl AnnotationKey {
    /// # Errors
    /// [`MetadataError::AnnotationKey`] when the key breaks a rule.
    pub fn parse(key: &str) -> Result<Self, MetadataError> {
        check_key(key).map_err(MetadataError::AnnotationKey)?;
        Ok(Self(key.to_owned()))
    }
}

impl AnnotationValue {
    /// # Errors
    /// [`MetadataError::AnnotationValueTooLong`] past 5000 characters.
    pub fn parse(value: &str) -> Result<Self, MetadataError> {
        if value.chars().count() > MAX_ANNOTATION_VALUE_LEN {
            return Err(MetadataError::AnnotationValueTooLong(value.to_owned()));
        }
        Ok(Self(value.to_owned()))
    }
}

/// A resource's labels and annotations, within the per-resource limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    labels: BTreeMap<LabelKey, LabelValue>,
    annotations: BTreeMap<AnnotationKey, AnnotationValue>,
}

/// Too many labels or annotations on one resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataLimitError {
    #[error(
        "Failed to add {requested} labels because it would exceed maximum of {MAX_LABELS_PER_RESOURCE}"
    )]
    /// More labels than a resource may have.
    TooManyLabels {
        /// How many the change would leave.
        requested: usize,
    },
    #[error(
        "Failed to add {requested} annotations because it would exceed maximum of {MAX_ANNOTATIONS_PER_RESOURCE}"
    )]
    /// More annotations than a resource may have.
    TooManyAnnotations {
        /// How many the change would leave.
        requested: usize,
    },
}

impl Metadata {
    /// Metadata as stored; the store only holds metadata that passed [`Metadata::apply`].
    pub fn from_stored(
        labels: BTreeMap<LabelKey, LabelValue>,
        annotations: BTreeMap<AnnotationKey, AnnotationValue>,
    ) -> Self {
        Self {
            labels,
            annotations,
        }
    }

    /// The labels.
    pub fn labels(&self) -> &BTreeMap<LabelKey, LabelValue> {
        &self.labels
    }

    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label.as_str() == key)
            .map(|(_, value)| value.as_str())
    }

    /// These labels and annotations with label `key` set to `value`, beyond the per-resource
    /// limit if need be (for the labels Berth itself sets).
    pub fn with_label(&self, key: LabelKey, value: LabelValue) -> Self {
        let mut labels = self.labels.clone();
        labels.insert(key, value);
        Self {
            labels,
            annotations: self.annotations.clone(),
        }
    }

    /// The annotations.
    pub fn annotations(&self) -> &BTreeMap<AnnotationKey, AnnotationValue> {
        &self.annotations
    }

    /// Merges a patch: a key with a value is set, a key with `None` is deleted, others stay.
    ///
    /// # Errors
    /// [`MetadataLimitError`] when the result would carry more than the per-resource limits.
    pub fn apply(&self, patch: &MetadataPatch) -> Result<Self, MetadataLimitError> {
        let mut merged = self.clone();
        for (key, value) in &patch.labels {
            match value {
                Some(value) => merged.labels.insert(key.clone(), value.clone()),
                None => merged.labels.remove(key),
            };
        }
        for (key, value) in &patch.annotations {
            match value {
                Some(value) => merged.annotations.insert(key.clone(), value.clone()),
                None => merged.annotations.remove(key),
            };
        }
        if merged.labels.len() > MAX_LABELS_PER_RESOURCE {
            let added = merged.labels.len().saturating_sub(self.labels.len());
            return Err(MetadataLimitError::TooManyLabels {
                requested: added.max(1),
            });
        }
        if merged.annotations.len() > MAX_ANNOTATIONS_PER_RESOURCE {
            let added = merged
                .annotations
                .len()
                .saturating_sub(self.annotations.len());
            return Err(MetadataLimitError::TooManyAnnotations {
                requested: added.max(1),
            });
        }
        Ok(merged)
    }
}

/// Changes to metadata: `Some` sets a key, `None` deletes it, absent keys stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPatch {
    labels: BTreeMap<LabelKey, Option<LabelValue>>,
    annotations: BTreeMap<AnnotationKey, Option<AnnotationValue>>,
}

impl MetadataPatch {
    /// Builds one from its parts.
    pub fn new(
        labels: BTreeMap<LabelKey, Option<LabelValue>>,
        annotations: BTreeMap<AnnotationKey, Option<AnnotationValue>>,
    ) -> Self {
        Self {
            labels,
            annotations,
        }
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }

    /// Whether the patch sets or deletes the label `key`.
    pub fn touches_label(&self, key: &str) -> bool {
        self.labels.keys().any(|label| label.as_str() == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label_key_error(key: &str) -> String {
        LabelKey::parse(key)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn label_keys_follow_cloud_foundry_rules() {
        let cases: &[(&str, &str)] = &[
            ("env", ""),
            ("a", ""),
            ("example.com/env", ""),
            ("my-app_1.x", ""),
            ("", "Metadata label key error: key cannot be empty string"),
            (
                "a/b/c",
                "Metadata label key error: key has more than one '/'",
            ),
            (
                "nodot/env",
                "Metadata label key error: prefix 'nodot' must be in valid dns format",
            ),
            (
                "-bad.com/env",
                "Metadata label key error: prefix '-bad.com' must be in valid dns format",
            ),
            (
                "cloudfoundry.org/env",
                "Metadata label key error: prefix 'cloudfoundry.org' is reserved",
            ),
            (
                "CloudFoundry.org/env",
                "Metadata label key error: prefix 'CloudFoundry.org' is reserved",
            ),
            (
                "bad key",
                "Metadata label key error: 'bad key' contains invalid characters",
            ),
            (
                "-env",
                "Metadata label key error: '-env' starts or ends with invalid characters",
            ),
            (
                "env.",
                "Metadata label key error: 'env.' starts or ends with invalid characters",
            ),
            (
                "example.com/",
                "Metadata label key error: key cannot be empty string",
            ),
        ];
        for (key, expected) in cases {
            assert_eq!(&label_key_error(key), expected, "key {key:?}");
        }
        let long = "a".repeat(64);
        assert_eq!(
            label_key_error(&long),
            "Metadata label key error: 'aaaaaaaa...' is greater than 63 characters"
        );
        assert!(LabelKey::parse(&"a".repeat(63)).is_ok());
        let long_prefix = format!("{}.com/env", "a".repeat(250));
        assert!(label_key_error(&long_prefix).contains("is greater than 253 characters"));
    }

    #[test]
    fn label_values_may_be_empty_but_follow_name_rules() {
        assert!(LabelValue::parse("").is_ok());
        assert!(LabelValue::parse("v1.2_3-x").is_ok());
        assert_eq!(
            LabelValue::parse("a b")
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "Metadata label value error: 'a b' contains invalid characters"
        );
        assert!(LabelValue::parse(&"v".repeat(64)).is_err());
        assert!(LabelValue::parse("_v").is_err());
    }

    #[test]
    fn annotation_values_are_bounded_text() {
        assert!(AnnotationValue::parse("any text, even spaces / and : colons").is_ok());
        assert!(AnnotationValue::parse(&"x".repeat(5000)).is_ok());
        assert_eq!(
            AnnotationValue::parse(&"x".repeat(5001))
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "Metadata annotation value error: 'xxxxxxxx...' is greater than 5000 characters"
        );
        assert!(AnnotationKey::parse("bad key").is_err());
    }

    fn patch(labels: &[(&str, Option<&str>)]) -> MetadataPatch {
        MetadataPatch::new(
            labels
                .iter()
                .map(|(k, v)| {
                    (
                        LabelKey::parse(k).unwrap(),
                        v.map(|v| LabelValue::parse(v).unwrap()),
                    )
                })
                .collect(),
            BTreeMap::new(),
        )
    }

    #[test]
    fn apply_merges_and_null_deletes() {
        let base = Metadata::default()
            .apply(&patch(&[("a", Some("1")), ("b", Some("2"))]))
            .unwrap();
        let merged = base
            .apply(&patch(&[("a", None), ("c", Some("3"))]))
            .unwrap();
        let keys: Vec<&str> = merged.labels().keys().map(LabelKey::as_str).collect();
        assert_eq!(keys, ["b", "c"]);
        // Deleting a key that is absent is not an error.
        assert_eq!(merged.apply(&patch(&[("zzz", None)])).unwrap(), merged);
    }

    #[test]
    fn apply_enforces_label_limit() {
        let names: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
        let fifty: Vec<(&str, Option<&str>)> = names[..50]
            .iter()
            .map(|k| (k.as_str(), Some("v")))
            .collect();
        let full = Metadata::default().apply(&patch(&fifty)).unwrap();
        let err = full
            .apply(&patch(&[(names[50].as_str(), Some("v"))]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to add 1 labels because it would exceed maximum of 50"
        );
        // Replacing a value at the limit is fine.
        assert!(full.apply(&patch(&[("k0", Some("w"))])).is_ok());
    }
}

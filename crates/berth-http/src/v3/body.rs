//! Reading V3 request bodies: a bounded JSON object, and Cloud Foundry's field messages.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use berth_domain::RelationshipKind;
use berth_domain::metadata::{AnnotationKey, AnnotationValue, LabelKey, LabelValue, MetadataPatch};
use serde_json::{Map, Value};

use super::error::V3Error;
use crate::body::{BodyError, MAX_BODY_BYTES, read_json};

/// A request body that is a JSON object. An empty body, or `null`, reads as `{}`.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest for JsonObject {
    type Error = V3Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, V3Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            match read_json(&request, payload).await {
                // An empty body, or `null`, has no fields.
                Ok(None | Some(Value::Null)) => Ok(Self(Map::new())),
                Ok(Some(Value::Object(map))) => Ok(Self(map)),
                Ok(Some(_)) => Err(V3Error::message_parse(
                    "the request body must be a JSON object",
                )),
                Err(BodyError::Malformed) => Err(V3Error::message_parse("invalid request body")),
                Err(BodyError::TooLarge) => Err(V3Error::payload_too_large(MAX_BODY_BYTES)),
            }
        })
    }
}

/// Collects every problem of a body, so the client sees them all at once.
#[derive(Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    /// The value of a step that may fail, recording its problem.
    pub fn check<T, E: std::fmt::Display>(&mut self, result: Result<T, E>) -> Option<T> {
        result.map_err(|error| self.push(error.to_string())).ok()
    }

    /// The 422 of what was recorded, when the body cannot be read further.
    pub fn refusal(self) -> V3Error {
        V3Error::unprocessable(&self.0)
    }

    /// `Ok(value)` when nothing was recorded, else a 422 with every problem.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, V3Error> {
        if self.0.is_empty()
            && let Some(value) = value()
        {
            return Ok(value);
        }
        Err(V3Error::unprocessable(&self.0))
    }
}

fn quoted_list(keys: &[&str]) -> String {
    keys.iter()
        .map(|key| format!("'{key}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Records "Unknown field(s): 'a', 'b'" for keys outside `allowed`.
pub fn reject_unknown_fields(map: &Map<String, Value>, allowed: &[&str], problems: &mut Problems) {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|key| !allowed.contains(key))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!("Unknown field(s): {}", quoted_list(&unknown)));
    }
}

/// A string field; `label` is the field's name as a sentence starts it ("Location").
/// Missing or `null` is "can't be blank" when `required`, else `None`.
pub fn string_field<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    label: &str,
    required: bool,
    problems: &mut Problems,
) -> Option<&'a str> {
    match map.get(key) {
        None | Some(Value::Null) if required => {
            problems.push(format!("{label} can't be blank"));
            None
        }
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            problems.push(format!("{label} must be a string"));
            None
        }
    }
}

/// The guid in `{"data": {"guid": "..."}}`, or the Cloud Foundry structure message.
pub fn relationship_guid<'a>(
    value: &'a Value,
    kind: RelationshipKind,
    problems: &mut Problems,
) -> Option<&'a str> {
    named_relationship_guid(value, kind.as_str(), problems)
}

/// [`relationship_guid`] for any relationship name (a role's `user`, too).
pub fn named_relationship_guid<'a>(
    value: &'a Value,
    kind: &str,
    problems: &mut Problems,
) -> Option<&'a str> {
    let guid = value
        .as_object()
        .filter(|object| object.len() == 1)
        .and_then(|object| object.get("data"))
        .and_then(Value::as_object)
        .filter(|data| data.len() == 1)
        .and_then(|data| data.get("guid"))
        .and_then(Value::as_str)
        .filter(|guid| !guid.is_empty() && guid.len() <= 200);
    if guid.is_none() {
        problems.push(format!(
            "Relationships {kind} must be structured like this: \"{kind}: {{\"data\": {{\"guid\": \"valid-guid\"}}}}\""
        ));
    }
    guid
}

/// The `relationships` object of a directory body, which must name exactly `kind`.
pub fn required_parent<'a>(
    map: &'a Map<String, Value>,
    kind: RelationshipKind,
    problems: &mut Problems,
) -> Option<&'a str> {
    let Some(relationships) = map.get("relationships").and_then(Value::as_object) else {
        problems.push("Relationships 'relationships' is not an object");
        return None;
    };
    reject_unknown_fields_with(relationships, &[kind.as_str()], "Relationships", problems);
    match relationships.get(kind.as_str()) {
        Some(value) => relationship_guid(value, kind, problems),
        None => {
            problems.push(format!("Relationships {kind} can't be blank"));
            None
        }
    }
}

pub fn reject_unknown_fields_with(
    map: &Map<String, Value>,
    allowed: &[&str],
    what: &str,
    problems: &mut Problems,
) {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|key| !allowed.contains(key))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "{what} has unexpected field(s): {}",
            quoted_list(&unknown)
        ));
    }
}

/// One of `labels` or `annotations`: keys and values parsed by `key` and `value`, `null` kept as
/// a deletion.
fn metadata_map<K: Ord, V, E: std::fmt::Display>(
    value: Option<&Value>,
    kind: &str,
    key: fn(&str) -> Result<K, E>,
    parse_value: fn(&str) -> Result<V, E>,
    problems: &mut Problems,
) -> BTreeMap<K, Option<V>> {
    let mut parsed = BTreeMap::new();
    let entries = match value {
        None | Some(Value::Null) => return parsed,
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            problems.push(format!("Metadata '{kind}s' is not an object"));
            return parsed;
        }
    };
    for (text, value) in entries {
        let key = problems.check(key(text));
        let value = match value {
            Value::Null => Some(None),
            Value::String(text) => problems.check(parse_value(text)).map(Some),
            _ => {
                problems.push(format!(
                    "Metadata {kind} value error: values must be strings or null"
                ));
                None
            }
        };
        if let (Some(key), Some(value)) = (key, value) {
            parsed.insert(key, value);
        }
    }
    parsed
}

/// Parses a `metadata` value into a patch: a string sets a key, `null` deletes it.
pub fn metadata_patch(value: Option<&Value>, problems: &mut Problems) -> MetadataPatch {
    let Some(value) = value else {
        return MetadataPatch::default();
    };
    let Some(metadata) = value.as_object() else {
        problems.push("Metadata must be an object");
        return MetadataPatch::default();
    };
    reject_unknown_fields_with(metadata, &["labels", "annotations"], "Metadata", problems);
    let labels = metadata_map(
        metadata.get("labels"),
        "label",
        LabelKey::parse,
        LabelValue::parse,
        problems,
    );
    let annotations = metadata_map(
        metadata.get("annotations"),
        "annotation",
        AnnotationKey::parse,
        AnnotationValue::parse,
        problems,
    );
    MetadataPatch::new(labels, annotations)
}

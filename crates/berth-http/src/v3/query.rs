//! Reading V3 list query strings: known parameters only, Cloud Foundry's messages, and the
//! parameters kept to build pagination links.

use std::collections::BTreeMap;

use berth_domain::ids::parse_hyphenated_uuid;
use berth_domain::label_selector::LabelSelector;
use berth_domain::listing::{
    DEFAULT_PER_PAGE, Direction, MAX_LIST_FILTER_VALUES, Ordering, PageRequest, TimestampFilter,
};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::error::V3Error;

const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const RELATIONAL_OPERATORS: [&str; 4] = ["lt", "lte", "gt", "gte"];

/// A parsed query string: every parameter known, each problem recorded.
pub struct ListQuery {
    params: BTreeMap<String, String>,
    problems: Vec<String>,
}

impl ListQuery {
    /// Splits the query string and refuses parameters outside `allowed`. Timestamp filters named
    /// in `allowed` (such as `created_ats`) also accept `name[lt|lte|gt|gte]`.
    ///
    /// # Errors
    /// 400 CF-BadQueryParameter for an unreadable query string or unknown parameters.
    pub fn parse(query_string: &str, allowed: &[&str]) -> Result<Self, V3Error> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string)
            .map_err(|_| V3Error::bad_query_parameter(&["the query string is malformed".into()]))?;
        let mut params = BTreeMap::new();
        let mut unknown = Vec::new();
        let mut problems = Vec::new();
        for (key, value) in pairs {
            let base = key.split_once('[').map_or(key.as_str(), |(base, _)| base);
            let known = if key.contains('[') {
                base.ends_with("_ats") && allowed.contains(&base)
            } else {
                allowed.contains(&key.as_str())
            };
            if !known {
                unknown.push(format!("'{key}'"));
                continue;
            }
            // No stored value holds a NUL, and PostgreSQL refuses one in a text parameter.
            if value.contains('\0') {
                problems.push(format!("{key} must not contain a NUL character"));
                continue;
            }
            if let Some(operator) = key
                .strip_prefix(base)
                .and_then(|rest| rest.strip_prefix('['))
            {
                let operator = operator.strip_suffix(']').unwrap_or(operator);
                if !RELATIONAL_OPERATORS.contains(&operator) {
                    problems.push(format!("Invalid relational operator: '{operator}'"));
                    continue;
                }
            }
            params.insert(key, value);
        }
        if !unknown.is_empty() {
            let valid: Vec<String> = allowed.iter().map(|name| format!("'{name}'")).collect();
            return Err(V3Error::bad_query_parameter(&[format!(
                "Unknown query parameter(s): {}. Valid parameters are: {}",
                unknown.join(", "),
                valid.join(", ")
            )]));
        }
        Ok(Self { params, problems })
    }

    /// The parameters as given, for pagination links (page and per_page are set per link).
    pub fn link_params(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .filter(|(key, _)| key.as_str() != "page" && key.as_str() != "per_page")
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// `Ok(value)` unless a problem was recorded.
    ///
    /// # Errors
    /// 400 CF-BadQueryParameter with every problem.
    pub fn finish<T>(self, value: T) -> Result<T, V3Error> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(V3Error::bad_query_parameter(&self.problems))
        }
    }

    pub fn page(&mut self) -> PageRequest {
        let page = match self.params.get("page") {
            None => Some(1),
            Some(text) => text.parse::<u64>().ok().filter(|page| *page >= 1),
        };
        let Some(page) = page else {
            self.problems.push("Page must be a positive integer".into());
            return PageRequest::default();
        };
        let per_page = match self.params.get("per_page") {
            None => Some(u64::from(DEFAULT_PER_PAGE)),
            Some(text) => match text.parse::<i128>() {
                Ok(value) if value >= 1 => Some(u64::try_from(value).unwrap_or(u64::MAX)),
                _ => None,
            },
        };
        let Some(per_page) = per_page else {
            self.problems
                .push("Per page must be a positive integer".into());
            return PageRequest::default();
        };
        match PageRequest::new(page, per_page) {
            Ok(request) => request,
            Err(error) => {
                self.problems.push(error.to_string());
                PageRequest::default()
            }
        }
    }

    /// `order_by`: one of `fields` (their wire names), optionally prefixed by `+` or `-`.
    pub fn order_by<F: Copy>(&mut self, fields: &[(&str, F)]) -> Option<Ordering<F>> {
        let text = self.params.get("order_by")?;
        let (direction, name) = match text.as_bytes().first() {
            Some(b'-') => (Direction::Descending, &text[1..]),
            Some(b'+') => (Direction::Ascending, &text[1..]),
            _ => (Direction::Ascending, text.as_str()),
        };
        match fields.iter().find(|(wire, _)| *wire == name) {
            Some((_, field)) => Some(Ordering {
                field: *field,
                direction,
            }),
            None => {
                let names: Vec<String> =
                    fields.iter().map(|(wire, _)| format!("'{wire}'")).collect();
                self.problems
                    .push(format!("Order by can only be: {}", names.join(", ")));
                None
            }
        }
    }

    /// A comma-separated list, as given. An empty value is an empty list (matches nothing).
    /// More than [`MAX_LIST_FILTER_VALUES`] values is a problem named after the parameter.
    pub fn list(&mut self, name: &str) -> Option<Vec<String>> {
        let text = self.params.get(name)?;
        // Counted before anything is copied or parsed.
        if text.split(',').nth(MAX_LIST_FILTER_VALUES).is_some() {
            self.problems.push(format!(
                "Too many {name} values (maximum is {MAX_LIST_FILTER_VALUES})"
            ));
            return None;
        }
        // An empty value matches nothing, as Cloud Foundry's `x=` matches only "" (or NULL),
        // which no guid, location, name or timestamp is.
        Some(
            text.split(',')
                .map(str::trim_start)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// A list of guids; each must be a UUID.
    pub fn guid_list(&mut self, name: &str, label: &str) -> Option<Vec<Uuid>> {
        let items = self.list(name)?;
        let mut guids = Vec::with_capacity(items.len());
        for item in items {
            match parse_hyphenated_uuid(&item) {
                Ok(uuid) => guids.push(uuid),
                Err(_) => {
                    self.problems.push(format!(
                        "{label} must be a list of valid guids: '{item}' is not one"
                    ));
                    return None;
                }
            }
        }
        Some(guids)
    }

    /// A list of values, each mapped by `parse`; `message` names the allowed values.
    pub fn enum_list<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        message: &str,
    ) -> Option<Vec<T>> {
        let items = self.list(name)?;
        let parsed: Option<Vec<T>> = items.iter().map(|item| parse(item)).collect();
        if parsed.is_none() {
            self.problems.push(message.to_owned());
        }
        parsed
    }

    pub fn label_selector(&mut self) -> Option<LabelSelector> {
        let text = self.params.get("label_selector")?;
        match LabelSelector::parse(text) {
            Ok(selector) => Some(selector),
            Err(error) => {
                self.problems.push(error.to_string());
                None
            }
        }
    }

    /// `name=T1,T2` and `name[lt|lte|gt|gte]=T`.
    pub fn timestamps(&mut self, name: &str, label: &str) -> TimestampFilter {
        let mut filter = TimestampFilter::default();
        let format_problem = format!(
            "{label} has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'"
        );
        if let Some(values) = self.list(name) {
            for value in values {
                match parse_timestamp(&value) {
                    Some(timestamp) => filter.equals.push(timestamp),
                    None => {
                        self.problems.push(format_problem.clone());
                        break;
                    }
                }
            }
        }
        for operator in RELATIONAL_OPERATORS {
            let Some(text) = self.params.get(&format!("{name}[{operator}]")).cloned() else {
                continue;
            };
            if text.contains(',') {
                self.problems.push(format!(
                    "{label} only accepts one value when using a relational operator"
                ));
                continue;
            }
            let Some(timestamp) = parse_timestamp(&text) else {
                self.problems.push(format_problem.clone());
                continue;
            };
            let slot = match operator {
                "lt" => &mut filter.lt,
                "lte" => &mut filter.lte,
                "gt" => &mut filter.gt,
                _ => &mut filter.gte,
            };
            *slot = Some(timestamp);
        }
        filter
    }
}

/// Strictly `YYYY-MM-DDThh:mm:ssZ`, as Cloud Foundry's timestamp validator has it.
fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    if text.len() != 20 {
        return None;
    }
    PrimitiveDateTime::parse(text, TIMESTAMP)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Formats a timestamp as Cloud Foundry shows it: `YYYY-MM-DDThh:mm:ssZ`, UTC.
pub fn format_timestamp(timestamp: OffsetDateTime) -> String {
    timestamp
        .to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["page", "per_page", "order_by", "guids", "created_ats"];

    #[test]
    fn unknown_parameters_are_named() {
        let error = ListQuery::parse("foo=1&page=2&bar=", ALLOWED)
            .err()
            .unwrap();
        assert_eq!(
            error.detail(),
            "The query parameter is invalid: Unknown query parameter(s): 'foo', 'bar'. \
             Valid parameters are: 'page', 'per_page', 'order_by', 'guids', 'created_ats'"
        );
    }

    #[test]
    fn paging_messages_follow_cloud_foundry() {
        for (query, message) in [
            ("page=0", "Page must be a positive integer"),
            ("page=x", "Page must be a positive integer"),
            ("per_page=0", "Per page must be a positive integer"),
            ("per_page=-3", "Per page must be a positive integer"),
            ("per_page=5001", "Per page must be between 1 and 5000"),
            (
                "per_page=99999999999999999999999",
                "Per page must be between 1 and 5000",
            ),
        ] {
            let mut parsed = ListQuery::parse(query, ALLOWED).unwrap();
            parsed.page();
            let error = parsed.finish(()).unwrap_err();
            assert_eq!(
                error.detail(),
                format!("The query parameter is invalid: {message}"),
                "{query}"
            );
        }
    }

    #[test]
    fn an_empty_item_matches_nothing() {
        let guid = "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11";
        let mut parsed = ListQuery::parse(&format!("guids=,{guid},"), ALLOWED).unwrap();
        assert_eq!(
            parsed.guid_list("guids", "Guids").unwrap(),
            vec![Uuid::parse_str(guid).unwrap()]
        );
        let mut parsed = ListQuery::parse("guids=", ALLOWED).unwrap();
        assert_eq!(parsed.guid_list("guids", "Guids"), Some(Vec::new()));
        assert!(parsed.finish(()).is_ok());
    }

    #[test]
    fn timestamps_are_strict() {
        let mut parsed = ListQuery::parse(
            "created_ats[gte]=2026-01-02T03:04:05Z&created_ats=2026-01-01T00:00:00Z,2026-01-01T00:00:01Z",
            ALLOWED,
        )
        .unwrap();
        let filter = parsed.timestamps("created_ats", "Created ats");
        assert_eq!(filter.equals.len(), 2);
        assert_eq!(
            filter.gte.map(format_timestamp).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert!(parsed.finish(()).is_ok());

        for query in [
            "created_ats=2026-01-01",
            "created_ats=2026-01-01T00:00:00+01:00",
            "created_ats[lt]=2026-01-01T00:00:00.5Z",
            "created_ats[lt]=2026-01-01T00:00:00Z,2026-01-01T00:00:01Z",
            "created_ats[foo]=2026-01-01T00:00:00Z",
        ] {
            let mut parsed = ListQuery::parse(query, ALLOWED).unwrap();
            parsed.timestamps("created_ats", "Created ats");
            assert!(parsed.finish(()).is_err(), "{query}");
        }
    }

    #[test]
    fn every_list_holds_at_most_its_bound() {
        let values = |count: usize| vec!["x"; count].join(",");
        let mut parsed = ListQuery::parse(
            &format!("guids={}", values(MAX_LIST_FILTER_VALUES)),
            ALLOWED,
        )
        .unwrap();
        assert_eq!(parsed.list("guids").unwrap().len(), MAX_LIST_FILTER_VALUES);
        assert!(parsed.finish(()).is_ok());
        let mut parsed = ListQuery::parse(
            &format!("guids={}", values(MAX_LIST_FILTER_VALUES + 1)),
            ALLOWED,
        )
        .unwrap();
        assert!(parsed.guid_list("guids", "Guids").is_none());
        assert_eq!(
            parsed.finish(()).unwrap_err().detail(),
            "The query parameter is invalid: Too many guids values (maximum is 200)"
        );
        let mut parsed = ListQuery::parse(
            &format!("created_ats={}", values(MAX_LIST_FILTER_VALUES + 1)),
            ALLOWED,
        )
        .unwrap();
        parsed.timestamps("created_ats", "Created ats");
        assert_eq!(
            parsed.finish(()).unwrap_err().detail(),
            "The query parameter is invalid: Too many created_ats values (maximum is 200)"
        );
    }

    #[test]
    fn order_by_accepts_signs() {
        #[derive(Clone, Copy, Debug, PartialEq)]
        enum Field {
            Created,
        }
        let mut parsed = ListQuery::parse("order_by=-created_at", ALLOWED).unwrap();
        let order = parsed.order_by(&[("created_at", Field::Created)]).unwrap();
        assert_eq!(order.direction, Direction::Descending);
        let mut parsed = ListQuery::parse("order_by=name", ALLOWED).unwrap();
        assert!(parsed.order_by(&[("created_at", Field::Created)]).is_none());
        assert_eq!(
            parsed.finish(()).unwrap_err().detail(),
            "The query parameter is invalid: Order by can only be: 'created_at'"
        );
    }
}

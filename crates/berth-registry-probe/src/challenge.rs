//! `WWW-Authenticate` challenges (RFC 9110 11.6.1): several per header or across headers,
//! parameter values as tokens or quoted strings (a quoted `scope` may hold commas).

/// One challenge: its scheme, lowercased, and its parameters, names lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Every challenge of every header value, in order. Unparseable remainders are dropped.
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    values.into_iter().flat_map(parse_one).collect()
}

fn parse_one(text: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip(|b| b == b',' || b.is_ascii_whitespace());
        let scheme = cursor.token();
        if scheme.is_empty() {
            break;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            let start = cursor.at;
            cursor.skip(|b| b == b',' || b.is_ascii_whitespace());
            let name = cursor.token();
            cursor.skip(|b| b.is_ascii_whitespace());
            if name.is_empty() || !cursor.eat(b'=') {
                // Not `name=`: the next challenge's scheme (or the end).
                cursor.at = start;
                break;
            }
            cursor.skip(|b| b.is_ascii_whitespace());
            let value = cursor.value();
            challenge.params.push((name.to_ascii_lowercase(), value));
        }
        challenges.push(challenge);
        if cursor.at == cursor.bytes.len() {
            break;
        }
    }
    challenges
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.bytes.get(self.at).is_some_and(|&b| what(b)) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn token(&mut self) -> String {
        let start = self.at;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
    }

    /// A quoted string (backslash escapes undone), or, leniently, anything up to the next comma
    /// or space: some servers leave URLs unquoted.
    fn value(&mut self) -> String {
        if !self.eat(b'"') {
            let start = self.at;
            self.skip(|b| b != b',' && !b.is_ascii_whitespace());
            return String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
        }
        let mut value = Vec::new();
        while let Some(&b) = self.bytes.get(self.at) {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(&escaped) = self.bytes.get(self.at) {
                        value.push(escaped);
                        self.at += 1;
                    }
                }
                _ => value.push(b),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn parses_the_challenges_registries_send() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
                vec![challenge(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                    ],
                )],
            ),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
                vec![challenge(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:samalba/my-app:pull,push"),
                    ],
                )],
            ),
            (
                r#"Basic realm="Artifactory Realm""#,
                vec![challenge("basic", &[("realm", "Artifactory Realm")])],
            ),
            (
                concat!(
                    r#"Bearer realm="https://codeberg.org/v2/token",service="container_registry",scope="*","#,
                    r#"Basic realm="https://codeberg.org/v2",service="container_registry",scope="*""#
                ),
                vec![
                    challenge(
                        "bearer",
                        &[
                            ("realm", "https://codeberg.org/v2/token"),
                            ("service", "container_registry"),
                            ("scope", "*"),
                        ],
                    ),
                    challenge(
                        "basic",
                        &[
                            ("realm", "https://codeberg.org/v2"),
                            ("service", "container_registry"),
                            ("scope", "*"),
                        ],
                    ),
                ],
            ),
            (
                r#"Basic realm="quay.io", Bearer realm="https://quay.io/v2/auth", service="quay.io""#,
                vec![
                    challenge("basic", &[("realm", "quay.io")]),
                    challenge(
                        "bearer",
                        &[("realm", "https://quay.io/v2/auth"), ("service", "quay.io")],
                    ),
                ],
            ),
            (
                r#"BEARER Realm = "a\"b" , SERVICE=harbor-registry"#,
                vec![challenge(
                    "bearer",
                    &[("realm", "a\"b"), ("service", "harbor-registry")],
                )],
            ),
            (
                "Bearer realm=https://r.example/token,service=r",
                vec![challenge(
                    "bearer",
                    &[("realm", "https://r.example/token"), ("service", "r")],
                )],
            ),
            ("Negotiate", vec![challenge("negotiate", &[])]),
            ("", vec![]),
            (" , ", vec![]),
        ];
        for (header, expected) in cases {
            assert_eq!(parse([header]), expected, "{header}");
        }
    }

    #[test]
    fn collects_challenges_across_headers() {
        let parsed = parse([
            r#"Basic realm="harbor""#,
            r#"Bearer realm="https://h/service/token""#,
        ]);
        let schemes: Vec<&str> = parsed.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer"]);
        assert_eq!(parsed[1].param("realm"), Some("https://h/service/token"));
        assert_eq!(parsed[1].param("service"), None);
    }
}

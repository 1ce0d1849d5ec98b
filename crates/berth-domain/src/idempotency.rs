//! Idempotency keys (IETF httpapi `Idempotency-Key`): a client that lost the answer to a
//! request that creates something, or that issued a one-time secret, sends the same request with
//! the same key again and gets the first answer back instead of a second robot or credential.
//!
//! The record of a key belongs to one caller: the same key from another caller is another record.
//! A key is claimed before the work starts and completed with the answer afterwards; while it is
//! claimed, the same key answers "in flight"; with another request behind it, "mismatch". The
//! answer is kept for [`REPLAY_WINDOW`] and carries secrets, so the store seals it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::ambient::Ambient;
use crate::ports::{IdempotencyStore, StoreError};

/// Longest key accepted (Stripe's bound; the draft sets none).
pub const MAX_KEY_LEN: usize = 255;
/// How long a completed answer is replayed: the draft's and Stripe's 24 hours.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a claim holds while its request runs. A request that crashed with its key claimed
/// is re-run by a retry after this long (the saga behind it resumes from its recorded steps).
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// Largest answer kept: the answers that carry a secret are a few hundred bytes.
pub const MAX_ANSWER_LEN: usize = 64 * 1024;

/// Why an `Idempotency-Key` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyKeyError {
    /// Idempotency-Key can't be blank.
    #[error("Idempotency-Key can't be blank")]
    Blank,
    /// Idempotency-Key is too long (maximum is … characters).
    #[error("Idempotency-Key is too long (maximum is {MAX_KEY_LEN} characters)")]
    TooLong,
    #[error(
        "Idempotency-Key must be a quoted string (\"...\") or a token of printable ASCII characters"
    )]
    /// Malformed.
    Malformed,
}

/// A client's idempotency key: an RFC 8941 string (`"8e03978e-40d5-43e8-bc93-6894a57f9324"`)
/// or, as Stripe's clients send it, the same characters unquoted; 1 to 255 printable ASCII
/// characters once unquoted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// # Errors
    /// An [`IdempotencyKeyError`] naming the broken rule.
    pub fn parse(header: &str) -> Result<Self, IdempotencyKeyError> {
        let header = header.trim_matches(' ');
        let key = match header.strip_prefix('"') {
            Some(rest) => unquote(rest)?,
            None => {
                if header.bytes().any(|b| matches!(b, b'"' | b'\\' | b' ')) {
                    return Err(IdempotencyKeyError::Malformed);
                }
                header.to_owned()
            }
        };
        if key.is_empty() {
            return Err(IdempotencyKeyError::Blank);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(IdempotencyKeyError::TooLong);
        }
        if !key.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(IdempotencyKeyError::Malformed);
        }
        Ok(Self(key))
    }

    /// Its text form, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rest of an RFC 8941 sf-string after its opening quote: `\"` and `\\` are the only escapes,
/// and nothing may follow the closing quote.
fn unquote(rest: &str) -> Result<String, IdempotencyKeyError> {
    let mut key = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('"' | '\\')) => key.push(escaped),
                _ => return Err(IdempotencyKeyError::Malformed),
            },
            '"' => {
                return if chars.as_str().is_empty() {
                    Ok(key)
                } else {
                    Err(IdempotencyKeyError::Malformed)
                };
            }
            c => key.push(c),
        }
    }
    Err(IdempotencyKeyError::Malformed)
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdempotencyKey").field(&self.0).finish()
    }
}

/// What a request was, for telling a retry from another request under the same key: a digest of
/// its method, route and body, made by the HTTP layer (the body holds passwords, so only its
/// digest is kept, and that sealed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestFingerprint([u8; 32]);

impl RequestFingerprint {
    /// Builds one from its parts.
    pub fn new(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for RequestFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestFingerprint(..)")
    }
}

/// The answer given to the first request, replayed byte for byte. Its body may carry a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body, as sent.
    pub body: Vec<u8>,
}

impl fmt::Debug for StoredAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredAnswer")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("location", &self.location)
            .field("body", &format_args!("[{} bytes hidden]", self.body.len()))
            .finish()
    }
}

/// A key's record as the store found it when another claim already held it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyRecord {
    /// The first request's fingerprint.
    pub fingerprint: RequestFingerprint,
    /// The completed answer; `None` while the first request runs.
    pub answer: Option<StoredAnswer>,
}

impl KeyRecord {
    /// A record as the store found it.
    pub fn new(fingerprint: RequestFingerprint, answer: Option<StoredAnswer>) -> Self {
        Self {
            fingerprint,
            answer,
        }
    }
}

/// What the store did with a claim.
#[derive(Debug)]
pub enum ClaimOutcome {
    /// The key is this request's: it was new, or its record had expired.
    Claimed,
    /// A live record holds the key.
    Held(KeyRecord),
}

/// Who sent the key and which key: a record's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// The caller's subject: the same key from two callers is two records.
    pub principal: String,
    /// The idempotency key.
    pub key: IdempotencyKey,
}

/// A claim to write: the key, the request's fingerprint and how long the claim holds.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Who sent the key, and which key.
    pub owner: KeyOwner,
    /// The first request's fingerprint.
    pub fingerprint: RequestFingerprint,
    /// The time of the claim.
    pub now: OffsetDateTime,
    /// When the claim runs out without an answer.
    pub claimed_until: OffsetDateTime,
}

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Begin {
    /// Run it, then [`IdempotencyService::finish`] or [`IdempotencyService::abandon`] its ticket.
    Run(Ticket),
    /// The same request was answered already: answer this again.
    Replay(StoredAnswer),
    /// The same request is still running: answer 409.
    InFlight,
    /// Another request used this key: answer 422.
    Mismatch,
}

/// A claimed key, to be completed with the answer or given back.
#[derive(Debug)]
#[must_use = "a claimed key must be finished or abandoned"]
pub struct Ticket {
    owner: KeyOwner,
    claimed_at: OffsetDateTime,
}

/// Claims, completes and forgets idempotency keys.
#[derive(Clone)]
pub struct IdempotencyService {
    store: Arc<dyn IdempotencyStore>,
    ambient: Ambient,
}

impl IdempotencyService {
    /// The service over its store, on the system clock ([`Ambient::system`]).
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            store,
            ambient: Ambient::system(),
        }
    }

    /// Uses `ambient`'s clock and id source instead of the system's.
    #[must_use]
    pub fn with_ambient(mut self, ambient: Ambient) -> Self {
        self.ambient = ambient;
        self
    }

    /// Claims `key` for this caller's request, or says why the request must not run.
    ///
    /// # Errors
    /// [`StoreError`] when the record cannot be written or read (the request must not run
    /// either: it might duplicate the first one).
    pub async fn begin(
        &self,
        principal: &str,
        key: IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<Begin, StoreError> {
        let now = self.ambient.now();
        let owner = KeyOwner {
            principal: principal.to_owned(),
            key,
        };
        let claim = Claim {
            owner: owner.clone(),
            fingerprint,
            now,
            claimed_until: now + CLAIM_LEASE,
        };
        Ok(match self.store.claim(&claim).await? {
            ClaimOutcome::Claimed => Begin::Run(Ticket {
                owner,
                claimed_at: now,
            }),
            ClaimOutcome::Held(record) => decide(&record, fingerprint),
        })
    }

    /// Keeps the answer of a claimed request for replays. Only a success is kept: a failure is
    /// given back with [`Self::abandon`], so that a retry runs again.
    ///
    /// # Errors
    /// [`StoreError`]; the answer is then not replayable, and the claim runs out by itself.
    pub async fn finish(&self, ticket: Ticket, answer: &StoredAnswer) -> Result<(), StoreError> {
        let expires_at = ticket.claimed_at + REPLAY_WINDOW;
        self.store.complete(&ticket.owner, answer, expires_at).await
    }

    /// Gives a claimed key back: the request failed or was refused, and a retry runs again.
    ///
    /// # Errors
    /// [`StoreError`]; the claim then runs out after [`CLAIM_LEASE`].
    pub async fn abandon(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.store.release(&ticket.owner).await
    }

    /// Deletes records whose replay window has passed, `batch` at a time; returns how many.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_expired(&self, batch: u32) -> Result<u64, StoreError> {
        let mut pruned = 0;
        loop {
            let deleted = self.store.prune(self.ambient.now(), batch).await?;
            pruned += deleted;
            if deleted < u64::from(batch) {
                return Ok(pruned);
            }
        }
    }
}

/// A held key: the same request is replayed or waits; another request is refused.
fn decide(record: &KeyRecord, fingerprint: RequestFingerprint) -> Begin {
    if record.fingerprint != fingerprint {
        return Begin::Mismatch;
    }
    match &record.answer {
        Some(answer) => Begin::Replay(answer.clone()),
        None => Begin::InFlight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_sf_strings_or_bare_tokens() {
        let cases: &[(&str, Result<&str, IdempotencyKeyError>)] = &[
            (
                "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"",
                Ok("8e03978e-40d5-43e8-bc93-6894a57f9324"),
            ),
            (
                "8e03978e-40d5-43e8-bc93-6894a57f9324",
                Ok("8e03978e-40d5-43e8-bc93-6894a57f9324"),
            ),
            ("\"with space\"", Ok("with space")),
            ("\"a\\\"b\\\\c\"", Ok("a\"b\\c")),
            (" \"padded\" ", Ok("padded")),
            ("\"\"", Err(IdempotencyKeyError::Blank)),
            ("", Err(IdempotencyKeyError::Blank)),
            ("\"open", Err(IdempotencyKeyError::Malformed)),
            ("\"a\"b", Err(IdempotencyKeyError::Malformed)),
            ("\"a\\nb\"", Err(IdempotencyKeyError::Malformed)),
            ("a\"b", Err(IdempotencyKeyError::Malformed)),
            ("two words", Err(IdempotencyKeyError::Malformed)),
            ("\"tab\there\"", Err(IdempotencyKeyError::Malformed)),
            ("\"é\"", Err(IdempotencyKeyError::Malformed)),
        ];
        for (header, expected) in cases {
            let parsed = IdempotencyKey::parse(header);
            assert_eq!(
                parsed
                    .as_ref()
                    .map(IdempotencyKey::as_str)
                    .map_err(Clone::clone),
                expected.clone(),
                "{header:?}"
            );
        }
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(MAX_KEY_LEN + 1)),
            Err(IdempotencyKeyError::TooLong)
        );
    }

    #[test]
    fn a_held_key_replays_waits_or_refuses() {
        let first = RequestFingerprint::new([1; 32]);
        let other = RequestFingerprint::new([2; 32]);
        let answer = StoredAnswer {
            status: 201,
            content_type: Some("application/json".into()),
            location: None,
            body: b"{}".to_vec(),
        };
        let completed = KeyRecord {
            fingerprint: first,
            answer: Some(answer.clone()),
        };
        let running = KeyRecord {
            fingerprint: first,
            answer: None,
        };
        assert!(matches!(decide(&completed, first), Begin::Replay(a) if a == answer));
        assert!(matches!(decide(&completed, other), Begin::Mismatch));
        assert!(matches!(decide(&running, first), Begin::InFlight));
        assert!(matches!(decide(&running, other), Begin::Mismatch));
    }

    #[test]
    fn an_answer_never_shows_its_body_in_debug_output() {
        let answer = StoredAnswer {
            status: 201,
            content_type: None,
            location: None,
            body: b"{\"password\":\"s3cret\"}".to_vec(),
        };
        assert!(!format!("{answer:?}").contains("s3cret"));
    }
}

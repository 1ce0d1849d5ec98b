//! Reading request bodies for both dialects: bounded, and parsed as JSON.

use actix_web::dev::Payload;
use actix_web::{HttpRequest, http::header, web};
use futures_util::StreamExt;
use serde_json::Value;

/// Largest request body accepted: 200 annotations of 5000 characters fit, a flood does not.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Malformed,
}

/// Reads at most [`MAX_BODY_BYTES`] and parses JSON; an empty body is `None`.
pub async fn read_json(
    request: &HttpRequest,
    payload: Payload,
) -> Result<Option<Value>, BodyError> {
    let body = read_bounded(request.headers(), payload).await?;
    if body.iter().all(|byte| is_json_whitespace(*byte)) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|_| BodyError::Malformed)
}

/// JSON's whitespace (RFC 8259): a body of only these is empty. `u8::is_ascii_whitespace` also
/// takes a form feed, which JSON refuses (the fuzzer's `\x0c` body was read as empty).
fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Reads the body's bytes, at most [`MAX_BODY_BYTES`] (a larger declared length is refused
/// before anything is read).
pub async fn read_bounded(
    headers: &header::HeaderMap,
    mut payload: Payload,
) -> Result<web::Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Malformed)?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::is_json_whitespace;

    #[test]
    fn only_json_whitespace_makes_an_empty_body() {
        for byte in [b' ', b'\t', b'\n', b'\r'] {
            assert!(is_json_whitespace(byte));
        }
        for byte in [0x0c, 0x0b, b'x', 0] {
            assert!(!is_json_whitespace(byte), "{byte:#x}");
        }
    }
}

//! HTTP details shared by the remote backends.

use crate::BackendError;
use std::time::Duration;

/// The body of a 2xx response, or the error status as a [`BackendError`].
pub(crate) async fn read_ok(response: reqwest::Response) -> Result<Vec<u8>, BackendError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.map_err(BackendError::from_reqwest)?;
    if !status.is_success() {
        return Err(BackendError::Http {
            status: status.as_u16(),
            body: snippet(&body),
            retry_after,
        });
    }
    Ok(body.to_vec())
}

/// The start of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

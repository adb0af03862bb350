//! The backend trait and the client that wraps every backend the same way.

use crate::{BackendError, ChatRequest, Completion, RetryPolicy, Usage};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// A boxed future, so [`Backend`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One way of answering a chat request, tried once.
///
/// Implementations make exactly one attempt; [`Client`] adds the timeout,
/// retries and the concurrency limit.
pub trait Backend: Send + Sync {
    /// The canonical spec of the model (e.g. `openai:http://h/v1#m`), which
    /// records and cache keys name it by.
    fn identity(&self) -> String;
    /// One attempt at answering `request`.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, BackendError>>;
}

/// A backend behind a concurrency limit, per-attempt timeouts and retries.
pub struct Client {
    backend: Arc<dyn Backend>,
    permits: Arc<Semaphore>,
    retry: RetryPolicy,
    usage: Mutex<Usage>,
}

impl Client {
    /// Wraps `backend`: at most `concurrency` requests in flight at once.
    pub fn new(backend: Arc<dyn Backend>, concurrency: usize, retry: RetryPolicy) -> Self {
        Client {
            backend,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            retry,
            usage: Mutex::new(Usage::default()),
        }
    }

    /// The backend's identity.
    pub fn identity(&self) -> String {
        self.backend.identity()
    }

    /// Tokens used by every answered request so far.
    pub fn usage(&self) -> Usage {
        *self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers `request`, retrying what may succeed on a later attempt. A slot
    /// of the concurrency limit is held only while an attempt is in flight,
    /// not while waiting to retry.
    pub async fn complete(&self, request: &ChatRequest) -> Result<Completion, BackendError> {
        let mut attempt = 0;
        loop {
            let result = {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .map_err(|_| BackendError::Config("client closed".into()))?;
                match tokio::time::timeout(self.retry.timeout, self.backend.complete(request)).await
                {
                    Ok(result) => result,
                    Err(_) => Err(BackendError::Timeout(self.retry.timeout)),
                }
            };
            match result {
                Ok(completion) => {
                    *self.usage.lock().unwrap_or_else(|p| p.into_inner()) += completion.usage;
                    return Ok(completion);
                }
                Err(error) => {
                    attempt += 1;
                    if !error.is_retryable() {
                        return Err(error);
                    }
                    if attempt >= self.retry.max_attempts {
                        return Err(if attempt == 1 {
                            error
                        } else {
                            BackendError::GaveUp {
                                attempts: attempt,
                                last: Box::new(error),
                            }
                        });
                    }
                    let retry_after = match &error {
                        BackendError::Http { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let wait = self.retry.delay(attempt - 1, retry_after);
                    tracing::debug!(%error, ?wait, attempt, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// Fails with the scripted errors, then answers.
    struct Scripted {
        errors: Mutex<Vec<BackendError>>,
        calls: AtomicU32,
    }

    impl Backend for Scripted {
        fn identity(&self) -> String {
            "scripted".into()
        }
        fn complete<'a>(
            &'a self,
            _request: &'a ChatRequest,
        ) -> BoxFuture<'a, Result<Completion, BackendError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.errors.lock().unwrap().pop();
            Box::pin(async move {
                match next {
                    Some(BackendError::Timeout(d)) => {
                        tokio::time::sleep(d).await;
                        unreachable!("the client's timeout fires first")
                    }
                    Some(e) => Err(e),
                    None => Ok(Completion {
                        text: "ok".into(),
                        finish_reason: "stop".into(),
                        usage: Usage {
                            prompt_tokens: 3,
                            completion_tokens: 1,
                        },
                        ..Completion::default()
                    }),
                }
            })
        }
    }

    fn client(errors: Vec<BackendError>, max_attempts: u32) -> (Client, Arc<Scripted>) {
        let backend = Arc::new(Scripted {
            errors: Mutex::new(errors.into_iter().rev().collect()),
            calls: AtomicU32::new(0),
        });
        let policy = RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            timeout: Duration::from_millis(50),
        };
        (Client::new(backend.clone(), 2, policy), backend)
    }

    fn request() -> ChatRequest {
        ChatRequest {
            messages: vec![],
            max_tokens: 4,
            temperature: 0.0,
            top_p: None,
            seed: None,
            ..ChatRequest::default()
        }
    }

    fn http(status: u16) -> BackendError {
        BackendError::Http {
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    #[tokio::test]
    async fn retries_transient_failures_then_answers() {
        let (client, backend) = client(
            vec![
                http(429),
                http(503),
                BackendError::Timeout(Duration::from_secs(5)),
            ],
            4,
        );
        let done = client.complete(&request()).await.unwrap();
        assert_eq!(done.text, "ok");
        assert_eq!(backend.calls.load(Ordering::SeqCst), 4);
        assert_eq!(client.usage().prompt_tokens, 3);
    }

    #[tokio::test]
    async fn does_not_retry_what_cannot_succeed() {
        let (client, backend) = client(vec![http(400)], 4);
        let err = client.complete(&request()).await.unwrap_err();
        assert_eq!(err, http(400));
        assert_eq!(backend.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_with_the_last_cause() {
        let (client, _) = client(vec![http(500), http(500), http(502)], 3);
        let err = client.complete(&request()).await.unwrap_err();
        assert_eq!(
            err,
            BackendError::GaveUp {
                attempts: 3,
                last: Box::new(http(502))
            }
        );
        assert!(err.to_string().contains("HTTP 502"));
    }
}

//! The action guard: run a function only after the server approved the action, then report the
//! outcome. Fail closed: any verification failure (denied, unreachable, timeout, bad answer)
//! returns the error and the function does not run, unless degraded mode explicitly allows the
//! action while the server is unreachable.

use std::fmt::Display;
use std::future::Future;
use std::sync::RwLock;

use crate::client::AimClient;
use crate::error::{Error, Result};
use crate::types::{ActionRequest, Approval};

/// What the guard decided before running the function.
enum Permit {
    Approved(Approval),
    Degraded,
}

impl AimClient {
    /// Verifies `action` on `resource` with `context` (a JSON object, or `null` for `{}`), runs
    /// `f` only when approved, reports the outcome, and returns `f`'s own result.
    ///
    /// A verification failure is returned as `E` (via `From<Error>`) and `f` does not run.
    /// A failure to report the outcome is logged, never returned.
    pub async fn perform_action<T, E, F, Fut>(
        &self,
        action: &str,
        resource: Option<&str>,
        context: serde_json::Value,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error> + Display,
    {
        let mut request = ActionRequest::new(action).context(context);
        request.resource = resource.map(str::to_owned);
        self.perform(request, f).await
    }

    /// [`AimClient::perform_action`] with a full [`ActionRequest`] (risk level, deadline).
    pub async fn perform<T, E, F, Fut>(&self, request: ActionRequest, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error> + Display,
    {
        let permit = self.permit(&request, self.verify_action(&request).await)?;
        let outcome = f().await;
        if let Permit::Approved(approval) = permit {
            let (success, summary, error) = describe(&request.action, &outcome);
            if let Err(e) = self
                .log_action_result(
                    &approval.verification_id,
                    success,
                    summary.as_deref(),
                    error.as_deref(),
                )
                .await
            {
                tracing::warn!(verification_id = %approval.verification_id, error = %e,
                    "could not report the action's outcome to the AIM server");
            }
        }
        outcome
    }

    /// The blocking guard for synchronous code. Works outside any async runtime and inside one
    /// (the HTTP exchanges run on the client's own background runtime, so a current-thread
    /// runtime blocked here cannot deadlock); `f` runs on the calling thread.
    pub fn perform_action_blocking<T, E, F>(
        &self,
        action: &str,
        resource: Option<&str>,
        context: serde_json::Value,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: From<Error> + Display,
    {
        let mut request = ActionRequest::new(action).context(context);
        request.resource = resource.map(str::to_owned);
        self.perform_blocking(request, f)
    }

    /// [`AimClient::perform_action_blocking`] with a full [`ActionRequest`].
    pub fn perform_blocking<T, E, F>(&self, request: ActionRequest, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: From<Error> + Display,
    {
        let verify_request = request.clone();
        let verified = self
            .run_blocking(move |client| async move { client.verify_action(&verify_request).await })
            .and_then(|r| r);
        let permit = self.permit(&request, verified)?;
        let outcome = f();
        if let Permit::Approved(approval) = permit {
            let (success, summary, error) = describe(&request.action, &outcome);
            let id = approval.verification_id.clone();
            let logged = self
                .run_blocking(move |client| async move {
                    client
                        .log_action_result(&id, success, summary.as_deref(), error.as_deref())
                        .await
                })
                .and_then(|r| r);
            if let Err(e) = logged {
                tracing::warn!(verification_id = %approval.verification_id, error = %e,
                    "could not report the action's outcome to the AIM server");
            }
        }
        outcome
    }

    /// Turns a verification result into a permit, applying degraded mode.
    fn permit(&self, request: &ActionRequest, verified: Result<Approval>) -> Result<Permit> {
        match verified {
            Ok(approval) => Ok(Permit::Approved(approval)),
            Err(e) if e.is_unreachable() && self.config().degraded_mode.allows(&request.action) => {
                tracing::warn!(action = %request.action, resource = ?request.resource, error = %e,
                    "AIM server unreachable: running the action UNVERIFIED (degraded mode allows it)");
                Ok(Permit::Degraded)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `f(client)` on the client's background runtime and waits for it.
    pub(crate) fn run_blocking<R, F, Fut>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(AimClient) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let rt = self
            .inner
            .blocking
            .get_or_init(|| BlockingRuntime::new(&self.inner.config))
            .as_ref()
            .map_err(|e| Error::Configuration(format!("cannot start the client runtime: {e}")))?;
        let client = AimClient {
            inner: self.inner.clone(),
            http: rt.http.clone(),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.runtime.spawn(async move {
            let _ = tx.send(f(client).await);
        });
        rx.recv().map_err(|_| {
            Error::Configuration("the client's background runtime stopped unexpectedly".into())
        })
    }
}

/// The outcome to report: success flag, summary, error text.
fn describe<T, E: Display>(
    action: &str,
    outcome: &Result<T, E>,
) -> (bool, Option<String>, Option<String>) {
    match outcome {
        Ok(_) => (
            true,
            Some(format!("Action '{action}' completed successfully")),
            None,
        ),
        Err(e) => (false, None, Some(e.to_string())),
    }
}

/// A private runtime (one worker thread) and HTTP client for the blocking guard.
pub(crate) struct BlockingRuntime {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl BlockingRuntime {
    fn new(config: &crate::config::ClientConfig) -> std::result::Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("aim-client-blocking")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // The pool's connection tasks must live on this runtime, so build the client inside it.
        let http = {
            let _guard = runtime.enter();
            crate::client::http_client(config).map_err(|e| e.to_string())?
        };
        Ok(Self { runtime, http })
    }

    /// Stops the runtime without blocking (safe from inside any runtime).
    pub(crate) fn shutdown(self) {
        self.runtime.shutdown_background();
    }
}

static DEFAULT: RwLock<Option<AimClient>> = RwLock::new(None);

impl AimClient {
    /// Installs `client` as the process-wide default used by `#[aim::action]` without
    /// `client = ...`. Replaces any previous default.
    pub fn install_default(client: AimClient) {
        let mut slot = DEFAULT.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(client);
    }
}

/// The process-wide default client, or a configuration error when none is installed.
pub fn default_client() -> Result<AimClient> {
    DEFAULT
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(|| {
            Error::Configuration(
                "no default AIM client: call AimClient::install_default(client) first, or pass \
                 `client = ...` to #[aim::action]"
                    .into(),
            )
        })
}

/// Where `#[aim::action]` gets its client from.
pub trait ClientSource {
    /// The client, or why there is none.
    fn aim_client(self) -> Result<AimClient>;
}

impl ClientSource for AimClient {
    fn aim_client(self) -> Result<AimClient> {
        Ok(self)
    }
}

impl ClientSource for &AimClient {
    fn aim_client(self) -> Result<AimClient> {
        Ok(self.clone())
    }
}

impl ClientSource for &std::sync::Arc<AimClient> {
    fn aim_client(self) -> Result<AimClient> {
        Ok(AimClient::clone(self))
    }
}

impl ClientSource for Result<AimClient> {
    fn aim_client(self) -> Result<AimClient> {
        self
    }
}

/// The process-wide default client as a [`ClientSource`].
#[derive(Debug, Clone, Copy)]
pub struct DefaultClient;

impl ClientSource for DefaultClient {
    fn aim_client(self) -> Result<AimClient> {
        default_client()
    }
}

/// Support code for `#[aim::action]`; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use super::{ClientSource, DefaultClient};
    pub use crate::types::ActionRequest;
    pub use crate::{AimClient, Error};
    use std::fmt::Display;
    use std::future::Future;

    /// Sync guard used by the macro.
    pub fn guard_blocking<C, T, E, F>(client: C, request: ActionRequest, f: F) -> Result<T, E>
    where
        C: ClientSource,
        F: FnOnce() -> Result<T, E>,
        E: From<Error> + Display,
    {
        let client = client.aim_client().map_err(E::from)?;
        client.perform_blocking(request, f)
    }

    /// Async guard used by the macro.
    pub async fn guard_async<C, T, E, F, Fut>(
        client: C,
        request: ActionRequest,
        f: F,
    ) -> Result<T, E>
    where
        C: ClientSource,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error> + Display,
    {
        let client = client.aim_client().map_err(E::from)?;
        client.perform(request, f).await
    }

    /// Pins the async body's output type so `?` inside it infers.
    pub fn typed_future<T, E, Fut: Future<Output = Result<T, E>>>(f: Fut) -> Fut {
        f
    }

    /// `serde_json::json!`-free conversion of a context expression.
    pub fn context<V: Into<serde_json::Value>>(v: V) -> serde_json::Value {
        v.into()
    }
}

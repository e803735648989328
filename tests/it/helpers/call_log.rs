//! The one interceptor that watches a DynamoDB client's requests: every request the SDK sends
//! (retries included), counted by operation (`X-Amz-Target`) as it goes out, and handed with
//! its JSON body to a sink when there is one. The IAM check records with it (`calls.rs`), and
//! the benchmarks and `examples/reconcile_scale.rs` count with it (they include this file).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use serde_json::Value;

/// Receives each request: its operation (`PutItem`, …) and its JSON body.
pub type Sink = Arc<dyn Fn(&str, &Value) + Send + Sync>;

#[derive(Clone, Default)]
pub struct CallLog {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    sink: Option<Sink>,
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallLog").finish_non_exhaustive()
    }
}

impl CallLog {
    /// A log that also hands every request to `sink`.
    pub fn with_sink(sink: Sink) -> Self {
        Self {
            sink: Some(sink),
            ..Self::default()
        }
    }

    /// The calls by operation since the last take, and a fresh count.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }

    /// How many calls since the last take, and a fresh count.
    pub fn take_total(&self) -> u64 {
        self.take().values().sum()
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        // `X-Amz-Target: DynamoDB_20120810.PutItem`
        let target = request.headers().get("x-amz-target").unwrap_or("?");
        let operation = target.rsplit('.').next().unwrap_or(target);
        *self
            .counts
            .lock()
            .unwrap()
            .entry(operation.to_owned())
            .or_default() += 1;
        if let Some(sink) = &self.sink {
            let body = request
                .body()
                .bytes()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            sink(operation, &body);
        }
        Ok(())
    }
}

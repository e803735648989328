use std::convert::Infallible;

use clerk_webhooks::config::Config;
use clerk_webhooks::function_url::FunctionUrlRequest;
use clerk_webhooks::handler::Handler;
use clerk_webhooks::store;
use lambda_http::lambda_runtime::{self, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    clerk_webhooks::logging::init();
    let config = Config::from_env();
    if let Err(error) = &config {
        tracing::error!(%error, "invalid configuration: every request answers 500 until it is fixed");
    }
    let handler = Handler::new(config, store::client_from_env().await);
    handler.warm_up().await;
    let handler = &handler;
    // The runtime hands over the raw function-URL event: function_url.rs turns it into a request
    // itself, so a malformed event is answered instead of panicking in lambda_http.
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<FunctionUrlRequest>| async move {
            Ok::<_, Infallible>(handler.invoke(event.payload).await)
        },
    ))
    .await
}

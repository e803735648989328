use std::convert::Infallible;

use clerk_webhooks::config::Config;
use clerk_webhooks::handler::Handler;
use clerk_webhooks::store;
use lambda_http::{service_fn, Error};

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
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, Infallible>(handler.handle(request).await)
    }))
    .await
}

//! Prints every item of the local table as one JSON object per line (`make scan`).
//! Development only: it prints personal data, which the function itself never logs.
use clerk_webhooks::table::encoding;
use clerk_webhooks::{env::TABLE_VAR, store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = std::env::var(TABLE_VAR).map_err(|_| format!("{TABLE_VAR} is not set"))?;
    let client = store::client_from_env().await;
    let mut pages = client
        .scan()
        .table_name(&table)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        // `data` decoded, whichever form the item holds it in.
        let item = serde_json::Value::Object(encoding::to_json(&item?)?);
        println!("{item}");
    }
    Ok(())
}

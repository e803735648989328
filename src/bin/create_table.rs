//! Creates the table of the table contract, e.g. in DynamoDB Local:
//! `AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 TABLE_NAME=clerk-webhooks clerk-webhooks-create-table`
use clerk_webhooks::{env::TABLE_VAR, store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = std::env::var(TABLE_VAR).map_err(|_| format!("{TABLE_VAR} is not set"))?;
    clerk_webhooks::store::create_table(&store::client_from_env().await, &table).await?;
    println!("table {table} is ready");
    Ok(())
}

//! [`NotifyApp`]: the webhook handler on a fresh table ([`TestApp`]), the notifier on the same
//! table with fake Resend and Slack servers, and the table's stream read back with the real
//! Streams API of DynamoDB Local, handed over as Lambda would.

use std::time::{Duration, Instant};

use clerk_webhooks::notify::config::{Delivery, NotifyConfig, Secret, WithoutKeys};
use clerk_webhooks::notify::sender::Sender;
use clerk_webhooks::notify::stream::StreamReader;
use clerk_webhooks::notify::{BatchResponse, Clock, Notifier};
use serde_json::{json, Value};

use super::calls::{self, Function};
use super::providers::{FakeProvider, Provider, RESEND_KEY};
use super::{endpoint, TestApp};

/// A welcome email's configured sender and templates.
pub const FROM: &str = "Acme <welcome@acme.example>";

pub struct NotifyApp {
    pub app: TestApp,
    pub resend: FakeProvider,
    pub slack: FakeProvider,
    pub config: NotifyConfig,
    pub notifier: Notifier,
    reader: StreamReader,
}

/// A Streams client for DynamoDB Local (the same endpoint serves both APIs).
pub fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodbstreams::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

impl NotifyApp {
    /// Both actions on, Slack for the changes listed (`SLACK_NOTIFY`).
    pub async fn spawn(slack_notify: &str) -> Self {
        Self::spawn_with(slack_notify, Duration::from_secs(5)).await
    }

    /// As [`NotifyApp::spawn`], the provider requests timing out after `request_timeout`.
    pub async fn spawn_with(slack_notify: &str, request_timeout: Duration) -> Self {
        let app = TestApp::spawn_with_stream().await;
        let resend = FakeProvider::start(Provider::Resend).await;
        let slack = FakeProvider::start(Provider::Slack).await;
        let vars = [
            ("TABLE_NAME", app.table.clone()),
            ("RESEND_API_KEY", RESEND_KEY.to_owned()),
            ("RESEND_BASE_URL", resend.url.clone()),
            ("WELCOME_EMAIL_FROM", FROM.to_owned()),
            (
                "WELCOME_EMAIL_SUBJECT",
                "Welcome, {{first_name}}!".to_owned(),
            ),
            (
                "WELCOME_EMAIL_HTML",
                "<p>Hi {{name}}, your account for {{email}} is ready.</p>".to_owned(),
            ),
            ("SLACK_WEBHOOK_URL", slack.url.clone()),
            ("SLACK_NOTIFY", slack_notify.to_owned()),
        ];
        let config = NotifyConfig::from_lookup(
            |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            },
            WithoutKeys::Off,
        )
        .unwrap();
        assert_eq!(
            config.email.as_ref().unwrap().delivery,
            Delivery::Send(Secret::new(RESEND_KEY))
        );
        let notifier = Self::notifier_for(&config, request_timeout);
        let reader = StreamReader::new(app.client.clone(), streams_client(), &app.table);
        Self {
            app,
            resend,
            slack,
            config,
            notifier,
            reader,
        }
    }

    /// Another notifier on the same table and providers: another Lambda execution
    /// environment.
    pub fn notifier_for(config: &NotifyConfig, request_timeout: Duration) -> Notifier {
        Notifier::with_sender(
            config.clone(),
            calls::client(Function::Notifier, &endpoint()),
            Sender::with_timeout(request_timeout).unwrap(),
        )
    }

    /// Every record the table's stream holds, in Lambda's JSON.
    pub async fn records(&self) -> Vec<Value> {
        self.reader.read_all().await.unwrap()
    }

    /// Hands `records` to the notifier as one Lambda invocation with a minute to go.
    pub async fn notify(&self, records: &[Value]) -> BatchResponse {
        self.notify_at(records, Duration::from_secs(60), Clock::system())
            .await
    }

    pub async fn notify_at(
        &self,
        records: &[Value],
        time_left: Duration,
        clock: Clock,
    ) -> BatchResponse {
        super::logs::init();
        self.notifier
            .invoke_at(&event(records), Instant::now() + time_left, clock)
            .await
            .unwrap()
    }

    /// Reads the whole stream and hands it over as one batch.
    pub async fn notify_all(&self) -> BatchResponse {
        let records = self.records().await;
        self.notify(&records).await
    }
}

/// Lambda's event for a batch of stream records.
pub fn event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// The sequence number of each record that makes a change of `entity` with this `id`.
pub fn sequence_numbers_of(records: &[Value], pk: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["dynamodb"]["Keys"]["pk"]["S"] == json!(pk))
        .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned())
        .collect()
}

//! Lambda function URLs (payload format 2.0): the event Lambda hands the runtime, turned into
//! the HTTP request it describes, and the response turned back into the event Lambda expects.
//!
//! [`crate::handler::Handler::invoke`] is the only caller: the tests build these events too,
//! so every request in the suite goes through this conversion.

use std::collections::BTreeMap;

use base64::Engine;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// The part of a function-URL event (payload format 2.0) the handler reads: the method, the
/// headers and the body. URI, query, cookies and the request context are not carried over.
///
/// This conversion is ours, not lambda_http's, because lambda_http's cannot fail: it panics
/// on a body marked `isBase64Encoded` that is not base64 (an `expect` in aws_lambda_events'
/// `Body::from_maybe_encoded`) and on a host, `x-forwarded-proto` or query string that does
/// not make a valid URI (`unwrap`s while it builds the URI); a header or a method that HTTP
/// does not allow fails the event's deserialisation before any handler runs. All of these end
/// as a function error: a 502 to Svix, the `Errors` alarm, and no line of ours. Here every
/// field is optional and headers are plain strings, so any JSON object deserialises, and every
/// flaw in what we read becomes a [`Rejection`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUrlRequest {
    #[serde(default)]
    pub request_context: RequestContext,
    /// Lower-cased names; a repeated header arrives as one comma-separated value.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct RequestContext {
    #[serde(default)]
    pub http: HttpDescription,
}

#[derive(Debug, Default, Deserialize)]
pub struct HttpDescription {
    #[serde(default)]
    pub method: String,
}

/// A function-URL event that is not a well-formed HTTP request. Messages never quote the
/// offending value: it is anyone's input.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the body is marked isBase64Encoded but is not valid base64: {0}")]
    BodyEncoding(base64::DecodeError),
    #[error("a header name is not a valid HTTP header name")]
    HeaderName,
    #[error("header {0} has a value that HTTP does not allow")]
    HeaderValue(HeaderName),
    #[error("the method is not a valid HTTP method; webhooks are POSTed")]
    Method,
}

impl FunctionUrlRequest {
    /// The HTTP request this event describes, or why it describes none.
    pub fn into_request(self) -> Result<Request, EventError> {
        let method = Method::from_bytes(self.request_context.http.method.as_bytes())
            .map_err(|_| EventError::Method)?;
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers.unwrap_or_default() {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| EventError::HeaderName)?;
            let value =
                HeaderValue::from_str(&value).map_err(|_| EventError::HeaderValue(name.clone()))?;
            headers.append(name, value);
        }
        let body = match self.body {
            None => Body::Empty,
            Some(body) if self.is_base64_encoded => Body::Binary(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map_err(EventError::BodyEncoding)?,
            ),
            Some(body) => Body::Text(body),
        };
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// The function-URL (payload format 2.0) response for `response`, as lambda_http builds it.
pub fn response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    (out.is_base64_encoded, out.body) = match body {
        Body::Empty => (false, None),
        body @ Body::Text(_) => (false, Some(body)),
        body @ Body::Binary(_) => (true, Some(body)),
        _ => (false, None),
    };
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use lambda_http::http::{header, StatusCode};
    use serde_json::json;

    use super::*;

    /// A function-URL event as Lambda delivers it, with `edit` applied.
    pub(crate) fn event(edit: impl FnOnce(&mut serde_json::Value)) -> FunctionUrlRequest {
        let mut event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "cookies": ["a=b"],
            "headers": {"content-type": "application/json", "svix-id": "msg_1",
                        "host": "fn.lambda-url.us-east-1.on.aws"},
            "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9"}, "requestId": "r", "stage": "$default", "timeEpoch": 0},
            "body": "eyJhIjoxfQ==", "isBase64Encoded": true
        });
        edit(&mut event);
        serde_json::from_value(event).unwrap()
    }

    #[test]
    fn a_function_url_event_becomes_the_request_it_describes() {
        let request = event(|_| {}).into_request().unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.headers()["svix-id"], "msg_1");
        assert_eq!(request.headers().len(), 3);
        assert_eq!(request.body().as_ref(), br#"{"a":1}"#);

        let text = event(|e| {
            e["body"] = json!("plain text");
            e["isBase64Encoded"] = json!(false);
        });
        assert_eq!(text.into_request().unwrap().body().as_ref(), b"plain text");
        let empty = event(|e| {
            e.as_object_mut().unwrap().remove("body");
        });
        assert!(matches!(empty.into_request().unwrap().body(), Body::Empty));
        // Any JSON object is an event: what it lacks, the request lacks.
        let bare: FunctionUrlRequest = serde_json::from_str("{}").unwrap();
        assert!(matches!(bare.into_request(), Err(EventError::Method)));
    }

    /// Why the conversion above exists: lambda_http's own panics on these events, where ours
    /// answers (a refusal for the body; the URI parts it does not read at all). If this starts
    /// failing, lambda_http has changed and its conversion may be worth using again.
    #[test]
    fn lambda_http_panics_where_ours_does_not() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 4] = [
            ("a body that is not base64", |e| {
                e["body"] = json!("not base64!")
            }),
            ("a query string that is not a URI", |e| {
                e["rawQueryString"] = json!("a b")
            }),
            ("a host that is not a host name", |e| {
                e["headers"]["host"] = json!("fn lambda url")
            }),
            ("an x-forwarded-proto that is not a scheme", |e| {
                e["headers"]["x-forwarded-proto"] = json!("ht tp")
            }),
        ];
        for (name, edit) in cases {
            let mut raw = json!({
                "version": "2.0", "rawPath": "/", "rawQueryString": "",
                "headers": {"host": "fn.lambda-url.us-east-1.on.aws"},
                "requestContext": {"http": {"method": "POST"}, "stage": "$default"},
                "body": "eyJhIjoxfQ==", "isBase64Encoded": true
            });
            edit(&mut raw);
            let theirs: lambda_http::request::LambdaRequest =
                serde_json::from_value(raw.clone()).unwrap();
            let converted =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Request::from(theirs)));
            assert!(converted.is_err(), "{name}: lambda_http no longer panics");
            let ours: FunctionUrlRequest = serde_json::from_value(raw).unwrap();
            let ours = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ours.into_request().is_ok()
            }));
            assert_eq!(
                ours.ok(),
                Some(name != "a body that is not base64"),
                "{name}"
            );
        }
    }

    #[test]
    fn the_response_is_a_function_url_response() {
        let response = Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ALLOW, "POST")
            .body(Body::from(r#"{"error":"x"}"#))
            .unwrap();
        let out = serde_json::to_value(super::response(response)).unwrap();
        assert_eq!(out["statusCode"], json!(405));
        assert_eq!(out["headers"]["allow"], json!("POST"));
        assert_eq!(out["headers"]["content-type"], json!("application/json"));
        assert_eq!(out["body"], json!(r#"{"error":"x"}"#));
        assert_eq!(out["isBase64Encoded"], json!(false));
        let empty = super::response(Response::new(Body::Empty));
        assert_eq!((empty.body, empty.status_code), (None, 200));
    }
}

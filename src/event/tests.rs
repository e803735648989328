//! Decoding and routing, from the body to the typed event.

use super::error::redact;
use super::ids::MAX_ID_BYTES;
use super::*;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The signed delivery time the tests' deliveries carry (ms).
const SIGNED: i64 = 1_716_883_260_000;

fn raw(value: Value) -> Box<RawValue> {
    RawValue::from_string(value.to_string()).unwrap()
}

fn envelope(event_type: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "event", "type": event_type, "timestamp": 1716883200123_i64,
        "instance_id": "ins_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "data": data
    }))
    .unwrap()
}

fn user_data() -> Value {
    json!({
        "object": "user", "id": "user_29w83sxmDNGwOuEthce5gg56FcC",
        "primary_email_address_id": "idn_primary",
        "email_addresses": [
            {"id": "idn_other", "email_address": "old@example.org"},
            {"id": "idn_primary", "email_address": "Example@Example.org"}
        ],
        "first_name": "Example", "created_at": 1654012591514_i64, "updated_at": 1654012591835_i64
    })
}

#[test]
fn decodes_a_user_and_finds_the_primary_email_not_the_first() {
    let event = Event::decode(&envelope("user.created", user_data()), SIGNED).unwrap();
    assert_eq!(event.timestamp_ms, 1716883200123);
    assert_eq!(family(&event.event_type), "user");
    let Payload::UserUpserted(user) = event.payload else {
        panic!("not a user")
    };
    assert_eq!(user.primary_email(), Some("Example@Example.org"));
    assert_eq!(user.updated_at, Some(1654012591835));
}

#[test]
fn from_data_routes_and_checks_like_a_delivered_event() {
    let event = Event::from_data("user.created", 1654012591835, &raw(user_data())).unwrap();
    assert_eq!(
        event,
        Event::decode(&envelope("user.created", user_data()), SIGNED)
            .map(|e| Event {
                // An object read from the Backend API names no instance.
                instance_id: None,
                timestamp_ms: 1654012591835,
                ..e
            })
            .unwrap()
    );
    let err = Event::from_data("user.created", 1, &raw(json!({"id": "usr#1"}))).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidPayload { .. }));
    let err = Event::from_data("user.created", 1, &raw(json!([1]))).unwrap_err();
    assert!(err.to_string().contains("not a JSON object"), "{err}");
}

#[test]
fn a_user_without_a_matching_primary_has_no_email() {
    let mut data = user_data();
    data["primary_email_address_id"] = json!("idn_missing");
    let Payload::UserUpserted(user) = Event::decode(&envelope("user.updated", data), SIGNED)
        .unwrap()
        .payload
    else {
        panic!()
    };
    assert_eq!(user.primary_email(), None);
}

#[test]
fn ten_digit_timestamps_are_seconds() {
    assert_eq!(normalize_millis(1716883200), 1716883200000);
    assert_eq!(normalize_millis(1716883200123), 1716883200123);
    let mut body: Value =
        serde_json::from_slice(&envelope("user.deleted", json!({"id": "user_a1"}))).unwrap();
    body["timestamp"] = json!(1716883200);
    let event = Event::decode(&serde_json::to_vec(&body).unwrap(), SIGNED).unwrap();
    assert_eq!(event.timestamp_ms, 1716883200000);
}

#[test]
fn the_ends_of_i64_are_taken_as_milliseconds() {
    assert_eq!(normalize_millis(i64::MIN), i64::MIN);
    assert_eq!(normalize_millis(i64::MAX), i64::MAX);
    assert_eq!(normalize_millis(-99_999_999_999), -99_999_999_999_000);
    let mut body: Value =
        serde_json::from_slice(&envelope("user.deleted", json!({"id": "user_a1"}))).unwrap();
    body["timestamp"] = json!(i64::MIN);
    let event = Event::decode(&serde_json::to_vec(&body).unwrap(), SIGNED).unwrap();
    assert_eq!(event.timestamp_ms, i64::MIN);
}

#[test]
fn unknown_and_unsynced_types_are_unhandled_not_errors() {
    for t in [
        "brandNew.thing",
        "user.merged",
        "organizationSomething.created",
    ] {
        let event = Event::decode(&envelope(t, json!({"anything": 1})), SIGNED).unwrap();
        assert_eq!(event.payload, Payload::Unhandled, "{t}");
    }
}

#[test]
fn routes_on_type_not_on_data_object() {
    let data =
        json!({"object": "something_else", "id": "org_abc", "slug": "acme", "deleted": true});
    let event = Event::decode(&envelope("organization.deleted", data), SIGNED).unwrap();
    assert_eq!(
        event.payload,
        Payload::OrganizationDeleted(DeletedObject {
            id: "org_abc".into()
        })
    );
}

#[test]
fn membership_needs_org_and_user_ids() {
    let data = json!({"id": "orgmem_1", "role": "org:member", "organization": {"id": "org_1"},
                      "public_user_data": {"first_name": "Jane"}});
    let err = Event::decode(&envelope("organizationMembership.created", data), SIGNED).unwrap_err();
    assert_eq!(
        err.to_string(),
        "organizationMembership.created data is not usable: missing field `user_id`"
    );
}

#[test]
fn envelope_errors() {
    let cases: Vec<(&[u8], &str)> = vec![
        (b"{not json", "body is not valid JSON"),
        (b"[1,2]", "body is not a Clerk event: not a JSON object"),
        (br#"{"object":"event","timestamp":1,"instance_id":"i","data":{}}"#, "missing field `type`"),
        (br#"{"object":"event","type":"user.created","timestamp":1,"instance_id":"i","data":[]}"#, "data is not an object"),
        (br#"{"object":"event","type":"user.created","timestamp":"soon","instance_id":"i","data":{}}"#, "invalid type"),
    ];
    for (body, expected) in cases {
        let err = Event::decode(body, SIGNED).unwrap_err().to_string();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
}

#[test]
fn ids_that_cannot_be_part_of_a_key_are_refused() {
    let too_long = format!("user_{}", "a".repeat(MAX_ID_BYTES - 4));
    for id in [
        "",
        "user_a#b",
        "user_a b",
        "user_a\u{0}",
        "user_é",
        "user_a-b",
        too_long.as_str(),
    ] {
        let err = Event::decode(&envelope("user.deleted", json!({"id": id})), SIGNED).unwrap_err();
        assert_eq!(
            err.to_string(),
            "user.deleted data is not usable: id cannot be part of a key (1 to 128 letters, digits or _)",
            "{id:?}"
        );
    }
    let longest = &too_long[..MAX_ID_BYTES];
    assert!(Event::decode(&envelope("user.deleted", json!({"id": longest})), SIGNED).is_ok());
}

#[test]
fn ids_without_the_usual_prefix_are_applied_and_noted() {
    // Clerk's own OpenAPI examples give organizationDomain.updated and .deleted `orgdm_` ids.
    let event = Event::decode(
        &envelope(
            "organizationDomain.updated",
            json!({"id": "orgdm_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "organization_id": "org_1"}),
        ),
        SIGNED,
    )
    .unwrap();
    assert_eq!(event.unexpected_prefixes, ["id"]);
    let event = Event::decode(
        &envelope(
            "organizationDomain.deleted",
            json!({"id": "orgdm_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "deleted": true}),
        ),
        SIGNED,
    )
    .unwrap();
    assert_eq!(event.unexpected_prefixes, ["id"]);
    let membership = json!({"id": "mem_1", "organization": {"id": "o_1"},
                            "public_user_data": {"user_id": "user_1"}});
    let event = Event::decode(
        &envelope("organizationMembership.created", membership),
        SIGNED,
    )
    .unwrap();
    assert_eq!(event.unexpected_prefixes, ["id", "organization.id"]);
    // Only what the prefix says is noted: the usual ones note nothing.
    let event = Event::decode(&envelope("user.created", user_data()), SIGNED).unwrap();
    assert!(event.unexpected_prefixes.is_empty());
}

#[test]
fn fields_that_feed_no_key_version_or_expiry_are_read_leniently() {
    // Each of these was once refused; none of them is unsafe to store.
    let mut data = user_data();
    data["first_name"] = json!(42);
    data["username"] = json!(["x"]);
    data["email_addresses"][0] = json!("not an object");
    let Payload::UserUpserted(user) = Event::decode(&envelope("user.updated", data), SIGNED)
        .unwrap()
        .payload
    else {
        panic!("not a user")
    };
    assert_eq!(user.primary_email(), Some("Example@Example.org"));
    let mut data = user_data();
    data["email_addresses"] = json!("someone@example.org");
    let Payload::UserUpserted(user) = Event::decode(&envelope("user.updated", data), SIGNED)
        .unwrap()
        .payload
    else {
        panic!("not a user")
    };
    assert_eq!(user.primary_email(), None);

    let org = json!({"id": "org_1", "slug": 7, "name": null});
    let Payload::OrganizationUpserted(org) =
        Event::decode(&envelope("organization.updated", org), SIGNED)
            .unwrap()
            .payload
    else {
        panic!("not an organization")
    };
    assert_eq!(org.slug, None);
    let membership = json!({"id": "orgmem_1", "organization": {"id": "org_1"},
                            "public_user_data": {"user_id": "user_1"}});
    assert!(Event::decode(
        &envelope("organizationMembership.updated", membership),
        SIGNED
    )
    .is_ok());
    let role = json!({"id": "role_1", "permissions": "org:x:y"});
    assert!(Event::decode(&envelope("role.updated", role), SIGNED).is_ok());
    let sub = json!({"id": "csub_1", "payer": "cpayer_1"});
    assert!(Event::decode(&envelope("subscription.updated", sub), SIGNED).is_ok());
    // A session's user copy we cannot read is not applied; the session is.
    let session = json!({"id": "sess_1", "user_id": "user_1", "user": {"first_name": "A"}});
    let Payload::SessionUpserted(session) =
        Event::decode(&envelope("session.created", session), SIGNED)
            .unwrap()
            .payload
    else {
        panic!("not a session")
    };
    assert_eq!(session.user, None);
}

#[test]
fn versions_and_expiries_stay_strict() {
    for (event_type, data) in [
        (
            "user.updated",
            json!({"id": "user_1", "updated_at": "yesterday"}),
        ),
        (
            "session.ended",
            json!({"id": "sess_1", "user_id": "user_1", "expire_at": "soon"}),
        ),
        (
            "invitation.created",
            json!({"id": "inv_1", "expires_at": true}),
        ),
    ] {
        let err = Event::decode(&envelope(event_type, data), SIGNED).unwrap_err();
        assert!(
            err.to_string().contains("invalid type"),
            "{event_type}: {err}"
        );
    }
}

#[test]
fn the_envelope_needs_type_timestamp_and_data_only() {
    let body = br#"{"object":"list","type":"user.deleted","timestamp":1,"data":{"id":"user_1"}}"#;
    let event = Event::decode(body, SIGNED).unwrap();
    assert_eq!(
        event.payload,
        Payload::UserDeleted(DeletedObject {
            id: "user_1".into()
        })
    );
}

#[test]
fn envelopes_without_timestamp_or_instance_id_take_the_signed_time() {
    // Clerk's deliveries before mid-2024: `data`, `object` and `type` only.
    let body = br#"{"data":{"deleted":true,"id":"user_1","object":"user"},"object":"event","type":"user.deleted"}"#;
    let event = Event::decode(body, SIGNED).unwrap();
    assert_eq!(
        (event.timestamp_ms, event.timestamp_in_envelope),
        (SIGNED, false)
    );
    assert_eq!(event.instance_id, None);
    let body = br#"{"type":"user.deleted","timestamp":null,"data":{"id":"user_1"}}"#;
    assert!(!Event::decode(body, SIGNED).unwrap().timestamp_in_envelope);
    let event = Event::decode(&envelope("user.deleted", json!({"id": "user_1"})), SIGNED).unwrap();
    assert_eq!(
        (event.timestamp_ms, event.timestamp_in_envelope),
        (1716883200123, true)
    );
}

#[test]
fn data_is_kept_byte_for_byte_whatever_its_depth_numbers_or_keys() {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let data = format!(
        r#"{{"id":"user_1", "updated_at":1,"unsafe_metadata":{{"":{deep},"n":1e300,"m":-1e-200,"big":1234567890123456789012345678901234567890123,"k":"\ud83d\ude00"}}, "first_name" : "Ada"}}"#
    );
    let body = format!(r#"{{"type":"user.updated","timestamp":1716883200123,"data":{data}}}"#);
    let event = Event::decode(body.as_bytes(), SIGNED).unwrap();
    assert_eq!(event.data.text(), data);
    assert_eq!(event.data.field("first_name").unwrap().get(), r#""Ada""#);
    let edited = event.data.edited(&["unsafe_metadata"], &[]);
    assert_eq!(
        edited.text(),
        r#"{"id":"user_1","updated_at":1,"first_name":"Ada"}"#
    );
}

#[test]
fn values_with_quotes_or_backslashes_are_cut_out_whole() {
    // serde shows this value as "a\"b@example.org\\": the escaped quote is not its end.
    for value in [r#"a"b@example.org\"#, r#"x\"#, r#""""#, r#"\"@\"#] {
        let data = json!({"id": "user_1", "updated_at": value});
        let err = Event::decode(&envelope("user.created", data), SIGNED)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err, "user.created data is not usable: invalid type: string \"…\", expected i64",
            "{value}"
        );
    }
    assert_eq!(
        redact(r#"invalid type: string "a\"b\\", expected i64"#),
        "invalid type: string \"…\", expected i64"
    );
}

#[test]
fn error_messages_never_echo_values() {
    let data = json!({"id": "user_1", "first_name": "Jane", "updated_at": "jane@example.org"});
    let err = Event::decode(&envelope("user.created", data), SIGNED)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("jane@example.org"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

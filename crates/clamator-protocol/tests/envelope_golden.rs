//! Golden tests: every row of spec §1.3 plus round trips.

use clamator_protocol::{
    parse_envelope, parse_envelope_str, to_json, Envelope, EnvelopeError, Id,
    InvalidRequestReason as R, Notification, Request, Response, RpcError,
};
use serde_json::{json, Value};

fn reason(v: &Value) -> R {
    parse_envelope(v.clone())
        .map(|e| panic!("{v} parsed as {e:?}"))
        .unwrap_err()
        .reason
}

#[test]
fn every_rejection_row_of_the_table() {
    let rows: Vec<(Value, R)> = vec![
        (json!([{}]), R::Batch),
        (json!([]), R::Batch),
        (json!("x"), R::NotAnObject),
        (json!(null), R::NotAnObject),
        (json!(5), R::NotAnObject),
        (json!({"jsonrpc": "1.0"}), R::JsonRpcVersion),
        (json!({"jsonrpc": 2.0, "method": "a.b"}), R::JsonRpcVersion),
        (json!({"method": "a.b"}), R::JsonRpcVersion),
        (json!({"jsonrpc": "2.0", "method": "a"}), R::MethodFormat),
        (json!({"jsonrpc": "2.0", "method": ".b"}), R::MethodFormat),
        (json!({"jsonrpc": "2.0", "method": "a."}), R::MethodFormat),
        (
            json!({"jsonrpc": "2.0", "method": "A.b"}),
            R::InvalidService,
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a_b.c"}),
            R::InvalidService,
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a.b-c"}),
            R::InvalidMethod,
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a.b.c"}),
            R::InvalidMethod,
        ),
        (json!({"jsonrpc": "2.0", "method": "a.B"}), R::InvalidMethod),
        (
            json!({"jsonrpc": "2.0", "method": "a.b", "id": true}),
            R::IdType,
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a.b", "id": 1.5}),
            R::IdType,
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a.b", "id": [1]}),
            R::IdType,
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a.b", "id": {"x": 1}}),
            R::IdType,
        ),
        (json!({"jsonrpc": "2.0", "result": 1}), R::ResponseWithoutId),
        (
            json!({"jsonrpc": "2.0", "result": 1, "id": null}),
            R::ResponseWithoutId,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "x", "result": 1, "error": {}}),
            R::Shape,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "x", "error": {"code": 1.5, "message": "m"}}),
            R::ErrorShape,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "x", "error": {"code": true, "message": "m"}}),
            R::ErrorShape,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "x", "error": {"code": 1}}),
            R::ErrorShape,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "x", "error": "boom"}),
            R::ErrorShape,
        ),
        (json!({"jsonrpc": "2.0", "method": 5, "id": "1"}), R::Shape),
        (json!({"jsonrpc": "2.0"}), R::Shape),
    ];
    for (value, expected) in rows {
        assert_eq!(reason(&value), expected, "{value}");
    }
}

#[test]
fn reason_texts_match_the_originals() {
    let texts = [
        (json!([{}]), "batch requests not supported"),
        (json!("x"), "not an object"),
        (json!({"jsonrpc": "1.0"}), "jsonrpc must equal \"2.0\""),
        (
            json!({"jsonrpc": "2.0", "method": "a"}),
            "method must be \"<service>.<method>\"",
        ),
        (
            json!({"jsonrpc": "2.0", "method": "A.b"}),
            "invalid service segment",
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a.b-c"}),
            "invalid method segment",
        ),
        (
            json!({"jsonrpc": "2.0", "method": "a.b", "id": true}),
            "id must be string or number",
        ),
        (
            json!({"jsonrpc": "2.0", "result": 1}),
            "response must have id",
        ),
        (
            json!({"jsonrpc": "2.0", "id": "x", "result": 1, "error": {}}),
            "envelope must be request, notification, or response",
        ),
        (
            json!({"jsonrpc": "2.0", "id": "x", "error": {"code": 1.5, "message": "m"}}),
            "error must have numeric code + string message",
        ),
    ];
    for (value, text) in texts {
        let err = parse_envelope(value).unwrap_err();
        assert_eq!(err.to_string(), format!("-32600 Invalid Request: {text}"));
    }
}

#[test]
fn requests_and_notifications() {
    // method wins even when result/error are present
    let env =
        parse_envelope(json!({"jsonrpc": "2.0", "method": "a.b", "id": "1", "result": 1})).unwrap();
    assert_eq!(env.kind(), "request");
    // id: null is a notification; absent params become {}
    let Envelope::Notification(n) =
        parse_envelope(json!({"jsonrpc": "2.0", "method": "a.b", "id": null})).unwrap()
    else {
        panic!("not a notification")
    };
    assert_eq!(n.params, json!({}));
    // explicit null params stay null (Python semantics)
    let Envelope::Request(r) =
        parse_envelope(json!({"jsonrpc": "2.0", "method": "a.b", "params": null, "id": 1}))
            .unwrap()
    else {
        panic!("not a request")
    };
    assert_eq!(r.params, Value::Null);
    // arrays pass through to validation
    let Envelope::Request(r) = parse_envelope(
        json!({"jsonrpc": "2.0", "method": "svc-2.getA", "params": [1, 2], "id": -42}),
    )
    .unwrap() else {
        panic!("not a request")
    };
    assert_eq!((r.service.as_str(), r.method.as_str()), ("svc-2", "getA"));
    assert_eq!(r.params, json!([1, 2]));
    assert_eq!(r.id, Id::from(-42));
    // extra top-level keys are ignored
    assert!(parse_envelope(json!({"jsonrpc": "2.0", "method": "a.b", "x": 1})).is_ok());
    // u64 ids are integers too
    let Envelope::Request(r) =
        parse_envelope(json!({"jsonrpc": "2.0", "method": "a.b", "id": u64::MAX})).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.id.to_value(), json!(u64::MAX));
}

#[test]
fn responses() {
    let Envelope::Response(r) =
        parse_envelope(json!({"jsonrpc": "2.0", "id": {"o": 1}, "result": null})).unwrap()
    else {
        panic!()
    };
    assert_eq!(r, Response::success(json!({"o": 1}), Value::Null));
    let Envelope::Response(r) =
        parse_envelope(json!({"jsonrpc": "2.0", "error": {"code": -32000, "message": "m"}}))
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(r, Response::error(Value::Null, RpcError::new(-32000, "m")));
}

#[test]
fn builders_write_the_originals_key_order() {
    let req = Request {
        service: "arith".into(),
        method: "add".into(),
        params: json!({"a": 2, "b": 3}),
        id: "7d".into(),
    };
    assert_eq!(
        to_json(&req),
        r#"{"jsonrpc":"2.0","method":"arith.add","params":{"a":2,"b":3},"id":"7d"}"#
    );
    let n = Notification {
        service: "notifications".into(),
        method: "ping".into(),
        params: json!({"tag": "x"}),
    };
    assert_eq!(
        to_json(&n),
        r#"{"jsonrpc":"2.0","method":"notifications.ping","params":{"tag":"x"}}"#
    );
    assert_eq!(
        to_json(&Response::success(json!(-3), json!({"sum": 5}))),
        r#"{"jsonrpc":"2.0","id":-3,"result":{"sum":5}}"#
    );
    assert_eq!(
        to_json(&Response::error(json!("zz"), RpcError::method_not_found())),
        r#"{"jsonrpc":"2.0","id":"zz","error":{"code":-32601,"message":"Method not found","data":null}}"#
    );
}

#[test]
fn round_trips() {
    let envelopes = vec![
        Envelope::Request(Request {
            service: "a".into(),
            method: "b".into(),
            params: json!({"x": [1, "é"]}),
            id: Id::random(),
        }),
        Envelope::Request(Request {
            service: "a".into(),
            method: "b".into(),
            params: Value::Null,
            id: Id::from(-9),
        }),
        Envelope::Notification(Notification {
            service: "a-1".into(),
            method: "b2".into(),
            params: json!([]),
        }),
        Envelope::Response(Response::success(
            json!("id"),
            json!({"deep": {"k": [null]}}),
        )),
        Envelope::Response(Response::error(
            json!(7),
            RpcError::new(-32001, "denied").with_data(json!({"why": "x"})),
        )),
    ];
    for env in envelopes {
        let text = to_json(&env);
        assert_eq!(parse_envelope_str(&text).unwrap(), env, "{text}");
    }
}

#[test]
fn ids_are_uuid_v4_strings() {
    let Id::Str(s) = Id::random() else {
        panic!("numeric id")
    };
    assert_eq!(s.len(), 36);
    assert_eq!(s.as_bytes()[14], b'4');
    assert!(s
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || c == '-'));
    assert_ne!(Id::random(), Id::random());
}

#[test]
fn text_parse_errors() {
    assert!(matches!(
        parse_envelope_str("not json"),
        Err(EnvelopeError::NotJson(_))
    ));
    let e = parse_envelope_str("[1]").unwrap_err();
    assert_eq!(e.to_rpc_error().code, -32600);
    assert_eq!(
        parse_envelope_str("{").unwrap_err().to_rpc_error().code,
        -32700
    );
}

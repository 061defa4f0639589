//! Property tests: `parse_envelope` never panics on arbitrary input and round-trips what the
//! builders write.

use clamator_protocol::{
    parse_envelope, parse_envelope_slice, to_json, Envelope, Id, Notification, Request, Response,
    RpcError,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("2.0"),
            Just("a.b"),
            Just("arith.add"),
            Just("A.b"),
            Just("a.b-c"),
            Just("jsonrpc"),
            Just("id")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("jsonrpc".to_owned()),
                        Just("method".to_owned()),
                        Just("id".to_owned()),
                        Just("params".to_owned()),
                        Just("result".to_owned()),
                        Just("error".to_owned()),
                        Just("code".to_owned()),
                        Just("message".to_owned()),
                        ".{0,6}"
                    ],
                    inner
                ),
                0..7
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Objects shaped like envelopes: each member present or not, with values that hit every
/// branch of the decision procedure (valid and invalid versions, methods, ids, results, errors).
fn envelope_like() -> impl Strategy<Value = Value> {
    let member = |values: Vec<Value>| {
        prop_oneof![
            1 => Just(None),
            3 => prop::sample::select(values).prop_map(Some),
        ]
    };
    (
        member(vec![
            json!("2.0"),
            json!("2.0"),
            json!("1.0"),
            json!(2.0),
            Value::Null,
        ]),
        member(vec![
            json!("arith.add"),
            json!("a.b"),
            json!("a.b.c"),
            json!("A.b"),
            json!("a."),
            json!(5),
        ]),
        member(vec![
            json!({"a": 1}),
            json!([1, 2]),
            Value::Null,
            json!("x"),
        ]),
        member(vec![
            Value::Null,
            json!("id-1"),
            json!(7),
            json!(-3),
            json!(1.5),
            json!(true),
            json!([1]),
        ]),
        member(vec![Value::Null, json!({"sum": 3}), json!(1)]),
        member(vec![
            json!({"code": -32000, "message": "m"}),
            json!({"code": 1.5, "message": "m"}),
            json!({"code": -1, "message": "m", "data": {"x": 1}}),
            json!({"code": -1}),
            json!("e"),
        ]),
        json_value(),
    )
        .prop_map(|(jsonrpc, method, params, id, result, error, extra)| {
            let mut m = Map::new();
            for (k, v) in [
                ("jsonrpc", jsonrpc),
                ("method", method),
                ("params", params),
                ("id", id),
                ("result", result),
                ("error", error),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            m.insert("extra".to_owned(), extra);
            Value::Object(m)
        })
}

fn service() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

fn method() -> impl Strategy<Value = String> {
    "[a-z][a-zA-Z0-9]{0,10}"
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        ".{0,20}".prop_map(Id::Str),
        any::<i64>().prop_map(Id::from),
        any::<u64>().prop_map(|n| Id::Num(n.into()))
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    prop_oneof![
        (service(), method(), json_value(), id()).prop_map(|(service, method, params, id)| {
            Envelope::Request(Request {
                service,
                method,
                params,
                id,
            })
        }),
        (service(), method(), json_value()).prop_map(|(service, method, params)| {
            Envelope::Notification(Notification {
                service,
                method,
                params,
            })
        }),
        (id(), json_value())
            .prop_map(|(id, result)| Envelope::Response(Response::success(id.to_value(), result))),
        (id(), any::<i64>(), ".{0,10}", json_value()).prop_map(|(id, code, message, data)| {
            Envelope::Response(Response::error(
                id.to_value(),
                RpcError::new(code, message).with_data(data),
            ))
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // replay (and extend) the committed envelope_props.proptest-regressions
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_on_values(v in json_value()) {
        let _ = parse_envelope(v);
    }

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_envelope_slice(&bytes);
    }

    /// `parse_envelope_slice` reads objects member by member; it must decide exactly as
    /// `parse_envelope` on the whole parsed value, for any message.
    #[test]
    fn reading_members_decides_as_the_parsed_value(
        v in prop_oneof![envelope_like(), json_value()],
        dup in any::<bool>(),
    ) {
        let mut text = v.to_string();
        if dup && text.starts_with('{') && text.len() > 2 {
            // a member given twice: the last one counts, both ways
            text = format!("{{\"id\":\"first\",{}", &text[1..]);
        }
        let fast = parse_envelope_slice(text.as_bytes()).map_err(|e| e.to_string());
        let reference = serde_json::from_str::<Value>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| parse_envelope(v).map_err(|e| e.to_string()));
        prop_assert_eq!(fast, reference, "{}", text);
    }

    #[test]
    fn round_trips(env in envelope()) {
        let text = to_json(&env);
        let parsed = parse_envelope_slice(text.as_bytes()).expect("what the builders write parses");
        // Floats may come back as integers-valued floats; compare through JSON text.
        prop_assert_eq!(to_json(&parsed), text);
    }
}

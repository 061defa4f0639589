//! Parsing of stream replies (`XREADGROUP`, `XREAD`, `XCLAIM`) from raw `redis::Value`s,
//! tolerant of anything a peer may have written (non-UTF-8 fields, odd field counts, deleted
//! entries), so one bad entry never breaks a batch.

use redis::Value;

/// One stream entry: its id and its field/value pairs in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// The value of the first field called `name` (fields at even positions only).
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        other => owned_bytes(other.clone()),
    }
}

/// The bytes of a string-like value, moved out of it (no copy for bulk strings).
fn owned_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

pub(crate) fn string(v: &Value) -> Option<String> {
    bytes(v).and_then(|b| String::from_utf8(b).ok())
}

/// The items of an array-like value, moved out of it (map pairs flattened).
fn items(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        Value::Map(m) => Some(m.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

/// Parses `[id, [k, v, k, v, ...]]` (fields nil for deleted entries).
fn parse_entry(v: Value) -> Option<Entry> {
    let mut parts = items(v)?.into_iter();
    let id = String::from_utf8(owned_bytes(parts.next()?)?).ok()?;
    let mut fields = Vec::new();
    if let Some(flat) = parts.next().and_then(items) {
        let mut flat = flat.into_iter();
        while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
            fields.push((
                owned_bytes(k).unwrap_or_default(),
                owned_bytes(v).unwrap_or_default(),
            ));
        }
    }
    Some(Entry { id, fields })
}

/// Parses a list of entries.
pub(crate) fn parse_entries(v: Value) -> Vec<Entry> {
    items(v)
        .map(|list| list.into_iter().filter_map(parse_entry).collect())
        .unwrap_or_default()
}

/// Parses an `XREAD`/`XREADGROUP` reply for a single stream (nil → no entries). Works for
/// RESP2 (`[[key, entries]]`) and RESP3 (`{key: entries}`).
pub(crate) fn parse_read_reply(v: Value) -> Vec<Entry> {
    match v {
        Value::Nil => Vec::new(),
        Value::Map(m) => m
            .into_iter()
            .flat_map(|(_, entries)| parse_entries(entries))
            .collect(),
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(items)
            .filter_map(|kv| kv.into_iter().nth(1).map(parse_entries))
            .flatten()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn tolerant_parsing() {
        let entry = Value::Array(vec![
            bs(b"1-0"),
            Value::Array(vec![
                bs(b"type"),
                bs(b"rpc"),
                bs(b"\xff\xfe"),
                bs(b"x"),
                bs(b"envelope"),
                bs(b"{}"),
                bs(b"odd"),
            ]),
        ]);
        let deleted = Value::Array(vec![bs(b"2-0"), Value::Nil]);
        let reply = Value::Array(vec![Value::Array(vec![
            bs(b"k"),
            Value::Array(vec![entry, deleted]),
        ])]);
        let entries = parse_read_reply(reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].field("envelope"), Some(&b"{}"[..]));
        assert_eq!(entries[0].field("rpc"), None, "values are not keys");
        assert!(entries[1].fields.is_empty());
        assert!(parse_read_reply(Value::Nil).is_empty());
    }
}

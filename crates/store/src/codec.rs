//! The one way records go into sled and come out: JSON, with the reader's
//! limits checked when a record is written. A record serde_json could not
//! read back is refused at write time, as that write's own failure,
//! instead of being stored and failing every reader after it.

use crate::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::ser::Formatter;
use std::io;

/// Levels of objects and arrays serde_json reads: its recursion limit,
/// 128, counts the level it refuses.
pub const READ_DEPTH: usize = 127;

/// Levels the deepest record puts around a value the API accepted. An
/// entity sits in its crud event's `data` (the outbox record is a list of
/// events; a delivery holds the event), and a lambda chain's result sits
/// in an attempt in a delivery's `attempts`: three levels either way.
pub const ENVELOPE_DEPTH: usize = 3;

/// The deepest value any record can hold and still be read back: no limit
/// on what the API accepts may be set above it.
pub const MAX_VALUE_DEPTH: usize = READ_DEPTH - ENVELOPE_DEPTH;

/// A record's bytes, unless they nest too deeply to be read back.
pub(crate) fn encode<T: Serialize + ?Sized>(record: &T) -> Result<Vec<u8>> {
    let mut deepest = 0;
    let mut bytes = Vec::with_capacity(128);
    let formatter = DepthCounting {
        depth: 0,
        deepest: &mut deepest,
    };
    record
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut bytes, formatter,
        ))
        .map_err(Error::Unencodable)?;
    if deepest > READ_DEPTH {
        return Err(Error::TooDeep {
            depth: deepest,
            limit: READ_DEPTH,
        });
    }
    Ok(bytes)
}

/// serde_json's compact output (what `to_vec` writes), counting the levels
/// of objects and arrays as it writes them: no second pass over the bytes.
struct DepthCounting<'a> {
    depth: usize,
    deepest: &'a mut usize,
}

impl DepthCounting<'_> {
    fn open<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        *self.deepest = (*self.deepest).max(self.depth);
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        writer.write_all(bracket)
    }
}

impl Formatter for DepthCounting<'_> {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"}")
    }
}

/// A record from its bytes.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(Error::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::delivery::{Attempt, Delivery};
    use hookd_model::{Event, Operation};
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};
    use uuid::Uuid;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn what_is_written_reads_back_and_nothing_deeper_is_written() {
        let deepest = nested(READ_DEPTH);
        let bytes = encode(&deepest).unwrap();
        assert_eq!(decode::<Value>(&bytes).unwrap(), deepest);
        assert!(matches!(
            encode(&nested(READ_DEPTH + 1)),
            Err(Error::TooDeep {
                depth: 128,
                limit: READ_DEPTH
            })
        ));
    }

    #[test]
    fn records_are_written_as_to_vec_writes_them() {
        let value = json!({"a": [1, {"b": "x\"]}"}, []], "c": {}});
        assert_eq!(encode(&value).unwrap(), serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn read_depth_is_serde_jsons() {
        let text = |levels| "[".repeat(levels) + &"]".repeat(levels);
        assert!(serde_json::from_str::<Value>(&text(READ_DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&text(READ_DEPTH + 1)).is_err());
    }

    /// Any JSON value a few levels deep, strings with every character.
    fn small_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC*".prop_map(Value::String),
            "[\\[\\]{}\"\\\\]*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An entity as the API may accept it: an object with a value nested
    /// `depth` levels deep somewhere inside, behind keys and positions.
    fn entity(depth: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Value> {
        (
            small_value(),
            depth,
            prop::collection::vec(("\\PC{0,6}", any::<bool>()), 1..8),
        )
            .prop_map(|(inner, depth, spine)| {
                let mut value = inner;
                if levels_of(&value) >= depth {
                    value = Value::Null;
                }
                let levels = depth - 1 - levels_of(&value);
                for (key, as_list) in spine.into_iter().cycle().take(levels) {
                    value = if as_list {
                        Value::Array(vec![Value::Null, value])
                    } else {
                        Value::Object(Map::from_iter([(key, value)]))
                    };
                }
                Value::Object(Map::from_iter([
                    ("id".to_string(), Value::from(Uuid::nil().to_string())),
                    ("value".to_string(), value),
                ]))
            })
    }

    fn levels_of(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(levels_of).max().unwrap_or(0),
            Value::Object(members) => 1 + members.values().map(levels_of).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn delivered(entity: &Value, old: &Value) -> (Vec<Event>, Delivery) {
        let events = Event::crud(Operation::Update, "consumers", entity, Some(old), 1);
        let mut delivery = Delivery::new(Uuid::nil(), events[0].clone(), 7, 1);
        delivery.attempts.push(Attempt {
            number: 1,
            at_ms: 1,
            latency_ms: 0,
            ok: true,
            status: None,
            error: None,
            response: None,
            result: Some(entity.clone()),
        });
        (events, delivery)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Every value the API may accept (at most MAX_VALUE_DEPTH levels)
        /// is written and read back unchanged, as an outbox record and as
        /// a delivery with the value as its event and as an attempt's result.
        #[test]
        fn accepted_values_round_trip_through_every_record(
            new in entity(1..=MAX_VALUE_DEPTH),
            old in entity(1..=MAX_VALUE_DEPTH),
        ) {
            let (events, delivery) = delivered(&new, &old);
            let records = crate::outbox::encode_records(&events).unwrap();
            prop_assert_eq!(decode::<Vec<Event>>(&records[0]).unwrap(), events);
            let bytes = encode(&delivery).unwrap();
            prop_assert_eq!(decode::<Delivery>(&bytes).unwrap(), delivery);
        }

        /// One level more, and the write is refused instead of stored.
        #[test]
        fn deeper_values_are_refused_at_write_time(
            new in entity(MAX_VALUE_DEPTH + 1..=MAX_VALUE_DEPTH + 1),
        ) {
            let (events, delivery) = delivered(&new, &json!({}));
            let refused = |r: Result<Vec<u8>>| matches!(r, Err(Error::TooDeep { .. }));
            prop_assert!(refused(crate::outbox::encode_records(&events).map(|mut r| r.remove(0))));
            prop_assert!(refused(encode(&delivery)));
        }
    }
}

//! The one way records go into sled and come out: JSON, with the reader's
//! limits checked when a record is written. A record serde_json could not
//! read back is refused at write time, as that write's own failure,
//! instead of being stored and failing every reader after it.
//!
//! The records written once per event (outbox records and deliveries) are
//! packed: compressed with zstd against a dictionary of the text they
//! repeat, behind a tag byte no JSON text begins with. Every reader takes
//! either form, so records written before packing read as they are.

use crate::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::ser::Formatter;
use std::borrow::Cow;
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

/// A record from its bytes, packed or not.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(&json_of(bytes)?).map_err(Error::Corrupt)
}

/// The JSON text of a record, unpacked if it was packed.
pub(crate) fn json_of(bytes: &[u8]) -> Result<Cow<'_, [u8]>> {
    match bytes.split_first() {
        Some((&PACKED_V1, packed)) => unpack(packed).map(Cow::Owned).map_err(Error::Corrupt),
        _ => Ok(Cow::Borrowed(bytes)),
    }
}

/// The first byte of a record packed with [`DICTIONARY_V1`]; JSON texts
/// begin with whitespace or a value, never with a control character.
const PACKED_V1: u8 = 0x01;

/// The most bytes a packed record may unpack to. Far above any record the
/// API's limits let through; a packed record that claims more is corrupt
/// and is refused before anything is allocated for it.
pub const UNPACKED_MAX: usize = 64 << 20;

/// zstd's level for packing: its fastest. Records are small, and the
/// dictionary does most of the work.
const PACK_LEVEL: i32 = 1;

/// What packed records are compressed against (a zstd raw-content
/// dictionary): the text that deliveries and outbox records repeat, so
/// that a record of a few hundred bytes compresses well on its own. A
/// record packed with it must read back for as long as it is stored:
/// never change it; a better one comes with a tag of its own.
const DICTIONARY_V1: &[u8] = concat!(
    r#"{"id":"5f3fe402-3578-57da-869b-e52552020483","source":"rate-limiting-advanced","#,
    r#""event":"rate-limit-exceeded","data":{"consumer":{"id":"","username":""},"#,
    r#""ip":"192.0.2.1","service":{"id":"","name":""},"rate":100,"limit":10,"#,
    r#""window":"second"},"at_ms":1800000000000}"#,
    r#"{"source":"oas-validation","event":"validation-failed","data":{"consumer":"","#,
    r#""err":"","ip":"","service":""}}{"source":"service-protection","event":"hook-paused"}"#,
    r#"{"id":"0195c3a4-7b2e-8c1d-9f3a-2b4c6d8e0f1a","source":"balancer","#,
    r#""event":"health","data":{"upstream_id":"","ip":"127.0.0.1","port":8000,"#,
    r#""hostname":"localhost","health":"healthy"},"at_ms":1800000000000}"#,
    r#"{"id":"","hook_id":"","event":{"id":"","source":"dao:crud","event":"update","#,
    r#""data":{"entity":{"created_at":1800000000,"id":"","name":"","tags":["#,
    r#"]},"old_entity":{"created_at":1800000000,"id":""},"operation":"update","#,
    r#""schema":"services"},"at_ms":1800000000000},"seq":1,"state":"dead","#,
    r#""attempts":[{"number":1,"at_ms":1800000000000,"latency_ms":10000,"#,
    r#""ok":false,"error":"connection refused"},{"number":2,"at_ms":1800000000000,"#,
    r#""latency_ms":30,"ok":false,"status":500,"response":"Internal Server Error"}],"#,
    r#""created_at_ms":1800000000000,"next_attempt_at_ms":1800000000000}"#,
    r#"{"id":"","hook_id":"","event":{"id":"","source":"crud","event":"consumers:create","#,
    r#""data":{"entity":{"created_at":1800000000,"id":"","type":0,"#,
    r#""updated_at":1800000000,"username":"user"},"operation":"create","#,
    r#""schema":"consumers"},"at_ms":1800000000000},"seq":1,"state":"succeeded","#,
    r#""attempts":[{"number":1,"at_ms":1800000000000,"latency_ms":1,"ok":true,"#,
    r#""status":200}],"created_at_ms":1800000000000}"#,
)
.as_bytes();

thread_local! {
    /// Each thread's packer, with the dictionary loaded once.
    static PACKER: std::cell::RefCell<zstd::bulk::Compressor<'static>> = std::cell::RefCell::new(
        zstd::bulk::Compressor::with_dictionary(PACK_LEVEL, DICTIONARY_V1)
            .expect("zstd takes its own level and a raw dictionary"),
    );
    /// Each thread's unpacker, with the dictionary loaded once.
    static UNPACKER: std::cell::RefCell<zstd::bulk::Decompressor<'static>> = std::cell::RefCell::new(
        zstd::bulk::Decompressor::with_dictionary(DICTIONARY_V1)
            .expect("zstd takes a raw dictionary"),
    );
}

/// A record's bytes packed, as [`encode`] checks them; as JSON when
/// packing would not make them shorter.
pub(crate) fn encode_packed<T: Serialize + ?Sized>(record: &T) -> Result<Vec<u8>> {
    let json = encode(record)?;
    let packed = PACKER
        .with_borrow_mut(|packer| packer.compress(&json))
        .map_err(|e| Error::Pack(e.to_string()))?;
    if packed.len() + 1 >= json.len() {
        return Ok(json);
    }
    let mut record = Vec::with_capacity(packed.len() + 1);
    record.push(PACKED_V1);
    record.extend_from_slice(&packed);
    Ok(record)
}

/// The JSON of a packed record, if it unpacks to at most [`UNPACKED_MAX`]
/// bytes: a frame states its size, which is checked before allocating.
fn unpack(packed: &[u8]) -> std::result::Result<Vec<u8>, serde_json::Error> {
    let corrupt = |why: &str| <serde_json::Error as serde::de::Error>::custom(why);
    let size = match zstd::zstd_safe::get_frame_content_size(packed) {
        Ok(Some(size)) if size <= UNPACKED_MAX as u64 => size as usize,
        Ok(Some(_)) => return Err(corrupt("a packed record claims too many bytes")),
        _ => return Err(corrupt("a packed record has no readable size")),
    };
    UNPACKER
        .with_borrow_mut(|unpacker| unpacker.decompress(packed, size))
        .map_err(|e| corrupt(&format!("a packed record does not unpack: {e}")))
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
    fn packed_records_are_smaller_and_read_back_as_json_ones_do() {
        let event = Event::new(
            "crud",
            "consumers",
            json!({"entity": {"username": "zoe"}}),
            1,
        );
        let delivery = Delivery::new(Uuid::new_v4(), event, 7, 1);
        let (json, packed) = (
            encode(&delivery).unwrap(),
            encode_packed(&delivery).unwrap(),
        );
        assert_eq!(packed[0], PACKED_V1);
        assert!(
            packed.len() * 2 < json.len(),
            "{} of {}",
            packed.len(),
            json.len()
        );
        assert_eq!(decode::<Delivery>(&packed).unwrap(), delivery);
        assert_eq!(
            decode::<Delivery>(&json).unwrap(),
            delivery,
            "records from before packing"
        );
    }

    #[test]
    fn tiny_records_stay_json() {
        assert_eq!(encode_packed(&json!(1)).unwrap(), b"1");
    }

    #[test]
    fn packed_records_that_claim_too_much_or_do_not_unpack_are_corrupt() {
        let huge = zstd::bulk::compress(&vec![b' '; UNPACKED_MAX + 1], 1).unwrap();
        for bytes in [huge, b"garbage".to_vec(), Vec::new()] {
            let record = [&[PACKED_V1][..], &bytes].concat();
            assert!(matches!(decode::<Value>(&record), Err(Error::Corrupt(_))));
        }
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

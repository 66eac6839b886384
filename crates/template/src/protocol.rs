//! What the server and a worker say to each other over the worker's stdin
//! and stdout: frames of a 4-byte big-endian length and that many bytes of
//! JSON. The first frame the server sends is the worker's [`Hello`]; then
//! each [`Request`] is answered by one frame: per-template results for a
//! render, a [`Verdict`] for a condition.

use crate::engine::{EngineLimits, Escape, Failure};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How a worker limits itself, sent before anything else.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) engine: EngineLimits,
    /// The most memory the worker process may have, in bytes.
    pub(crate) memory: u64,
}

/// One template to render and how its `{{ }}` escapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub source: String,
    pub escape: Escape,
}

/// What the server asks of a worker, in one round trip.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Request<'a> {
    /// Templates rendered with one context: answered by [`Answers`].
    Render {
        templates: &'a [Template],
        context: &'a serde_json::Value,
    },
    /// A condition evaluated with one context: answered by a [`Verdict`].
    Evaluate {
        condition: &'a str,
        context: &'a serde_json::Value,
    },
}

/// A [`Request`] as the worker reads it.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OwnedRequest {
    Render {
        templates: Vec<Template>,
        context: serde_json::Value,
    },
    Evaluate {
        condition: String,
        context: serde_json::Value,
    },
}

/// Whether a condition held, or what went wrong with it.
pub type Verdict = Result<bool, Failure>;

/// Each template's text, or what went wrong with it, in request order.
pub type Answers = Vec<Result<String, Failure>>;

fn too_long(len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a frame of {len} bytes is longer than {max}"),
    )
}

fn encode(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(value)?;
    let len = u32::try_from(body.len()).map_err(|_| too_long(body.len(), u32::MAX as usize))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads one frame; `None` at the end of input before a frame starts.
pub(crate) fn read<T: DeserializeOwned>(
    input: &mut impl Read,
    max: usize,
) -> io::Result<Option<T>> {
    let mut len = [0; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(too_long(len, max));
    }
    let mut body = vec![0; len];
    input.read_exact(&mut body)?;
    Ok(Some(serde_json::from_slice(&body)?))
}

pub(crate) fn write(output: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    output.write_all(&encode(value)?)?;
    output.flush()
}

pub(crate) async fn send(
    output: &mut (impl AsyncWrite + Unpin),
    value: &impl Serialize,
) -> io::Result<()> {
    output.write_all(&encode(value)?).await?;
    output.flush().await
}

pub(crate) async fn receive<T: DeserializeOwned>(
    input: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> io::Result<T> {
    let len = input.read_u32().await? as usize;
    if len > max {
        return Err(too_long(len, max));
    }
    let mut body = vec![0; len];
    input.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        write(&mut buf, &vec![Ok::<_, Failure>("a".to_string())]).unwrap();
        let mut input = buf.as_slice();
        let answers: Option<Answers> = read(&mut input, 100).unwrap();
        assert_eq!(answers, Some(vec![Ok("a".to_string())]));
        assert!(read::<Answers>(&mut input, 100).unwrap().is_none());
    }

    #[test]
    fn a_frame_longer_than_allowed_is_refused() {
        let mut buf = Vec::new();
        write(&mut buf, &"x".repeat(50)).unwrap();
        let err = read::<String>(&mut buf.as_slice(), 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}

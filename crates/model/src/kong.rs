//! Kong's error codes, which its Admin API puts in every error answer
//! (`{"code", "name", "message", "fields"}`).

use serde::Serialize;

/// The kinds of error Kong's DAO reports that hookd answers, with Kong's
/// numbering (Kong's 6, not found, and 8, database error, are answered as
/// `{"message"}` alone, as Kong's Admin API does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A path id or key that is not valid for the entity.
    InvalidPrimaryKey = 1,
    /// Input that does not fit the schema.
    SchemaViolation = 2,
    /// An entity with that primary key already exists.
    PrimaryKeyViolation = 3,
    /// A reference to an entity that does not exist, or a delete refused
    /// because others refer to the entity.
    ForeignKeyViolation = 4,
    /// A unique value already taken.
    UniqueViolation = 5,
    /// A pagination offset that does not decode.
    InvalidOffset = 7,
    /// A page size out of range.
    InvalidSize = 9,
}

impl ErrorCode {
    /// Kong's `name` for the code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidPrimaryKey => "invalid primary key",
            ErrorCode::SchemaViolation => "schema violation",
            ErrorCode::PrimaryKeyViolation => "primary key violation",
            ErrorCode::ForeignKeyViolation => "foreign key violation",
            ErrorCode::UniqueViolation => "unique constraint violation",
            ErrorCode::InvalidOffset => "invalid offset",
            ErrorCode::InvalidSize => "invalid size",
        }
    }
}

/// An error answer body in Kong's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KongError {
    /// Kong's numeric code.
    pub code: u8,
    /// Kong's name for the code.
    pub name: &'static str,
    /// What went wrong, in one line.
    pub message: String,
    /// Per-field detail, shaped like the input.
    pub fields: serde_json::Value,
}

impl KongError {
    /// An error of this code.
    pub fn new(code: ErrorCode, message: impl Into<String>, fields: serde_json::Value) -> Self {
        KongError {
            code: code as u8,
            name: code.name(),
            message: message.into(),
            fields,
        }
    }
}

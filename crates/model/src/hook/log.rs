//! The `log` handler's configuration.

use super::HandlerConfig;
use crate::schema::Field;
use serde::{Deserialize, Serialize};

/// `log` configuration: nothing to set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {}

impl HandlerConfig for LogConfig {
    fn fields() -> Vec<Field> {
        Vec::new()
    }
}

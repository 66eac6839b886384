//! Output for people: fixed-width tables, `key: value` details, and the
//! few value formats they share (times, JSON leaves).

use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

/// Widest a cell is shown; longer text ends in `…` (`--json` has it all).
/// The last column is shown whole: nothing after it is pushed out of line,
/// and it is where tables put the reason or error people read to the end.
const MAX_WIDTH: usize = 60;

/// A table with a header row, columns as wide as their widest cell.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

/// A column of a listing: its header, and how it shows a record.
pub type Column = (&'static str, fn(&Value) -> String);

impl Table {
    /// A table of `records`, a row each, a cell per column.
    pub fn of(records: &[Value], columns: &[Column]) -> Table {
        let headers: Vec<&'static str> = columns.iter().map(|(header, _)| *header).collect();
        let mut table = Table::new(&headers);
        for record in records {
            table.row(columns.iter().map(|(_, show)| show(record)).collect());
        }
        table
    }

    /// An empty table with these column headers.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let last = self.headers.len().saturating_sub(1);
        let mut cells: Vec<String> = cells
            .into_iter()
            .take(self.headers.len())
            .enumerate()
            .map(|(i, c)| if i == last { one_line(&c) } else { clip(&c) })
            .collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, one line per row, without trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = width - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// One line of text at most [`MAX_WIDTH`] characters: control characters
/// (a multi-line error) become spaces so that rows stay rows.
fn clip(text: &str) -> String {
    let flat = one_line(text);
    if flat.chars().count() <= MAX_WIDTH {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAX_WIDTH - 1).collect();
    cut.push('…');
    cut
}

/// The text on one line: control characters (a multi-line error) become
/// spaces so that rows stay rows.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `key: value` lines with the values aligned.
pub fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (key, value) in pairs {
        let key = format!("{key}:");
        out.push_str(format!("{key:width$} {value}").trim_end());
        out.push('\n');
    }
    out
}

/// A JSON leaf as a cell: strings without quotes, null as `-`, anything
/// else as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Unix seconds as RFC 3339 UTC; `-` when absent.
pub fn time_s(v: &Value) -> String {
    match v.as_u64() {
        Some(s) => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string()
        }
        None => cell(v),
    }
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds; `-` when absent.
pub fn time_ms(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        None => cell(v),
    }
}

/// Pretty JSON, indented under a `details` key.
pub fn indented_json(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&["ID", "STATE"]);
        t.row(vec!["a".into(), "succeeded".into()]);
        t.row(vec!["long-id".into()]);
        assert_eq!(t.render(), "ID       STATE\na        succeeded\nlong-id\n");
    }

    #[test]
    fn long_and_multi_line_cells_stay_on_one_line_clipped_but_the_last() {
        let long = format!("line one\nline two {}", "x".repeat(100));
        let mut t = Table::new(&["ERROR", "REASON"]);
        t.row(vec![long.clone(), long]);
        let rendered = t.render();
        let row = rendered.lines().nth(1).unwrap();
        let (error, reason) = row.split_at(row.find('…').unwrap() + '…'.len_utf8());
        assert!(error.starts_with("line one line two x"), "{row}");
        assert_eq!(error.chars().count(), MAX_WIDTH);
        assert_eq!(
            reason.trim_start(),
            format!("line one line two {}", "x".repeat(100))
        );
    }

    #[test]
    fn details_align_their_values() {
        assert_eq!(
            details(&[("id", "1".into()), ("handler", "log".into())]),
            "id:      1\nhandler: log\n"
        );
    }

    #[test]
    fn leaves_and_times_read_well() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("a")), "a");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(time_s(&json!(0)), "1970-01-01T00:00:00Z");
        assert_eq!(time_ms(&json!(1500)), "1970-01-01T00:00:01.500Z");
        assert_eq!(time_s(&json!(null)), "-");
    }
}

//! A plain text table: a header row, then rows of cells, columns padded to
//! their widest cell, the first left-aligned and the rest right-aligned.

use crate::Summary;
use std::time::Duration;

/// Rows of cells under a header.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table of [`Table::summary`] rows.
    pub fn of_summaries() -> Self {
        Table::new(&["", "rate", "per CPU-second", "p50", "p99"])
    }

    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    /// Adds a row; missing cells are left blank.
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    /// Adds a row of a name and its rate, rate per CPU-second, p50 and p99.
    pub fn summary(&mut self, name: &str, s: &Summary) -> &mut Self {
        let cpu_rate = s.cpu_rate.map_or_else(|| "-".into(), rate);
        self.row(vec![
            name.into(),
            rate(s.rate),
            cpu_rate,
            ms(s.p50),
            ms(s.p99),
        ])
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                if c == 0 {
                    line.push_str(&format!("{cell:<width$}"));
                } else {
                    line.push_str(&format!("  {cell:>width$}"));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// A rate with thousands separated: `12,345/s`.
pub fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second.round() as u64))
}

/// A count with thousands separated: `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Bytes in MiB, one decimal: `12.5 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A latency in milliseconds, with µs precision: `1.234 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A ratio: `0.83×`.
pub fn ratio(x: f64) -> String {
    format!("{x:.2}×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rate(1234567.4), "1,234,567/s");
        assert_eq!(rate(999.0), "999/s");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(ms(Duration::from_micros(1500)), "1.500 ms");
        assert_eq!(ratio(0.834), "0.83×");
    }

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&["what", "rate"]);
        t.row(vec!["a long name".into(), "1/s".into()])
            .row(vec!["b".into(), "10,000/s".into()]);
        assert_eq!(
            t.to_string(),
            "what             rate\na long name       1/s\nb            10,000/s\n"
        );
    }
}

//! One collection of the Admin API as the client verbs see it: where it
//! lives, what a record is called, its listing's columns and how one
//! record reads for people. The verbs every collection has (`list`,
//! `show`, `delete`, an action such as `retry`) are written here once.

use super::client::{Client, encode};
use super::table::{Column, Table};
use super::{print_json, print_listing, print_record};
use serde_json::Value;

/// A collection of the Admin API, e.g. `/guests`.
pub(crate) struct Resource {
    /// Its path: `/guests`.
    pub path: &'static str,
    /// What one record is called in messages: `guest`.
    pub noun: &'static str,
    /// The columns of its listing.
    pub columns: &'static [Column],
    /// One record for people.
    pub describe: fn(&Value) -> String,
}

impl Resource {
    /// The path of the record `id`, or of one of its sub-resources.
    pub fn member(&self, id: &str, rest: &str) -> String {
        format!("{}/{}{rest}", self.path, encode(id))
    }

    /// Lists every record (every page), as a table or `{"data": [...]}`.
    pub async fn list(&self, client: &Client, json: bool) -> anyhow::Result<()> {
        let records = client.list(self.path).await?;
        print_listing(json, records, |records| self.table(records))
    }

    /// Records as this collection's table.
    pub fn table(&self, records: &[Value]) -> Table {
        Table::of(records, self.columns)
    }

    /// Shows one record.
    pub async fn show(&self, client: &Client, json: bool, id: &str) -> anyhow::Result<()> {
        let record = client.get(&self.member(id, "")).await?;
        self.print(json, &record)
    }

    /// Prints a record the server answered with.
    pub fn print(&self, json: bool, record: &Value) -> anyhow::Result<()> {
        print_record(json, record, self.describe)
    }

    /// Deletes one record; says so unless `--json` (which prints nothing:
    /// the server answers 204).
    pub async fn delete(&self, client: &Client, json: bool, id: &str) -> anyhow::Result<()> {
        client.delete(&self.member(id, "")).await?;
        if !json {
            println!("deleted {} {id}", self.noun);
        }
        Ok(())
    }

    /// Runs an action on one record (`POST {path}/{id}/{action}`, no
    /// body); the answer is printed with `--json`, else `summary` of it.
    pub async fn act(
        &self,
        client: &Client,
        json: bool,
        id: &str,
        action: &str,
        summary: impl Fn(&Value) -> String,
    ) -> anyhow::Result<()> {
        let answer = client
            .post_empty(&self.member(id, &format!("/{action}")))
            .await?;
        if json {
            return print_json(&answer);
        }
        println!("{}", summary(&answer));
        Ok(())
    }
}

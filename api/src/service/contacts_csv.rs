//! Contacts as CSV: the import reads rows as they arrive (never the whole file at once),
//! writes them a batch per transaction with each row in a savepoint of its own, so a bad row
//! is reported and the good ones around it are kept; the export streams the directory a page
//! at a time. Columns: name, phone_numbers (separated by `;`), email, company, notes.

use openapi::ErrorCode;
use std::io::Read;

use domain::contacts::{self as rules, ContactFields};
use domain::{Actor, ContactId, DomainError};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::contacts::{self, Contact};
use persistence::repo::savepoint;

use super::events::Outbox;
use crate::error::ApiError;
use crate::state::AppState;

pub const COLUMNS: [&str; 5] = ["name", "phone_numbers", "email", "company", "notes"];
/// Rows per transaction: large enough to be quick, small enough to hold no lock for long.
const BATCH: usize = 200;
pub const MAX_ROWS: usize = 50_000;
/// Contacts per page of the export.
pub const EXPORT_PAGE: i64 = 500;

/// Where each known column is in the file.
struct Layout {
    index: [Option<usize>; 5],
}

impl Layout {
    fn from_header(header: &csv::StringRecord) -> Result<Layout, ApiError> {
        let mut index = [None; 5];
        for (position, raw) in header.iter().enumerate() {
            // Spreadsheets often start a UTF-8 file with a byte-order mark.
            let name = raw.trim_start_matches('\u{feff}').trim().to_lowercase();
            let Some(column) = COLUMNS.iter().position(|known| *known == name) else {
                return Err(ApiError::BadRequest(format!(
                    "unknown column {name:?}; the columns are {}",
                    COLUMNS.join(", ")
                )));
            };
            if index[column].replace(position).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "column {name:?} appears twice"
                )));
            }
        }
        if index[0].is_none() && index[1].is_none() && index[2].is_none() {
            return Err(ApiError::BadRequest(
                "the header row must name at least one of name, phone_numbers, email".into(),
            ));
        }
        Ok(Layout { index })
    }

    fn cell<'r>(&self, record: &'r csv::StringRecord, column: usize) -> Option<&'r str> {
        let cell = record.get(self.index[column]?)?;
        let cell = unescape(cell.trim());
        (!cell.is_empty()).then_some(cell)
    }
}

/// A spreadsheet runs a cell that starts with one of these as a formula; the export puts a
/// `'` before it (CSV injection) and the import takes it off again.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn escape(cell: &str) -> String {
    if cell.starts_with(FORMULA_STARTS) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// One data row, by its line as a spreadsheet numbers it (the header is row 1).
struct Row {
    number: i64,
    fields: Result<ContactFields, DomainError>,
}

fn parse_row(layout: &Layout, record: &csv::StringRecord, number: i64) -> Row {
    let numbers: Vec<String> = layout
        .cell(record, 1)
        .map(|cell| {
            cell.split(';')
                .map(str::trim)
                .filter(|number| !number.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let fields = rules::fields(
        layout.cell(record, 0),
        &numbers,
        layout.cell(record, 2),
        layout.cell(record, 3),
        layout.cell(record, 4),
    )
    .and_then(|fields| {
        rules::ensure_identifiable(&fields)?;
        Ok(fields)
    });
    Row { number, fields }
}

/// What became of one row.
enum Taken {
    Created,
    Updated,
}

/// A row that matches one contact updates it: its non-empty cells replace the contact's,
/// and its numbers join the contact's. No match: a new contact. Several: refused.
fn take_row(
    conn: &mut DbConnection,
    actor: &Actor,
    fields: &ContactFields,
) -> Result<(Taken, ContactId), ApiError> {
    let found = contacts::matching(
        conn,
        actor.org_id,
        &fields.phone_numbers,
        fields.email.as_deref(),
    )?;
    let (contact, taken) = match found.as_slice() {
        [] => (
            contacts::insert(conn, actor.org_id, fields)?,
            Taken::Created,
        ),
        [id] => {
            let current =
                contacts::lock(conn, actor.org_id, *id)?.ok_or_else(ApiError::not_found)?;
            let mut numbers = current.phone_numbers.clone();
            numbers.extend(
                fields
                    .phone_numbers
                    .iter()
                    .filter(|number| !current.phone_numbers.contains(number))
                    .cloned(),
            );
            let merged = ContactFields {
                name: fields.name.clone().or(current.name),
                phone_numbers: numbers,
                email: fields.email.clone().or(current.email),
                company: fields.company.clone().or(current.company),
                notes: fields.notes.clone().or(current.notes),
            };
            (
                contacts::update(conn, actor.org_id, *id, &merged)?,
                Taken::Updated,
            )
        }
        _ => {
            return Err(ApiError::Conflict {
                code: ErrorCode::Duplicate,
                detail: "the row's numbers or e-mail belong to more than one contact".into(),
            });
        }
    };
    let action = match taken {
        Taken::Created => "imported",
        Taken::Updated => "updated_by_import",
    };
    contacts::record_activity(
        conn,
        actor.org_id,
        contact.id,
        action,
        Some(actor.user_id),
        "{}",
    )?;
    Ok((taken, contact.id))
}

/// The code and detail a refused row is reported with; `None` for failures that are not
/// the row's fault (the database went away): those end the import.
fn row_failure(error: &ApiError) -> Option<(&'static str, String)> {
    match error {
        ApiError::Domain(DomainError::Validation(fields)) => Some((
            error.code().as_str(),
            fields
                .iter()
                .map(|field| format!("{}: {}", field.field, field.message))
                .collect::<Vec<_>>()
                .join("; "),
        )),
        ApiError::Conflict { detail, .. } => Some((error.code().as_str(), detail.clone())),
        ApiError::Domain(other) => Some((error.code().as_str(), other.to_string())),
        _ => None,
    }
}

fn csv_error(error: &csv::Error) -> ApiError {
    match error.kind() {
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::FileTooLarge => {
            ApiError::PayloadTooLarge
        }
        _ => ApiError::BadRequest(format!("the CSV cannot be read: {error}")),
    }
}

/// Reads the CSV from `input` (blocking: run it off the async workers) and imports it.
pub fn import(
    state: &AppState,
    actor: &Actor,
    input: impl Read,
) -> Result<wire::ImportResult, ApiError> {
    // Records end at a line feed (a CR before it is trimmed off with the cell's spaces): so
    // a record's position names the line it starts on, for CRLF files too.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(input);
    let header = reader.headers().map_err(|error| csv_error(&error))?.clone();
    let layout = Layout::from_header(&header)?;
    let mut result = wire::ImportResult {
        created: 0,
        updated: 0,
        failed: Vec::new(),
    };
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    let mut seen = 0usize;
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|error| csv_error(&error))?;
        if more {
            seen += 1;
            if seen > MAX_ROWS {
                return Err(ApiError::Domain(DomainError::invalid(
                    "file",
                    &format!("at most {MAX_ROWS} rows per import; split the file"),
                )));
            }
            // The header is row 1; a record's own line is where it starts.
            let number = record
                .position()
                .map_or(seen as i64 + 1, |at| at.line() as i64);
            batch.push(parse_row(&layout, &record, number));
        }
        if batch.len() >= BATCH || (!more && !batch.is_empty()) {
            write_batch(state, actor, std::mem::take(&mut batch), &mut result)?;
        }
        if !more {
            break;
        }
    }
    Ok(result)
}

fn write_batch(
    state: &AppState,
    actor: &Actor,
    rows: Vec<Row>,
    result: &mut wire::ImportResult,
) -> Result<(), ApiError> {
    let mut failed = Vec::new();
    let (mut created, mut updated) = (0, 0);
    let logged = crate::db::write_here(&state.store, |conn| {
        let mut outbox = Outbox::new();
        let mut taken_ids: Vec<i64> = Vec::new();
        for row in &rows {
            let outcome = match &row.fields {
                Ok(fields) => {
                    // A number or e-mail saved by someone else between the row's lookup and
                    // its insert (a text from that number, say) is matched on a second look.
                    match savepoint(conn, |conn| take_row(conn, actor, fields)) {
                        Err(ApiError::Conflict { .. }) => {
                            savepoint(conn, |conn| take_row(conn, actor, fields))
                        }
                        outcome => outcome,
                    }
                }
                Err(error) => Err(ApiError::Domain(error.clone())),
            };
            match outcome {
                Ok((taken, id)) => {
                    match taken {
                        Taken::Created => created += 1,
                        Taken::Updated => updated += 1,
                    }
                    if !taken_ids.contains(&id.get()) {
                        taken_ids.push(id.get());
                    }
                }
                Err(error) => match row_failure(&error) {
                    Some((code, detail)) => failed.push(wire::ImportFailure {
                        row: row.number,
                        code: code.to_string(),
                        detail,
                    }),
                    None => return Err(error),
                },
            }
        }
        if !taken_ids.is_empty() {
            outbox.contacts_imported(actor.org_id, &taken_ids)?;
        }
        outbox.flush(conn)
    })?;
    logged.publish(state);
    result.created += created;
    result.updated += updated;
    result.failed.extend(failed);
    Ok(())
}

/// The header row of the export.
pub fn header() -> Vec<u8> {
    let mut line = COLUMNS.join(",");
    line.push_str("\r\n");
    line.into_bytes()
}

/// Contacts as CSV rows, in the import's columns.
pub fn rows(contacts: &[Contact]) -> Result<Vec<u8>, ApiError> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for contact in contacts {
        let cell = |value: &Option<String>| escape(value.as_deref().unwrap_or(""));
        writer
            .write_record([
                cell(&contact.name),
                contact.phone_numbers.join(";"),
                cell(&contact.email),
                cell(&contact.company),
                cell(&contact.notes),
            ])
            .map_err(|error| ApiError::Internal(error.to_string()))?;
    }
    writer
        .into_inner()
        .map_err(|error| ApiError::Internal(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_come_back_intact() {
        for cell in ["=HYPERLINK(\"x\")", "@SUM(A1)", "-2+3", "plain", "'quoted"] {
            assert_eq!(unescape(&escape(cell)), cell);
        }
        assert_eq!(escape("=1+1"), "'=1+1");
        assert_eq!(escape("Ana"), "Ana");
    }

    #[test]
    fn a_header_must_name_known_columns_once() {
        let header = |cells: &[&str]| csv::StringRecord::from(cells.to_vec());
        assert!(Layout::from_header(&header(&["\u{feff}Name", " Phone_Numbers "])).is_ok());
        assert!(Layout::from_header(&header(&["name", "fax"])).is_err());
        assert!(Layout::from_header(&header(&["name", "name"])).is_err());
        assert!(Layout::from_header(&header(&["company", "notes"])).is_err());
    }
}

//! The audit export as CSV (RFC 4180): a header row, then one row an event, each line ended by CRLF. `details` is
//! the event's JSON as recorded, in one cell.

use crate::{admin::repo::ExportRow, datetime::iso_time};

pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// The first line of every CSV export.
pub const HEADER: &str = "id,at,actor_user_id,actor_email,subject_user_id,subject_email,action,outcome,provider,\
                          account_id,resource_server,request_id,details\r\n";

/// Appends `event` as one row, in the columns of [`HEADER`].
pub fn write_event(out: &mut String, event: &ExportRow) {
    let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let cells = [
        event.id.to_string(),
        iso_time(event.at),
        number(event.actor_user_id),
        text(&event.actor_email),
        number(event.subject_user_id),
        text(&event.subject_email),
        event.action.clone(),
        event.outcome.clone(),
        text(&event.provider),
        text(&event.account_id),
        text(&event.resource_server),
        text(&event.request_id),
        event.details.clone(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_cell(out, cell);
    }
    out.push_str("\r\n");
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break. A cell a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`; OWASP "CSV injection") gets a leading `'`: the values come from providers and users.
fn write_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        let cell = |v: &str| {
            let mut s = String::new();
            write_cell(&mut s, v);
            s
        };
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("{\"k\":1}"), "\"{\"\"k\"\":1}\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1"), "\"'-1\"");
    }

    #[test]
    fn an_event_is_one_row_in_the_header_columns() {
        let event = ExportRow {
            account_id: Some("acc-1".into()),
            request_id: Some("=cmd".into()),
            ..super::super::example("{\"path\":\"/p,1\"}")
        };
        let mut out = String::new();
        write_event(&mut out, &event);
        assert_eq!(
            out,
            format!(
                "7,{},,,2,ada@example.org,delegated_call,success,demo,acc-1,,\"'=cmd\",\"{{\"\"path\"\":\"\"/p,1\"\"}}\"\r\n",
                iso_time(event.at)
            )
        );
        assert_eq!(
            out.matches(',').count() - 1,
            HEADER.matches(',').count(),
            "one comma inside the details"
        );
    }
}
